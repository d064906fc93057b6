"""The one mapping from a LIMRJob to rollout backend options, for training and for evaluation."""

from __future__ import annotations

from typing import Any, Literal


def compute_dtype(spec: Any, device: str) -> str:
    """The job's dtype on GPUs; float32 on CPUs (bf16 kernels are slow or missing there)."""
    return spec.model.dtype if device == "cuda" else "float32"


def backend_options(spec: Any, device: str, purpose: Literal["train", "eval"] = "train") -> dict[str, Any]:
    """Keyword options of `make_backend(spec.rollout.backend, model, **options)`."""
    ro, ppo = spec.rollout, spec.ppo
    dtype = compute_dtype(spec, device)
    if ro.backend == "hf":
        return {"device": device, "dtype": dtype, "seed": ppo.seed}
    new_tokens = ppo.generateMaxLength if purpose == "train" else spec.evaluation.maxNewTokens
    return {
        "engines": ro.engines,
        "tensor_parallel_size": ro.tensorParallelSize,
        "cpus_per_engine": ro.cpusPerEngine,
        "max_model_len": ppo.promptMaxLength + new_tokens,
        "seed": ppo.seed,
        "dtype": dtype,
        "device": device,
        "gpu_memory_utilization": ro.gpuMemoryUtilization,
    }
