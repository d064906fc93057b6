"""The Evaluation step: every arm's final model on the benchmarks, then the report.

One rollout backend starts on the base model; each trained arm's final weights are loaded into it
in turn (the same weight sync the trainer uses every step), which is much cheaper than starting an
engine per arm. Each arm's result is stored as soon as it is known, so an interrupted evaluation
resumes at the next arm. Which arm is which model comes from `limr_api.plan.evaluated_arms`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from limr_api import layout, plan

from limr_trainer.evaluation import benchmarks as bench
from limr_trainer.evaluation import report
from limr_trainer.pipeline.context import Context
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


def fetch_final_model(storage: Storage, job_name: str, step: str, into: Path) -> Path:
    """Download the final model of a step (HF folder) to `into`."""
    prefix = layout.final_model_prefix(job_name, step)
    keys = storage.get_dir(prefix, into)
    if not keys:
        raise FileNotFoundError(f"no final model at {storage.uri(prefix)}")
    return into


def load_state_dict(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    state: dict[str, Any] = {}
    for f in sorted(folder.glob("*.safetensors")):
        state.update(load_file(str(f)))
    if not state:
        raise FileNotFoundError(f"no .safetensors weights in {folder}")
    return state


def make_scorer(job: Any) -> bench.Scorer:
    """The training reward as the evaluation judge (reason = the format rule that fired, or None)."""
    from limr_trainer import reward

    spec = job.spec.reward

    def scorer(responses: list[str], answers: list[str], truncated: list[bool]):
        items = [reward.RewardItem(r, a, t) for r, a, t in zip(responses, answers, truncated)]
        results = reward.score_batch(items, workers=spec.workers, timeout=spec.timeoutSeconds)
        return [(r.reward, r.correct, r.format_error) for r in results]

    return scorer


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
    import ray
    from transformers import AutoTokenizer

    from limr_trainer.data.prompts import render_prompt
    from limr_trainer.rollout import make_backend
    from limr_trainer.rollout.options import backend_options
    from limr_trainer.runtime.model import ModelSource, resolve_model

    job, storage, name = ctx.job, ctx.storage, ctx.name
    model = ModelSource.of(job.spec)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(model))
    system = job.spec.ppo.systemPrompt

    def render(question: str) -> str:
        return render_prompt(tokenizer, question, system)

    scorer = make_scorer(job)
    total = sum(len(b.rows) for b in benches) * len(pending)
    done = 0
    device = "cuda" if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0 else "cpu"
    backend = make_backend(job.spec.rollout.backend, model, **backend_options(job.spec, device, "eval"))
    try:
        for arm, step in pending:
            scratch = Path(tempfile.mkdtemp(prefix=f"limr-eval-{arm}-"))
            try:
                if step is not None:
                    folder = fetch_final_model(storage, name, step, scratch)
                    backend.update_weights(load_state_dict(folder))
                # else: the base model, always first in `pending`, so no weights were loaded yet

                seen: dict[str, int] = {}

                def progress(bench_name: str, n: int, of: int, _arm: str = arm, _base: int = done,
                             _seen: dict[str, int] = seen) -> None:
                    _seen[bench_name] = n
                    ctx.emit(EVAL, "step", arm=_arm, benchmark=bench_name, done=_base + sum(_seen.values()),
                             total=total)

                results = bench.evaluate(backend, benches, render, scorer, progress=progress)
                done += sum(len(b.rows) for b in benches)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
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


def write_report(ctx: Context, results: dict[str, dict[str, Any]], bench_names: list[str]) -> dict[str, Any]:
    """Results table (Markdown + JSON) and plots into `<job>/evaluation/report/`."""
    storage, name = ctx.storage, ctx.name
    rows = report.build_table(results, bench_names)
    notes = []
    if "full" in results and results["full"].get("model") == plan.BASELINE.key:
        notes.append("full-data run = the baseline run (same data, recipe, seed and epochs as the retrain arms).")
    sel = ctx.done_summary(plan.SELECTION.key)
    if sel:
        notes.append(
            f"selection: {sel.get('strategy')} threshold {sel.get('threshold')}: {sel.get('selected')} of "
            f"{sel.get('total')} questions ({sel.get('dropped')} dropped for missing epochs)."
        )
    prefix = layout.report_prefix(name)
    md = report.render_markdown(rows, bench_names, f"LIMR results: {name}", notes)
    storage.put_bytes(prefix + "report.md", md.encode())
    metrics = {}
    for arm, res in results.items():
        step = res.get("model")
        if step and step != plan.BASE_ARM:
            key = layout.metrics_key(name, step)
            if storage.exists(key):
                metrics[arm] = list(storage.iter_jsonl(key))
    storage.put_bytes(prefix + "training_reward.png", report.plot_reward_curves(report.reward_curves(metrics)))
    plots = ["training_reward.png"] + copy_selection_plots(storage, name, prefix)
    extra = {"job": name, "selection": sel, "results": results, "plots": plots}
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
