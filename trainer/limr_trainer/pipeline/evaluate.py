"""The Evaluation step: every arm's final model on the benchmarks, then the report.

One rollout backend starts on the base model; each trained arm's final weights are loaded into it
in turn (the same weight sync the trainer uses every step), which is much cheaper than starting an
engine per arm. Each arm's result is stored as soon as it is known, so an interrupted evaluation
resumes at the next arm. Which arm is which model comes from `limr_api.plan.evaluated_arms`.
"""

from __future__ import annotations

from typing import Any

from limr_api import layout, plan

from limr_trainer.evaluation import benchmarks as bench
from limr_trainer.evaluation import report
from limr_trainer.evaluation.judges import LIMR_JUDGE, make_scorer
from limr_trainer.pipeline.context import Context
from limr_trainer.pipeline.early_selection import early_stop_text
from limr_trainer.pipeline.heldout import read_points
from limr_trainer.storage import Storage

EVAL = plan.EVALUATION.key


def arms_to_evaluate(ctx: Context) -> list[tuple[str, str | None]]:
    """(arm, step key of its model; None = the base model) whose training has completed."""
    out = []
    for arm, step in plan.evaluated_arms(ctx.job.spec):
        if step is None:
            out.append((arm, None))
            continue
        done = ctx.done_summary(step)
        if done is not None and done.get("trained", True):
            out.append((arm, step))
    return out


def questions_used(ctx: Context, step: str | None) -> int | None:
    if step is None:
        return None
    done = ctx.done_summary(step) or {}
    return int(done["questions"]) if done.get("questions") is not None else None


def run(ctx: Context) -> dict[str, Any]:
    job, storage, name = ctx.job, ctx.storage, ctx.name
    training_prompts = {r["prompt"] for r in ctx.dataset_rows()}
    benches = bench.benchmarks_from_spec(job.spec, training_prompts)
    arms = arms_to_evaluate(ctx)
    pending = [(a, s) for a, s in arms if not storage.exists(layout.arm_result_key(name, a))]
    if pending:
        _evaluate_arms(ctx, benches, pending)
    results = {arm: storage.get_json(layout.arm_result_key(name, arm)) for arm, _ in arms}
    return write_report(ctx, results, [b.name for b in benches])


def _evaluate_arms(ctx: Context, benches: list[bench.Benchmark], pending: list[tuple[str, str | None]]) -> None:
    import dataclasses

    import ray
    from transformers import AutoTokenizer

    from limr_trainer.data.prompts import end_of_turn_ids, render_prompt
    from limr_trainer.reward.pool import CheckerPool
    from limr_trainer.rollout import make_backend
    from limr_trainer.rollout.options import backend_options
    from limr_trainer.runtime.model import ModelSource, resolve_model

    job, storage, name = ctx.job, ctx.storage, ctx.name
    model = ModelSource.of(job.spec)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(model))
    system = job.spec.ppo.systemPrompt
    stops = end_of_turn_ids(tokenizer)
    benches = [dataclasses.replace(b, sampling=dataclasses.replace(b.sampling, stop_token_ids=stops)) for b in benches]

    def render(question: str) -> str:
        return render_prompt(tokenizer, question, system)

    scorer = make_scorer(job)
    total = sum(len(b.rows) for b in benches) * len(pending)
    done = 0
    device = "cuda" if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0 else "cpu"
    backend = make_backend(job.spec.rollout.backend, model, **backend_options(job.spec, device, "eval"))
    paper_pool = CheckerPool(job.spec.reward.workers, check=LIMR_JUDGE)
    paper_scorer = make_scorer(job, paper_pool)
    try:
        for arm, step in pending:
            if step is not None:  # the arm's trained policy, read where the engines run
                final = ctx.storage.uri(layout.final_model_prefix(name, step).rstrip("/"))
                backend.load_model(ModelSource(final, None, ctx.settings))
            # else: the base model, always first in `pending`, so no weights were loaded yet

            seen: dict[str, int] = {}

            def progress(bench_name: str, n: int, of: int, _arm: str = arm, _base: int = done,
                         _seen: dict[str, int] = seen) -> None:
                _seen[bench_name] = n
                ctx.emit(EVAL, "step", arm=_arm, benchmark=bench_name, done=_base + sum(_seen.values()),
                         total=total)

            results = bench.evaluate(backend, benches, render, scorer, progress=progress, paper_scorer=paper_scorer)
            done += sum(len(b.rows) for b in benches)
            for r in results.values():
                r.pop("per_question_correct", None)
            storage.put_json(layout.arm_result_key(name, arm), {
                "arm": arm,
                "model": step or plan.BASE_ARM,
                "questions": questions_used(ctx, step),
                "benchmarks": results,
            })
    finally:
        backend.close()
        paper_pool.close()


