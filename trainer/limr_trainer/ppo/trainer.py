"""One PPO training step of a job (baseline, retrain, retrain-<arm>), driven from a single controller.

Read `PPOTrainer.fit` top to bottom: set up (data, model, roles) -> resume -> for every step
`train_step`: generate, score, record, forward, advantages, train, sync, log, checkpoint -> export
the policy -> summary. The math lives in `core` and `advantages`, batch building in `batch`, the
Ray roles in `roles`, `groups` and `workers`; this class only orders the stages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from limr_api import layout, plan
from limr_api.job import LIMRJob

from limr_trainer.data import records
from limr_trainer.ppo import checkpoint, core
from limr_trainer.ppo.advantages import compute_advantages
from limr_trainer.ppo.batch import StepPlan, build_batch, generation_seed, scalar_scores
from limr_trainer.rollout.base import SamplingConfig
from limr_trainer.runtime.model import ModelSource, resolve_model
from limr_trainer.storage import Storage, job_root

Progress = Callable[[dict[str, Any]], None]


class TrainerHook:
    """Something the pipeline runs inside a training step without the loop knowing what it is
    (held-out evaluation every few steps, early stopping of the baseline, ...). Every method is
    optional; `after_epoch` returning True ends the training step after that data epoch."""

    def after_step(self, trainer: PPOTrainer, step: int, row: dict[str, Any]) -> None:
        """After PPO step `step` (0-based) logged `row`, before its checkpoint."""

    def after_epoch(self, trainer: PPOTrainer, epoch: int) -> bool:
        """After the last step of data epoch `epoch` (checkpoint written); True stops training."""
        return False

    def summary(self) -> dict[str, Any]:
        """Fields this hook adds to the step's summary."""
        return {}


@dataclass
class Experience:
    """What one step generated and how it scored."""

    step: int
    epoch: int
    rows: list[dict[str, Any]]
    groups: list[list[Any]]  # per prompt, its completions
    flat: list[tuple[dict[str, Any], int, Any]] = field(default_factory=list)  # (row, sample index, completion)
    results: list[Any] = field(default_factory=list)
    scores: torch.Tensor | None = None

    def group_rewards(self) -> list[list[float]]:
        out: list[list[float]] = []
        i = 0
        for comps in self.groups:
            out.append([r.reward for r in self.results[i:i + len(comps)]])
            i += len(comps)
        return out

    def take(self, groups: list[int]) -> Experience:
        """The experience of only these prompt groups (in this order)."""
        starts = [0]
        for comps in self.groups:
            starts.append(starts[-1] + len(comps))
        flat_index = [j for g in groups for j in range(starts[g], starts[g + 1])]
        return Experience(self.step, self.epoch, [self.rows[g] for g in groups], [self.groups[g] for g in groups],
                          [self.flat[j] for j in flat_index], [self.results[j] for j in flat_index],
                          None if self.scores is None else self.scores[flat_index])

    def extend(self, other: Experience) -> Experience:
        scores = None if self.scores is None or other.scores is None else torch.cat([self.scores, other.scores])
        return Experience(self.step, self.epoch, self.rows + other.rows, self.groups + other.groups,
                          self.flat + other.flat, self.results + other.results, scores)


def uniform_groups(group_rewards: list[list[float]]) -> list[bool]:
    """Which prompts' samples all got the same reward (no signal for a group-relative advantage)."""
    return [len(set(rewards)) <= 1 for rewards in group_rewards]


def dynamic_sample_choice(uniform: list[bool], want: int) -> tuple[list[int], int]:
    """DAPO dynamic sampling: the first `want` groups with signal; when there are not enough, uniform
    groups fill the remaining slots so the update keeps its size. Returns (groups, fillers used)."""
    informative = [i for i, u in enumerate(uniform) if not u]
    chosen = informative[:want]
    fillers = [i for i, u in enumerate(uniform) if u][: want - len(chosen)]
    return chosen + fillers, len(fillers)


