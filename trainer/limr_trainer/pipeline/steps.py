"""One function per kind of step, shared by `limr run` (every step, local Ray) and the RayJob
entrypoint `limr phase --step KEY` (one step per RayJob, on its cluster).

    baseline    PPO on the full dataset for baseline.epochs (reward records streamed to storage)
    selection   score the baseline trajectories, select, write the selection set
    retrain     PPO from the base model on one arm's subset for retrain.epochs
    evaluation  every arm's final model on the benchmarks, then the report
"""

from __future__ import annotations

from typing import Any

from limr_api import layout, plan

from limr_trainer.pipeline.context import Context


def run_step(ctx: Context, step: plan.Step) -> dict[str, Any]:
    """Run (or skip, when done) one step of the job."""
    if step.kind == "baseline":
        return ctx.once(step.key, lambda: train(ctx, step, None))
    if step.kind == "selection":
        return ctx.once(step.key, lambda: selection(ctx))
    if step.kind == "retrain":
        return ctx.once(step.key, lambda: retrain(ctx, step))
    from limr_trainer.pipeline import evaluate

    return ctx.once(step.key, lambda: evaluate.run(ctx))


def train(ctx: Context, step: plan.Step, prompt_ids: list[str] | None) -> dict[str, Any]:
    """One PPO step through the trainer, with this job's hooks; progress events go to ctx.progress."""
    from limr_trainer.ppo import run_ppo_step

    def on_progress(fields: dict[str, Any]) -> None:
        fields = dict(fields)
        event = fields.pop("event", "step")
        if event in ("start", "step"):
            ctx.emit(step.key, "step", **fields)

    hooks = hooks_for(ctx, step, prompt_ids)
    ctx.emit(step.key, "log", message="starting the trainer: actor, critic and reference ranks, rollout engines")
    return run_ppo_step(ctx.job, step.key, prompt_ids=prompt_ids, storage=ctx.storage, progress=on_progress,
                        hooks=hooks)


def hooks_for(ctx: Context, step: plan.Step, prompt_ids: list[str] | None) -> list[Any]:
    """What runs inside a training step: held-out evaluation every evaluation.everySteps steps, and on
    the baseline the early selection (selection.earlyStop)."""
    spec = ctx.job.spec
    hooks: list[Any] = []
    if spec.evaluation.enabled and spec.evaluation.everySteps:
        from limr_trainer.pipeline.heldout import HeldoutCurve

        hooks.append(HeldoutCurve(ctx, step.key, spec.evaluation.everySteps))
    if step.kind == "baseline" and spec.selection.enabled and spec.selection.earlyStop is not None:
        from limr_trainer.pipeline.early_selection import EarlySelection
        from limr_trainer.ppo.batch import StepPlan

        questions = len(prompt_ids) if prompt_ids is not None else len(ctx.dataset_rows())
        per_epoch = StepPlan(questions, spec.ppo.rolloutBatchSize, spec.baseline.epochs, spec.ppo.seed).steps_per_epoch
        hooks.append(EarlySelection(ctx, step.key, spec.selection.earlyStop, spec.baseline.epochs, per_epoch))
    return hooks


def records_input(ctx: Context) -> tuple[str, Any]:
    """(URI, storage settings) of the baseline reward records: this job's, or spec.baseline.recordsUri."""
    uri = ctx.job.spec.baseline.recordsUri
    if uri is None:
        return ctx.storage.uri(layout.rewards_prefix(ctx.name, plan.BASELINE.key).rstrip("/")), ctx.settings
    return uri, ctx.settings


def selection(ctx: Context) -> dict[str, Any]:
    """The one selection core on the baseline records, joined with the dataset, arms included."""
    from limr_trainer.selection.core import SelectionConfig, run_selection

    sel = ctx.job.spec.selection
    uri, settings = records_input(ctx)
    config = SelectionConfig(input=uri, strategy=sel.strategy, threshold=sel.threshold, size=sel.size,
                             seed=sel.seed, format="limr", arms=True, settings=settings)
    summary = run_selection(config, prompts=ctx.dataset_rows(), storage=ctx.storage,
                            prefix=layout.selection_prefix(ctx.name))
    return {**summary, "questions": summary["selected"]}


def arm_ids(ctx: Context, arm: str) -> list[str] | None:
    """Prompt ids an arm trains on (None = the full dataset), from the committed selection."""
    from limr_trainer.selection.core import subset_keys

    if arm == "full":
        return None
    return subset_keys(ctx.storage, layout.selection_prefix(ctx.name), arm)


def retrain(ctx: Context, step: plan.Step) -> dict[str, Any]:
    """PPO from the base model on one arm's subset."""
    ids = arm_ids(ctx, step.arm or plan.LIM_ARM)
    if ids is not None and not ids:
        return {"arm": step.arm, "questions": 0, "trained": False, "note": "the selection is empty: nothing to train"}
    questions = len(ids) if ids is not None else len(ctx.dataset_rows())
    return {**train(ctx, step, ids), "arm": step.arm, "questions": questions}
