"""One GRPO workload, ours and TRL's `GRPOTrainer`, side by side on the CPU.

    bench/trainer/grpo_vs_trl.sh [REPEATS]    (builds TRL's venv, runs both sides alternately)
    python bench/trainer/bench_grpo_vs_trl.py --side ours|trl --steps N --out FILE

Same toy model (the warm-started tiny Qwen2 of `runtime.toy_model`), same 16 prompts x 4 samples
per step (group size 4), at most 32 new tokens at temperature 1.0, the same rule reward (ours:
`limr_trainer.reward.check`), a reference model with a 0.01 KL term on both sides, one optimizer
step per training step, float32, no gradient checkpointing. Ours: `PPOTrainer` with
`advantageEstimator: grpo` (vLLM CPU engine, DeepSpeed actor, reference, checker pool, Ray).
TRL 1.16: `GRPOTrainer` with transformers `generate` (its CPU path; vLLM 0.32 is outside its
supported range). Each side reports: seconds from process start to the first step's start
(start-up), per-step wall seconds (median of steps after the first) and generated tokens/s.
TRL is never a dependency of the project: it lives in its own venv (.cache/bench-venvs/trl).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

T_START = time.time()  # as early as possible: start-up is measured from here (after interpreter start)
REPO = Path(__file__).resolve().parents[2]
PROMPTS, GROUP, NEW_TOKENS = 16, 4, 32


def toy_model() -> Path:
    from limr_trainer.runtime import toy_model as toy

    return toy.ensure_toy_model(REPO / ".cache" / "toy-models", warm_steps=toy.TOY_WARM_STEPS)


def rows(n: int) -> list[dict]:
    from limr_trainer.data.synthetic import arithmetic_rows

    return arithmetic_rows(n, seed=5)


def ours(steps: int) -> dict:
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions"))
    import tempfile

    from limr_api.loader import load_job
    from limr_trainer.ppo.trainer import PPOTrainer
    from limr_trainer.runtime import toy_model as toy

    model = toy_model()
    job = toy.toy_job(str(model), tempfile.mkdtemp(prefix="limr-grpo-"), name="grpo", n=PROMPTS * (steps + 1),
                      epochs=1, ppo={"advantageEstimator": "grpo", "rolloutBatchSize": PROMPTS, "samplesPerPrompt": GROUP,
                                     "trainBatchSize": PROMPTS * GROUP, "microBatchSize": PROMPTS * GROUP,
                                     "generateMaxLength": NEW_TOKENS, "klCoef": 0.01, "gradientCheckpointing": False,
                                     "warmupSteps": 0, "lrSchedule": "constant", "actorLearningRate": 1e-5},
                      rollout={"sampling": {"temperature": 1.0}})
    first: dict[str, float] = {}

    def progress(e: dict) -> None:
        if e.get("event") == "start":
            first["t"] = time.time()

    t_trainer = time.time()
    trainer = PPOTrainer(load_job(job), "baseline", max_steps=steps, progress=progress)
    summary = trainer.fit()
    rows_ = trainer.metrics.rows
    parts = {"imports_and_model": t_trainer - T_START, **summary["startup_seconds"]}
    return {"startup_s": first["t"] - T_START, "startup_parts_s": parts, "step_s": [r["seconds"]["total"] for r in rows_],
            "tokens_per_s": [r["tokens_per_second"] for r in rows_],
            "response_length": [r["response_length"] for r in rows_]}


def trl(steps: int) -> dict:
    import torch
    from datasets import Dataset
    from limr_trainer.data.prompts import render_prompt
    from limr_trainer.reward import check
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    model_dir = toy_model()
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    data = rows(PROMPTS * (steps + 1))
    answers = {render_prompt(tok, r["prompt"]): r["answer"] for r in data}
    dataset = Dataset.from_dict({"prompt": list(answers)})

    def rule_reward(prompts, completions, **_):
        return [check(c, answers[p]).reward for p, c in zip(prompts, completions)]

    marks: dict[str, list] = {"begin": [], "end": []}

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            marks["begin"].append(time.time())

        def on_step_end(self, args, state, control, **kwargs):
            marks["end"].append(time.time())

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    args = GRPOConfig(output_dir="/tmp/limr-trl-out", max_steps=steps, per_device_train_batch_size=PROMPTS * GROUP,
                      gradient_accumulation_steps=1, num_generations=GROUP, max_completion_length=NEW_TOKENS,
                      temperature=1.0, use_vllm=False, bf16=False, fp16=False, use_cpu=True, gradient_checkpointing=False,
                      report_to="none", logging_steps=1, save_strategy="no", dataloader_num_workers=0, seed=0,
                      beta=0.01, learning_rate=1e-5, shuffle_dataset=False)
    trainer = GRPOTrainer(model=model, reward_funcs=rule_reward, args=args, train_dataset=dataset,
                          processing_class=tok, callbacks=[Timer()])
    trainer.train()
    logs = [h for h in trainer.state.log_history if "completions/mean_length" in h]
    steps_s = [e - b for b, e in zip(marks["begin"], marks["end"])]
    lengths = [h["completions/mean_length"] for h in logs]
    return {"startup_s": marks["begin"][0] - T_START, "step_s": steps_s,
            "tokens_per_s": [PROMPTS * GROUP * n / s for n, s in zip(lengths, steps_s)], "response_length": lengths}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", choices=("ours", "trl"), required=True)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    result = ours(args.steps) if args.side == "ours" else trl(args.steps)
    after_first = result["step_s"][1:] or result["step_s"]
    result.update(side=args.side, steps=args.steps, median_step_s=statistics.median(after_first),
                  median_tokens_per_s=statistics.median(result["tokens_per_s"][1:] or result["tokens_per_s"]),
                  load_average=os.getloadavg(), python=sys.version.split()[0])
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("side", "startup_s", "median_step_s", "median_tokens_per_s")}))


if __name__ == "__main__":
    main()
