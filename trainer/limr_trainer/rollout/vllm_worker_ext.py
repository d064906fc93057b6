"""Worker-side half of weight sync: methods mixed into every vLLM worker (`worker_extension_cls`).

vLLM calls them through `LLM.collective_rpc(name, args)` on each worker of an engine. Three ways in:
- `limr_load_file`: a safetensors file (CPU path; the engine actor writes the bytes it received
  through Ray to local /dev/shm). Uses the worker's `reload_weights` (on CPU `model.load_weights`
  leaves packed copies stale).
- `limr_init_group` + `limr_receive_broadcast`: NCCL broadcast from the actor's rank 0, which joins
  a stateless process group with every engine worker (GPU, engines on other GPUs or nodes).
- `limr_load_ipc`: CUDA IPC handles of the actor's tensors (GPU, actor and engine on the same GPU).
With tied embeddings `lm_head.weight` is not sent; the lm_head re-runs its post-load processing
so logits follow the new embedding.
"""

from __future__ import annotations

from typing import Any


class WeightSyncExtension:
    """Mixed into vLLM's worker class; `self` is the worker (has model_runner, device, reload_weights)."""

    def _limr_apply(self, weights, tied: bool) -> int:
        named = [(n, t) for n, t in weights if not (tied and n == "lm_head.weight")]
        self.reload_weights(weights_iterator=iter(named))
        if tied:
            model = self.model_runner.get_model()
            head = getattr(model, "lm_head", None)
            method = getattr(head, "quant_method", None)
            if method is not None and hasattr(method, "process_weights_after_loading"):
                method.process_weights_after_loading(head)
        return len(named)

    def limr_load_file(self, path: str, tied: bool) -> int:
        from safetensors.torch import load_file

        return self._limr_apply(load_file(path).items(), tied)

    # ---- NCCL broadcast (GPU) -----------------------------------------------------------------
    def limr_init_group(self, master_address: str, master_port: int, rank_offset: int, world_size: int) -> None:
        from vllm.distributed.device_communicators.pynccl import PyNcclCommunicator
        from vllm.distributed.parallel_state import get_world_group
        from vllm.distributed.utils import StatelessProcessGroup

        rank = get_world_group().rank + rank_offset
        group = StatelessProcessGroup.create(host=master_address, port=master_port, rank=rank, world_size=world_size)
        self._limr_comm = PyNcclCommunicator(group, device=self.device)

    def limr_receive_broadcast(self, meta: list[tuple[str, str, list[int]]], tied: bool) -> int:
        import torch

        def tensors():
            for name, dtype, shape in meta:
                buf = torch.empty(shape, dtype=getattr(torch, dtype), device=self.device)
                self._limr_comm.broadcast(buf, src=0, stream=torch.cuda.current_stream())
                yield name, buf

        received = list(tensors())  # every rank must join every broadcast, in order
        torch.cuda.synchronize()
        return self._limr_apply(received, tied)

    # ---- CUDA IPC (GPU, colocated) -------------------------------------------------------------
    def limr_load_ipc(self, handles: dict[str, dict[str, Any]], tied: bool) -> int:
        """`handles`: device uuid -> {name: (rebuild_fn, args)} from torch's reduce_tensor."""
        import torch

        uuid = str(torch.cuda.get_device_properties(self.device).uuid)
        weights = []
        for name, (rebuild, args) in handles[uuid].items():
            args = list(args)
            args[6] = self.device.index  # the receiving process's index of that same GPU
            weights.append((name, rebuild(*args)))
        out = self._limr_apply(weights, tied)
        torch.cuda.synchronize()
        return out
