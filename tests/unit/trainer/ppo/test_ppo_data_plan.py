"""Toy data, dataset loading, the step plan, batch building, checkpoints and metrics bookkeeping."""

from __future__ import annotations

import json

import pytest
import torch
from limr_api import layout
from limr_api.training import DatasetSpec, PPOSpec, RewardSpec
from limr_trainer.data import synthetic
from limr_trainer.data.dataset import load_rows
from limr_trainer.data.errors import DatasetError
from limr_trainer.data.prompts import render_prompt, truncate_prompt_ids
from limr_trainer.data.synthetic import parse_synthetic
from limr_trainer.ppo import checkpoint
from limr_trainer.ppo.advantages import compute_advantages
from limr_trainer.ppo.batch import StepPlan, build_batch, generation_seed, scalar_scores
from limr_trainer.ppo.metrics import MetricsLog
from limr_trainer.rollout.base import Completion
from limr_trainer.runtime import toy_model as toy
from limr_trainer.storage import open_storage


def test_arithmetic_rows_deterministic_with_mix():
    a, b = synthetic.arithmetic_rows(200, seed=3), synthetic.arithmetic_rows(200, seed=3)
    assert a == b and a != synthetic.arithmetic_rows(200, seed=4)
    assert {r["difficulty"] for r in a} == {"easy", "medium", "hard"}
    for r in a[:50]:
        x, op, y = r["prompt"].removeprefix("What is ").removesuffix("?").split()
        assert int(r["answer"]) == (int(x) + int(y) if op == "+" else int(x) * int(y))
        assert synthetic.solution_text(r).endswith(f"\\boxed{{{r['answer']}}}.")


def test_synthetic_uri_and_errors():
    assert parse_synthetic("synthetic://arithmetic?n=5&seed=2") == {"task": "arithmetic", "n": 5, "seed": 2}
    with pytest.raises(DatasetError):
        parse_synthetic("synthetic://algebra?n=5")
    with pytest.raises(DatasetError):
        parse_synthetic("synthetic://arithmetic?n=5&colour=red")
    rows = load_rows(DatasetSpec(uri="synthetic://arithmetic?n=7&seed=1", limit=5))
    assert len(rows) == 5 and set(rows[0]) >= {"id", "prompt", "answer"}


@pytest.mark.parametrize("fmt", ["json", "jsonl", "parquet"])
def test_load_rows_file_formats(tmp_path, fmt):
    records = [{"q": "What is 1 + 1?", "a": "2"}, {"q": "What is 2 + 2?", "a": 4}]
    path = tmp_path / f"d.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(records))
    elif fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in records))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"q": [r["q"] for r in records], "a": ["2", "4"]}), path)
    rows = load_rows(DatasetSpec(uri=str(path), format=fmt, promptField="q", answerField="a"))
    assert rows == [{"id": "0", "prompt": "What is 1 + 1?", "answer": "2"},
                    {"id": "1", "prompt": "What is 2 + 2?", "answer": "4"}]
    with pytest.raises(DatasetError, match="missing field 'question'"):
        load_rows(DatasetSpec(uri=str(path), format=fmt, promptField="question", answerField="a"))


def test_truncate_keeps_the_end():
    assert truncate_prompt_ids([1, 2, 3, 4], 2) == [3, 4] and truncate_prompt_ids([1], 5) == [1]


def test_step_plan_covers_each_epoch_once_and_is_seeded():
    plan = StepPlan(n_prompts=50, batch=16, epochs=3, seed=7)
    assert plan.steps_per_epoch == 3 and plan.total_steps == 9  # drop the last partial batch
    for epoch in range(3):
        idx = [i for s in range(epoch * 3, epoch * 3 + 3) for i in plan.indices(s)]
        assert len(idx) == len(set(idx)) == 48
    assert plan.indices(0) != plan.indices(3)  # reshuffled per epoch
    assert plan.indices(4) == StepPlan(50, 16, 3, 7).indices(4)
    assert StepPlan(5, 16, 2, 0).indices(1) and StepPlan(5, 16, 2, 0).total_steps == 2  # tiny dataset
    assert generation_seed(1, 0, 1) != generation_seed(1, 0, 2)


