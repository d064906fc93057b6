"""The LIMRJob object: spec (every section), metadata and status."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .cluster import ClusterSpec, StorageSpec
from .constants import API_VERSION, DNS_LABEL_PATTERN, INT32_MAX, JOB_NAME_MAX, KIND
from .phases import BaselineSpec, EvaluationSpec, RetrainSpec, SelectionSpec
from .rules import RULES, RuleViolations
from .status import LIMRJobStatus
from .strict import Strict
from .training import DatasetSpec, ModelSpec, PPOSpec, RewardSpec, RolloutSpec


class LIMRJobSpec(Strict):
    """Desired state of a LIMR run."""

    model: ModelSpec = Field(description="Base model. Immutable.")
    dataset: DatasetSpec = Field(description="Training dataset. Immutable.")
    storage: StorageSpec = Field(description="Artifact storage.")
    reward: RewardSpec = Field(default_factory=RewardSpec, description="Rule reward.")
    ppo: PPOSpec = Field(default_factory=PPOSpec, description="PPO recipe.")
    rollout: RolloutSpec = Field(default_factory=RolloutSpec, description="Rollout engines.")
    baseline: BaselineSpec = Field(default_factory=BaselineSpec, description="Baseline phase.")
    selection: SelectionSpec = Field(default_factory=SelectionSpec, description="Selection phase.")
    retrain: RetrainSpec = Field(default_factory=RetrainSpec, description="Retrain phase.")
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec, description="Evaluation phase.")
    cluster: ClusterSpec = Field(default_factory=ClusterSpec, description="Ray cluster of each phase.")
    suspend: bool = Field(default=False, description="Suspend the current phase's RayJob; resume on false.")
    backoffLimit: int = Field(default=3, ge=0, le=100, description="Retries of a failed phase before Failed.")
    phaseDeadlineSeconds: int | None = Field(
        default=None, ge=60, le=INT32_MAX, description="activeDeadlineSeconds of each phase's RayJob."
    )
    ttlSecondsAfterFinished: int = Field(
        default=600,
        ge=0,
        le=INT32_MAX,
        description="Seconds a finished RayJob's cluster is kept for inspection.",
    )

    @model_validator(mode="after")
    def _cross_field_rules(self) -> LIMRJobSpec:
        broken = [(rule.where, rule.message) for rule in RULES if not rule.holds(self)]
        if broken:
            raise RuleViolations(broken)
        return self




class ObjectMeta(BaseModel):
    """The subset of metadata a job file needs."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(
        pattern=DNS_LABEL_PATTERN,
        max_length=JOB_NAME_MAX,
        description="Job name (DNS-1035, <= 40 characters so child object names stay within limits).",
    )
    namespace: str | None = Field(default=None, description="Namespace (the current one when absent).")


class LIMRJob(Strict):
    """A whole LIMRJob object, as in `kubectl apply -f`."""

    apiVersion: Literal["limr.io/v1alpha1"] = API_VERSION
    kind: Literal["LIMRJob"] = KIND
    metadata: ObjectMeta
    spec: LIMRJobSpec
    status: LIMRJobStatus | None = None



def to_manifest(job: LIMRJob) -> dict[str, Any]:
    """The job as a Kubernetes object with every default filled in (status left out)."""
    return job.model_dump(mode="json", by_alias=True, exclude={"status"}, exclude_none=True)
