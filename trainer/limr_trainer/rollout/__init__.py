"""Rollout backends behind one interface; `make_backend` picks one by name (spec.rollout.backend)."""

from __future__ import annotations

from limr_trainer.rollout.base import Completion, RolloutBackend, SamplingConfig

__all__ = ["Completion", "RolloutBackend", "SamplingConfig", "make_backend"]


def make_backend(kind: str, model_dir: str, **options) -> RolloutBackend:
    """A started backend for `model_dir`.

    kind "vllm": `options` go to `VLLMBackend` (engines, tensor_parallel_size, cpus_per_engine,
    gpus_per_engine, max_model_len, seed, dtype, weight_sync, in_process...).
    kind "hf": `options` go to `HFBackend` (device, dtype, seed).
    """
    if kind == "vllm":
        from limr_trainer.rollout.vllm_backend import VLLMBackend

        return VLLMBackend(model_dir, **options)
    if kind == "hf":
        from limr_trainer.rollout.hf_backend import HFBackend

        return HFBackend(model_dir, **options)
    raise ValueError(f"unknown rollout backend {kind!r}: expected 'vllm' or 'hf'")
