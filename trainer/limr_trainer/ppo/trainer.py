"""One PPO phase, driven from a single controller (this process) over Ray roles.

Read `run_ppo_phase` top to bottom: set up roles -> resume -> for every step: generate, score,
record, forward passes, advantages, train, sync weights, log, checkpoint -> export the model.
Everything random is a function of (seed, epoch, step), so a step replayed after a crash makes
the same prompts, the same samples and the same reward records (deterministic storage keys).
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from limr_trainer import checkpoint, layout, records
from limr_trainer.ppo import core
from limr_trainer.rollout.base import SamplingConfig
from limr_trainer.spec import LIMRJob

TORCH_EXTENSIONS_DIR_DEFAULT = str(Path(__file__).resolve().parents[3] / ".cache" / "torch_extensions")


# ---------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class StepPlan:
    """Which prompts each global step uses: an epoch is a seeded shuffle cut into full batches."""

    n_prompts: int
    batch: int
    epochs: int
    seed: int

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.n_prompts // self.batch)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def indices(self, step: int) -> list[int]:
        epoch, i = divmod(step, self.steps_per_epoch)
        order = list(range(self.n_prompts))
        random.Random(self.seed * 100_003 + epoch).shuffle(order)
        size = min(self.batch, self.n_prompts)
        return order[i * size:(i + 1) * size]


def generation_seed(seed: int, epoch: int, step: int) -> int:
    return (seed * 1_000_033 + epoch * 10_007 + step) % (2**31 - 1)


def phase_epochs(job: LIMRJob, phase: str) -> int:
    return job.spec.baseline.epochs if phase == "baseline" else job.spec.retrain.epochs


def final_model_prefix(job_name: str, phase: str) -> str:
    """Where a phase's trained policy lands as a Hugging Face folder."""
    return layout.checkpoint_prefix(job_name, phase, "final") + "actor_hf/"


# ------------------------------------------------------------------------------------ batches


