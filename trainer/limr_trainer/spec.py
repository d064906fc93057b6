"""The LIMRJob API (`limr.io/v1alpha1`): the single source of truth.

Pure pydantic, no torch or Ray: the operator imports this module, `limr crd` generates the CRD from
it, and the trainer reads the same models. Defaults are the LIMR recipe (Li, Zou, Liu 2025).

Cross-field rules are declared once in `RULES`, each as a CEL expression (placed in the CRD as
`x-kubernetes-validations`) and the equivalent Python predicate (run by pydantic), with the same
message; a test checks that both agree on every example and every invalid job.

Validation is as strict as the API server's on the generated CRD (strict types, unknown fields are
errors, bounded strings and numbers): `limr validate` accepts a job iff `kubectl apply` would.
Transition rules (model and dataset immutable) need the old object: only the CRD checks them.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

GROUP = "limr.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "LIMRJob"
PLURAL = "limrjobs"
SINGULAR = "limrjob"
SHORT_NAMES = ["limr"]

LIMR_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
DEFAULT_RAY_VERSION = "2.60.0"
DEFAULT_IMAGE = "ghcr.io/limr-operator/limr-trainer:0.1.0"

# s3://bucket[/prefix], file:///abs/path, or an absolute/relative local path (local runs only).
STORAGE_URI_PATTERN = r"^(s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?|file://.+|[^:]+)$"
DNS_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
VERSION_PATTERN = r"^\d+\.\d+\.\d+$"
ENDPOINT_PATTERN = r"^https?://.+"
REGION_PATTERN = r"^[a-z0-9-]+$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUANTITY_PATTERN = r"^([0-9]+(\.[0-9]+)?)(m|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"


# Kubernetes list semantics (server-side apply merges, duplicate checks), copied into the CRD.
LIST_MAP_BY_NAME = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
LIST_SET = {"x-kubernetes-list-type": "set"}

LabelValue = Annotated[str, Field(max_length=63)]

# Bounds on strings: the API server's CEL cost estimator charges unbounded strings as if they were
# as long as a whole request, so every string a rule reads (and most others) has a maxLength.
INT32_MAX = 2**31 - 1
URI_MAX = 2048
NAME_MAX = 253
FIELD_MAX = 256


def _nullable(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in typing.get_args(
        annotation
    )


def _integer(annotation: Any) -> bool:
    if _nullable(annotation):
        return any(a is int for a in typing.get_args(annotation))
    return annotation is int


@cache
def _field_kinds(cls: type[BaseModel]) -> dict[str, tuple[bool, bool]]:
    """Input key (alias and name) -> (nullable, integer) for one model."""
    kinds: dict[str, tuple[bool, bool]] = {}
    for name, info in cls.model_fields.items():
        kind = (_nullable(info.annotation), _integer(info.annotation))
        kinds[name] = kind
        if info.alias:
            kinds[info.alias] = kind
    return kinds


class Strict(BaseModel):
    """Base: validates input exactly as the API server validates the generated CRD.

    Unknown fields are errors (strict field validation), types are strict (no "3" for 3, no "yes"
    for true), and two normalisations the API server applies before validation are mirrored here:
    an explicit null on a non-nullable field is dropped (so its default applies), and a whole
    float such as 2.0 counts as the integer 2 (kubectl's YAML to JSON conversion writes it as 2).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _as_the_api_server_sees_it(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        kinds = _field_kinds(cls)
        out = {}
        for key, value in data.items():
            nullable, integer = kinds.get(key, (True, False))
            if value is None and not nullable:
                continue
            if integer and isinstance(value, float) and value.is_integer():
                value = int(value)
            out[key] = value
        return out


# ----------------------------------------------------------------------------------------- model, data


class ModelSpec(Strict):
    """The base model every PPO run starts from."""

    name: str = Field(
        min_length=1,
        max_length=URI_MAX,
        description="Hugging Face model id, s3:// URI or local folder of the base model "
        "(e.g. Qwen/Qwen2.5-Math-7B).",
    )
    revision: str | None = Field(
        default=None,
        min_length=1,
        max_length=FIELD_MAX,
        description="Model revision (branch, tag or commit) for hub ids.",
    )
    dtype: Literal["bfloat16", "float16", "float32"] = Field(
        default="bfloat16", description="Parameter and compute dtype (LIMR: bf16; CPU runs use float32)."
    )
    trustRemoteCode: bool = Field(
        default=False, description="Allow custom modelling code from the model repo."
    )


class DatasetSpec(Strict):
    """Training questions with reference answers."""

    uri: str = Field(
        min_length=1,
        max_length=URI_MAX,
        description="Dataset location: s3:// URI, local path, or synthetic://arithmetic?n=N&seed=S "
        "for the built-in toy task.",
    )
    format: Literal["json", "jsonl", "parquet", "arrow"] = Field(
        default="json", description="File format: JSON list, JSON lines, Parquet, or HF save_to_disk arrow."
    )
    promptField: str = Field(
        default="prompt", min_length=1, max_length=FIELD_MAX, description="Field holding the question text."
    )
    answerField: str = Field(
        default="answer", min_length=1, max_length=FIELD_MAX, description="Field holding the gold answer."
    )
    idField: str = Field(
        default="id",
        min_length=1,
        max_length=FIELD_MAX,
        description="Field holding a stable sample id (row index when absent).",
    )
    limit: int | None = Field(
        default=None, ge=1, le=INT32_MAX, description="Use only the first N samples (for smoke runs)."
    )


class RewardSpec(Strict):
    """LIMR's three-level rule reward."""

    correct: float = Field(default=1.0, description="Reward of a correct, well-formatted answer.")
    wrong: float = Field(default=-0.5, description="Reward of a wrong but well-formatted answer.")
    formatError: float = Field(default=-1.0, description="Reward of a response that breaks a format rule.")
    timeoutSeconds: float = Field(default=5.0, gt=0, le=600, description="Per-answer checker timeout.")
    workers: int = Field(default=2, ge=1, le=256, description="Processes of the reward worker pool.")


# ----------------------------------------------------------------------------------------------- PPO


class RoleResources(Strict):
    """How many ranks a training role runs and what each rank asks from Ray."""

    replicas: int = Field(default=1, ge=1, le=1024, description="Number of ranks (data-parallel workers).")
    gpus: float = Field(default=1.0, ge=0, le=16, description="GPUs per rank (0 on CPU-only clusters).")
    cpus: float = Field(default=1.0, gt=0, description="CPUs per rank (fractions allowed on small machines).")


class PPOSpec(Strict):
    """The PPO recipe; defaults are LIMR's."""

    gamma: float = Field(default=1.0, ge=0, le=1, description="GAE discount.")
    lambd: float = Field(default=0.95, ge=0, le=1, alias="lambda", description="GAE lambda.")
    clipRange: float = Field(default=0.2, gt=0, le=1, description="PPO surrogate clip epsilon.")
    valueClipRange: float = Field(default=0.2, gt=0, description="Critic value clip.")
    maxGradNorm: float = Field(default=1.0, gt=0, description="Gradient norm clip.")
    actorLearningRate: float = Field(default=5e-7, gt=0, le=1, description="Actor learning rate.")
    criticLearningRate: float = Field(default=9e-6, gt=0, le=1, description="Critic learning rate.")
    adamBetas: list[float] = Field(
        default_factory=lambda: [0.9, 0.95], min_length=2, max_length=2, description="Adam (beta1, beta2)."
    )
    weightDecay: float = Field(default=0.0, ge=0, description="AdamW weight decay.")
    klCoef: float = Field(default=0.01, ge=0, description="Fixed KL penalty coefficient (per token).")
    klEstimator: Literal["k1", "k2", "k3"] = Field(default="k1", description="KL estimator of the penalty.")
    rolloutBatchSize: int = Field(default=1024, ge=1, le=1_048_576, description="Prompts per rollout step.")
    samplesPerPrompt: int = Field(default=8, ge=1, le=1024, description="Rollouts per prompt.")
    trainBatchSize: int = Field(
        default=256, ge=1, le=1_048_576, description="Experiences per optimizer step."
    )
    microBatchSize: int = Field(
        default=4, ge=1, le=65_536, description="Experiences per forward/backward pass per rank."
    )
    ppoEpochs: int = Field(default=1, ge=1, le=100, description="Passes over each rollout batch.")
    promptMaxLength: int = Field(
        default=1024, ge=8, le=1_048_576, description="Prompt tokens kept (left-truncated)."
    )
    generateMaxLength: int = Field(default=3072, ge=1, le=1_048_576, description="New tokens per response.")
    normalizeReward: bool = Field(default=True, description="Running-mean/std normalisation of rewards.")
    whitenAdvantages: bool = Field(default=True, description="Whiten advantages per batch.")
    zeroStage: int = Field(default=2, ge=0, le=3, description="DeepSpeed ZeRO stage of actor and critic.")
    seed: int = Field(
        default=42, ge=0, le=INT32_MAX, description="Seed of data order, sampling and initialisation."
    )
    systemPrompt: str = Field(
        default=LIMR_SYSTEM_PROMPT, max_length=16_384, description="System turn of the chat prompt."
    )
    checkpointEverySteps: int = Field(
        default=8, ge=1, le=1_000_000, description="Save actor, critic, optimizers every N steps."
    )
    actor: RoleResources = Field(
        default_factory=lambda: RoleResources(replicas=4), description="Actor ranks."
    )
    critic: RoleResources = Field(
        default_factory=lambda: RoleResources(replicas=4), description="Critic ranks."
    )
    reference: RoleResources = Field(
        default_factory=lambda: RoleResources(replicas=4), description="Frozen reference model ranks."
    )


# ------------------------------------------------------------------------------------------- rollout


class SamplingSpec(Strict):
    """Sampling of training rollouts."""

    temperature: float = Field(default=1.2, ge=0, le=5, description="Sampling temperature (LIMR: 1.2).")
    topP: float = Field(default=1.0, gt=0, le=1, description="Nucleus sampling mass.")
    topK: int = Field(default=-1, ge=-1, le=1_000_000, description="Top-k sampling (-1: off).")


class RolloutSpec(Strict):
    """Rollout engines that generate responses."""

    backend: Literal["vllm", "hf"] = Field(
        default="vllm", description="vllm engines, or transformers generate."
    )
    engines: int = Field(default=4, ge=1, le=512, description="Number of rollout engines (Ray actors).")
    tensorParallelSize: int = Field(default=1, ge=1, le=64, description="GPUs per engine (tensor parallel).")
    gpuMemoryUtilization: float = Field(default=0.85, gt=0, le=1, description="vLLM GPU memory share.")
    cpusPerEngine: float = Field(default=1.0, gt=0, description="CPUs per engine actor.")
    weightSync: Literal["auto", "nccl", "ipc", "rpc"] = Field(
        default="auto",
        description="How updated actor weights reach the engines: NCCL broadcast, CUDA IPC, or the "
        "engine's own worker RPC (CPU). auto picks by device.",
    )
    sampling: SamplingSpec = Field(default_factory=SamplingSpec, description="Sampling parameters.")


# ------------------------------------------------------------------------------------------- phases


class BaselineSpec(Strict):
    """PPO on the full dataset; records every sample's reward trajectory."""

    enabled: bool = Field(default=True, description="Run the baseline phase.")
    epochs: int = Field(default=21, ge=1, le=1000, description="Data epochs (LIMR: 21 of 8 steps).")
    recordsUri: str | None = Field(
        default=None,
        min_length=1,
        max_length=URI_MAX,
        description="Start from existing baseline reward records at this URI instead of running "
        "the baseline (requires enabled: false).",
    )


class SelectionSpec(Strict):
    """LIM scoring and thresholding of the baseline trajectories."""

    enabled: bool = Field(default=True, description="Run the selection phase.")
    strategy: Literal["lim", "linear", "random"] = Field(default="lim", description="Scoring strategy.")
    threshold: float | None = Field(
        default=None,
        le=1,
        description="Keep samples with score >= threshold (default: 0.6 for lim, 0.7 for linear).",
    )
    size: int | None = Field(
        default=None,
        ge=1,
        le=INT32_MAX,
        description="Subset size for random (default: the number LIM selects).",
    )
    seed: int = Field(default=0, ge=0, le=INT32_MAX, description="Seed of the random strategy.")

    def resolved_threshold(self) -> float:
        if self.threshold is not None:
            return self.threshold
        return 0.7 if self.strategy == "linear" else 0.6


class RetrainSpec(Strict):
    """PPO from the same base model on the selected subset."""

    enabled: bool = Field(default=True, description="Run the retrain phase.")
    epochs: int = Field(default=21, ge=1, le=1000, description="Data epochs over the subset.")
    comparisons: list[Literal["random", "linear", "full"]] = Field(
        default_factory=list,
        max_length=3,
        json_schema_extra=LIST_SET,
        description="Extra arms trained like the LIM subset for the paper's Table 2: a random and a "
        "linear subset of the same size, and the full dataset.",
    )


class BenchmarkSpec(Strict):
    """One evaluation benchmark."""

    name: str = Field(pattern=DNS_LABEL_PATTERN, max_length=40, description="Benchmark name in the report.")
    uri: str = Field(
        min_length=1, max_length=URI_MAX, description="JSONL/JSON file with question and answer fields."
    )
    promptField: str = Field(
        default="question", min_length=1, max_length=FIELD_MAX, description="Question field."
    )
    answerField: str = Field(
        default="answer", min_length=1, max_length=FIELD_MAX, description="Answer field."
    )
    samples: int = Field(default=1, ge=1, le=64, description="Samples per question (n).")
    temperature: float = Field(default=0.0, ge=0, le=5, description="0 = greedy.")
    limit: int | None = Field(default=None, ge=1, le=INT32_MAX, description="Use the first N questions only.")


def _default_benchmarks() -> list[BenchmarkSpec]:
    return [
        BenchmarkSpec(name="math500", uri="/data/eval/math500.jsonl", samples=1, temperature=0.0),
        BenchmarkSpec(name="aime24", uri="/data/eval/aime24.jsonl", samples=4, temperature=0.4),
        BenchmarkSpec(name="amc23", uri="/data/eval/amc23.jsonl", samples=4, temperature=0.4),
    ]


class EvaluationSpec(Strict):
    """Accuracy of each arm on held-out benchmarks."""

    enabled: bool = Field(default=True, description="Run the evaluation phase.")
    benchmarks: list[BenchmarkSpec] = Field(
        default_factory=_default_benchmarks,
        max_length=32,
        json_schema_extra=LIST_MAP_BY_NAME,
        description="Benchmarks (paper: MATH500, AIME24, AMC23); names unique.",
    )
    topP: float = Field(default=0.95, gt=0, le=1, description="Nucleus sampling mass.")
    maxNewTokens: int = Field(default=3072, ge=1, le=1_048_576, description="Generation budget per answer.")
    includeBaseModel: bool = Field(
        default=True, description="Also evaluate the base model (first table row)."
    )


# ------------------------------------------------------------------------------------------ cluster


class Toleration(Strict):
    """A Kubernetes toleration."""

    key: str | None = Field(default=None, max_length=NAME_MAX + 63, description="Taint key.")
    operator: Literal["Exists", "Equal"] | None = Field(default=None, description="Exists or Equal.")
    value: str | None = Field(default=None, max_length=63, description="Taint value.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Effect."
    )
    tolerationSeconds: int | None = Field(
        default=None, ge=-INT32_MAX, le=INT32_MAX, description="For NoExecute."
    )


class HeadGroup(Strict):
    """The Ray head pod: no GPUs, runs the driver (single controller)."""

    cpu: str = Field(
        default="4", pattern=QUANTITY_PATTERN, max_length=32, description="CPU request and limit."
    )
    memory: str = Field(
        default="16Gi", pattern=QUANTITY_PATTERN, max_length=32, description="Memory request and limit."
    )
    nodeSelector: dict[str, LabelValue] = Field(
        default_factory=dict, max_length=64, description="Node selector."
    )
    tolerations: list[Toleration] = Field(default_factory=list, max_length=64, description="Tolerations.")


class WorkerGroup(Strict):
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
        default_factory=dict, max_length=64, description="Node selector."
    )
    tolerations: list[Toleration] = Field(default_factory=list, max_length=64, description="Tolerations.")


