"""`limr run`: every phase of a LIMRJob in DESIGN.md order on a private local Ray cluster.

Baseline -> Selection -> Retrain (LIM arm, then the comparison arms) -> Evaluation (+ report).
Phases that completed earlier (their `_DONE.json` marker exists) are skipped, so running the same
job again resumes it; an interrupted PPO phase resumes from its checkpoint (the trainer's job).
Ctrl-C stops cleanly: Ray is shut down (its actors, rollout engines included, die with it) and
the shared-memory files vLLM's engines leave behind are removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from limr_trainer import phases
from limr_trainer.spec import LIMRJob

SHM = Path("/dev/shm")


def _shm_files() -> set[str]:
    try:
        return {p.name for p in SHM.glob("psm_*")}
    except OSError:
        return set()


def remove_new_shm(before: set[str]) -> list[str]:
    """Remove /dev/shm/psm_* files that appeared since `before` and belong to this user."""
    removed = []
    for name in sorted(_shm_files() - before):
        path = SHM / name
        try:
            if path.stat().st_uid == os.getuid():
                path.unlink()
                removed.append(name)
        except OSError:
            pass
    return removed


@contextmanager
def local_ray(num_cpus: int | None = None) -> Iterator[str]:
    """A private Ray cluster for this process (temp dir short enough for Ray's unix sockets)."""
    import ray

    temp = tempfile.mkdtemp(prefix="limr-ray-", dir="/tmp")
    shm_before = _shm_files()
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        ray.init(
            address="local",
            _temp_dir=temp,
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=bool(os.environ.get("LIMR_RAY_LOGS")),
            configure_logging=False,
        )
        yield temp
    finally:
        try:
            ray.shutdown()
        finally:
            remove_new_shm(shm_before)
            shutil.rmtree(temp, ignore_errors=True)


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
    if summary.get("seconds") is not None:
        parts.append(f"{summary['seconds']:.0f} s")
    return f"{phase}: " + (", ".join(parts) if parts else "done")


class ProgressView:
    """Rich progress bars: one for the job's phases, one for the steps of the current phase."""

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
            info = " ".join(
                f"{k} {fields[k]:.3f}" if isinstance(fields.get(k), float) else f"{k} {fields[k]}"
                for k in ("reward_mean", "accuracy", "benchmark", "arm")
                if fields.get(k) is not None
            )
            total = fields.get("total_steps") or fields.get("total")
            done = fields.get("step") or fields.get("done")
            self.bars.update(self.step_task, total=total, completed=done, info=info)
        elif event == "log":
            self.console.print(f"  {fields.get('message', '')}")


def run_job(job: LIMRJob, storage_override: str | None = None, console: Any = None,
            num_cpus: int | None = None) -> dict[str, Any]:
    """Run (or resume) every phase of `job`; returns {"phases": {...}, "report": uri or None}."""
    from rich.console import Console

    console = console or Console()
    storage = phases.open_job_storage(job, storage_override)
    steps = phases.plan(job)
    console.print(f"job {job.metadata.name}: {len(steps)} steps, storage {storage.uri()}")
    started = time.time()
    results: dict[str, Any] = {}
    pending = [s for s in steps if phases.done_summary(storage, job.metadata.name, phases.step_phase(*s)) is None]
    if not pending:  # everything done earlier: no model, no Ray needed
        for phase, arm in steps:
            name = phases.step_phase(phase, arm)
            results[name] = {**(phases.done_summary(storage, job.metadata.name, name) or {}), "skipped": True}
            console.print(summary_line(name, results[name]))
        report = (results.get("evaluation") or {}).get("report")
        if report:
            console.print(f"report: {report}")
        return {"phases": results, "report": report}
    if job.spec.model.name.startswith(phases.TOY_SCHEME):
        console.print(f"building / reusing the toy model {job.spec.model.name}")
    job = phases.resolve_model(job)
    with local_ray(num_cpus), ProgressView(console, len(steps)) as view:
        ctx = phases.Context(job=job, storage=storage, progress=view)
        for phase, arm in steps:
            name = phases.step_phase(phase, arm)
            view.begin(name)
            summary = phases.run_step(ctx, phase, arm)
            results[name] = summary
            view.finish(name, summary)
    report = (results.get("evaluation") or {}).get("report")
    console.print(f"finished in {time.time() - started:.0f} s")
    if report:
        console.print(f"report: {report}")
    return {"phases": results, "report": report}
