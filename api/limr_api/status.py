"""The observed state of a LIMRJob (`status`): what the operator writes, typed for it and for the CRD.

The operator's reconcile reads the stored status into these models and writes them back; fields a
newer or older operator wrote that these models do not know are ignored on reading (the API server
prunes them anyway: the CRD's status schema is structural).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from .plan import PHASES

Phase = Literal[PHASES]
_READ = ConfigDict(extra="ignore", validate_assignment=True)  # assignments are bounded too

# Every message in the status is bounded: a child's failure text (a RayJob's status.message can be
# a whole traceback) is copied into a phase, the job's message and three conditions, and the status
# must stay far below etcd's object limit (about 1.5 MB) and readable in `kubectl describe`.
MESSAGE_MAX = 1024


def clip(text: str, limit: int = MESSAGE_MAX) -> str:
    """`text` cut to at most `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    keep = limit - len(f" ... [{len(text)} more characters cut]")  # the note is never longer than this
    return text[:keep] + f" ... [{len(text) - keep} more characters cut]"


Message = Annotated[str, AfterValidator(clip)]


class Condition(BaseModel):
    """Kubernetes API conventions condition."""

    model_config = _READ

    type: str = Field(description="Condition type (Ready, Progressing, Failed, Suspended).")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase reason.")
    message: Message = Field(default="", description="Human-readable detail (at most 1024 characters).")
    observedGeneration: int | None = Field(default=None, description="Generation this condition is about.")
    lastTransitionTime: str = Field(description="RFC 3339 time of the last status change.")


class PhaseStatus(BaseModel):
    """What happened in one phase (or comparison arm)."""

    model_config = _READ

    state: Literal["Pending", "Running", "Succeeded", "Failed", "Skipped"] = Field(
        default="Pending", description="State of the step."
    )
    attempts: int = Field(default=0, ge=0, description="Attempts started.")
    rayJobName: str | None = Field(default=None, description="RayJob (or Job) of the current attempt.")
    childUid: str | None = Field(
        default=None,
        description="uid of the current attempt's RayJob (or Job) once the operator has seen it: a child "
        "that was seen and is gone (deleted by a TTL) is never created again under the same name.",
    )
    log: str | None = Field(
        default=None, description="URI of the current attempt's driver log in storage (written as it runs)."
    )
    startTime: str | None = Field(default=None, description="Start of the first attempt.")
    completionTime: str | None = Field(default=None, description="End of the phase.")
    message: Message | None = Field(default=None, description="Last failure or note (at most 1024 characters).")


class SampleCounts(BaseModel):
    """Sample counts of the selection."""

    model_config = _READ

    total: int | None = Field(default=None, description="Samples scored.")
    selected: int | None = Field(default=None, description="Samples selected.")
    dropped: int | None = Field(default=None, description="Samples dropped (missing epochs).")


class LatestMetrics(BaseModel):
    """Latest trainer metrics seen."""

    model_config = _READ

    phase: str | None = Field(default=None, description="Phase the metrics come from.")
    step: int | None = Field(default=None, description="Global step.")
    rewardMean: float | None = Field(default=None, description="Mean reward of the last step.")
    accuracy: float | None = Field(default=None, description="Share of correct rollouts in the last step.")


class LIMRJobStatus(BaseModel):
    """Observed state of a LIMR run."""

    model_config = _READ

    phase: Phase = Field(default="Pending", description="Current phase.")
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description="Conditions (one per type).",
    )
    observedGeneration: int | None = Field(default=None, description="Generation last reconciled.")
    phases: dict[str, PhaseStatus] = Field(default_factory=dict, description="Per phase / arm state.")
    samples: SampleCounts = Field(default_factory=SampleCounts, description="Selection counts.")
    selectedOfTotal: str | None = Field(default=None, description="'selected/total' for kubectl get.")
    metrics: LatestMetrics = Field(default_factory=LatestMetrics, description="Latest trainer metrics.")
    artifacts: dict[str, str] = Field(default_factory=dict, description="Artifact URIs by name.")
    startTime: str | None = Field(default=None, description="When the job started.")
    completionTime: str | None = Field(default=None, description="When the job finished.")
    message: Message | None = Field(default=None, description="Summary of the current state (at most 1024 characters).")
