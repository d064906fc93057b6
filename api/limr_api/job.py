"""The LIMRJob object: spec (every section), metadata and status."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, model_validator

from .cluster import ClusterSpec, StorageSpec
from .constants import (
    API_VERSION,
    DNS_LABEL_PATTERN,
    INT32_MAX,
    JOB_NAME_MAX,
    KIND,
)
from .phases import BaselineSpec, EvaluationSpec, RetrainSpec, SelectionSpec
from .rules import RULES, RuleViolations, annotation_problems, check_namespace, label_problems
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
        default=0,
        ge=0,
        le=INT32_MAX,
        description="Seconds a finished phase's Ray cluster (and the Selection's Job) is kept for "
        "inspection; 0 frees its GPUs at once. The driver log is in storage either way "
        "(<job>/<step>/logs/attempt-N.log, named in status.phases.<step>.log).",
    )

    @model_validator(mode="after")
    def _cross_field_rules(self) -> LIMRJobSpec:
        broken = [(rule.where, rule.message) for rule in RULES if not rule.holds(self)]
        if broken:
            raise RuleViolations(broken)
        return self




class ObjectMeta(BaseModel):
    """The metadata of a job file, checked as the API server checks every object's metadata (a CRD
    cannot restrict anything but the name: these checks are `limr validate`'s own). Unknown fields
    are refused, as the server's strict field validation refuses them; the fields the server fills
    in (uid, resourceVersion, ...) are accepted as they are, so a `kubectl get -o yaml` loads."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=DNS_LABEL_PATTERN,
        max_length=JOB_NAME_MAX,
        description="Job name (DNS-1035, <= 40 characters so child object names stay within limits).",
    )
    namespace: Annotated[StrictStr, AfterValidator(check_namespace)] | None = Field(
        default=None, description="Namespace (a DNS label; the current one when absent)."
    )
    labels: dict[StrictStr, StrictStr] | None = Field(default=None, description="Labels.")
    annotations: dict[StrictStr, StrictStr] | None = Field(default=None, description="Annotations.")
    # Written by the API server and controllers; passed through.
    generateName: str | None = None
    uid: str | None = None
    resourceVersion: str | None = None
    generation: int | None = None
    creationTimestamp: str | None = None
    deletionTimestamp: str | None = None
    deletionGracePeriodSeconds: int | None = None
    selfLink: str | None = None
    finalizers: list[str] | None = None
    ownerReferences: list[dict[str, Any]] | None = None
    managedFields: list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _metadata_rules(self) -> ObjectMeta:
        broken = [("labels", m) for m in label_problems(self.labels or {})]
        broken += [("annotations", m) for m in annotation_problems(self.annotations or {})]
        if broken:
            raise RuleViolations(broken)
        return self


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
