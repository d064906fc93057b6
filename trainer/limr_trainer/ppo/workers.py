"""Training roles as Ray actors: DeepSpeed actor and critic ranks, a frozen reference model.

Each rank runs in a Ray actor of its role's `groups.RoleGroup`, which wires the ranks into one
torch.distributed world (NCCL on GPU, gloo on CPU). The driver splits a batch into one shard per
rank; DeepSpeed all-reduces gradients inside the group. Every rank resolves the base model on its
own host and opens the job's storage itself (`StorageRoot`).

Batches are dicts of tensors: `sequences` (B, L) prompt + response right-padded, `attention_mask`
(B, L), `action_mask` (B, L-1) marking positions whose next token is a response token; per-token
outputs have shape (B, L-1).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from typing import Any

import torch

from limr_trainer.ppo import core
from limr_trainer.runtime.model import ModelSource, as_source, resolve_model
from limr_trainer.storage import StorageRoot


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def node_address() -> str:
    import ray

    return ray.util.get_node_ip_address()


def ds_config(stage: int, micro: int, accumulation: int, world: int, max_grad_norm: float, bf16: bool) -> dict:
    return {
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": accumulation,
        "train_batch_size": micro * accumulation * world,
        "gradient_clipping": max_grad_norm,
        "zero_optimization": {"stage": stage},
        "bf16": {"enabled": bf16},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def micro_batches(batch: dict[str, torch.Tensor], size: int):
    n = batch["sequences"].shape[0]
    for start in range(0, n, size):
        yield {k: v[start:start + size] for k, v in batch.items()}


def trim(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop padding columns every row has (shards of short responses run faster)."""
    width = int(batch["attention_mask"].sum(1).max())
    out = {}
    for k, v in batch.items():
        out[k] = v[:, :width] if k in ("sequences", "attention_mask") else v[:, : width - 1]
    return out


class TrainWorker:
    """One rank of a training role; subclasses add the model."""

    def __init__(self, rank: int, world_size: int):
        self.rank, self.world_size = rank, world_size
        self.device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")

    def free_address(self) -> tuple[str, int]:
        return node_address(), free_port()

    def init_distributed(self, master_addr: str, master_port: int) -> None:
        os.environ.update(RANK=str(self.rank), LOCAL_RANK="0", WORLD_SIZE=str(self.world_size),
                          MASTER_ADDR=master_addr, MASTER_PORT=str(master_port))
        import deepspeed

        if self.device.type == "cuda":
            torch.cuda.set_device(0)
        deepspeed.init_distributed(dist_backend="nccl" if self.device.type == "cuda" else "gloo")

    def set_seed(self, seed: int) -> None:
        torch.manual_seed(seed + self.rank)

    def _to(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in batch.items()}