class ClusterSpec(Strict):
    """The Ray cluster of each GPU phase (a KubeRay RayJob)."""

    image: str = Field(
        default=DEFAULT_IMAGE,
        min_length=1,
        max_length=512,
        description="Trainer image (torch, vllm, deepspeed, ray).",
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
        max_length=NAME_MAX,
        description="Kueue LocalQueue (label kueue.x-k8s.io/queue-name); RayJobs start suspended.",
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


# ------------------------------------------------------------------------------------------ storage


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


# ------------------------------------------------------------------------------------- spec, status


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


PHASES = ("Pending", "Baseline", "Selection", "Retrain", "Evaluation", "Succeeded", "Failed", "Suspended")
Phase = Literal[
    "Pending", "Baseline", "Selection", "Retrain", "Evaluation", "Succeeded", "Failed", "Suspended"
]


class Condition(BaseModel):
    """Kubernetes API conventions condition."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="Condition type (Ready, Progressing, Failed, Suspended).")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase reason.")
    message: str = Field(default="", description="Human-readable detail.")
    observedGeneration: int | None = Field(default=None, description="Generation this condition is about.")
    lastTransitionTime: str = Field(description="RFC 3339 time of the last status change.")


class PhaseStatus(BaseModel):
    """What happened in one phase (or comparison arm)."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["Pending", "Running", "Succeeded", "Failed", "Skipped"] = Field(
        default="Pending", description="State of the phase."
    )
    attempts: int = Field(default=0, ge=0, description="Attempts started.")
    rayJobName: str | None = Field(default=None, description="RayJob (or Job) of the current attempt.")
    startTime: str | None = Field(default=None, description="Start of the first attempt.")
    completionTime: str | None = Field(default=None, description="End of the phase.")
    message: str | None = Field(default=None, description="Last failure or note.")


