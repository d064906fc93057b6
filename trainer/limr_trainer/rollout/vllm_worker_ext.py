"""Worker-side half of weight sync: methods mixed into every vLLM worker (`worker_extension_cls`).

vLLM calls them through `LLM.collective_rpc(name, args)` on each worker of an engine. Ways in:
- `limr_load_bytes`: safetensors bytes (the CPU RPC path), loaded from memory.
- `limr_init_group` + `limr_receive_broadcast`: an NCCL broadcast from the actor's rank 0, streamed:
  each tensor is received into a fresh buffer and handed to `reload_weights` as the next item of a
  generator, so the worker never holds a second copy of the model (every worker must join every
  broadcast, in order: `reload_weights` consumes the whole iterator).
- `limr_load_folder`: a Hugging Face folder on this host (evaluation of a trained arm), through
  vLLM's own reload from disk (memory-mapped safetensors, no staging).
Weights go through the worker's `reload_weights` (on CPU `model.load_weights` alone leaves packed
copies stale). With tied embeddings `lm_head.weight` is not sent; the lm_head re-runs its
post-load processing so logits follow the new embedding.
"""

from __future__ import annotations


class WeightSyncExtension:
    """Mixed into vLLM's worker class; `self` is the worker (has model_runner, device, reload_weights)."""

    def _limr_after_load(self, tied: bool) -> None:
        if tied:
            model = self.model_runner.get_model()
            head = getattr(model, "lm_head", None)
            method = getattr(head, "quant_method", None)
            if method is not None and hasattr(method, "process_weights_after_loading"):
                method.process_weights_after_loading(head)

    def _limr_apply(self, weights, tied: bool) -> int:
        count = 0

        def named():
            nonlocal count
            for name, tensor in weights:
                if not (tied and name == "lm_head.weight"):
                    count += 1
                    yield name, tensor

        self.reload_weights(weights_iterator=named())
        self._limr_after_load(tied)
        return count

    def limr_load_bytes(self, data: bytes, tied: bool) -> int:
        from safetensors.torch import load

        return self._limr_apply(load(data).items(), tied)

    def limr_load_folder(self, folder: str, tied: bool) -> bool:
        self.reload_weights(weights_path=folder)
        self._limr_after_load(tied)
        return True

    # ---- NCCL broadcast (GPU) -----------------------------------------------------------------
    def limr_init_group(self, master_address: str, master_port: int, rank_offset: int, world_size: int) -> None:
        from vllm.distributed.parallel_state import get_world_group
        from vllm.distributed.utils import StatelessProcessGroup

        from limr_trainer.rollout.weight_sync import checked_communicator

        rank = get_world_group().rank + rank_offset
        group = StatelessProcessGroup.create(host=master_address, port=master_port, rank=rank, world_size=world_size)
        self._limr_comm = checked_communicator(group, self.device)

    def limr_receive_broadcast(self, meta: list[tuple[str, str, list[int]]], tied: bool) -> int:
        import torch

        def tensors():
            for name, dtype, shape in meta:
                buf = torch.empty(shape, dtype=getattr(torch, dtype), device=self.device)
                self._limr_comm.broadcast(buf, src=0, stream=torch.cuda.current_stream())
                yield name, buf

        count = self._limr_apply(tensors(), tied)
        torch.cuda.synchronize()
        return count
