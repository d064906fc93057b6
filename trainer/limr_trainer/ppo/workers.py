"""Training roles as Ray actors: DeepSpeed actor and critic ranks, a frozen reference model.

Each rank runs in a Ray actor of its role's `groups.RoleGroup`, which wires the ranks into one
torch.distributed world (NCCL on GPU, gloo on CPU). The driver hands each rank its shard of one
optimizer step's batch; DeepSpeed all-reduces gradients inside the group. Every rank resolves the
base model on its own host and opens the job's storage itself (`StorageRoot`).

Memory at scale (7B, 3,072-token responses): log-probabilities and entropy are computed from the
hidden states in chunks of positions (`core.chunked_logprobs`: no full-vocabulary fp32 logits per
micro batch), activations are recomputed in the backward pass (gradient checkpointing), a rank's
shard is cut into token-budget micro batches of similar lengths (`batch.plan_micro_batches`), ZeRO-3
parameters are gathered one at a time to export weights, and checkpoints stream to storage file by
file (`checkpoint_stream`).

Batches are dicts of tensors: `sequences` (B, L) prompt + response right-padded, `attention_mask`
(B, L), `action_mask` (B, L-1) marking positions whose next token is a response token; per-token
outputs have shape (B, L-1).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import torch

from limr_trainer.ppo import core
from limr_trainer.ppo.batch import plan_micro_batches
from limr_trainer.runtime.model import ModelSource, as_source, resolve_model
from limr_trainer.storage import StorageRoot

LOGPROB_CHUNK = 1024  # positions per chunk of vocabulary logits


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def node_address() -> str:
    import ray

    return ray.util.get_node_ip_address()


def ds_config(stage: int, micro: int, world: int, max_grad_norm: float, bf16: bool,
              offload_optimizer: bool = False) -> dict:
    """DeepSpeed config of a trained role. The loop marks gradient-accumulation boundaries itself
    (token-budget micro batches vary in number), so DeepSpeed's own accumulation count is 1."""
    zero: dict[str, Any] = {"stage": stage}
    if offload_optimizer and stage > 0:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    return {
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": 1,
        "train_batch_size": micro * world,
        "gradient_clipping": max_grad_norm,
        "zero_optimization": zero,
        "bf16": {"enabled": bf16},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def trim(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop padding columns every row has (a micro batch of short responses runs faster)."""
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
        self.micro, self.micro_tokens = 1, None

    def free_address(self) -> tuple[str, int]:
        return node_address(), free_port()

    def node(self) -> str:
        """The IP of the host this rank runs on (for placement checks)."""
        return node_address()

    def process_info(self) -> dict[str, Any]:
        """Where this rank runs and what it holds on its GPU (benchmarks and placement checks)."""
        info: dict[str, Any] = {"pid": os.getpid(), "node": node_address()}
        if self.device.type == "cuda":
            info["gpu_peak_bytes"] = int(torch.cuda.max_memory_allocated())
            info["gpu_reserved_bytes"] = int(torch.cuda.max_memory_reserved())
        return info

    def init_distributed(self, master_addr: str, master_port: int) -> None:
        os.environ.update(RANK=str(self.rank), LOCAL_RANK="0", WORLD_SIZE=str(self.world_size),
                          MASTER_ADDR=master_addr, MASTER_PORT=str(master_port))
        import deepspeed

        from limr_trainer.runtime.cache import clear_stale_build_locks

        if self.device.type == "cuda":
            torch.cuda.set_device(0)
        clear_stale_build_locks()  # DeepSpeed may JIT-build its CPU op here: never wait on a dead build
        deepspeed.init_distributed(dist_backend="nccl" if self.device.type == "cuda" else "gloo")

    def set_seed(self, seed: int) -> None:
        torch.manual_seed(seed + self.rank)

    def micro_batches(self, batch: dict[str, torch.Tensor]) -> Iterator[dict[str, torch.Tensor]]:
        """Token-budget micro batches of similar lengths, each trimmed to its longest row, on the device."""
        lengths = batch["attention_mask"].sum(1).tolist()
        for rows in plan_micro_batches(lengths, self.micro, self.micro_tokens):
            index = torch.tensor(rows)
            yield trim({k: v[index].to(self.device) for k, v in batch.items()})

    def micro_batch_rows(self, batch: dict[str, torch.Tensor]) -> list[list[int]]:
        return plan_micro_batches(batch["attention_mask"].sum(1).tolist(), self.micro, self.micro_tokens)


def load_causal_lm(model: ModelSource | str, dtype: str, trust_remote_code: bool = False):
    """The model, resolved on this rank's host (a folder on the driver's host is not here)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(resolve_model(as_source(model)), dtype=getattr(torch, dtype),
                                                trust_remote_code=trust_remote_code)


def _backbone(lm: torch.nn.Module) -> torch.nn.Module:
    """The transformer under a causal-LM head (Qwen2ForCausalLM.model, ...)."""
    return getattr(lm, lm.base_model_prefix)


def _scatter_back(parts: list[torch.Tensor], rows: list[list[int]], n: int, width: int) -> torch.Tensor:
    """Per-micro-batch outputs (trimmed, in planned order) back to (n, width) in the batch's row order."""
    out = torch.zeros((n, width), dtype=torch.float32)
    for part, index in zip(parts, rows):
        out[torch.tensor(index), : part.shape[1]] = part.float().cpu()
    return out


class _DeepSpeedRole(TrainWorker):
    """Shared by actor and critic: the DeepSpeed engine, its schedule, the optimizer loop, checkpoints."""

    engine: Any

    def _init_engine(self, model: torch.nn.Module, lr: float, betas: list[float], weight_decay: float,
                     config: dict, schedule: dict[str, Any], micro: int, micro_tokens: int | None) -> None:
        import deepspeed

        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
        warmup, total = schedule.get("warmup", 0), schedule.get("total", 1)
        floor, kind = schedule.get("floor", 0.0), schedule.get("kind", "constant")
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: core.warmup_cosine(step, warmup, total, floor, kind))
        self.engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=scheduler, config=config)
        self.zero_stage = config["zero_optimization"]["stage"]
        self.micro, self.micro_tokens = micro, micro_tokens

    def optimize(self, batch: dict[str, torch.Tensor], loss_of: Callable[[dict, float], tuple[torch.Tensor, dict]]
                 ) -> dict[str, float]:
        """One optimizer step over this rank's shard: every micro batch's loss is its share of the token
        mean over the whole shard; the accumulation boundary is the last micro batch."""
        self.engine.train()
        tokens = float(batch["action_mask"].sum())
        sums: dict[str, float] = {"loss": 0.0}
        plans = list(self.micro_batches(batch))
        for i, mb in enumerate(plans):
            self.engine.set_gradient_accumulation_boundary(i == len(plans) - 1)
            loss, info = loss_of(mb, tokens)
            self.engine.backward(loss, scale_wrt_gas=False)
            self.engine.step()
            sums["loss"] += loss.item()  # each micro batch's loss is already its share of the mean
            weight = float(mb["action_mask"].sum()) / max(tokens, 1.0)
            for k, v in info.items():
                sums[k] = sums.get(k, 0.0) + v * weight
        sums["grad_norm"] = float(self.engine.get_global_grad_norm() or 0.0)
        sums["learning_rate"] = float(self.engine.get_lr()[0])
        return sums

    def save_checkpoint(self, root: StorageRoot, prefix: str) -> int:
        """Each rank's DeepSpeed files go to storage under `prefix` one by one, as they are written."""
        from limr_trainer.ppo.checkpoint_stream import streaming_checkpoints

        with streaming_checkpoints(self.engine, root, prefix) as local:
            self.engine.save_checkpoint(local, tag="ds", save_latest=False)
            return len(self.engine.checkpoint_engine.uploaded)

    def load_checkpoint(self, root: StorageRoot, prefix: str) -> None:
        """Read back this rank's files (model states and its own ZeRO shard), each deleted once loaded."""
        from limr_trainer.ppo.checkpoint_stream import fetch_for_load, streaming_checkpoints

        with streaming_checkpoints(self.engine, root, prefix) as local:
            if not fetch_for_load(root, prefix, local, self.rank):
                raise RuntimeError(f"no DeepSpeed checkpoint under {root.uri}/{prefix}")
            path, _ = self.engine.load_checkpoint(local, tag="ds")
        if path is None:
            raise RuntimeError(f"no DeepSpeed checkpoint under {prefix}")

    def named_parameters_gathered(self) -> Iterator[tuple[str, torch.Tensor]]:
        """(HF name, full tensor) one parameter at a time; under ZeRO-3 every rank must iterate too
        (each parameter is gathered and released in turn, never the whole model)."""
        module = self.engine.module
        for name, param in module.named_parameters():
            if self.zero_stage == 3:
                import deepspeed

                with deepspeed.zero.GatheredParameters([param]):
                    yield name, param.data
            else:
                yield name, param.data