class SampleCounts(BaseModel):
    """Sample counts of the selection."""

    model_config = ConfigDict(extra="forbid")

    total: int | None = Field(default=None, description="Samples scored.")
    selected: int | None = Field(default=None, description="Samples selected.")
    dropped: int | None = Field(default=None, description="Samples dropped (missing epochs).")


class LatestMetrics(BaseModel):
    """Latest trainer metrics seen."""

    model_config = ConfigDict(extra="forbid")

    phase: str | None = Field(default=None, description="Phase the metrics come from.")
    step: int | None = Field(default=None, description="Global step.")
    rewardMean: float | None = Field(default=None, description="Mean reward of the last step.")
    accuracy: float | None = Field(default=None, description="Share of correct rollouts in the last step.")


class LIMRJobStatus(BaseModel):
    """Observed state of a LIMR run."""

    model_config = ConfigDict(extra="forbid")

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
    message: str | None = Field(default=None, description="Summary of the current state.")


class ObjectMeta(BaseModel):
    """The subset of metadata a job file needs."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(
        pattern=DNS_LABEL_PATTERN,
        max_length=40,
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


# ------------------------------------------------------------------------------------ cross-field rules


class RuleViolations(ValueError):
    """Cross-field rules a spec breaks, as (field path below spec, message) pairs."""

    def __init__(self, violations: list[tuple[str, str]]):
        self.violations = violations
        super().__init__("; ".join(f"{path}: {msg}" for path, msg in violations))


@dataclass(frozen=True)
class Rule:
    """One cross-field rule, stated in CEL for the API server and in Python for pydantic.

    `path` is the dotted field path (below `spec`) where the CRD carries the rule; `cel` sees
    that object as `self`; `check` receives the same object as a pydantic model. `field`, when
    set, is the child field the error is reported at (the CRD rule's `fieldPath`).
    """

    path: str
    cel: str
    message: str
    check: Callable[[Any], bool]
    transition: bool = False  # uses oldSelf: only evaluated on update
    field: str = ""

    @property
    def where(self) -> str:
        """Dotted path below `spec` of the field an error points at."""
        return ".".join(p for p in (self.path, self.field) if p)

    def target(self, spec: LIMRJobSpec) -> Any:
        obj: Any = spec
        for part in [p for p in self.path.split(".") if p]:
            obj = getattr(obj, part)
        return obj

    def holds(self, spec: LIMRJobSpec) -> bool:
        return True if self.transition else bool(self.check(self.target(spec)))


def _has_train_group(groups: list[WorkerGroup]) -> bool:
    return any(g.role in ("train", "any") and g.replicas > 0 for g in groups)


def _unique(values: list[Any]) -> bool:
    return len(set(values)) == len(values)


RULES: list[Rule] = [
    Rule(
        "",
        "self.baseline.enabled || self.selection.enabled || self.retrain.enabled || self.evaluation.enabled",
        "enable at least one phase (baseline, selection, retrain or evaluation)",
        lambda s: s.baseline.enabled or s.selection.enabled or s.retrain.enabled or s.evaluation.enabled,
    ),
    Rule(
        "",
        "!self.selection.enabled || self.baseline.enabled || has(self.baseline.recordsUri) || "
        "(self.selection.strategy == 'random' && has(self.selection.size))",
        "selection needs baseline reward records: enable baseline, set baseline.recordsUri, "
        "or use strategy random with a size",
        lambda s: (
            (not s.selection.enabled)
            or s.baseline.enabled
            or s.baseline.recordsUri is not None
            or (s.selection.strategy == "random" and s.selection.size is not None)
        ),
        field="selection",
    ),
    Rule(
        "",
        "!self.retrain.enabled || self.selection.enabled",
        "retrain trains on the selected subset: enable selection too",
        lambda s: (not s.retrain.enabled) or s.selection.enabled,
        field="retrain",
    ),
    Rule(
        "storage",
        "self.uri.startsWith('s3://') || (!has(self.endpoint) && !has(self.secretRef))",
        "endpoint and secretRef apply to s3:// storage only: use an s3:// uri or remove them",
        lambda s: s.uri.startswith("s3://") or (s.endpoint is None and s.secretRef is None),
    ),
    Rule(
        "baseline",
        "!has(self.recordsUri) || !self.enabled",
        "recordsUri replaces the baseline run: set enabled: false to use existing records",
        lambda b: b.recordsUri is None or not b.enabled,
        field="recordsUri",
    ),
    Rule(
        "selection",
        "self.strategy != 'linear' || !has(self.threshold) || self.threshold >= 0.0",
        "linear scores are R^2 in [0, 1]: threshold must be between 0 and 1",
        lambda s: s.strategy != "linear" or s.threshold is None or s.threshold >= 0.0,
        field="threshold",
    ),
    Rule(
        "selection",
        "self.strategy == 'random' || !has(self.size)",
        "size applies to strategy random only (lim and linear select by threshold)",
        lambda s: s.strategy == "random" or s.size is None,
        field="size",
    ),
    Rule(
        "retrain",
        "self.comparisons.all(c, self.comparisons.filter(d, d == c).size() == 1)",
        "comparisons must not repeat an arm",
        lambda r: _unique(r.comparisons),
        field="comparisons",
    ),
    Rule(
        "evaluation",
        "!self.enabled || self.benchmarks.size() > 0",
        "evaluation needs at least one benchmark (or set enabled: false)",
        lambda e: (not e.enabled) or len(e.benchmarks) > 0,
        field="benchmarks",
    ),
    Rule(
        "evaluation",
        "self.benchmarks.all(b, self.benchmarks.filter(c, c.name == b.name).size() == 1)",
        "benchmark names must be unique",
        lambda e: _unique([b.name for b in e.benchmarks]),
        field="benchmarks",
    ),
    Rule(
        "ppo",
        "self.trainBatchSize % self.microBatchSize == 0",
        "trainBatchSize must be a multiple of microBatchSize",
        lambda p: p.trainBatchSize % p.microBatchSize == 0,
        field="trainBatchSize",
    ),
    Rule(
        "ppo",
        "(self.rolloutBatchSize * self.samplesPerPrompt) % self.trainBatchSize == 0",
        "rolloutBatchSize x samplesPerPrompt must be a multiple of trainBatchSize",
        lambda p: (p.rolloutBatchSize * p.samplesPerPrompt) % p.trainBatchSize == 0,
        field="rolloutBatchSize",
    ),
    Rule(
        "ppo",
        "self.adamBetas.all(b, b >= 0.0 && b < 1.0)",
        "adamBetas must each be in [0, 1)",
        lambda p: all(0.0 <= b < 1.0 for b in p.adamBetas),
        field="adamBetas",
    ),
    Rule(
        "cluster",
        "self.workerGroups.all(g, self.workerGroups.filter(h, h.name == g.name).size() == 1)",
        "worker group names must be unique",
        lambda c: _unique([g.name for g in c.workerGroups]),
        field="workerGroups",
    ),
    Rule(
        "cluster",
        "self.workerGroups.exists(g, (g.role == 'train' || g.role == 'any') && g.replicas > 0)",
        "at least one worker group with replicas > 0 must have role train or any "
        "(actor, critic and reference run there)",
        lambda c: _has_train_group(c.workerGroups),
        field="workerGroups",
    ),
    Rule(
        "model",
        "self == oldSelf",
        "model is immutable: create a new LIMRJob to train another model",
        lambda m: True,
        transition=True,
    ),
    Rule(
        "dataset",
        "self == oldSelf",
        "dataset is immutable: create a new LIMRJob to train on other data",
        lambda d: True,
        transition=True,
    ),
]


# --------------------------------------------------------------------------------------- loading


class JobError(Exception):
    """A job file that cannot be used; `errors` holds (field path, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__("\n".join(f"{path}: {msg}" if path else msg for path, msg in errors))


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.startswith("function-"):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


# What a pattern means, for error messages a user can act on.
_PATTERN_HELP = {
    STORAGE_URI_PATTERN: "a storage URI: s3://bucket[/prefix], file:///path or a local path "
    "(other schemes such as gs:// or http:// are not supported)",
    DNS_LABEL_PATTERN: "a DNS label: lowercase letters, digits and '-', starting with a letter "
    "and ending with a letter or digit",
    DNS_SUBDOMAIN_PATTERN: "a DNS subdomain: lowercase letters, digits, '-' and '.'",
    QUANTITY_PATTERN: "a Kubernetes quantity such as 8, 500m or 64Gi",
    SECRET_KEY_PATTERN: "a Secret key: letters, digits, '-', '_' and '.'",
    VERSION_PATTERN: "a version such as 2.60.0",
    ENDPOINT_PATTERN: "an http:// or https:// URL such as http://minio.storage:9000",
    REGION_PATTERN: "a region such as us-east-1",
}


def _unwrap(annotation: Any) -> Any:
    if _nullable(annotation):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class at a pydantic error location below LIMRJob (None when not a model)."""
    current: Any = LIMRJob
    for part in loc:
        current = _unwrap(current)
        origin = typing.get_origin(current)
        if isinstance(part, int) and origin is list:
            current = typing.get_args(current)[0]
        elif isinstance(part, str) and origin is dict:
            current = typing.get_args(current)[1]
        elif isinstance(part, str) and isinstance(current, type) and issubclass(current, BaseModel):
            fields = {info.alias or name: info for name, info in current.model_fields.items()}
            if part not in fields:
                return None
            current = fields[part].annotation
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unknown_field_message(loc: tuple[Any, ...]) -> str:
    msg = "unknown field: remove it or check its spelling"
    model = _model_at(loc[:-1])
    if model is not None and isinstance(loc[-1], str):
        known = [info.alias or name for name, info in model.model_fields.items()]
        close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
        if not close:
            close = [k for k in known if k.lower() == loc[-1].lower()]
        if close:
            msg += f" (did you mean {close[0]!r}?)"
    return msg


def explain(err: ValidationError) -> list[tuple[str, str]]:
    """Turn pydantic errors into (field path, what is expected) pairs a user can act on."""
    result: list[tuple[str, str]] = []
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        path = _loc_to_path(loc)
        kind = e["type"]
        ctx = e.get("ctx") or {}
        if kind == "extra_forbidden":
            msg = _unknown_field_message(loc)
        elif kind == "missing":
            msg = "required field is missing"
        elif kind == "value_error" and isinstance(ctx.get("error"), RuleViolations):
            for sub_path, sub_msg in ctx["error"].violations:
                result.append((".".join(p for p in (path, sub_path) if p), sub_msg))
            continue
        elif kind == "value_error":
            for m in str(ctx.get("error", e["msg"])).split("; "):
                sub_path, _, sub_msg = m.partition(": ")
                result.append((".".join(p for p in (path, sub_path) if p), sub_msg or m))
            continue
        else:
            msg = e["msg"]
            if kind == "string_pattern_mismatch" and ctx.get("pattern") in _PATTERN_HELP:
                msg = "expected " + _PATTERN_HELP[ctx["pattern"]]
            elif kind in ("model_type", "dict_type"):
                msg = "expected a mapping of fields"
            if "input" in e and not isinstance(e["input"], (dict, list)):
                msg += f" (got {e['input']!r})"
        result.append((path, msg))
    return result


class _JobYamlLoader(yaml.SafeLoader):
    """Safe YAML loader that refuses duplicate keys (the API server refuses duplicate fields)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:
                continue
            if first != key_node.start_mark.line + 1:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {first})", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def load_yaml(source: str | Path) -> dict[str, Any]:
    """Read one YAML document; errors name the file and the line."""
    path = Path(source)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise JobError([("", f"{path}: no such file")]) from None
    except IsADirectoryError:
        raise JobError([("", f"{path}: is a directory, not a job file")]) from None
    except OSError as exc:
        raise JobError([("", f"{path}: cannot read ({exc.strerror})")]) from None
    except UnicodeDecodeError:
        raise JobError([("", f"{path}: not a UTF-8 text file")]) from None
    try:
        docs = [d for d in yaml.load_all(text, Loader=_JobYamlLoader) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise JobError([("", f"{path}: malformed YAML{where}: {problem}")]) from None
    if len(docs) != 1:
        raise JobError([("", f"{path}: expected exactly one YAML document, found {len(docs)}")])
    if not isinstance(docs[0], dict):
        raise JobError([("", f"{path}: a LIMRJob is a mapping with apiVersion, kind, metadata and spec")])
    return docs[0]


def _plain(value: Any) -> Any:
    """Mappings (e.g. kopf bodies) and sequences as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def load_job(source: str | Path | Mapping[str, Any]) -> LIMRJob:
    """Parse and validate a LIMRJob from a file path or a mapping; raises JobError.

    Field names are the API's (`lambda`, not the Python attribute `lambd`), as in the CRD.
    """
    data = _plain(source) if isinstance(source, Mapping) else load_yaml(source)
    try:
        return LIMRJob.model_validate(data, by_name=False)
    except ValidationError as err:
        raise JobError(explain(err)) from None


def to_manifest(job: LIMRJob) -> dict[str, Any]:
    """The job as a Kubernetes object with every default filled in (status left out)."""
    return job.model_dump(mode="json", by_alias=True, exclude={"status"}, exclude_none=True)


def job_name_ok(name: str) -> bool:
    return bool(re.fullmatch(DNS_LABEL_PATTERN, name)) and len(name) <= 40


def load_job_or_report(source: str | Path, stream: Any = None) -> LIMRJob | None:
    """For commands: the job, or None after printing each error as `FILE: field.path: message`
    (the caller then exits 2). One place, so every command explains bad input the same way."""
    import sys

    try:
        return load_job(source)
    except JobError as err:
        out = stream or sys.stderr
        for path, msg in err.errors:
            print(f"{source}: {path + ': ' if path else ''}{msg}", file=out)
        return None
