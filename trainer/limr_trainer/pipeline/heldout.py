"""Held-out accuracy during training (`spec.evaluation.everySteps`): a curve per arm for the report.

Every N PPO steps the policy being trained, already synced into the step's own rollout engines, is
run on the job's benchmarks (the same questions, sampling and judge as the Evaluation step) and the
accuracies are appended to `<job>/<step>/heldout.jsonl` (`layout.heldout_key`). No extra engine is
started; generation is seeded per request, so the training rollouts do not change. A resumed step
keeps the points it had and overwrites a replayed step's point.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from limr_api import layout

from limr_trainer.ppo.trainer import TrainerHook


def read_points(storage: Any, job: str, step_key: str) -> list[dict[str, Any]]:
    """The held-out points a training step stored, by step (the last line of a step wins)."""
    key = layout.heldout_key(job, step_key)
    if not storage.exists(key):
        return []
    points = {int(p["step"]): p for p in storage.iter_jsonl(key)}
    return [points[s] for s in sorted(points)]


def average(accuracies: dict[str, float]) -> float:
    return sum(accuracies.values()) / len(accuracies)


class HeldoutCurve(TrainerHook):
    """Evaluates the policy on the job's benchmarks every `every` PPO steps."""

    def __init__(self, ctx: Any, step_key: str, every: int):
        from limr_trainer.evaluation import benchmarks as bench

        self.ctx, self.step_key, self.every = ctx, step_key, every
        training_prompts = {r["prompt"] for r in ctx.dataset_rows()}
        self.benches = bench.benchmarks_from_spec(ctx.job.spec, training_prompts)
        self.points = {int(p["step"]): p for p in read_points(ctx.storage, ctx.name, step_key)}

    def after_step(self, trainer: Any, step: int, row: dict[str, Any]) -> None:
        done = step + 1
        if done % self.every:
            return
        from limr_trainer.data.prompts import end_of_turn_ids, render_prompt
        from limr_trainer.evaluation import benchmarks as bench
        from limr_trainer.evaluation.judges import make_scorer

        tokenizer, system = trainer.tokenizer, self.ctx.job.spec.ppo.systemPrompt
        stops = end_of_turn_ids(tokenizer)
        benches = [dataclasses.replace(b, sampling=dataclasses.replace(b.sampling, stop_token_ids=stops))
                   for b in self.benches]
        results = bench.evaluate(trainer.roles.rollout, benches, lambda q: render_prompt(tokenizer, q, system),
                                 make_scorer(self.ctx.job))
        accuracies = {name: float(r["accuracy"]) for name, r in results.items()}
        self.points[done] = {"step": done, "epoch": row.get("epoch"), "accuracy": accuracies,
                             "average": average(accuracies)}
        lines = [json.dumps(self.points[s]) for s in sorted(self.points)]
        self.ctx.storage.put_bytes(layout.heldout_key(self.ctx.name, self.step_key), ("\n".join(lines) + "\n").encode())
        self.ctx.emit(self.step_key, "log", message=f"held-out accuracy after step {done}: "
                      f"{100 * self.points[done]['average']:.1f}%")

    def summary(self) -> dict[str, Any]:
        if not self.points:
            return {}
        last = self.points[max(self.points)]
        return {"heldout_points": len(self.points), "heldout_last": {"step": last["step"], "average": last["average"]}}
