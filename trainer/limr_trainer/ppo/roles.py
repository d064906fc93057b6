"""Start the roles of one PPO run on Ray: actor, critic, reference groups and the rollout engines.

All of them start in parallel (groups and engines are created without waiting, then joined), the
critic only when the advantage estimator needs one. `Roles.sync()` pushes the actor's weights
into the engines after every update.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


def ds_train_config(ppo: Any, world: int, bf16: bool) -> dict:
    """DeepSpeed config of a trained role with `world` ranks."""
    from limr_trainer.ppo.workers import ds_config

    per_step = ppo.trainBatchSize // world
    if ppo.trainBatchSize % world or per_step % ppo.microBatchSize:
        raise ValueError(f"trainBatchSize {ppo.trainBatchSize} must split into {world} ranks x microBatchSize "
                         f"{ppo.microBatchSize}")
    return ds_config(ppo.zeroStage, ppo.microBatchSize, per_step // ppo.microBatchSize, world, ppo.maxGradNorm, bf16)


def start_roles(spec: Any, model: ModelSource, device: str) -> Roles:
    """Actor, critic (when needed), reference and the rollout backend, per the job's resources."""
    from limr_trainer.ppo.groups import RoleGroup
    from limr_trainer.ppo.workers import ActorWorker, CriticWorker, ReferenceWorker
    from limr_trainer.rollout import make_backend
    from limr_trainer.rollout.weight_sync import make_weight_sync

    ppo = spec.ppo
    dtype = compute_dtype(spec, device)
    env = worker_env()
    bf16 = dtype == "bfloat16"

    def gpus(role: Any) -> float:
        return role.gpus if device == "cuda" else 0.0

    common = {"model": model, "dtype": dtype, "betas": ppo.adamBetas, "weight_decay": ppo.weightDecay, "seed": ppo.seed}
    actor = RoleGroup("actor", ActorWorker, ppo.actor.replicas, ppo.actor.cpus, gpus(ppo.actor), env,
                      dict(common, lr=ppo.actorLearningRate, config=ds_train_config(ppo, ppo.actor.replicas, bf16)),
                      wait=False)
    critic = None
    if needs_critic(ppo.advantageEstimator):
        critic = RoleGroup("critic", CriticWorker, ppo.critic.replicas, ppo.critic.cpus, gpus(ppo.critic), env,
                           dict(common, lr=ppo.criticLearningRate,
                                config=ds_train_config(ppo, ppo.critic.replicas, bf16)), wait=False)
    reference = RoleGroup("reference", ReferenceWorker, ppo.reference.replicas, ppo.reference.cpus,
                          gpus(ppo.reference), env, {"model": model, "dtype": dtype, "micro": ppo.microBatchSize},
                          wait=False)
    backend = make_backend(spec.rollout.backend, model, **backend_options(spec, device, "train"))
    groups = [g for g in (actor, critic, reference) if g is not None]
    for group in groups:
        group.wait()
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

    return Roles(actor, critic, reference, backend, sync)