def write_report(ctx: Context, results: dict[str, dict[str, Any]], bench_names: list[str]) -> dict[str, Any]:
    """Results table (Markdown + JSON), what it means, and the plots, into `<job>/evaluation/report/`."""
    storage, name = ctx.storage, ctx.name
    rows = report.build_table(results, bench_names)
    notes = []
    baseline = ctx.done_summary(plan.BASELINE.key) or {}
    early = baseline.get("early_stop")
    if "full" in results and results["full"].get("model") == plan.BASELINE.key:
        notes.append("full-data run = the baseline run (same data, recipe, seed and epochs as the retrain arms)."
                     if not (early and early.get("stopped_after_epoch")) else
                     f"full-data run = the baseline run, ended by selection.earlyStop after epoch "
                     f"{early['stopped_after_epoch']} of {early['epochs_planned']} (the retrain arms ran their epochs).")
    if early:
        notes.append("early selection: " + early_stop_text(early) + ".")
    sel = ctx.done_summary(plan.SELECTION.key)
    if sel:
        notes.append(
            f"selection: {sel.get('strategy')} threshold {sel.get('threshold')}: {sel.get('selected')} of "
            f"{sel.get('total')} questions ({sel.get('dropped')} dropped for missing epochs)."
        )
    prefix = layout.report_prefix(name)
    metrics, points, finals = {}, {}, {}
    for arm, res in results.items():
        step = res.get("model")
        if step and step != plan.BASE_ARM:
            key = layout.metrics_key(name, step)
            if storage.exists(key):
                metrics[arm] = list(storage.iter_jsonl(key))
            points[arm] = read_points(storage, name, step)
            trained = (ctx.done_summary(step) or {}).get("steps")
            average = next((r["average"] for r in rows if r["arm"] == arm), None)
            if trained is not None and average is not None:
                finals[arm] = (int(trained), float(average))
    base = next((r["average"] for r in rows if r["arm"] == plan.BASE_ARM), None)
    storage.put_bytes(prefix + "training_reward.png", report.plot_reward_curves(report.reward_curves(metrics)))
    curves = report.heldout_curves(points, finals, base)
    storage.put_bytes(prefix + "heldout_accuracy.png", report.plot_heldout_curves(curves, base))
    plots = ["heldout_accuracy.png", "training_reward.png"] + copy_selection_plots(storage, name, prefix)
    md = report.render_markdown(rows, bench_names, f"LIMR results: {name}", notes)
    md += "\n## What the table says\n\n" + report.reading(rows) + "\n"
    md += "\n" + "\n".join(f"![{p.removesuffix('.png')}]({p})" for p in plots) + "\n"
    storage.put_bytes(prefix + "report.md", md.encode())
    extra = {"job": name, "selection": sel, "early_stop": early, "results": results, "plots": plots,
             "heldout_curves": {arm: {"steps": xs, "accuracy": ys} for arm, (xs, ys) in curves.items()},
             "reading": report.reading(rows)}
    storage.put_bytes(prefix + "report.json", report.report_json(rows, bench_names, extra).encode())
    return {"arms": [r["arm"] for r in rows], "report": storage.uri(prefix + "report.md"), "table": rows}


def copy_selection_plots(storage: Storage, job_name: str, report_prefix: str) -> list[str]:
    """Copy the selection plots next to the report; returns the names copied."""
    copied = []
    for plot in layout.PLOTS:
        key = layout.plot_key(job_name, plot)
        if storage.exists(key):
            storage.put_bytes(report_prefix + plot, storage.get_bytes(key))
            copied.append(plot)
    return copied
