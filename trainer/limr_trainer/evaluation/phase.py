"""The Evaluation phase: every arm's final model on the benchmarks, then the report.

One rollout backend starts on the base model; each trained arm's final weights are loaded into it
in turn (the same weight sync the trainer uses every step), which is much cheaper than starting
an engine per arm. Each arm's result is stored as soon as it is known, so an interrupted
evaluation resumes at the next arm.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from limr_trainer import evaluation, layout, phases, report
from limr_trainer.storage import Storage

EVAL = "evaluation"


def arm_result_key(job_name: str, arm: str) -> str:
    return layout.phase_prefix(job_name, EVAL) + f"arms/{arm}.json"


def report_prefix(job_name: str) -> str:
    return layout.phase_prefix(job_name, EVAL) + "report/"


def trained_phase(job: Any, storage: Storage, arm: str) -> str | None:
    """The phase folder holding an arm's trained model (None when that run has not completed)."""
    name = job.metadata.name
    if arm == "full" and (
        "full" not in phases.arms_of(job) or phases.full_arm_reuses_baseline(job)
    ):
        return "baseline" if phases.done_summary(storage, name, "baseline") is not None else None
    phase = phases.retrain_phase(arm)
    done = phases.done_summary(storage, name, phase)
    return phase if done is not None and done.get("trained", True) else None


def arms_to_evaluate(job: Any, storage: Storage) -> list[tuple[str, str | None]]:
    """(arm, phase folder of its model; None = the base model) in table order."""
    out: list[tuple[str, str | None]] = []
    if job.spec.evaluation.includeBaseModel:
        out.append(("base", None))
    wanted = phases.arms_of(job)
    if job.spec.baseline.enabled and "full" not in wanted:
        wanted.append("full")  # the baseline is a full-data run: report it
    for arm in report.ARM_ORDER:
        if arm in wanted:
            phase = trained_phase(job, storage, arm)
            if phase is not None:
                out.append((arm, phase))
    return out


def questions_used(job: Any, storage: Storage, arm: str, phase: str | None) -> int | None:
    if phase is None:
        return None
    done = phases.done_summary(storage, job.metadata.name, phase) or {}
    if done.get("questions") is not None:
        return int(done["questions"])
    if arm in ("full",) or phase == "baseline":
        return len(phases.load_dataset_rows(job))
    return None


def fetch_final_model(storage: Storage, job_name: str, phase: str, into: Path) -> Path:
    """Download the final model of a phase (HF folder) to `into`."""
    from limr_trainer.ppo import final_model_prefix

    prefix = final_model_prefix(job_name, phase)
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


def make_scorer(job: Any) -> evaluation.Scorer:
    """The training reward as the evaluation judge (reason = the format rule that fired, or None)."""
    from limr_trainer import reward

    spec = job.spec.reward

    def scorer(responses: list[str], answers: list[str], truncated: list[bool]):
        items = [reward.RewardItem(r, a, t) for r, a, t in zip(responses, answers, truncated)]
        results = reward.score_batch(items, workers=spec.workers, timeout=spec.timeoutSeconds)
        return [(r.reward, r.correct, r.format_error) for r in results]

    return scorer


def run(ctx: phases.Context) -> dict[str, Any]:
    job, storage, name = ctx.job, ctx.storage, ctx.name
    training_prompts = {r["prompt"] for r in phases.load_dataset_rows(job)}
    benches = evaluation.benchmarks_from_spec(job.spec, training_prompts)
    arms = arms_to_evaluate(job, storage)
    pending = [(a, p) for a, p in arms if not storage.exists(arm_result_key(name, a))]
    if pending:
        _evaluate_arms(ctx, benches, pending)
    results = {arm: storage.get_json(arm_result_key(name, arm)) for arm, _ in arms}
    return write_report(ctx, results, [b.name for b in benches])