def test_build_batch_masks_response_positions():
    comps = [[Completion("", [7, 8], [1, 2, 3], False), Completion("", [9], [1, 2, 3], True)]]
    b = build_batch(comps, pad_id=0)
    assert b["sequences"].tolist() == [[1, 2, 3, 7, 8], [1, 2, 3, 9, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    assert b["action_mask"].tolist() == [[0, 0, 1, 1], [0, 0, 1, 0]]


def test_advantages_zero_kl_single_token():
    comps = [[Completion("", [7], [1, 2], False)]]
    b = build_batch(comps, pad_id=0)
    b["old_logprobs"] = torch.zeros(1, 2)
    b["ref_logprobs"] = torch.zeros(1, 2)
    b["old_values"] = torch.tensor([[0.0, 0.25]])
    ppo = PPOSpec(whitenAdvantages=False)
    stats = compute_advantages(b, torch.tensor([1.0]), ppo)
    assert stats["kl"] == 0.0
    assert b["advantages"].tolist() == [[0.0, 0.75]] and b["returns"].tolist() == [[0.0, 1.0]]


def test_scalar_scores_use_spec_levels():
    from limr_trainer.reward import check

    results = [check("so \\boxed{4}", "4"), check("so \\boxed{5}", "4"), check("no box", "4")]
    assert scalar_scores(results, RewardSpec(correct=2.0, wrong=-0.25, formatError=-3.0)).tolist() == [2.0, -0.25, -3.0]


def test_checkpoint_pointer_written_last_and_pruned(tmp_path):
    store = open_storage(str(tmp_path))

    def roles(prefix):
        store.put_bytes(prefix + "actor/w.bin", b"x")

    assert checkpoint.load_latest(store, "j", "baseline") is None
    for step in (1, 3, 5):
        checkpoint.save(store, "j", "baseline", step, {"normalizer": {"mean": step}}, roles, keep=2)
    state = checkpoint.load_latest(store, "j", "baseline")
    assert state["step"] == 5 and state["normalizer"] == {"mean": 5}
    assert state["prefix"] == layout.checkpoint_prefix("j", "baseline", "step=000005")
    assert not store.list(layout.checkpoint_prefix("j", "baseline", "step=000001"))
    assert store.exists(layout.checkpoint_prefix("j", "baseline", "step=000003") + "state.json")

    def crash(prefix):
        raise RuntimeError("killed while saving")

    with pytest.raises(RuntimeError):
        checkpoint.save(store, "j", "baseline", 7, {}, crash)
    assert checkpoint.load_latest(store, "j", "baseline")["step"] == 5  # pointer unchanged
    checkpoint.rng_restore(state["rng"])


def test_metrics_log_truncates_on_resume(tmp_path):
    store = open_storage(str(tmp_path))
    log = MetricsLog(store, "j", "baseline")
    for step in range(5):
        log.append({"step": step, "reward_mean": step})
    resumed = MetricsLog(store, "j", "baseline", resume_step=2)
    assert [r["step"] for r in resumed.rows] == [0, 1, 2]
    resumed.append({"step": 3, "reward_mean": 30})
    assert [r["reward_mean"] for r in store.iter_jsonl(layout.metrics_key("j", "baseline"))] == [0, 1, 2, 30]


def test_toy_tokenizer_chat_template(tmp_path):
    tok = toy.build_tokenizer(tmp_path)
    text = render_prompt(tok, "What is 3 + 4?")
    assert text.startswith("<|im_start|>system\nPlease reason step by step")
    assert text.endswith("<|im_start|>user\nWhat is 3 + 4?<|im_end|>\n<|im_start|>assistant\n")
    ids = tok(synthetic.solution_text({"prompt": "What is 3 + 4?", "answer": "7"}), add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == "3 + 4 = 7. The answer is \\boxed{7}."


def test_role_bundles_use_group_resources_only_when_present():
    from limr_trainer.rollout.placement import ROLE_RESOURCE_SHARE, bundle_for
    from limr_trainer.rollout.weight_sync import RPCWeightSync, make_weight_sync

    assert bundle_for("rollout", 0.5, 0, {"CPU": 2}) == {"CPU": 0.5}
    assert bundle_for("train", 4, 1, {"CPU": 64, "GPU": 8, "train": 4}) == {
        "CPU": 4.0, "GPU": 1.0, "train": ROLE_RESOURCE_SHARE}
    assert isinstance(make_weight_sync("auto", "cpu"), RPCWeightSync)
    with pytest.raises(ValueError, match="needs GPUs"):
        make_weight_sync("nccl", "cpu")