def load_causal_lm(model: ModelSource | str, dtype: str, trust_remote_code: bool = False):
    """The model, resolved on this rank's host (a folder on the driver's host is not here)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(resolve_model(as_source(model)), dtype=getattr(torch, dtype),
                                                trust_remote_code=trust_remote_code)


class _DeepSpeedRole(TrainWorker):
    """Shared by actor and critic: DeepSpeed engine, checkpoints to storage."""

    engine: Any

    def _init_engine(self, model: torch.nn.Module, lr: float, betas: list[float], weight_decay: float,
                     config: dict) -> None:
        import deepspeed

        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
        self.engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=config)
        self.zero_stage = config["zero_optimization"]["stage"]
        self.micro = config["train_micro_batch_size_per_gpu"]

    def save_checkpoint(self, root: StorageRoot, prefix: str) -> int:
        """Each rank writes its DeepSpeed shards locally, then uploads them under `prefix`."""
        local = tempfile.mkdtemp(prefix="limr-ckpt-")
        try:
            self.engine.save_checkpoint(local, tag="ds")
            return len(root.open().put_dir(prefix, local))
        finally:
            shutil.rmtree(local, ignore_errors=True)

    def load_checkpoint(self, root: StorageRoot, prefix: str) -> None:
        local = tempfile.mkdtemp(prefix="limr-ckpt-")
        try:
            root.open().get_dir(prefix, local)
            path, _ = self.engine.load_checkpoint(local, tag="ds")
            if path is None:
                raise RuntimeError(f"no DeepSpeed checkpoint under {prefix}")
        finally:
            shutil.rmtree(local, ignore_errors=True)

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """Full (gathered) parameters under HF names; every rank must call it under ZeRO-3."""
        module = self.engine.module
        if self.zero_stage == 3:
            import deepspeed

            with deepspeed.zero.GatheredParameters(list(module.parameters())):
                return {k: v.detach().clone() for k, v in module.state_dict().items()}
        return module.state_dict()


class ActorWorker(_DeepSpeedRole):
    """The policy: logprobs of sampled tokens, clipped-surrogate updates, weight export."""

    def setup(self, master_addr: str, master_port: int, model: ModelSource, dtype: str, lr: float,
              betas: list[float], weight_decay: float, config: dict, seed: int) -> None:
        self.init_distributed(master_addr, master_port)
        self.set_seed(seed)
        model = load_causal_lm(model, dtype)
        model.config.use_cache = False
        self._init_engine(model, lr, betas, weight_decay, config)
        self._comm = None
        self._ipc_keep = None

    def _forward(self, mb: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.engine(input_ids=mb["sequences"], attention_mask=mb["attention_mask"]).logits[:, :-1]
        return core.gather_logprobs(logits, mb["sequences"][:, 1:]), logits

    @torch.no_grad()
    def logprobs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Old-policy logprobs and per-token entropy, (B, L-1)."""
        self.engine.eval()
        logps, ents = [], []
        for mb in micro_batches(self._to(batch), self.micro):
            mb = trim(mb)
            lp, logits = self._forward(mb)
            pad = batch["action_mask"].shape[1] - lp.shape[1]
            logps.append(torch.nn.functional.pad(lp, (0, pad)).cpu())
            ents.append(torch.nn.functional.pad(core.entropy_from_logits(logits), (0, pad)).cpu())
        return {"logprobs": torch.cat(logps), "entropy": torch.cat(ents)}

    def train(self, batch: dict[str, torch.Tensor], clip: float) -> dict[str, float]:
        """One pass over this rank's shard: micro batches, DeepSpeed accumulates and steps."""
        self.engine.train()
        stats: dict[str, list[float]] = {"policy_loss": [], "clip_fraction": [], "approx_kl": []}
        for mb in micro_batches(self._to(batch), self.micro):
            mb = trim(mb)
            logp, _ = self._forward(mb)
            loss, info = core.policy_loss(logp, mb["old_logprobs"], mb["advantages"], mb["action_mask"], clip)
            self.engine.backward(loss)
            self.engine.step()
            stats["policy_loss"].append(loss.item())
            for k, v in info.items():
                stats[k].append(v)
        stats_out = {k: sum(v) / max(len(v), 1) for k, v in stats.items()}
        stats_out["actor_grad_norm"] = float(self.engine.get_global_grad_norm() or 0.0)
        return stats_out

    # ---- weight export (sender side of rollout.weight_sync) ------------------------------------
    def weights_bytes(self) -> bytes | None:
        from limr_trainer.rollout.vllm_backend import state_dict_bytes

        state = self.full_state_dict()
        tied = bool(getattr(self.engine.module.config, "tie_word_embeddings", False))
        return state_dict_bytes(state, tied) if self.rank == 0 else None

    def weights_meta(self) -> list[tuple[str, str, list[int]]]:
        """(name, dtype, shape) of what `broadcast_weights` sends, in order; all ranks call it (ZeRO-3)."""
        tied = bool(getattr(self.engine.module.config, "tie_word_embeddings", False))
        return [(k, str(v.dtype).removeprefix("torch."), list(v.shape)) for k, v in self.full_state_dict().items()
                if not (tied and k == "lm_head.weight")]

    def init_weight_sender(self, address: str, port: int, world_size: int) -> None:
        from limr_trainer.rollout.weight_sync import nccl_sender

        self._comm = nccl_sender(address, port, world_size, self.device)

    def broadcast_weights(self) -> None:
        from limr_trainer.rollout.weight_sync import broadcast_state

        tied = bool(getattr(self.engine.module.config, "tie_word_embeddings", False))
        state = self.full_state_dict()
        if self.rank == 0:
            broadcast_state(self._comm, {k: v for k, v in state.items() if not (tied and k == "lm_head.weight")})

    def weights_ipc_handles(self) -> dict:
        from limr_trainer.rollout.weight_sync import ipc_handles

        self._ipc_keep = self.full_state_dict()  # keep the storage alive until the engines mapped it
        return ipc_handles(self._ipc_keep)

    def release_ipc(self) -> None:
        self._ipc_keep = None

    def save_hf(self, root: StorageRoot, prefix: str) -> int:
        """The policy as a Hugging Face folder (what evaluation and later phases load)."""
        state = self.full_state_dict()
        if self.rank != 0:
            return 0
        local = tempfile.mkdtemp(prefix="limr-hf-")
        try:
            self.engine.module.save_pretrained(local, state_dict=state, safe_serialization=True)
            return len(root.open().put_dir(prefix, local))
        finally:
            shutil.rmtree(local, ignore_errors=True)


