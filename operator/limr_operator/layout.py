"""Artifact URIs of a job under `spec.storage.uri` (mirrors the trainer's key layout of DESIGN.md).

The operator may not import the trainer's storage code, so the few keys it reports in status are
spelled here: `<root>/<job>/<phase>/...` and `<root>/<job>/selection/summary.json`.
"""

from __future__ import annotations

from limr_trainer.spec import LIMRJobSpec


def job_root(spec: LIMRJobSpec, job: str) -> str:
    return f"{spec.storage.uri.rstrip('/')}/{job}"


def summary_uri(spec: LIMRJobSpec, job: str) -> str:
    return f"{job_root(spec, job)}/selection/summary.json"


def metrics_uri(spec: LIMRJobSpec, job: str, step_key: str) -> str:
    return f"{job_root(spec, job)}/{step_key}/metrics.jsonl"


def artifacts(spec: LIMRJobSpec, job: str, step_key: str) -> dict[str, str]:
    """URIs a finished step leaves behind, keyed for status.artifacts."""
    root = job_root(spec, job)
    if step_key == "selection":
        sel = f"{root}/selection"
        return {"selection": f"{sel}/", "selectionSummary": f"{sel}/summary.json", "selected": f"{sel}/selected.jsonl"}
    if step_key == "evaluation":
        return {"evaluation": f"{root}/evaluation/"}
    name = "".join(p.capitalize() if i else p for i, p in enumerate(step_key.split("-")))
    return {f"{name}Records": f"{root}/{step_key}/rewards/", f"{name}Checkpoints": f"{root}/{step_key}/checkpoints/"}
