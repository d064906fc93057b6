"""Where a LIMRJob runs and writes: the Ray cluster of each GPU phase and the artifact storage."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from .constants import (
    DEFAULT_IMAGE,
    DEFAULT_RAY_VERSION,
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    ENDPOINT_PATTERN,
    IMAGE_PATTERN,
    INT32_MAX,
    LABEL_VALUE_MAX,
    LABEL_VALUE_PATTERN,
    LIST_MAP_BY_NAME,
    NAME_MAX,
    QUALIFIED_NAME_MAX,
    QUALIFIED_NAME_PATTERN,
    QUANTITY_PATTERN,
    REGION_PATTERN,
    SECRET_KEY_PATTERN,
    STORAGE_URI_PATTERN,
    URI_MAX,
    VERSION_PATTERN,
)
from .rules import check_image, check_label_value, check_model, check_qualified_name
from .strict import Strict

# Label values as the API server checks them on the pods (nodeSelector values, toleration values);
# the keys are checked by the rules of rules.MODEL_RULES (a CRD cannot put a pattern on map keys).
# The CRD gets the pattern; pydantic checks it with a message that says what a label value is.
LabelValue = Annotated[
    str,
    Field(max_length=LABEL_VALUE_MAX, json_schema_extra={"pattern": LABEL_VALUE_PATTERN}),
    AfterValidator(check_label_value),
]
NODE_SELECTOR_HELP = "Node selector (label keys and values, as on a pod)."


class _ModelRules(Strict):
    """Runs the model's rules of rules.MODEL_RULES (the same rules the CRD carries as CEL)."""

    @model_validator(mode="after")
    def _model_rules(self):
        return check_model(self)


class Toleration(_ModelRules):
    """A Kubernetes toleration (checked as the API server checks a pod's tolerations)."""

    key: Annotated[str, AfterValidator(check_qualified_name)] | None = Field(
        default=None,
        max_length=QUALIFIED_NAME_MAX,
        json_schema_extra={"pattern": QUALIFIED_NAME_PATTERN},
        description="Taint key (a label key); leave it out, with operator Exists, to tolerate every taint.",
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists (any value) or Equal (the default)."
    )
    value: LabelValue | None = Field(
        default=None,
        description="Taint value (a label value; empty with operator Exists).",
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Effect to tolerate (all when empty)."
    )
    tolerationSeconds: int | None = Field(
        default=None, ge=-INT32_MAX, le=INT32_MAX, description="With effect NoExecute only: seconds to stay."
    )


class HeadGroup(_ModelRules):
    """The Ray head pod: no GPUs, runs the driver (single controller)."""

    cpu: str = Field(
        default="4", pattern=QUANTITY_PATTERN, max_length=32, description="CPU request and limit."
    )
    memory: str = Field(
        default="16Gi", pattern=QUANTITY_PATTERN, max_length=32, description="Memory request and limit."
    )
    nodeSelector: dict[str, LabelValue] = Field(
        default_factory=dict, max_length=64, description=NODE_SELECTOR_HELP
    )
    tolerations: list[Toleration] = Field(default_factory=list, max_length=64, description="Tolerations.")


class WorkerGroup(_ModelRules):
    """A Ray worker group; its role becomes a Ray custom resource the trainer places by."""

    name: str = Field(pattern=DNS_LABEL_PATTERN, max_length=15, description="Group name (DNS label).")
    role: Literal["rollout", "train", "any"] = Field(
        default="any", description="rollout: vLLM engines; train: actor, critic, reference; any: both."
    )
    replicas: int = Field(default=1, ge=0, le=1000, description="Pods in the group.")
    gpus: int = Field(default=0, ge=0, le=16, description="nvidia.com/gpu per pod.")
    cpu: str = Field(default="8", pattern=QUANTITY_PATTERN, max_length=32, description="CPU per pod.")
    memory: str = Field(
        default="64Gi", pattern=QUANTITY_PATTERN, max_length=32, description="Memory per pod."
    )
    nodeSelector: dict[str, LabelValue] = Field(
        default_factory=dict, max_length=64, description=NODE_SELECTOR_HELP
    )
    tolerations: list[Toleration] = Field(default_factory=list, max_length=64, description="Tolerations.")


class ClusterSpec(Strict):
    """The Ray cluster of each GPU phase (a KubeRay RayJob)."""

    image: Annotated[str, AfterValidator(check_image)] = Field(
        default=DEFAULT_IMAGE,
        min_length=1,
        max_length=512,
        json_schema_extra={"pattern": IMAGE_PATTERN},
        description="Trainer image (torch, vllm, deepspeed, ray); an image reference has no whitespace.",
    )
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="Image pull policy."
    )
    rayVersion: str = Field(
        default=DEFAULT_RAY_VERSION, pattern=VERSION_PATTERN, max_length=32, description="Ray version."
    )
    head: HeadGroup = Field(default_factory=HeadGroup, description="Head pod.")
    workerGroups: list[WorkerGroup] = Field(
        default_factory=lambda: [WorkerGroup(name="workers", role="any", replicas=2, gpus=8)],
        min_length=1,
        max_length=16,
        json_schema_extra=LIST_MAP_BY_NAME,
        description="Worker groups; names unique.",
    )
    queue: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=LABEL_VALUE_MAX,
        description="Kueue LocalQueue (label kueue.x-k8s.io/queue-name, so a label value of at most 63); "
        "RayJobs start suspended and Kueue admits them.",
    )
    serviceAccountName: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=NAME_MAX,
        description="Service account of the Ray pods.",
    )
    priorityClassName: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=NAME_MAX,
        description="Priority class of the Ray pods.",
    )


class SecretRef(Strict):
    """A Secret in the job's namespace holding S3 credentials."""

    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=NAME_MAX, description="Secret name.")
    accessKeyIdKey: str = Field(
        default="AWS_ACCESS_KEY_ID",
        pattern=SECRET_KEY_PATTERN,
        max_length=NAME_MAX,
        description="Key of the access key id.",
    )
    secretAccessKeyKey: str = Field(
        default="AWS_SECRET_ACCESS_KEY",
        pattern=SECRET_KEY_PATTERN,
        max_length=NAME_MAX,
        description="Key of the secret key.",
    )


class StorageSpec(Strict):
    """Where reward records, checkpoints, selection and reports go."""

    uri: str = Field(
        pattern=STORAGE_URI_PATTERN,
        max_length=URI_MAX,
        description="s3://bucket/prefix, or a local path / file:// URI (local runs only).",
    )
    endpoint: str | None = Field(
        default=None,
        pattern=ENDPOINT_PATTERN,
        max_length=URI_MAX,
        description="S3 endpoint override (MinIO, Ceph...).",
    )
    region: str | None = Field(
        default=None, pattern=REGION_PATTERN, max_length=64, description="S3 region (e.g. us-east-1)."
    )
    secretRef: SecretRef | None = Field(
        default=None, description="Credentials Secret (else the default chain)."
    )