def _evaluate_arms(ctx: phases.Context, benches: list[evaluation.Benchmark],
                   pending: list[tuple[str, str | None]]) -> None:
    from transformers import AutoTokenizer

    from limr_trainer.data import render_prompt
    from limr_trainer.rollout import make_backend

    job, storage, name = ctx.job, ctx.storage, ctx.name
    base_dir = job.spec.model.name
    tokenizer = AutoTokenizer.from_pretrained(base_dir, revision=job.spec.model.revision)
    system = job.spec.ppo.systemPrompt

    def render(question: str) -> str:
        return render_prompt(tokenizer, question, system)

    scorer = make_scorer(job)
    total = sum(len(b.rows) for b in benches) * len(pending)
    done = 0
    backend = make_backend(job.spec.rollout.backend, base_dir, **backend_options(job))
    try:
        for arm, phase in pending:
            scratch = phases.scratch_dir(f"limr-eval-{arm}-")
            try:
                if phase is not None:
                    folder = fetch_final_model(storage, name, phase, scratch)
                    backend.update_weights(load_state_dict(folder))
                # else: the base model, always first in `pending`, so no weights were loaded yet

                seen: dict[str, int] = {}

                def progress(bench: str, n: int, of: int, _arm: str = arm, _base: int = done,
                             _seen: dict[str, int] = seen) -> None:
                    _seen[bench] = n
                    ctx.emit(EVAL, "step", arm=_arm, benchmark=bench, done=_base + sum(_seen.values()), total=total)

                results = evaluation.evaluate(backend, benches, render, scorer, progress=progress)
                done += sum(len(b.rows) for b in benches)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            for r in results.values():
                r.pop("per_question_correct", None)
            storage.put_json(arm_result_key(name, arm), {
                "arm": arm,
                "model": phase or "base",
                "questions": questions_used(job, storage, arm, phase),
                "benchmarks": results,
            })
    finally:
        backend.close()


def backend_options(job: Any) -> dict[str, Any]:
    """Rollout backend options of the job (the trainer's own mapping when it offers one)."""
    from limr_trainer import ppo

    if hasattr(ppo, "backend_options"):
        return ppo.backend_options(job)
    spec = job.spec
    if spec.rollout.backend == "hf":
        return {"dtype": spec.model.dtype}
    return {
        "engines": 1,
        "tensor_parallel_size": spec.rollout.tensorParallelSize,
        "cpus_per_engine": spec.rollout.cpusPerEngine,
        "dtype": spec.model.dtype,
        "seed": spec.ppo.seed,
        "max_model_len": spec.ppo.promptMaxLength + spec.evaluation.maxNewTokens,
    }


def write_report(ctx: phases.Context, results: dict[str, dict[str, Any]], bench_names: list[str]) -> dict[str, Any]:
    """Results table (Markdown + JSON) and plots into `<job>/evaluation/report/`."""
    from limr_trainer import selection_phase

    _job, storage, name = ctx.job, ctx.storage, ctx.name
    rows = report.build_table(results, bench_names)
    notes = []
    if "full" in results and results["full"].get("model") == "baseline":
        notes.append("full-data run = the baseline run (same data, recipe, seed and epochs as the retrain arms).")
    sel = phases.done_summary(storage, name, "selection")
    if sel:
        notes.append(
            f"selection: {sel.get('strategy')} threshold {sel.get('threshold')}: {sel.get('selected')} of "
            f"{sel.get('total')} questions ({sel.get('dropped')} dropped for missing epochs)."
        )
    prefix = report_prefix(name)
    md = report.render_markdown(rows, bench_names, f"LIMR results: {name}", notes)
    storage.put_bytes(prefix + "report.md", md.encode())
    metrics = {}
    for arm, res in results.items():
        phase = res.get("model")
        if phase and phase != "base":
            key = layout.metrics_key(name, phase)
            if storage.exists(key):
                metrics[arm] = list(storage.iter_jsonl(key))
    storage.put_bytes(prefix + "training_reward.png", report.plot_reward_curves(report.reward_curves(metrics)))
    plots = ["training_reward.png"] + selection_phase.report_plots(storage, name, prefix)
    extra = {"job": name, "selection": sel, "results": results, "plots": plots}
    storage.put_bytes(prefix + "report.json", report.report_json(rows, bench_names, extra).encode())
    return {"arms": [r["arm"] for r in rows], "report": storage.uri(prefix + "report.md"),
            "table": rows}
