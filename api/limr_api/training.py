"""What one PPO run trains and how: the base model, the dataset, the reward, PPO and rollout."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .constants import FIELD_MAX, INT32_MAX, LIMR_SYSTEM_PROMPT, SOURCE_URI_PATTERN, URI_MAX
from .strict import Strict


class ModelSpec(Strict):
    """The base model every PPO run starts from."""

    name: str = Field(
        min_length=1,
        max_length=URI_MAX,
        pattern=SOURCE_URI_PATTERN,
        description="Hugging Face model id, s3:// URI or local folder of the base model "
        "(e.g. Qwen/Qwen2.5-Math-7B).",
    )
    revision: str | None = Field(
        default=None,
        min_length=1,
        max_length=FIELD_MAX,
        description="Model revision (branch, tag or commit) for hub ids.",
    )
    dtype: Literal["bfloat16", "float32"] = Field(
        default="bfloat16",
        description="Parameter and compute dtype (LIMR: bf16; CPU runs use float32). float16 is not offered: "
        "training in it needs loss scaling, which this trainer does not do.",
    )
    trustRemoteCode: bool = Field(
        default=False, description="Allow custom modelling code from the model repo."
    )


class DatasetSpec(Strict):
    """Training questions with reference answers."""

    uri: str = Field(
        min_length=1,
        max_length=URI_MAX,
        pattern=SOURCE_URI_PATTERN,
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
        default=4, ge=1, le=65_536, description="Most experiences per forward/backward pass per rank."
    )
    microBatchTokens: int | None = Field(
        default=None,
        ge=1,
        le=INT32_MAX,
        description="Token budget of a micro batch (rows x its longest sequence): experiences are sorted "
        "by length and packed up to microBatchSize rows within this budget. Unset: microBatchSize rows "
        "of similar length.",
    )
    ppoEpochs: int = Field(default=1, ge=1, le=100, description="Passes over each rollout batch.")
    promptMaxLength: int = Field(
        default=1024, ge=8, le=1_048_576, description="Prompt tokens kept (left-truncated)."
    )
    generateMaxLength: int = Field(default=3072, ge=1, le=1_048_576, description="New tokens per response.")
    normalizeReward: bool = Field(
        default=False,
        description="Running mean/std normalisation of the sequence rewards. Off as LIMR ran: its "
        "--normalize_reward did not touch a rule reward served over HTTP, so the raw +1 / -0.5 / -1 "
        "reached PPO.",
    )
    advantageEstimator: Literal["gae", "grpo", "rloo", "reinforce++"] = Field(
        default="gae",
        description="gae (LIMR: a critic, GAE); grpo (group-normalised rewards), rloo (leave-one-out "
        "baseline) and reinforce++ (KL-shaped returns, batch-whitened) need no critic: no critic ranks "
        "start and ppo.critic's GPUs are not used.",
    )
    filterUniformGroups: bool = Field(
        default=False,
        description="DAPO-style dynamic sampling: a prompt whose samples all got the same reward is left "
        "out of the update (it is still recorded) and the batch is refilled with other prompts.",
    )
    whitenAdvantages: bool = Field(
        default=True, description="Whiten advantages over the batch (gae and reinforce++; grpo and rloo "
        "are already normalised per group)."
    )
    zeroStage: int = Field(default=3, ge=0, le=3, description="DeepSpeed ZeRO stage of actor and critic (LIMR: 3).")
    offloadOptimizer: bool = Field(
        default=False,
        description="Keep Adam's state in CPU memory (DeepSpeed offload; LIMR: --adam_offload). GPUs only.",
    )
    gradientCheckpointing: bool = Field(
        default=True, description="Recompute activations in the backward pass (LIMR: on)."
    )
    warmupSteps: int = Field(
        default=10, ge=0, le=1_000_000, description="Optimizer steps of linear learning-rate warm-up (LIMR: 10)."
    )
    lrSchedule: Literal["cosine", "constant"] = Field(
        default="cosine", description="After warm-up: cosine decay to minLearningRateRatio x lr (LIMR), or constant."
    )
    minLearningRateRatio: float = Field(
        default=0.1, ge=0, le=1, description="Floor of the cosine schedule, as a share of the learning rate."
    )
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
    weightSync: Literal["auto", "nccl", "rpc"] = Field(
        default="auto",
        description="How updated actor weights reach the engines: an NCCL broadcast, tensor by tensor "
        "(GPU), or through the engine's worker RPC (CPU). auto picks by device.",
    )
    sampling: SamplingSpec = Field(default_factory=SamplingSpec, description="Sampling parameters.")
