"""How the actor's updated weights reach the rollout engines, behind one small interface.

The driver calls `sync.push(actor_group, engines)` after every policy update. Sender-side work
runs in the actor's ranks (methods of `ppo.workers.ActorWorker`); receiver-side work runs in the
engines' vLLM workers (`vllm_worker_ext.WeightSyncExtension`).

- `rpc` (CPU, or any cluster): rank 0 serialises the full state dict (safetensors bytes) into the
  Ray object store once; every engine fetches it and reloads through `collective_rpc`.
- `nccl` (GPU): rank 0 and every engine worker form one NCCL group at setup; each sync broadcasts
  tensor by tensor, no host copies.
- `ipc` (GPU, actor and engines sharing GPUs): each rank exports CUDA IPC handles of its full
  parameters; engine workers on the same GPU (matched by device UUID) map them without copies.
With ZeRO-3 every rank joins the parameter gathers, so the sender methods run on all ranks.
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

    def setup(self, actor_group, engines) -> None:
        import ray

        address, port = ray.get(actor_group.ranks[0].free_address.remote())
        world = 1 + len(engines) * self.tp
        refs = [e.init_weight_group.remote(address, port, 1 + i * self.tp, world) for i, e in enumerate(engines)]
        refs.append(actor_group.ranks[0].init_weight_sender.remote(address, port, world))
        ray.get(refs)

    def push(self, actor_group, engines) -> None:
        import ray

        meta = ray.get(actor_group.call_async("weights_meta"))[0]
        receivers = [e.receive_broadcast.remote(meta) for e in engines]
        ray.get(actor_group.call_async("broadcast_weights") + receivers)


class IPCWeightSync(WeightSync):
    def push(self, actor_group, engines) -> None:
        import ray

        handles: dict[str, dict] = {}
        for part in ray.get(actor_group.call_async("weights_ipc_handles")):
            handles.update(part)  # device uuid -> {name: handle}
        ray.get([e.load_ipc.remote(handles) for e in engines])
        ray.get(actor_group.call_async("release_ipc"))


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
    if kind == "ipc":
        return IPCWeightSync()
    raise ValueError(f"unknown weightSync {kind!r}")


# ---------------------------------------------------------------------- sender side (actor ranks)


def nccl_sender(address: str, port: int, world_size: int, device) -> Any:
    """Rank 0 of the weight group (the engines' workers are ranks 1..)."""
    from vllm.distributed.device_communicators.pynccl import PyNcclCommunicator
    from vllm.distributed.utils import StatelessProcessGroup

    group = StatelessProcessGroup.create(host=address, port=port, rank=0, world_size=world_size)
    return PyNcclCommunicator(group, device=device)


def broadcast_state(comm: Any, state: dict) -> None:
    import torch

    for tensor in state.values():
        comm.broadcast(tensor.contiguous(), src=0, stream=torch.cuda.current_stream())
    torch.cuda.synchronize()


def ipc_handles(state: dict) -> dict[str, dict]:
    """{device uuid: {name: (rebuild_fn, args)}} for tensors on this rank's GPU."""
    import torch
    from torch.multiprocessing.reductions import reduce_tensor

    uuid = str(torch.cuda.get_device_properties(torch.cuda.current_device()).uuid)
    return {uuid: {name: reduce_tensor(t.detach().contiguous()) for name, t in state.items()}}
