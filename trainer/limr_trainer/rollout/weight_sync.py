"""How the actor's updated weights reach the rollout engines, behind one small interface.

The driver calls `sync.push(actor_group, engines)` after every policy update. Sender-side work runs
in the actor's ranks (`ppo.workers.ActorWorker`); receiver-side work in the engines' vLLM workers
(`vllm_worker_ext.WeightSyncExtension`). Neither side ever holds a second copy of the model:

- `nccl` (GPU): rank 0 of the actor and every engine worker form one NCCL group at setup. Each push
  streams the model parameter by parameter: the actor gathers one parameter (ZeRO-3: all ranks take
  part), rank 0 broadcasts it, and each engine worker hands it to vLLM's `reload_weights` as the
  next item of a generator, so it is loaded before the next one arrives. The (name, dtype, shape)
  list is computed once and cached. Both ends refuse a disabled communicator (vLLM's PyNccl turns
  every collective into a silent no-op when NCCL fails to load).
- `rpc` (CPU, or any cluster): rank 0 serialises the policy (safetensors bytes) into the Ray object
  store once; every engine fetches it and loads it through `collective_rpc`, from memory.
There is no CUDA-IPC path: engines never share an actor's GPU in this trainer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class WeightSync(ABC):
    def setup(self, actor_group: Any, engines: list) -> None:
        """One-time wiring (process groups); default: none."""

    @abstractmethod
    def push(self, actor_group: Any, engines: list) -> None:
        """Copy the actor's current weights into every engine; returns when they generate with them."""


class RPCWeightSync(WeightSync):
    def push(self, actor_group, engines) -> None:
        import ray

        refs = actor_group.call_async("weights_bytes")  # all ranks gather (ZeRO-3); rank 0 returns bytes
        data_ref = refs[0]
        ray.get([e.load_weights_bytes.remote(data_ref) for e in engines] + refs[1:])


class NCCLWeightSync(WeightSync):
    def __init__(self, tensor_parallel_size: int = 1):
        self.tp = tensor_parallel_size
        self.meta: list | None = None

    def setup(self, actor_group, engines) -> None:
        import ray

        address, port = ray.get(actor_group.ranks[0].free_address.remote())
        world = 1 + len(engines) * self.tp
        refs = [e.init_weight_group.remote(address, port, 1 + i * self.tp, world) for i, e in enumerate(engines)]
        refs.append(actor_group.ranks[0].init_weight_sender.remote(address, port, world))
        ray.get(refs)

    def push(self, actor_group, engines) -> None:
        import ray

        if self.meta is None:  # every rank gathers once (ZeRO-3) to describe the parameters, then never again
            self.meta = ray.get(actor_group.call_async("weights_meta"))[0]
        receivers = [e.receive_broadcast.remote(self.meta) for e in engines]
        sent = ray.get(actor_group.call_async("broadcast_weights"))[0]
        got = ray.get(receivers)
        if any(n != sent for n in got):
            raise RuntimeError(f"weight sync: the actor sent {sent} tensors, engines received {got}")


def make_weight_sync(kind: str, device: str, tensor_parallel_size: int = 1) -> WeightSync:
    """`auto` = nccl on GPU, rpc on CPU."""
    if kind == "auto":
        kind = "nccl" if device == "cuda" else "rpc"
    if kind == "rpc":
        return RPCWeightSync()
    if device != "cuda":
        raise ValueError(f"weightSync {kind!r} needs GPUs; use rpc (or auto) on CPU clusters")
    if kind == "nccl":
        return NCCLWeightSync(tensor_parallel_size)
    raise ValueError(f"unknown weightSync {kind!r}: expected auto, nccl or rpc")


# ---------------------------------------------------------------------- both sides of the NCCL group


def checked_communicator(group: Any, device: Any) -> Any:
    """A PyNcclCommunicator that really communicates (vLLM disables it silently when NCCL is missing,
    the group has one member, or VLLM_DISABLE_PYNCCL is set)."""
    from vllm.distributed.device_communicators.pynccl import PyNcclCommunicator

    comm = PyNcclCommunicator(group, device=device)
    if getattr(comm, "disabled", False) or not getattr(comm, "available", True):
        raise RuntimeError("the NCCL weight-sync communicator is disabled (NCCL library not loaded, "
                           "VLLM_DISABLE_PYNCCL set, or a group of one): refusing to broadcast into nothing")
    return comm


def nccl_sender(address: str, port: int, world_size: int, device) -> Any:
    """Rank 0 of the weight group (the engines' workers are ranks 1..)."""
    from vllm.distributed.utils import StatelessProcessGroup

    group = StatelessProcessGroup.create(host=address, port=port, rank=0, world_size=world_size)
    return checked_communicator(group, device)


def broadcast_tensor(comm: Any, tensor: Any) -> None:
    import torch

    comm.broadcast(tensor.contiguous(), src=0, stream=torch.cuda.current_stream())