def build_batch(groups: list[list[Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded prompt+response sequences and the action mask from per-prompt completions."""
    seqs, starts = [], []
    for comps in groups:
        for c in comps:
            seqs.append(list(c.prompt_token_ids) + list(c.token_ids))
            starts.append(len(c.prompt_token_ids))
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    att = torch.zeros((len(seqs), width), dtype=torch.long)
    act = torch.zeros((len(seqs), width - 1), dtype=torch.float32)
    for i, (s, p) in enumerate(zip(seqs, starts)):
        ids[i, : len(s)] = torch.tensor(s)
        att[i, : len(s)] = 1
        act[i, p - 1: len(s) - 1] = 1.0  # position t predicts token t+1
    return {"sequences": ids, "attention_mask": att, "action_mask": act}


def scalar_scores(results: list, spec_reward) -> torch.Tensor:
    """The job's reward levels (spec.reward) for each checker result."""
    return torch.tensor([spec_reward.correct if r.correct else spec_reward.formatError if r.format_error
                         else spec_reward.wrong for r in results], dtype=torch.float32)


def compute_advantages(batch: dict[str, torch.Tensor], scores: torch.Tensor, ppo) -> dict[str, float]:
    """Adds advantages and returns to `batch` (in place); returns KL statistics."""
    mask = batch["action_mask"]
    kl = core.kl_penalty(batch["old_logprobs"], batch["ref_logprobs"], ppo.klEstimator) * mask
    rewards = core.token_rewards(scores, kl, mask, ppo.klCoef)
    adv, ret = core.gae(rewards, batch["old_values"], mask, ppo.gamma, ppo.lambd)
    batch["advantages"] = core.masked_whiten(adv, mask) if ppo.whitenAdvantages else adv
    batch["returns"] = ret
    return {"kl": core.masked_mean(kl, mask, dim=1).mean().item()}


# ---------------------------------------------------------------------------------------- roles


def ensure_ray(job: LIMRJob) -> bool:
    """Connect to the cluster (RayJob sets RAY_ADDRESS) or start a private local one; True if started."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", TORCH_EXTENSIONS_DIR_DEFAULT)
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=False)
    else:
        temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
        ray.init(address="local", _temp_dir=temp, include_dashboard=False, log_to_driver=False,
                 num_cpus=max(os.cpu_count() or 1, 2))
    return True


def worker_env() -> dict[str, str]:
    keys = ("TORCH_EXTENSIONS_DIR", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION", "HF_HOME", "LIMR_CACHE")
    env = {k: os.environ[k] for k in keys if os.environ.get(k)}
    env.setdefault("TORCH_EXTENSIONS_DIR", TORCH_EXTENSIONS_DIR_DEFAULT)
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env


@dataclass
class Roles:
    actor: Any
    critic: Any
    reference: Any
    rollout: Any
    sync: Callable[[], None]

    def close(self) -> None:
        for group in (self.actor, self.critic, self.reference):
            if group is not None:
                group.close()
        if self.rollout is not None:
            self.rollout.close()


def start_roles(job: LIMRJob, model_dir: str, device: str) -> Roles:
    """Actor, critic, reference groups and the rollout backend, per the job's resources."""
    from limr_trainer.ppo.workers import ActorWorker, CriticWorker, ReferenceWorker, RoleGroup, ds_config
    from limr_trainer.rollout import make_backend
    from limr_trainer.rollout.weight_sync import make_weight_sync

    spec, ppo = job.spec, job.spec.ppo
    dtype = spec.model.dtype if device == "cuda" else "float32"
    env = worker_env()

    def gpus(role) -> float:
        return role.gpus if device == "cuda" else 0.0

    def train_config(world: int) -> dict:
        per_step = ppo.trainBatchSize // world
        if ppo.trainBatchSize % world or per_step % ppo.microBatchSize:
            raise ValueError(f"trainBatchSize {ppo.trainBatchSize} must split into {world} ranks x microBatchSize "
                             f"{ppo.microBatchSize}")
        return ds_config(ppo.zeroStage, ppo.microBatchSize, per_step // ppo.microBatchSize, world,
                         ppo.maxGradNorm, dtype == "bfloat16")

    common = {"model_dir": model_dir, "dtype": dtype, "betas": ppo.adamBetas, "weight_decay": ppo.weightDecay, "seed": ppo.seed}
    actor = RoleGroup("actor", ActorWorker, ppo.actor.replicas, ppo.actor.cpus, gpus(ppo.actor), env,
                      dict(common, lr=ppo.actorLearningRate, config=train_config(ppo.actor.replicas)), wait=False)
    critic = RoleGroup("critic", CriticWorker, ppo.critic.replicas, ppo.critic.cpus, gpus(ppo.critic), env,
                       dict(common, lr=ppo.criticLearningRate, config=train_config(ppo.critic.replicas)), wait=False)
    reference = RoleGroup("reference", ReferenceWorker, ppo.reference.replicas, ppo.reference.cpus,
                          gpus(ppo.reference), env, {"model_dir": model_dir, "dtype": dtype, "micro": ppo.microBatchSize}, wait=False)
    ro = spec.rollout
    max_len = ppo.promptMaxLength + ppo.generateMaxLength
    if ro.backend == "vllm":
        backend = make_backend("vllm", model_dir, engines=ro.engines, tensor_parallel_size=ro.tensorParallelSize,
                               cpus_per_engine=ro.cpusPerEngine, max_model_len=max_len, seed=ppo.seed,
                               dtype=dtype, device=device, gpu_memory_utilization=ro.gpuMemoryUtilization)
        weight_sync = make_weight_sync(ro.weightSync, device, ro.tensorParallelSize)
        for group in (actor, critic, reference):
            group.wait()
        weight_sync.setup(actor, backend.engines)

        def sync() -> None:
            weight_sync.push(actor, backend.engines)
    else:
        backend = make_backend("hf", model_dir, device="cuda" if device == "cuda" else "cpu", dtype=dtype)
        for group in (actor, critic, reference):
            group.wait()

        def sync() -> None:
            import ray
            from safetensors.torch import load

            refs = actor.call_async("weights_bytes")
            backend.update_weights(load(ray.get(refs[0])))
            ray.get(refs[1:])

    return Roles(actor, critic, reference, backend, sync)


def resolve_model_dir(name: str) -> str:
    """A local folder for the base model: toy:// built, s3:// downloaded, hub ids left to HF."""
    if name.startswith("toy://"):
        from limr_trainer.phases import cache_root, parse_toy_uri
        from limr_trainer.toy import ensure_toy_model

        return str(ensure_toy_model(cache_root() / "models", **parse_toy_uri(name)))
    if name.startswith("s3://"):
        from limr_trainer.storage import open_storage

        bucket, _, prefix = name.removeprefix("s3://").partition("/")
        local = tempfile.mkdtemp(prefix="limr-model-")
        open_storage(f"s3://{bucket}").get_dir(prefix, local)
        return local
    if os.path.isdir(name):
        return name
    from huggingface_hub import snapshot_download

    return snapshot_download(name)


def storage_args(storage) -> dict[str, Any]:
    """How a worker opens the same storage root (credentials travel as environment variables)."""
    args: dict[str, Any] = {"uri": storage.uri()}
    endpoint = getattr(storage, "endpoint", None) or getattr(storage, "endpoint_url", None)
    if endpoint:
        args["endpoint"] = endpoint
    return args


# -------------------------------------------------------------------------------------- the loop


def run_ppo_phase(job: LIMRJob, phase_name: str, prompt_ids: list[str] | None = None, storage=None,
                  progress: Callable[[dict], None] | None = None, max_steps: int | None = None) -> dict[str, Any]:
    """Train one PPO phase (baseline, retrain, retrain-<arm>) and return its summary.

    Resumes from the phase's latest checkpoint when there is one. `max_steps` stops early (tests).
    """
    import ray
    from transformers import AutoTokenizer

    from limr_trainer import reward as reward_mod
    from limr_trainer.checkpoint import load_latest, rng_restore
    from limr_trainer.data import load_rows, render_prompt, truncate_prompt_ids
    from limr_trainer.metrics import MetricsLog, Prometheus

    spec, ppo = job.spec, job.spec.ppo
    name = job.metadata.name
    phase = layout.check_phase(phase_name)
    if storage is None:
        from limr_trainer.phases import open_job_storage

        storage = open_job_storage(job)

    rows = load_rows(spec.dataset, endpoint=spec.storage.endpoint)
    if prompt_ids is not None:
        wanted = set(map(str, prompt_ids))
        rows = [r for r in rows if r["id"] in wanted]
        if len(rows) != len(wanted):
            raise ValueError(f"{len(wanted) - len(rows)} of the requested prompt ids are not in the dataset")
    if not rows:
        raise ValueError("no prompts to train on")
    plan = StepPlan(len(rows), ppo.rolloutBatchSize, phase_epochs(job, phase), ppo.seed)
    last_step = plan.total_steps if max_steps is None else min(plan.total_steps, max_steps)

    model_dir = resolve_model_dir(spec.model.name)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompts = [tokenizer.decode(truncate_prompt_ids(
        tokenizer(render_prompt(tokenizer, r["prompt"], ppo.systemPrompt), add_special_tokens=False)["input_ids"],
        ppo.promptMaxLength)) for r in rows]

    started_ray = ensure_ray(job)
    device = "cuda" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu"
    roles = None
    try:
        roles = start_roles(job, model_dir, device)
        moments = core.RunningMoments()
        resume = load_latest(storage, name, phase)
        start = 0
        if resume is not None:  # weights, optimizer states, normaliser, RNG, metrics so far
            ray.get(roles.actor.call_async("load_checkpoint", storage_args(storage), resume["prefix"] + "actor/")
                    + roles.critic.call_async("load_checkpoint", storage_args(storage), resume["prefix"] + "critic/"))
            moments = core.RunningMoments.from_state(resume["normalizer"])
            rng_restore(resume["rng"])
            start = resume["step"] + 1
            roles.sync()
        metrics = MetricsLog(storage, name, phase, resume_step=start - 1)
        gauges = Prometheus(name, phase)
        if progress:
            progress({"event": "start", "step": start, "total": last_step, "resumed": resume is not None})

        for step in range(start, last_step):
            t0 = time.perf_counter()
            seconds: dict[str, float] = {}
            epoch = plan.epoch_of(step)
            batch_rows = [rows[i] for i in plan.indices(step)]

            # 1. generate
            sampling = SamplingConfig(n=ppo.samplesPerPrompt, temperature=spec.rollout.sampling.temperature,
                                      top_p=spec.rollout.sampling.topP, top_k=spec.rollout.sampling.topK,
                                      max_tokens=ppo.generateMaxLength, seed=generation_seed(ppo.seed, epoch, step))
            t = time.perf_counter()
            groups = roles.rollout.generate([prompts[i] for i in plan.indices(step)], sampling)
            seconds["generate"] = time.perf_counter() - t
            flat = [(row, k, c) for row, comps in zip(batch_rows, groups) for k, c in enumerate(comps)]

            # 2. reward (CPU worker pool) and this step's records, under a deterministic key
            t = time.perf_counter()
            results = reward_mod.score_batch([reward_mod.RewardItem(c.text, row["answer"], c.truncated)
                                              for row, _, c in flat],
                                             workers=spec.reward.workers, timeout=spec.reward.timeoutSeconds)
            storage.put_parquet(layout.rewards_key(name, phase, epoch, step), records.table_from_rows(
                {"epoch": epoch, "step": step, "prompt_id": row["id"], "sample": k, "reward": res.reward,
                 "correct": res.correct, "format_error": res.format_error, "response_length": len(c.token_ids),
                 "truncated": c.truncated} for (row, k, c), res in zip(flat, results)))
            raw_scores = scalar_scores(results, spec.reward)
            if ppo.normalizeReward:
                moments.update(raw_scores)
                scores = moments.normalize(raw_scores)
            else:
                scores = raw_scores
            seconds["reward"] = time.perf_counter() - t

            # 3. forward passes: reference and old-policy logprobs, critic values (in parallel)
            batch = build_batch(groups, tokenizer.pad_token_id)
            t = time.perf_counter()
            pending = {"reference": roles.reference.scatter_async("logprobs", batch),
                       "actor": roles.actor.scatter_async("logprobs", batch),
                       "critic": roles.critic.scatter_async("values", batch)}
            done_at: dict[str, float] = {}
            outputs: dict[str, list] = {}
            for role in ("reference", "actor", "critic"):
                outputs[role] = ray.get(pending[role])
                done_at[role] = time.perf_counter() - t
            seconds["reference"] = max(done_at["reference"], done_at["actor"])
            seconds["critic"] = done_at["critic"]
            batch["ref_logprobs"] = torch.cat(outputs["reference"])
            batch["old_logprobs"] = torch.cat([o["logprobs"] for o in outputs["actor"]])
            entropy = torch.cat([o["entropy"] for o in outputs["actor"]])
            batch["old_values"] = torch.cat(outputs["critic"])

            # 4. advantages (GAE over per-token rewards with the KL penalty), then train both roles
            kl_stats = compute_advantages(batch, scores, ppo)
            t = time.perf_counter()
            train_stats: dict[str, float] = {}
            for ppo_epoch in range(ppo.ppoEpochs):
                order = torch.randperm(len(flat), generator=torch.Generator().manual_seed(
                    generation_seed(ppo.seed, epoch, step) + ppo_epoch))
                shuffled = {k: v[order] for k, v in batch.items()}
                actor_refs = roles.actor.scatter_async("train", shuffled, ppo.clipRange)
                critic_refs = roles.critic.scatter_async("train", shuffled, ppo.valueClipRange)
                for part in ray.get(actor_refs)[:1] + ray.get(critic_refs)[:1]:
                    train_stats.update(part)
            seconds["train"] = time.perf_counter() - t

            # 5. weight sync: the engines generate the next step with the updated policy
            t = time.perf_counter()
            roles.sync()
            seconds["sync"] = time.perf_counter() - t
            seconds["total"] = time.perf_counter() - t0

            # 6. metrics
            mask = batch["action_mask"]
            n_tokens = sum(len(c.token_ids) for _, _, c in flat)
            row = {"step": step, "epoch": epoch, "prompts": len(batch_rows), "samples": len(flat),
                   "reward_mean": sum(r.reward for r in results) / len(results),
                   "accuracy": sum(r.correct for r in results) / len(results),
                   "format_error_rate": sum(r.format_error is not None for r in results) / len(results),
                   "kl": kl_stats["kl"], "entropy": core.masked_mean(entropy, mask).item(),
                   "response_length": n_tokens / len(flat),
                   "tokens_per_second": n_tokens / max(seconds["generate"], 1e-9),
                   "reward_normalizer": moments.state_dict(), **train_stats,
                   "seconds": {k: round(v, 4) for k, v in seconds.items()}}
            metrics.append(row)
            gauges.observe(row)
            if progress:
                progress({"event": "step", "step": step + 1, "total": last_step, **{
                    k: row[k] for k in ("epoch", "reward_mean", "accuracy", "kl", "response_length")}})

            # 7. checkpoint every N steps and at the end
            if (step + 1) % ppo.checkpointEverySteps == 0 or step + 1 == last_step:
                def save_roles(prefix: str) -> None:
                    ray.get(roles.actor.call_async("save_checkpoint", storage_args(storage), prefix + "actor/")
                            + roles.critic.call_async("save_checkpoint", storage_args(storage), prefix + "critic/"))

                checkpoint.save(storage, name, phase, step, {"epoch": epoch, "normalizer": moments.state_dict(),
                                                            "cursor": step + 1}, save_roles)

        if last_step == plan.total_steps:
            roles.actor.call("save_hf", storage_args(storage), final_model_prefix(name, phase))
        rewards = [r["reward_mean"] for r in metrics.rows]
        summary = {"phase": phase, "steps": last_step, "total_steps": plan.total_steps,
                   "epochs": plan.epochs, "steps_per_epoch": plan.steps_per_epoch, "questions": len(rows),
                   "resumed_from": None if resume is None else resume["step"],
                   "reward_first": rewards[0] if rewards else None, "reward_last": rewards[-1] if rewards else None,
                   "accuracy_last": metrics.rows[-1]["accuracy"] if metrics.rows else None,
                   "final_model": storage.uri(final_model_prefix(name, phase).rstrip("/")) if last_step == plan.total_steps else None,
                   "records": storage.uri(layout.rewards_prefix(name, phase).rstrip("/"))}
        if progress:
            progress({"event": "end", **summary})
        return summary
    finally:
        if roles is not None:
            roles.close()
        if started_ray:
            ray.shutdown()
        from limr_trainer.rollout.vllm_backend import cleanup_shm

        cleanup_shm()
