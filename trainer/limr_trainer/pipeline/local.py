"""`limr run`: every step of a LIMRJob, in plan order, on a private local Ray cluster.

Baseline -> Selection -> Retrain (LIM arm, then the comparison arms) -> Evaluation (+ report).
Steps that completed earlier (their `_DONE.json` marker exists) are skipped, so running the same
job again resumes it; an interrupted PPO step resumes from its checkpoint (the trainer's job).
Ctrl-C stops cleanly: Ray is shut down (its actors, rollout engines included, die with it) and
the shared-memory files vLLM's engines leave behind are removed (`runtime.ray_session`).
"""

from __future__ import annotations

import functools
import time
from typing import Any, Self

from limr_api import plan
from limr_api.job import LIMRJob

from limr_trainer.pipeline.context import Context
from limr_trainer.pipeline.early_selection import early_stop_text
from limr_trainer.pipeline.steps import run_step
from limr_trainer.storage import open_job_storage


def summary_line(phase: str, summary: dict[str, Any]) -> str:
    """One line per phase for the console (the fields a phase reported, when present)."""
    if summary.get("skipped"):
        return f"{phase}: done earlier, skipped"
    parts = []
    if summary.get("selected") is not None and summary.get("total") is not None:
        # a selection: "selected 33/96", not "33 questions, 33 selected, of 96"
        summary = {k: v for k, v in summary.items() if k != "questions"}
        summary["selected"] = f"{summary['selected']}/{summary.pop('total')}"
    for key, fmt in (
        ("steps", "{} steps"),
        ("questions", "{} questions"),
        ("reward_first", "reward {:.3f}"),
        ("reward_last", "-> {:.3f}"),
        ("accuracy_last", "acc {:.3f}"),
        ("selected", "selected {}"),
        ("dropped", "{} dropped"),
        ("threshold", "threshold {}"),
        ("reuses", "reuses the {} run"),
        ("report", "report {}"),
    ):
        value = summary.get(key)
        if value is not None:
            try:
                parts.append(fmt.format(value))
            except (TypeError, ValueError):
                parts.append(f"{key} {value}")
    if summary.get("early_stop"):
        parts.append(early_stop_text(summary["early_stop"]))
    if summary.get("heldout_last"):
        last = summary["heldout_last"]
        parts.append(f"held-out {100 * last['average']:.1f}% at step {last['step']}")
    if summary.get("seconds") is not None:
        parts.append(f"{summary['seconds']:.0f} s")
    return f"{phase}: " + (", ".join(parts) if parts else "done")


def step_info(fields: dict[str, Any]) -> str:
    """The fields of a progress event worth showing (reward, accuracy, benchmark, arm)."""
    return " ".join(
        f"{k} {fields[k]:.3f}" if isinstance(fields.get(k), float) else f"{k} {fields[k]}"
        for k in ("reward_mean", "accuracy", "heldout", "benchmark", "arm")
        if fields.get(k) is not None
    )


def step_counts(fields: dict[str, Any]) -> tuple[int | None, int | None]:
    """(done, total) of a progress event: PPO steps, or evaluated questions."""
    done = fields.get("step") if fields.get("step") is not None else fields.get("done")
    return done, fields.get("total_steps") or fields.get("total")


class ProgressView:
    """Rich progress bars (a terminal): one for the job's phases, one for the steps of the current phase."""

    def __init__(self, console: Any, total_phases: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            transient=False,
        )
        self.job_task = self.bars.add_task("job", total=total_phases, info="")
        self.step_task: Any = None

    def __enter__(self) -> Self:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.__exit__(*exc)

    def begin(self, phase: str) -> None:
        self.bars.update(self.job_task, description=f"job [{phase}]")
        if self.step_task is not None:
            self.bars.remove_task(self.step_task)
        self.step_task = self.bars.add_task(f"  {phase}", total=None, info="")

    def finish(self, phase: str, summary: dict[str, Any]) -> None:
        self.bars.advance(self.job_task)
        if self.step_task is not None:
            self.bars.remove_task(self.step_task)
            self.step_task = None
        self.console.print(summary_line(phase, summary))

    def __call__(self, phase: str, event: str, fields: dict[str, Any]) -> None:
        if self.step_task is None:
            return
        if event == "step":
            done, total = step_counts(fields)
            self.bars.update(self.step_task, total=total, completed=done, info=step_info(fields))
        elif event == "log":
            self.console.print(f"  {fields.get('message', '')}")