class PPOTrainer:
    """Train one step of a job; `fit()` resumes from the step's latest checkpoint when there is one."""

    def __init__(self, job: LIMRJob, step_key: str, prompt_ids: list[str] | None = None,
                 storage: Storage | None = None, progress: Progress | None = None, max_steps: int | None = None,
                 hooks: list[TrainerHook] | None = None):
        self.job, self.spec, self.ppo = job, job.spec, job.spec.ppo
        self.name = job.metadata.name
        self.step_key = layout.check_step(step_key)
        self.root = job_root(self.spec)
        self.storage = storage if storage is not None else self.root.open()
        if storage is not None:
            self.root = type(self.root)(storage.uri(), self.root.settings)
        self.prompt_ids = prompt_ids
        self.progress = progress
        self.max_steps = max_steps
        self.moments = core.RunningMoments()
        self.roles: Any = None
        self.resumed_from: int | None = None
        self.hooks = list(hooks or [])
        self.stopped_after_epoch: int | None = None

    # ------------------------------------------------------------------------------- top level
    def fit(self) -> dict[str, Any]:
        from limr_trainer.runtime.ray_session import ray_session

        t0 = time.perf_counter()
        with ray_session():
            self.startup = {"ray": round(time.perf_counter() - t0, 2)}
            try:
                self.setup()
                self.startup.update(self.roles.startup, total=round(time.perf_counter() - t0, 2))
                start = self.resume()
                self.emit({"event": "start", "step": start, "total": self.last_step,
                           "resumed": self.resumed_from is not None})
                for step in range(start, self.last_step):
                    self.train_step(step)
                    if self.epoch_done(step):
                        break
                self.export()
                summary = self.summary()
                self.emit({"event": "end", **summary})
                return summary
            finally:
                if self.roles is not None:
                    self.roles.close()

    def train_step(self, step: int) -> dict[str, Any]:
        """One PPO step, stage by stage; returns its metrics row."""
        seconds: dict[str, float] = {}
        t0 = time.perf_counter()
        with _timed(seconds, "generate"):
            exp = self.generate(step)
        with _timed(seconds, "reward"):
            self.score(exp)
        sampling_stats: dict[str, float] = {}
        if self.ppo.filterUniformGroups:
            generated, exp, sampling_stats = self.dynamic_sampling(exp, seconds)
        else:
            generated = exp
        with _timed(seconds, "reward"):
            self.record(generated)
        with _timed(seconds, "forward"):
            batch, entropy = self.forward(exp)
        stats = self.advantages(batch, exp)
        with _timed(seconds, "train"):
            stats.update(self.train(batch, exp))
        with _timed(seconds, "sync"):
            self.roles.sync()
        seconds["total"] = time.perf_counter() - t0
        stats.update(sampling_stats)
        row = self.log(exp, batch, entropy, stats, seconds)
        for hook in self.hooks:
            hook.after_step(self, step, row)
        self.checkpoint(step)
        return row

    def epoch_done(self, step: int) -> bool:
        """At the end of a data epoch, ask the hooks whether to stop (early stopping)."""
        if (step + 1) % self.plan.steps_per_epoch or step + 1 == self.last_step:
            return False
        epoch = self.plan.epoch_of(step)
        votes = [hook.after_epoch(self, epoch) for hook in self.hooks]  # every hook sees every epoch
        if any(votes):
            self.stopped_after_epoch = epoch
            if step + 1 < self.last_step:  # the checkpoint of the stopping step is the final one
                self.last_step = step + 1
                self.checkpoint(step)
            return True
        return False

    # ---------------------------------------------------------------------------------- set-up
    def setup(self) -> None:
        """Data, the model (resolved on this host for the tokenizer; every worker resolves its own),
        the prompts as chat strings, and the roles."""
        import ray
        from transformers import AutoTokenizer

        from limr_trainer.data.dataset import load_rows
        from limr_trainer.data.prompts import end_of_turn_ids, render_prompt, truncate_prompt_ids
        from limr_trainer.ppo.metrics import MetricsLog, Prometheus
        from limr_trainer.ppo.roles import start_roles

        rows = load_rows(self.spec.dataset, self.root.settings)
        if self.prompt_ids is not None:
            wanted = set(map(str, self.prompt_ids))
            rows = [r for r in rows if r["id"] in wanted]
            if len(rows) != len(wanted):
                raise ValueError(f"{len(wanted) - len(rows)} of the requested prompt ids are not in the dataset")
        if not rows:
            raise ValueError("no prompts to train on")
        self.rows = rows
        self.plan = StepPlan(len(rows), self.ppo.rolloutBatchSize, plan.epochs(self.spec, plan.parse_step(self.step_key)),
                             self.ppo.seed)
        self.last_step = self.plan.total_steps if self.max_steps is None else min(self.plan.total_steps, self.max_steps)
        self.model = ModelSource.of(self.spec)
        tokenizer = AutoTokenizer.from_pretrained(resolve_model(self.model))
        self.tokenizer = tokenizer
        self.stop_ids = end_of_turn_ids(tokenizer)
        self.prompts = [tokenizer.decode(truncate_prompt_ids(
            tokenizer(render_prompt(tokenizer, r["prompt"], self.ppo.systemPrompt), add_special_tokens=False)["input_ids"],
            self.ppo.promptMaxLength)) for r in rows]
        self.device = "cuda" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu"
        self.roles = start_roles(self.spec, self.model, self.device, self.plan.total_steps)
        self.metrics_log_cls, self.gauges = MetricsLog, Prometheus(self.name, self.step_key)

    def resume(self) -> int:
        """Load the latest checkpoint (weights, optimizer states, normaliser, RNG); the first step to run."""
        import ray

        state = checkpoint.load_latest(self.storage, self.name, self.step_key)
        start = 0
        if state is not None:
            ray.get([ref for group, role in zip(self.roles.trained, ("actor", "critic"))
                     for ref in group.call_async("load_checkpoint", self.root, state["prefix"] + f"{role}/")])
            self.moments = core.RunningMoments.from_state(state["normalizer"])
            checkpoint.rng_restore(state["rng"])
            start = state["step"] + 1
            self.resumed_from = state["step"]
            self.roles.sync()
        self.metrics = self.metrics_log_cls(self.storage, self.name, self.step_key, resume_step=start - 1)
        return start

    # ---------------------------------------------------------------------------------- stages
    def generate(self, step: int, indices: list[int] | None = None, round_: int = 0) -> Experience:
        """Sample `samplesPerPrompt` responses for this step's prompts (seeded by seed, epoch, step and
        the refill round), or for `indices` when given."""
        epoch = self.plan.epoch_of(step)
        indices = self.plan.indices(step) if indices is None else indices
        ppo, sampling_spec = self.ppo, self.spec.rollout.sampling
        seed = generation_seed(ppo.seed, epoch, step) + 7919 * round_
        sampling = SamplingConfig(n=ppo.samplesPerPrompt, temperature=sampling_spec.temperature,
                                  top_p=sampling_spec.topP, top_k=sampling_spec.topK,
                                  max_tokens=ppo.generateMaxLength, seed=seed, stop_token_ids=self.stop_ids)
        groups = self.roles.rollout.generate([self.prompts[i] for i in indices], sampling)
        rows = [self.rows[i] for i in indices]
        flat = [(row, k, c) for row, comps in zip(rows, groups) for k, c in enumerate(comps)]
        return Experience(step, epoch, rows, groups, flat)

    def dynamic_sampling(self, exp: Experience, seconds: dict[str, float], rounds: int = 2
                         ) -> tuple[Experience, Experience, dict[str, float]]:
        """filterUniformGroups: replace prompts whose samples all scored the same by other prompts
        (a seeded draw from the rest of the dataset, up to `rounds` extra generations). Every rollout
        generated is recorded; the update uses the groups with signal. Returns (all generated, the
        training experience, statistics)."""
        import random

        want = len(exp.rows)
        generated = exp
        used = {r["id"] for r in exp.rows}
        pool = [i for i in range(len(self.rows)) if self.rows[i]["id"] not in used]
        random.Random(generation_seed(self.ppo.seed, exp.epoch, exp.step)).shuffle(pool)
        done_rounds = 0
        for round_ in range(1, rounds + 1):
            missing = uniform_groups(generated.group_rewards()).count(False)
            if missing >= want or not pool:
                break
            extra_idx, pool = pool[: want - missing], pool[want - missing:]
            with _timed(seconds, "generate"):
                extra = self.generate(exp.step, extra_idx, round_)
            with _timed(seconds, "reward"):
                self.score(extra)
            generated = generated.extend(extra)
            done_rounds = round_
        uniform = uniform_groups(generated.group_rewards())
        chosen, fillers = dynamic_sample_choice(uniform, want)
        stats = {"uniform_groups": float(sum(uniform[:want])), "refill_rounds": float(done_rounds),
                 "uniform_fillers": float(fillers)}
        return generated, generated.take(chosen), stats

    def score(self, exp: Experience) -> None:
        """The rule reward of every response (checker pool, per-answer timeout), as PPO scores."""
        from limr_trainer import reward

        rw = self.spec.reward
        exp.results = reward.score_batch([reward.RewardItem(c.text, row["answer"], c.truncated)
                                          for row, _, c in exp.flat], workers=rw.workers, timeout=rw.timeoutSeconds)
        raw = scalar_scores(exp.results, rw)
        if self.ppo.normalizeReward:
            self.moments.update(raw)
            exp.scores = self.moments.normalize(raw)
        else:
            exp.scores = raw

    def record(self, exp: Experience) -> None:
        """This step's reward records, under a deterministic key (a replayed step overwrites)."""
        rw = self.spec.reward
        rows = ({"epoch": exp.epoch, "step": exp.step, "prompt_id": row["id"], "sample": k, "reward": res.reward,
                 "correct": res.correct, "format_error": res.format_error, "response_length": len(c.token_ids),
                 "truncated": c.truncated} for (row, k, c), res in zip(exp.flat, exp.results))
        self.storage.put_parquet(layout.rewards_key(self.name, self.step_key, exp.epoch, exp.step),
                                 records.table_from_rows(rows, (rw.correct, rw.wrong, rw.formatError)))

    def forward(self, exp: Experience) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Reference and old-policy log-probabilities and the critic's values, all roles in parallel."""
        import ray

        batch = build_batch(exp.groups, self.tokenizer.pad_token_id)
        pending = {"reference": self.roles.reference.scatter_async("logprobs", batch),
                   "actor": self.roles.actor.scatter_async("logprobs", batch)}
        if self.roles.critic is not None:
            pending["critic"] = self.roles.critic.scatter_async("values", batch)
        outputs = {role: ray.get(refs) for role, refs in pending.items()}
        batch["ref_logprobs"] = torch.cat(outputs["reference"])
        batch["old_logprobs"] = torch.cat([o["logprobs"] for o in outputs["actor"]])
        if "critic" in outputs:
            batch["old_values"] = torch.cat(outputs["critic"])
        return batch, torch.cat([o["entropy"] for o in outputs["actor"]])

    def advantages(self, batch: dict[str, torch.Tensor], exp: Experience) -> dict[str, float]:
        """The job's advantage estimator (GAE by default, as LIMR), in place on the batch."""
        group_ids = [i for i, comps in enumerate(exp.groups) for _ in comps]
        batch["group_ids"] = torch.tensor(group_ids, dtype=torch.long)
        try:
            return compute_advantages(batch, exp.scores, self.ppo)
        finally:
            del batch["group_ids"]  # per sample, not per token: the workers need none

    def train(self, batch: dict[str, torch.Tensor], exp: Experience) -> dict[str, float]:
        """`ppoEpochs` passes over the shuffled batch, one optimizer step per `trainBatchSize`
        experiences (each split over the ranks); actor and critic update in parallel."""
        import ray

        per_update: list[dict[str, float]] = []
        n, size = len(exp.flat), self.ppo.trainBatchSize
        for ppo_epoch in range(self.ppo.ppoEpochs):
            order = torch.randperm(n, generator=torch.Generator().manual_seed(
                generation_seed(self.ppo.seed, exp.epoch, exp.step) + ppo_epoch))
            for start in range(0, n, size):
                rows = order[start:start + size]
                part = {k: v[rows] for k, v in batch.items()}
                refs = self.roles.actor.scatter_async("train", part, self.ppo.clipRange)
                if self.roles.critic is not None:
                    refs += self.roles.critic.scatter_async("train", part, self.ppo.valueClipRange)
                per_update.append(_mean_over_ranks(ray.get(refs)))
        stats = _mean_over_ranks(per_update)
        stats["optimizer_steps"] = len(per_update)
        return stats

    def log(self, exp: Experience, batch: dict[str, torch.Tensor], entropy: torch.Tensor, stats: dict[str, float],
            seconds: dict[str, float]) -> dict[str, Any]:
        """metrics.jsonl, the Prometheus gauges and the progress callback."""
        results, flat = exp.results, exp.flat
        mask = batch["action_mask"]
        n_tokens = sum(len(c.token_ids) for _, _, c in flat)
        row = {"step": exp.step, "epoch": exp.epoch, "prompts": len(exp.rows), "samples": len(flat),
               "reward_mean": sum(r.reward for r in results) / len(results),
               "accuracy": sum(r.correct for r in results) / len(results),
               "format_error_rate": sum(r.format_error is not None for r in results) / len(results),
               "entropy": core.masked_mean(entropy, mask).item(),
               "response_length": n_tokens / len(flat),
               "tokens_per_second": n_tokens / max(seconds["generate"], 1e-9),
               "reward_normalizer": self.moments.state_dict(), **stats,
               "seconds": {k: round(v, 4) for k, v in seconds.items()}}
        self.metrics.append(row)
        self.gauges.observe(row)
        self.emit({"event": "step", "step": exp.step + 1, "total": self.last_step,
                   **{k: row.get(k) for k in ("epoch", "reward_mean", "accuracy", "kl", "response_length")}})
        return row

    def checkpoint(self, step: int) -> None:
        """Every `checkpointEverySteps` steps and after the last one: shards, state, then the pointer."""
        if (step + 1) % self.ppo.checkpointEverySteps and step + 1 != self.last_step:
            return
        latest = checkpoint.load_latest(self.storage, self.name, self.step_key)
        if latest is not None and latest["step"] == step:
            return  # already written (a hook ended training right after a regular checkpoint)
        import ray

        def save_roles(prefix: str) -> None:
            ray.get([ref for group, role in zip(self.roles.trained, ("actor", "critic"))
                     for ref in group.call_async("save_checkpoint", self.root, prefix + f"{role}/")])

        checkpoint.save(self.storage, self.name, self.step_key, step,
                        {"epoch": self.plan.epoch_of(step), "normalizer": self.moments.state_dict(),
                         "cursor": step + 1}, save_roles)

    @property
    def finished(self) -> bool:
        """The whole step ran: every planned PPO step, or a hook ended it after an epoch."""
        return self.last_step == self.plan.total_steps or self.stopped_after_epoch is not None

    def export(self) -> None:
        """The trained policy as a Hugging Face folder, once the whole step ran."""
        if self.finished:
            self.roles.actor.call("save_hf", self.root, layout.final_model_prefix(self.name, self.step_key))

    def summary(self) -> dict[str, Any]:
        rows = self.metrics.rows
        rewards = [r["reward_mean"] for r in rows]
        finished = self.finished
        extra: dict[str, Any] = {}
        for hook in self.hooks:
            extra.update(hook.summary())
        if self.stopped_after_epoch is not None:
            extra["stopped_after_epoch"] = self.stopped_after_epoch
        return {**extra, "startup_seconds": getattr(self, "startup", {}), "phase": self.step_key, "steps": self.last_step, "total_steps": self.plan.total_steps,
                "epochs": self.plan.epochs, "steps_per_epoch": self.plan.steps_per_epoch, "questions": len(self.rows),
                "resumed_from": self.resumed_from,
                "reward_first": rewards[0] if rewards else None, "reward_last": rewards[-1] if rewards else None,
                "accuracy_last": rows[-1]["accuracy"] if rows else None,
                "final_model": self.storage.uri(layout.final_model_prefix(self.name, self.step_key).rstrip("/"))
                if finished else None,
                "records": self.storage.uri(layout.rewards_prefix(self.name, self.step_key).rstrip("/"))}

    def emit(self, fields: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress(fields)


class _timed:
    """`with _timed(seconds, "stage"):` adds the block's wall time to seconds["stage"]."""

    def __init__(self, seconds: dict[str, float], stage: str):
        self.seconds, self.stage = seconds, stage

    def __enter__(self) -> None:
        self.t = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.seconds[self.stage] = self.seconds.get(self.stage, 0.0) + time.perf_counter() - self.t


def _mean_over_ranks(parts: list[dict[str, float]]) -> dict[str, float]:
    """Every rank's training statistics averaged (not rank 0's alone)."""
    keys = {k for p in parts for k in p}
    return {k: sum(p[k] for p in parts if k in p) / sum(1 for p in parts if k in p) for k in sorted(keys)}


def run_ppo_step(job: LIMRJob, step_key: str, prompt_ids: list[str] | None = None, storage: Storage | None = None,
                 progress: Progress | None = None, max_steps: int | None = None,
                 hooks: list[TrainerHook] | None = None) -> dict[str, Any]:
    """Train one step of a job and return its summary (`max_steps` stops early, for tests)."""
    return PPOTrainer(job, step_key, prompt_ids, storage, progress, max_steps, hooks).fit()
