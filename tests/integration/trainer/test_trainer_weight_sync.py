"""After a DeepSpeed update of the actor, the vLLM (CPU) engine generates with the new weights:
the engine's logprobs of a fixed sequence match the actor's before the update, stop matching after
it, and match again after the weight sync (worker RPC path)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch
from limr_trainer.runtime import toy_model as toy
from paths import REPO

CACHE = Path(os.environ.get("LIMR_CACHE") or REPO / ".cache") / "toy-models"

pytestmark = pytest.mark.timeout(600)


def test_engine_follows_actor_after_sync(tmp_path):
    for module in ("vllm", "deepspeed", "ray"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"SKIPPED LOUDLY: {module} is not installed (needed for the weight-sync test)")
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions"))
    import ray
    from limr_trainer.data.prompts import render_prompt
    from limr_trainer.ppo.batch import build_batch
    from limr_trainer.ppo.groups import RoleGroup
    from limr_trainer.ppo.workers import ActorWorker, ds_config
    from limr_trainer.rollout import SamplingConfig, make_backend
    from limr_trainer.rollout.weight_sync import make_weight_sync
    from limr_trainer.runtime.ray_session import worker_env
    from transformers import AutoTokenizer

    model = str(toy.ensure_toy_model(CACHE, warm_steps=toy.TOY_WARM_STEPS))
    tok = AutoTokenizer.from_pretrained(model)
    import tempfile

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             _temp_dir=tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: AF_UNIX path limit
    try:
        actor = RoleGroup("actor", ActorWorker, 1, 0.5, 0, worker_env(), {
            "model": model, "dtype": "float32", "lr": 5e-3, "betas": [0.9, 0.95], "weight_decay": 0.0, "seed": 0,
            "config": ds_config(2, 8, 1, 1.0, False), "micro": 8})
        engine = make_backend("vllm", model, engines=1, cpus_per_engine=0.5, max_model_len=256)
        prompt = render_prompt(tok, "What is 3 + 4?")
        groups = engine.generate([prompt], SamplingConfig(n=8, temperature=1.0, max_tokens=20, seed=7))
        comp = groups[0][0]
        batch = build_batch(groups, tok.pad_token_id)
        mask = batch["action_mask"]

        def actor_logprobs() -> torch.Tensor:
            lp = actor.call("logprobs", batch)[0]["logprobs"]
            return lp[0][mask[0] > 0]

        def engine_logprobs() -> torch.Tensor:
            return torch.tensor(engine.prompt_logprobs(comp.prompt_token_ids, comp.token_ids))

        assert torch.allclose(actor_logprobs(), engine_logprobs(), atol=1e-4)
        # one DeepSpeed step that makes the sampled responses likelier
        batch["old_logprobs"] = actor.call("logprobs", batch)[0]["logprobs"]
        batch["advantages"] = mask.clone()
        actor.call("train", batch, 0.2)
        after = actor_logprobs()
        assert (after - engine_logprobs()).abs().max() > 1e-3, "the update did not change the policy"

        make_weight_sync("auto", "cpu").push(actor, engine.engines)
        synced = engine_logprobs()
        assert torch.allclose(after, synced, atol=1e-4), (after - synced).abs().max()
        engine.close()
        actor.close()
    finally:
        ray.shutdown()
