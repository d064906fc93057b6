"""One function per phase of a LIMRJob, shared by `limr run` (all phases, local Ray) and the
RayJob entrypoint `limr phase` (one phase per RayJob, existing Ray cluster).

Each phase writes a `_DONE.json` marker (its summary) last, into its own storage folder; a phase
whose marker exists is skipped, so rerunning a job resumes it. Inside a phase, resuming from the
latest checkpoint is the trainer's job (`limr_trainer.ppo.run_ppo_phase`).
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from limr_trainer import layout
from limr_trainer.spec import LIMRJob
from limr_trainer.storage import Storage, open_storage

DONE_FILE = "_DONE.json"
ARMS = ("lim", "random", "linear", "full")
TOY_SCHEME = "toy://"

# progress(phase, event, fields): event "start" (total=...), "step" (step=, total=, metrics...), "end"
Progress = Callable[[str, str, dict[str, Any]], None]


@dataclass
class Context:
    """What every phase needs: the job (model resolved to a folder), its storage, a progress sink."""

    job: LIMRJob
    storage: Storage
    progress: Progress | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.job.metadata.name

    def emit(self, phase: str, event: str, **fields: Any) -> None:
        if self.progress is not None:
            self.progress(phase, event, fields)


# ------------------------------------------------------------------------------------ helpers


def cache_root() -> Path:
    """Where built toy models live (LIMR_CACHE, else ~/.cache/limr)."""
    return Path(os.environ.get("LIMR_CACHE") or Path.home() / ".cache" / "limr")


def parse_toy_uri(uri: str) -> dict[str, Any]:
    """`toy://SIZE?seed=S&warm_steps=N&warm_rows=R&warm_lr=LR` -> ensure_toy_model kwargs."""
    parts = urlsplit(uri)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    known = {"seed": int, "warm_steps": int, "warm_rows": int, "warm_lr": float}
    unknown = set(query) - set(known)
    if unknown:
        raise ValueError(f"{uri}: unknown parameters {sorted(unknown)} (expected {', '.join(known)})")
    size = parts.netloc or "tiny"
    return {"size": size, **{k: known[k](v) for k, v in query.items()}}


def resolve_model(job: LIMRJob) -> LIMRJob:
    """The job with a `toy://` model name replaced by the folder of the built toy model.

    Any other name (hub id, local folder, s3 URI) is left to the trainer. The toy model is
    deterministic in its parameters and cached, so every phase and RayJob resolves the same one.
    """
    name = job.spec.model.name
    if not name.startswith(TOY_SCHEME):
        return job
    import torch

    from limr_trainer.toy import ensure_toy_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model gains nothing from threads; on a busy machine they spin
    try:
        folder = ensure_toy_model(cache_root() / "models", **parse_toy_uri(name))
    finally:
        torch.set_num_threads(threads)
    data = job.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["spec"]["model"]["name"] = str(folder)
    return LIMRJob.model_validate(data)


def open_job_storage(job: LIMRJob, override: str | None = None) -> Storage:
    """The job's storage root (credentials from the environment / AWS chain)."""
    st = job.spec.storage
    uri = override or st.uri
    if uri.startswith("s3://"):
        return open_storage(uri, endpoint=st.endpoint, region=st.region)
    return open_storage(uri)


def done_key(job_name: str, phase: str) -> str:
    return layout.phase_prefix(job_name, phase) + DONE_FILE


def done_summary(storage: Storage, job_name: str, phase: str) -> dict[str, Any] | None:
    """The summary a finished phase left, or None when the phase has not completed."""
    key = done_key(job_name, phase)
    return storage.get_json(key) if storage.exists(key) else None


def mark_done(storage: Storage, job_name: str, phase: str, summary: dict[str, Any]) -> dict[str, Any]:
    storage.put_json(done_key(job_name, phase), summary)
    return summary