class ActorWorker(_DeepSpeedRole):
    """The policy: log-probabilities of sampled tokens, clipped-surrogate updates, weight export."""

    def setup(self, master_addr: str, master_port: int, model: ModelSource, dtype: str, lr: float,
              betas: list[float], weight_decay: float, config: dict, seed: int, schedule: dict | None = None,
              micro: int = 4, micro_tokens: int | None = None, gradient_checkpointing: bool = False) -> None:
        self.init_distributed(master_addr, master_port)
        self.set_seed(seed)
        lm = load_causal_lm(model, dtype)
        lm.config.use_cache = False
        if gradient_checkpointing:
            lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.tied = bool(getattr(lm.config, "tie_word_embeddings", False))
        self._init_engine(lm, lr, betas, weight_decay, config, schedule or {}, micro, micro_tokens)
        self._comm = None
        self._meta: list[tuple[str, str, list[int]]] | None = None

    def _logprobs(self, mb: dict[str, torch.Tensor], entropy: bool, grad: bool):
        lm = self.engine.module
        hidden = _backbone(lm)(input_ids=mb["sequences"], attention_mask=mb["attention_mask"]).last_hidden_state
        return core.chunked_logprobs(hidden[:, :-1], lm.get_output_embeddings(), mb["sequences"][:, 1:],
                                     LOGPROB_CHUNK, entropy=entropy, checkpoint=grad)

    @torch.no_grad()
    def logprobs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Old-policy log-probabilities and per-token entropy, (B, L-1)."""
        self.engine.eval()
        rows = self.micro_batch_rows(batch)
        lps, ents = [], []
        for mb in self.micro_batches(batch):
            lp, ent = self._logprobs(mb, entropy=True, grad=False)
            lps.append(lp)
            ents.append(ent)
        n, width = batch["action_mask"].shape
        return {"logprobs": _scatter_back(lps, rows, n, width), "entropy": _scatter_back(ents, rows, n, width)}

    def train(self, batch: dict[str, torch.Tensor], clip: float) -> dict[str, float]:
        """One optimizer step over this rank's shard of a train batch."""
        def loss_of(mb: dict, tokens: float) -> tuple[torch.Tensor, dict]:
            logp, _ = self._logprobs(mb, entropy=False, grad=True)
            loss, info = core.policy_loss(logp, mb["old_logprobs"], mb["advantages"], mb["action_mask"], clip, tokens)
            return loss, info

        stats = self.optimize(batch, loss_of)
        return {"policy_loss": stats.pop("loss"), "actor_grad_norm": stats.pop("grad_norm"),
                "actor_learning_rate": stats.pop("learning_rate"), **stats}

    # ---- weight export (sender side of rollout.weight_sync) ------------------------------------
    def _exported(self) -> Iterator[tuple[str, torch.Tensor]]:
        """What the engines load: every parameter, but a tied lm_head (the engine re-ties it)."""
        for name, tensor in self.named_parameters_gathered():
            if not (self.tied and name == "lm_head.weight"):
                yield name, tensor

    def weights_bytes(self) -> bytes | None:
        """safetensors bytes of the policy on rank 0 (the CPU RPC sync); other ranks join the gathers."""
        from safetensors.torch import save

        tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in self._exported()}
        return save(tensors) if self.rank == 0 else None

    def weights_meta(self) -> list[tuple[str, str, list[int]]]:
        """(name, dtype, shape) of what `broadcast_weights` sends, in order; computed once."""
        if self._meta is None:
            self._meta = [(n, str(t.dtype).removeprefix("torch."), list(t.shape)) for n, t in self._exported()]
        return self._meta

    def init_weight_sender(self, address: str, port: int, world_size: int) -> None:
        from limr_trainer.rollout.weight_sync import nccl_sender

        self._comm = nccl_sender(address, port, world_size, self.device)

    def broadcast_weights(self) -> int:
        """Rank 0 broadcasts each parameter as soon as it is gathered (all ranks gather under ZeRO-3)."""
        from limr_trainer.rollout.weight_sync import broadcast_tensor

        sent = 0
        for _, tensor in self._exported():
            if self.rank == 0:
                broadcast_tensor(self._comm, tensor)
                sent += 1
        if self.rank == 0 and self.device.type == "cuda":
            torch.cuda.synchronize()
        return sent

    def save_hf(self, root: StorageRoot, prefix: str) -> int:
        """The policy as a Hugging Face folder (what evaluation and later steps load)."""
        state = {name: t.detach().to("cpu").clone() for name, t in self.named_parameters_gathered()}
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

    def __init__(self, model: ModelSource, dtype: str, gradient_checkpointing: bool = False):
        super().__init__()
        lm = load_causal_lm(model, dtype)
        lm.config.use_cache = False
        if gradient_checkpointing:
            lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.backbone = _backbone(lm)
        self.config = lm.config
        self.value_head = torch.nn.Linear(lm.config.hidden_size, 1, dtype=getattr(torch, dtype))
        torch.nn.init.normal_(self.value_head.weight, std=1.0 / (lm.config.hidden_size + 1))
        torch.nn.init.zeros_(self.value_head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.value_head(hidden).squeeze(-1)[:, :-1].float()


class CriticWorker(_DeepSpeedRole):
    def setup(self, master_addr: str, master_port: int, model: ModelSource, dtype: str, lr: float,
              betas: list[float], weight_decay: float, config: dict, seed: int, schedule: dict | None = None,
              micro: int = 4, micro_tokens: int | None = None, gradient_checkpointing: bool = False) -> None:
        self.init_distributed(master_addr, master_port)
        self.set_seed(seed)
        self._init_engine(ValueModel(model, dtype, gradient_checkpointing), lr, betas, weight_decay, config,
                          schedule or {}, micro, micro_tokens)

    @torch.no_grad()
    def values(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.engine.eval()
        rows = self.micro_batch_rows(batch)
        parts = [self.engine(mb["sequences"], mb["attention_mask"]) for mb in self.micro_batches(batch)]
        n, width = batch["action_mask"].shape
        return _scatter_back(parts, rows, n, width)

    def train(self, batch: dict[str, torch.Tensor], clip: float) -> dict[str, float]:
        def loss_of(mb: dict, tokens: float) -> tuple[torch.Tensor, dict]:
            v = self.engine(mb["sequences"], mb["attention_mask"])
            return core.value_loss(v, mb["old_values"], mb["returns"], mb["action_mask"], clip, tokens)

        stats = self.optimize(batch, loss_of)
        return {"value_loss": stats.pop("loss"), "critic_grad_norm": stats.pop("grad_norm"),
                "critic_learning_rate": stats.pop("learning_rate"), **stats}


class ReferenceWorker(TrainWorker):
    """The frozen initial policy: log-probabilities for the KL penalty (no optimizer, no gradients)."""

    def setup(self, master_addr: str, master_port: int, model: ModelSource, dtype: str, micro: int,
              micro_tokens: int | None = None, **_: Any) -> None:
        self.model = load_causal_lm(model, dtype).to(self.device).eval()
        self.micro, self.micro_tokens = micro, micro_tokens

    @torch.no_grad()
    def logprobs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        rows = self.micro_batch_rows(batch)
        parts = []
        for mb in self.micro_batches(batch):
            hidden = _backbone(self.model)(input_ids=mb["sequences"], attention_mask=mb["attention_mask"]).last_hidden_state
            lp, _ = core.chunked_logprobs(hidden[:, :-1], self.model.get_output_embeddings(), mb["sequences"][:, 1:],
                                          LOGPROB_CHUNK)
            parts.append(lp)
        n, width = batch["action_mask"].shape
        return _scatter_back(parts, rows, n, width)
