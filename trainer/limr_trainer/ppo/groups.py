"""The ranks of one training role as Ray actors (in the spirit of OpenRLHF's `RayActorGroup`).

A group places its ranks in one placement group on the `train` workers (the Ray resource the
operator gives KubeRay pods of role `train`), starts their setup in parallel and fans calls out
to every rank; `scatter_async` splits a batch into one shard per rank.
"""

from __future__ import annotations

from typing import Any

import torch

TRAIN_ROLE = "train"


class RoleGroup:
    """The ranks of one role, placed together, one torch.distributed world."""

    def __init__(self, name: str, worker_cls: type, replicas: int, cpus: float, gpus: float, env: dict[str, str],
                 setup_kwargs: dict[str, Any], strategy: str = "PACK", wait: bool = True):
        import ray

        from limr_trainer.rollout.placement import make_placement_group, scheduling

        self.name = name
        self.pg = make_placement_group(TRAIN_ROLE, replicas, cpus, gpus, strategy=strategy)
        remote_cls = ray.remote(worker_cls)
        self.ranks = [
            remote_cls.options(num_cpus=cpus, num_gpus=gpus, scheduling_strategy=scheduling(self.pg, i),
                               runtime_env={"env_vars": env}, name=None).remote(i, replicas)
            for i in range(replicas)
        ]
        address, port = ray.get(self.ranks[0].free_address.remote())
        self._setup = [r.setup.remote(address, port, **setup_kwargs) for r in self.ranks]
        if wait:
            self.wait()

    def wait(self) -> None:
        """Block until every rank finished setup (groups start in parallel with wait=False)."""
        import ray

        ray.get(self._setup)

    def call_async(self, method: str, *args: Any, **kwargs: Any) -> list:
        return [getattr(r, method).remote(*args, **kwargs) for r in self.ranks]

    def call(self, method: str, *args: Any, **kwargs: Any) -> list:
        import ray

        return ray.get(self.call_async(method, *args, **kwargs))

    def scatter_async(self, method: str, batch: dict[str, torch.Tensor], *args: Any) -> list:
        """Split `batch` into one contiguous shard per rank and call `method(shard, *args)` on each.

        Each shard is cloned: a slice of a tensor pickles its whole storage, so without the clone
        every rank would receive the entire batch.
        """
        n = batch["sequences"].shape[0]
        size = -(-n // len(self.ranks))
        return [getattr(r, method).remote({k: v[i * size:(i + 1) * size].clone() for k, v in batch.items()}, *args)
                for i, r in enumerate(self.ranks)]

    def close(self) -> None:
        import ray

        for r in self.ranks:
            ray.kill(r)
        ray.util.remove_placement_group(self.pg)
        self.ranks = []