def retrain_phase(arm: str) -> str:
    """Storage folder of a retrain arm: the LIM arm is `retrain`, the others `retrain-<arm>`."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}: expected one of {', '.join(ARMS)}")
    return layout.phase_name("retrain") if arm == "lim" else layout.phase_name("retrain", arm)


def arms_of(job: LIMRJob) -> list[str]:
    """The retrain arms this job trains: lim first, then the comparisons in table order."""
    if not job.spec.retrain.enabled:
        return []
    return ["lim", *[a for a in ("random", "linear", "full") if a in job.spec.retrain.comparisons]]


def plan(job: LIMRJob) -> list[tuple[str, str | None]]:
    """The (phase, arm) steps of the job in DESIGN.md order; disabled phases left out."""
    spec = job.spec
    steps: list[tuple[str, str | None]] = []
    if spec.baseline.enabled:
        steps.append(("baseline", None))
    if spec.selection.enabled:
        steps.append(("selection", None))
    steps += [("retrain", arm) for arm in arms_of(job)]
    if spec.evaluation.enabled:
        steps.append(("evaluation", None))
    return steps


def step_phase(phase: str, arm: str | None) -> str:
    """The storage folder of a (phase, arm) step."""
    return retrain_phase(arm or "lim") if phase == "retrain" else layout.phase_name(phase)


def full_arm_reuses_baseline(job: LIMRJob) -> bool:
    """The full-data arm is the baseline run itself when both train the same data for as long.

    Same base model, same data, same recipe, same seed, same epochs: it is the paper's
    "full data" row. Training it again would only repeat the baseline.
    """
    spec = job.spec
    return spec.baseline.enabled and spec.retrain.epochs == spec.baseline.epochs


def load_dataset_rows(job: LIMRJob) -> list[dict[str, Any]]:
    from limr_trainer.data import load_rows

    return load_rows(job.spec.dataset, endpoint=job.spec.storage.endpoint)


# -------------------------------------------------------------------------------------- phases


def run_ppo(ctx: Context, phase: str, prompt_ids: list[str] | None) -> dict[str, Any]:
    """One PPO phase through the trainer; its progress events go to ctx.progress."""
    from limr_trainer.ppo import run_ppo_phase

    def on_progress(fields: dict[str, Any]) -> None:
        fields = dict(fields)
        event = fields.pop("event", "step")
        if event in ("start", "step"):
            ctx.emit(phase, "step", **fields)

    return run_ppo_phase(ctx.job, phase, prompt_ids=prompt_ids, storage=ctx.storage, progress=on_progress)


def once(ctx: Context, phase: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a phase's work unless its done-marker exists (a rerun skips it), time it, and write the
    marker last, so an interrupted phase is never taken for a finished one."""
    if (done := done_summary(ctx.storage, ctx.name, phase)) is not None:
        return {**done, "skipped": True}
    started = time.time()
    summary = {**_jsonable(work()), "phase": phase, "seconds": round(time.time() - started, 1)}
    return mark_done(ctx.storage, ctx.name, phase, summary)


def run_baseline(ctx: Context) -> dict[str, Any]:
    """PPO on the full dataset for baseline.epochs; reward records streamed to storage."""
    return once(ctx, "baseline", lambda: run_ppo(ctx, "baseline", None))


def run_selection(ctx: Context) -> dict[str, Any]:
    """Score the baseline trajectories, select, and write scores / subset / summary / plots."""
    from limr_trainer import selection_phase

    return once(ctx, "selection", lambda: selection_phase.run(ctx.job, ctx.storage, load_dataset_rows(ctx.job)))


def subset_ids(ctx: Context, arm: str) -> list[str] | None:
    """Prompt ids an arm trains on (None = the full dataset), read from the selection outputs."""
    from limr_trainer import selection_phase

    if arm == "full":
        return None
    return selection_phase.arm_ids(ctx.storage, ctx.name, arm)


def run_retrain(ctx: Context, arm: str = "lim") -> dict[str, Any]:
    """PPO from the base model on one arm's subset for retrain.epochs."""

    def work() -> dict[str, Any]:
        if arm == "full" and full_arm_reuses_baseline(ctx.job):
            base = done_summary(ctx.storage, ctx.name, "baseline")
            if base is None:
                raise RuntimeError("the full-data arm reuses the baseline run, which has not completed")
            return {"arm": arm, "reuses": "baseline", "questions": base.get("questions")}
        ids = subset_ids(ctx, arm)
        if ids is not None and not ids:
            return {"arm": arm, "questions": 0, "trained": False, "note": "the selection is empty: nothing to train"}
        questions = len(ids) if ids is not None else len(load_dataset_rows(ctx.job))
        return {**_jsonable(run_ppo(ctx, retrain_phase(arm), ids)), "arm": arm, "questions": questions}

    return once(ctx, retrain_phase(arm), work)


def run_evaluation(ctx: Context) -> dict[str, Any]:
    """Accuracy of the base model and every trained arm, then the report."""
    from limr_trainer import evaluation_phase

    return once(ctx, "evaluation", lambda: evaluation_phase.run(ctx))


def run_step(ctx: Context, phase: str, arm: str | None = None) -> dict[str, Any]:
    """Dispatch one (phase, arm) step."""
    if phase == "baseline":
        return run_baseline(ctx)
    if phase == "selection":
        return run_selection(ctx)
    if phase == "retrain":
        return run_retrain(ctx, arm or "lim")
    if phase == "evaluation":
        return run_evaluation(ctx)
    raise ValueError(f"unknown phase {phase!r}: expected baseline, selection, retrain or evaluation")


def random_subset(ids: list[str], size: int, seed: int) -> list[str]:
    """A seeded uniform sample of `size` ids (order of `ids` kept, so it is reproducible)."""
    size = min(size, len(ids))
    chosen = set(random.Random(seed).sample(sorted(ids), size))
    return [i for i in ids if i in chosen]


def _jsonable(result: Any) -> dict[str, Any]:
    import json

    if not isinstance(result, dict):
        return {"result": str(result)}
    return json.loads(json.dumps(result, default=str))


def scratch_dir(prefix: str) -> Path:
    """A private temporary folder (for downloaded checkpoints)."""
    return Path(tempfile.mkdtemp(prefix=prefix))
