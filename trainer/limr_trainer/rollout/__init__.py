"""Rollout backends behind one interface (`RolloutBackend`), registered by name (`spec.rollout.backend`).

`make_backend(kind, model, **options)` starts one; `options.backend_options` is the one place that
turns a LIMRJob into those options, for training and for evaluation.
"""

from __future__ import annotations

import importlib

from limr_trainer.rollout.base import Completion, RolloutBackend, SamplingConfig

__all__ = ["BACKENDS", "Completion", "RolloutBackend", "SamplingConfig", "make_backend"]

# name -> "module:class"; imported only when started (vLLM and transformers are heavy).
BACKENDS: dict[str, str] = {
    "vllm": "limr_trainer.rollout.vllm_backend:VLLMBackend",
    "hf": "limr_trainer.rollout.hf_backend:HFBackend",
}


def make_backend(kind: str, model, **options) -> RolloutBackend:
    """A started backend of `kind` for `model` (a `runtime.model.ModelSource` or a local folder)."""
    if kind not in BACKENDS:
        raise ValueError(f"unknown rollout backend {kind!r}: expected one of {', '.join(sorted(BACKENDS))}")
    module, _, cls = BACKENDS[kind].partition(":")
    return getattr(importlib.import_module(module), cls)(model, **options)