class ValueModel(torch.nn.Module):
    """Critic: the base model's transformer with a scalar head per position."""

    def __init__(self, model: ModelSource, dtype: str):
        super().__init__()
        lm = load_causal_lm(model, dtype)
        self.backbone = lm.model
        self.config = lm.config
        self.value_head = torch.nn.Linear(lm.config.hidden_size, 1, dtype=getattr(torch, dtype))
        torch.nn.init.normal_(self.value_head.weight, std=1.0 / (lm.config.hidden_size + 1))
        torch.nn.init.zeros_(self.value_head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.value_head(hidden).squeeze(-1)[:, :-1].float()


class CriticWorker(_DeepSpeedRole):
    def setup(self, master_addr: str, master_port: int, model: ModelSource, dtype: str, lr: float,
              betas: list[float], weight_decay: float, config: dict, seed: int) -> None:
        self.init_distributed(master_addr, master_port)
        self.set_seed(seed)
        self._init_engine(ValueModel(model, dtype), lr, betas, weight_decay, config)

    @torch.no_grad()
    def values(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.engine.eval()
        out = []
        for mb in micro_batches(self._to(batch), self.micro):
            width = batch["action_mask"].shape[1]
            mb = trim(mb)
            v = self.engine(mb["sequences"], mb["attention_mask"])
            out.append(torch.nn.functional.pad(v, (0, width - v.shape[1])).cpu())
        return torch.cat(out)

    def train(self, batch: dict[str, torch.Tensor], clip: float) -> dict[str, float]:
        self.engine.train()
        losses, fracs = [], []
        for mb in micro_batches(self._to(batch), self.micro):
            mb = trim(mb)
            v = self.engine(mb["sequences"], mb["attention_mask"])
            loss, info = core.value_loss(v, mb["old_values"], mb["returns"], mb["action_mask"], clip)
            self.engine.backward(loss)
            self.engine.step()
            losses.append(loss.item())
            fracs.append(info["value_clip_fraction"])
        return {"value_loss": sum(losses) / max(len(losses), 1), "value_clip_fraction": sum(fracs) / max(len(fracs), 1),
                "critic_grad_norm": float(self.engine.get_global_grad_norm() or 0.0)}


class ReferenceWorker(TrainWorker):
    """The frozen initial policy: logprobs for the KL penalty (no optimizer, no gradients)."""

    def setup(self, master_addr: str, master_port: int, model: ModelSource, dtype: str, micro: int,
              **_: Any) -> None:
        self.model = load_causal_lm(model, dtype).to(self.device).eval()
        self.micro = micro

    @torch.no_grad()
    def logprobs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out = []
        for mb in micro_batches(self._to(batch), self.micro):
            width = batch["action_mask"].shape[1]
            mb = trim(mb)
            logits = self.model(input_ids=mb["sequences"], attention_mask=mb["attention_mask"]).logits[:, :-1]
            lp = core.gather_logprobs(logits, mb["sequences"][:, 1:])
            out.append(torch.nn.functional.pad(lp, (0, width - lp.shape[1])).cpu())
        return torch.cat(out)
