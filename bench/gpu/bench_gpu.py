"""A few PPO (gae) and GRPO steps of a random-init Qwen2.5-1.5B on GPUs, measured stage by stage.

    bench/gpu/run.sh            (the one command for a GPU machine; calls this with its defaults)
    python bench/gpu/bench_gpu.py --device cpu --config tiny --steps 2   (the same code path on a CPU)

Nothing is downloaded: the model is a random initialisation of the checked-in config
(configs/qwen2.5-1.5b.json: the real architecture and vocabulary) with a tokenizer trained locally
(the toy tokenizer; the model's vocabulary stays 151,936, so the logits cost what they cost).
It runs the trainer itself (`PPOTrainer`: real vLLM engines, DeepSpeed ZeRO-3 on CUDA, weight sync
after every update: NCCL when the engine has a GPU of its own, the RPC path when every role shares
one GPU, since NCCL refuses two ranks on one device) and records, per estimator: per-stage seconds
(generate, reward, forward, train, sync), generated tokens/s, weight-sync seconds, and the peak GPU
memory of each role (the ranks' `torch.cuda.max_memory_allocated`, and every process's memory
polled from nvidia-smi). Output: a JSON file and a Markdown section for bench/gpu/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Self

HERE = Path(__file__).resolve().parent
TINY = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 4096,
        "max_position_embeddings": 2048, "tie_word_embeddings": True, "rope_theta": 10000.0}


def gpu_count() -> int:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return len([line for line in out.splitlines() if line.strip()])


def card() -> str:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "no GPU"


class GPUPoller:
    """Peak used GPU memory of every process, from nvidia-smi every `every` seconds."""

    def __init__(self, every: float = 0.5):
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def __enter__(self) -> Self:
        if gpu_count():
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=10, check=False).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            for line in out.splitlines():
                pid, _, used = line.partition(",")
                if pid.strip().isdigit() and used.strip().isdigit():
                    self.peak[int(pid)] = max(self.peak.get(int(pid), 0), int(used) * 2**20)


def build_model(folder: Path, config: dict[str, Any], dtype: str) -> Path:
    """A random-init model of `config` with the locally trained toy tokenizer."""
    import torch
    from limr_trainer.runtime.toy_model import EOS_TOKEN, PAD_TOKEN, build_tokenizer
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    shutil.rmtree(folder, ignore_errors=True)
    tok = build_tokenizer(folder)
    eos, pad = tok.convert_tokens_to_ids(EOS_TOKEN), tok.convert_tokens_to_ids(PAD_TOKEN)
    fields = {k: v for k, v in config.items() if not k.startswith("_") and k not in ("architectures", "model_type")}
    fields.update(bos_token_id=pad, eos_token_id=eos, pad_token_id=pad, torch_dtype=dtype)
    cfg = Qwen2Config(**fields)
    torch.manual_seed(0)
    with torch.device("cpu"):
        model = Qwen2ForCausalLM(cfg).to(getattr(torch, dtype))
    model.save_pretrained(folder, safe_serialization=True)
    GenerationConfig(eos_token_id=eos, pad_token_id=pad, bos_token_id=pad).save_pretrained(folder)
    return folder


def job(model: Path, store: Path, estimator: str, device: str, gpus: int, args: argparse.Namespace) -> dict:
    share = {"gpus": 0.2 if gpus == 1 else 1, "cpus": 1, "replicas": 1} if device == "cuda" else \
        {"gpus": 0, "cpus": 0.25, "replicas": 1}
    return {
        "apiVersion": "limr.io/v1alpha1", "kind": "LIMRJob", "metadata": {"name": f"gpu-{estimator.replace('+', 'p')}"},
        "spec": {
            "model": {"name": str(model), "dtype": "bfloat16" if device == "cuda" else "float32"},
            "dataset": {"uri": f"synthetic://arithmetic?n={args.prompts * (args.steps + 1)}&seed=3"},
            "storage": {"uri": str(store)},
            "reward": {"workers": max(1, min(8, (os.cpu_count() or 2) // 2))},
            "ppo": {"advantageEstimator": estimator, "rolloutBatchSize": args.prompts, "samplesPerPrompt": args.samples,
                    "trainBatchSize": args.prompts * args.samples // 2, "microBatchSize": args.micro,
                    "promptMaxLength": 256, "generateMaxLength": args.new_tokens, "zeroStage": 3 if device == "cuda" else 2,
                    "gradientCheckpointing": device == "cuda", "actorLearningRate": 1e-6, "criticLearningRate": 1e-5,
                    "checkpointEverySteps": 1000, "actor": share, "critic": share, "reference": share},
            "rollout": {"backend": "vllm", "engines": 1, "cpusPerEngine": 1 if device == "cuda" else 0.5,
                        "gpuMemoryUtilization": args.vllm_share if gpus == 1 else 0.85,
                        "weightSync": "nccl" if device == "cuda" and gpus > 1 else "rpc",
                        "sampling": {"temperature": 1.0}},
            "baseline": {"epochs": 1}, "selection": {"enabled": False}, "retrain": {"enabled": False},
            "evaluation": {"enabled": False},
        },
    }


def run_estimator(model: Path, work: Path, estimator: str, device: str, gpus: int, args) -> dict[str, Any]:
    from limr_api.loader import load_job
    from limr_trainer.ppo.trainer import PPOTrainer, TrainerHook

    spec = job(model, work / f"store-{estimator}", estimator, device, gpus, args)
    limr_job = load_job(spec)
    roles_info: dict[str, list] = {}

    class Probe(TrainerHook):
        def after_step(self, trainer: PPOTrainer, step: int, row: dict[str, Any]) -> None:
            groups = {"actor": trainer.roles.actor, "critic": trainer.roles.critic,
                      "reference": trainer.roles.reference}
            for role, group in groups.items():
                if group is not None:
                    roles_info[role] = group.call("process_info")
            import ray

            roles_info["engine"] = ray.get([e.process_info.remote() for e in trainer.roles.rollout.engines])

    started = time.perf_counter()
    trainer = PPOTrainer(limr_job, "baseline", max_steps=args.steps, hooks=[Probe()])
    with GPUPoller() as poller:
        summary = trainer.fit()
    wall = time.perf_counter() - started
    rows = trainer.metrics.rows
    first_step_start = wall - sum(r["seconds"]["total"] for r in rows)
    measured = rows[1:] if len(rows) > 1 else rows  # step 0 includes CUDA graph / allocator warm-up
    stages = {k: sum(r["seconds"].get(k, 0.0) for r in measured) / len(measured)
              for k in ("generate", "reward", "forward", "train", "sync", "total")}
    memory = {}
    for role, infos in roles_info.items():
        pids = [i["pid"] for i in infos] + [c for i in infos for c in i.get("children", [])]
        memory[role] = {"nvidia_smi_peak_gb": round(max((poller.peak.get(p, 0) for p in pids), default=0) / 1e9, 2),
                        "torch_peak_gb": round(max((i.get("gpu_peak_bytes", 0) for i in infos), default=0) / 1e9, 2)}
    return {"estimator": estimator, "steps": len(rows), "wall_seconds": round(wall, 1),
            "startup_seconds": round(first_step_start, 1), "per_step_seconds": {k: round(v, 3) for k, v in stages.items()},
            "tokens_per_second": round(sum(r["tokens_per_second"] for r in measured) / len(measured), 1),
            "response_length": round(sum(r["response_length"] for r in measured) / len(measured), 1),
            "weight_sync": spec["spec"]["rollout"]["weightSync"], "memory": memory,
            "reward_first": summary["reward_first"], "reward_last": summary["reward_last"]}


def markdown(result: dict[str, Any]) -> str:
    lines = [f"### {result['date']}: {result['card']}", "",
             (f"Command: `{result['command']}`; model {result['model']} (random init), {result['prompts']} prompts x "
              f"{result['samples']} samples, up to {result['new_tokens']} new tokens; wall {result['wall_seconds']} s."), "",
             "| estimator | start-up s | generate s | reward s | forward s | train s | sync s | step s | tokens/s | sync |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in result["runs"]:
        s = r["per_step_seconds"]
        lines.append(f"| {r['estimator']} | {r['startup_seconds']} | {s['generate']} | {s['reward']} | {s['forward']} | "
                     f"{s['train']} | {s['sync']} | {s['total']} | {r['tokens_per_second']} | {r['weight_sync']} |")
    lines += ["", "| estimator | role | peak GB (nvidia-smi) | peak GB (torch allocator) |", "|---|---|---:|---:|"]
    for r in result["runs"]:
        for role, m in r["memory"].items():
            lines.append(f"| {r['estimator']} | {role} | {m['nvidia_smi_peak_gb']} | {m['torch_peak_gb']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="qwen2.5-1.5b", help="configs/<name>.json, or 'tiny' (CPU check)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=512)
    parser.add_argument("--micro", type=int, default=8)
    parser.add_argument("--vllm-share", type=float, default=0.3, help="vLLM's share of the one GPU when roles share it")
    parser.add_argument("--estimators", default="gae,grpo")
    parser.add_argument("--work", default="/tmp/limr-gpu-bench")
    parser.add_argument("--out", default=str(HERE / "results.json"))
    args = parser.parse_args()

    gpus = gpu_count() if args.device == "cuda" else 0
    if args.device == "cuda" and not gpus:
        print("bench/gpu: no NVIDIA GPU visible (nvidia-smi): nothing to measure here", flush=True)
        return 2
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    config = TINY if args.config == "tiny" else json.loads((HERE / "configs" / f"{args.config}.json").read_text())
    dtype = "bfloat16" if args.device == "cuda" else "float32"
    t0 = time.perf_counter()
    model = build_model(work / "model", config, dtype)
    print(f"bench/gpu: built {args.config} in {time.perf_counter() - t0:.1f} s", flush=True)

    import ray

    if args.device == "cuda" and gpus == 1:
        # Every role shares the one card: Ray is told of 2 GPUs (3 x 0.2 for the ranks + 1 for the engine,
        # as the engine asks for a whole one) and leaves CUDA_VISIBLE_DEVICES alone, so all see card 0.
        os.environ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"] = "1"
        ray.init(num_gpus=2, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(num_cpus=max(os.cpu_count() or 2, 2), include_dashboard=False, log_to_driver=False)
    runs = []
    try:
        for estimator in args.estimators.split(","):
            print(f"bench/gpu: {estimator} ...", flush=True)
            runs.append(run_estimator(model, work, estimator, args.device, gpus, args))
            print(json.dumps(runs[-1]), flush=True)
    finally:
        ray.shutdown()
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "card": card(), "model": args.config,
              "command": "bench/gpu/run.sh" if args.device == "cuda" else " ".join(os.sys.argv),
              "prompts": args.prompts, "samples": args.samples, "new_tokens": args.new_tokens,
              "wall_seconds": round(time.perf_counter() - t0, 1), "runs": runs}
    Path(args.out).write_text(json.dumps(result, indent=2))
    Path(args.out).with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
