"""Start the roles of one PPO run on Ray: actor, critic, reference groups and the rollout engines.

All of them start in parallel (groups and engines are created without waiting, then joined), the
critic only when the advantage estimator needs one. `Roles.sync()` pushes the actor's weights
into the engines after every update.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from limr_trainer.ppo.advantages import needs_critic
from limr_trainer.rollout.options import backend_options, compute_dtype
from limr_trainer.runtime.model import ModelSource
from limr_trainer.runtime.ray_session import worker_env


@dataclass
class Roles:
    actor: Any
    critic: Any | None
    reference: Any
    rollout: Any
    sync: Callable[[], None]
    startup: dict[str, float] = field(default_factory=dict)  # seconds until each part was ready

    @property
    def trained(self) -> list[Any]:
        """The groups that hold optimizer state (what a checkpoint saves)."""
        return [g for g in (self.actor, self.critic) if g is not None]

    def close(self) -> None:
        for group in (self.actor, self.critic, self.reference):
            if group is not None:
                group.close()
        if self.rollout is not None:
            self.rollout.close()


def optimizer_steps_per_ppo_step(ppo: Any) -> int:
    """Each PPO step updates once per train batch of its rollouts, for every PPO epoch."""
    return -(-(ppo.rolloutBatchSize * ppo.samplesPerPrompt) // ppo.trainBatchSize) * ppo.ppoEpochs


def trained_role_options(spec: Any, world: int, device: str, total_ppo_steps: int) -> dict[str, Any]:
    """DeepSpeed config, learning-rate schedule and micro-batch sizes of a trained role."""
    from limr_trainer.ppo.workers import ds_config

    ppo = spec.ppo
    if ppo.trainBatchSize % world:
        raise ValueError(f"trainBatchSize {ppo.trainBatchSize} must split evenly into {world} ranks")
    dtype = compute_dtype(spec, device)
    return {
        "config": ds_config(ppo.zeroStage, ppo.microBatchSize, world, ppo.maxGradNorm, dtype == "bfloat16",
                            offload_optimizer=ppo.offloadOptimizer and device == "cuda"),
        "schedule": {"warmup": ppo.warmupSteps, "total": total_ppo_steps * optimizer_steps_per_ppo_step(ppo),
                     "floor": ppo.minLearningRateRatio, "kind": ppo.lrSchedule},
        "micro": ppo.microBatchSize, "micro_tokens": ppo.microBatchTokens,
        "gradient_checkpointing": ppo.gradientCheckpointing,
    }


def start_roles(spec: Any, model: ModelSource, device: str, total_ppo_steps: int = 1) -> Roles:
    """Actor, critic (when needed), reference and the rollout backend, per the job's resources.

    `total_ppo_steps` sizes the learning-rate schedule (warm-up, then cosine to its floor)."""
    from limr_trainer.ppo.groups import RoleGroup
    from limr_trainer.ppo.workers import ActorWorker, CriticWorker, ReferenceWorker
    from limr_trainer.rollout import make_backend
    from limr_trainer.rollout.weight_sync import make_weight_sync

    ppo = spec.ppo
    dtype = compute_dtype(spec, device)
    env = worker_env()
    t0 = time.perf_counter()

    def gpus(role: Any) -> float:
        return role.gpus if device == "cuda" else 0.0

    common = {"model": model, "dtype": dtype, "betas": ppo.adamBetas, "weight_decay": ppo.weightDecay, "seed": ppo.seed}
    actor = RoleGroup("actor", ActorWorker, ppo.actor.replicas, ppo.actor.cpus, gpus(ppo.actor), env,
                      dict(common, lr=ppo.actorLearningRate,
                           **trained_role_options(spec, ppo.actor.replicas, device, total_ppo_steps)), wait=False)
    critic = None
    if needs_critic(ppo.advantageEstimator):
        critic = RoleGroup("critic", CriticWorker, ppo.critic.replicas, ppo.critic.cpus, gpus(ppo.critic), env,
                           dict(common, lr=ppo.criticLearningRate,
                                **trained_role_options(spec, ppo.critic.replicas, device, total_ppo_steps)),
                           wait=False)
    reference = RoleGroup("reference", ReferenceWorker, ppo.reference.replicas, ppo.reference.cpus,
                          gpus(ppo.reference), env, {"model": model, "dtype": dtype, "micro": ppo.microBatchSize,
                                                     "micro_tokens": ppo.microBatchTokens}, wait=False)
    backend = make_backend(spec.rollout.backend, model, **backend_options(spec, device, "train"))
    startup = {"engines": time.perf_counter() - t0}
    groups = [g for g in (actor, critic, reference) if g is not None]
    for group in groups:
        group.wait()
    startup["training_roles"] = time.perf_counter() - t0
    if spec.rollout.backend == "vllm":
        weight_sync = make_weight_sync(spec.rollout.weightSync, device, spec.rollout.tensorParallelSize)
        weight_sync.setup(actor, backend.engines)

        def sync() -> None:
            weight_sync.push(actor, backend.engines)
    else:
        def sync() -> None:
            import ray
            from safetensors.torch import load

            refs = actor.call_async("weights_bytes")
            backend.update_weights(load(ray.get(refs[0])))
            ray.get(refs[1:])

    startup["weight_sync"] = time.perf_counter() - t0
    return Roles(actor, critic, reference, backend, sync, {k: round(v, 2) for k, v in startup.items()})