class PlainProgress:
    """The same events as plain lines, for output that is not a terminal (a log file, CI, a pipe):
    a line when a phase starts, at most one progress line per `every` seconds (and the last step of
    each count), and the phase's summary line."""

    def __init__(self, console: Any, total_phases: int, every: float = 10.0, clock: Any = time.monotonic):
        self.console, self.total, self.every, self.clock = console, total_phases, every, clock
        self.index, self.phase, self.started, self.last = 0, None, 0.0, float("-inf")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def _print(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

    def begin(self, phase: str) -> None:
        self.index += 1
        self.phase, self.started, self.last = phase, self.clock(), float("-inf")
        self._print(f"[{self.index}/{self.total}] {phase}: started")

    def finish(self, phase: str, summary: dict[str, Any]) -> None:
        self._print(f"[{self.index}/{self.total}] " + summary_line(phase, summary))
        self.phase = None

    def __call__(self, phase: str, event: str, fields: dict[str, Any]) -> None:
        if self.phase is None:
            return
        if event == "log":
            self._print(f"  {phase}: {fields.get('message', '')}")
            return
        if event != "step":
            return
        done, total = step_counts(fields)
        now = self.clock()
        if now - self.last < self.every and not (done and total and done == total):
            return
        self.last = now
        count = f"{done or 0}/{total}" if total else f"{done or 0}"
        info = step_info(fields)
        self._print(f"  {phase}: {count}" + (f" {info}" if info else "") + f" ({now - self.started:.0f} s)")


def progress_view(console: Any, total_phases: int) -> ProgressView | PlainProgress:
    """Bars on a terminal, plain lines anywhere else."""
    return ProgressView(console, total_phases) if console.is_terminal else PlainProgress(console, total_phases)


def run_job(job: LIMRJob, storage_override: str | None = None, console: Any = None,
            num_cpus: int | None = None) -> dict[str, Any]:
    """Run (or resume) every step of `job`; returns {"phases": {...}, "report": uri or None}."""
    from rich.console import Console

    from limr_trainer.runtime.model import ModelSource, resolve_model
    from limr_trainer.runtime.ray_session import ray_session

    console = console or Console()
    storage = open_job_storage(job.spec, storage_override)
    steps = plan.steps(job.spec)
    say = functools.partial(console.print, soft_wrap=True, highlight=False)
    say(f"job {job.metadata.name}: {len(steps)} steps, storage {storage.uri()}")
    started = time.time()
    results: dict[str, Any] = {}
    ctx = Context(job=job, storage=storage)
    if all(ctx.done_summary(s.key) is not None for s in steps):  # everything done earlier: no model, no Ray
        for step in steps:
            results[step.key] = {**(ctx.done_summary(step.key) or {}), "skipped": True}
            say(summary_line(step.key, results[step.key]))
        report = (results.get("evaluation") or {}).get("report")
        if report:
            say(f"report: {report}")
        return {"phases": results, "report": report}
    source = ModelSource.of(job.spec)
    if source.is_toy:  # built once here, with progress; every worker then finds it in the cache
        say(f"toy model {source.name}")
        resolve_model(source, progress=lambda message: say(f"  {message}"))
    with ray_session(num_cpus), progress_view(console, len(steps)) as view:
        ctx.progress = view
        for step in steps:
            view.begin(step.key)
            summary = run_step(ctx, step)
            results[step.key] = summary
            view.finish(step.key, summary)
    report = (results.get("evaluation") or {}).get("report")
    say(f"finished in {time.time() - started:.0f} s")
    if report:
        say(f"report: {report}")
    return {"phases": results, "report": report}
