"""Artifact URIs of a job under `spec.storage.uri`, for status.

The keys come from `limr_trainer.layout`, the one definition of DESIGN.md's storage layout (pure,
standard library only), so operator and trainer can never disagree about where a file lives.
"""

from __future__ import annotations

from limr_trainer import layout as keys
from limr_trainer.spec import LIMRJobSpec


def _uri(spec: LIMRJobSpec, key: str) -> str:
    return f"{spec.storage.uri.rstrip('/')}/{key}"


def summary_uri(spec: LIMRJobSpec, job: str) -> str:
    return _uri(spec, keys.summary_key(job))


def metrics_uri(spec: LIMRJobSpec, job: str, step_key: str) -> str:
    return _uri(spec, keys.metrics_key(job, step_key))


def artifacts(spec: LIMRJobSpec, job: str, step_key: str) -> dict[str, str]:
    """URIs a finished step leaves behind, keyed for status.artifacts."""
    if step_key == keys.SELECTION:
        return {
            "selection": _uri(spec, keys.selection_prefix(job)),
            "selectionSummary": summary_uri(spec, job),
            "selected": _uri(spec, keys.selected_key(job)),
        }
    if step_key == "evaluation":
        return {"evaluation": _uri(spec, keys.phase_prefix(job, "evaluation"))}
    name = "".join(p.capitalize() if i else p for i, p in enumerate(step_key.split("-")))
    return {
        f"{name}Records": _uri(spec, keys.rewards_prefix(job, step_key)),
        f"{name}Checkpoints": _uri(spec, keys.checkpoints_prefix(job, step_key)),
    }
