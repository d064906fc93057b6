"""Deterministic artifact keys of the storage layout (docs/ARCHITECTURE.md) and their parser."""

from __future__ import annotations

import pytest
from limr_api import layout


def test_keys_match_the_design_layout():
    assert (
        layout.rewards_key("qwen-limr", "baseline", 3, 17)
        == "qwen-limr/baseline/rewards/epoch=0003/step=000017.parquet"
    )
    assert layout.rewards_prefix("qwen-limr", "baseline") == "qwen-limr/baseline/rewards/"
    assert layout.rewards_prefix("qwen-limr", "baseline", 21) == "qwen-limr/baseline/rewards/epoch=0021/"
    assert layout.metrics_key("j", "retrain") == "j/retrain/metrics.jsonl"
    assert layout.metrics_key("j", "retrain-random") == "j/retrain-random/metrics.jsonl"
    assert layout.checkpoints_prefix("j", "baseline") == "j/baseline/checkpoints/"
    assert (
        layout.checkpoint_prefix("j", "retrain", layout.checkpoint_tag(8))
        == "j/retrain/checkpoints/step=000008/"
    )
    assert layout.checkpoint_prefix("j", "retrain", "final") == "j/retrain/checkpoints/final/"
    assert layout.scores_key("j") == "j/selection/scores.jsonl"
    assert layout.selected_key("j") == "j/selection/selected.json"
    assert layout.summary_key("j") == "j/selection/summary.json"
    assert layout.arm_subset_key("j", "random") == "j/selection/arms/random.json"
    assert layout.plot_key("j", "trajectories.png") == "j/selection/trajectories.png"
    assert layout.step_prefix("j", "evaluation") == "j/evaluation/"
    assert layout.done_key("j", "retrain-linear") == "j/retrain-linear/_DONE.json"
    assert layout.final_model_prefix("j", "baseline") == "j/baseline/checkpoints/final/actor_hf/"
    assert layout.latest_checkpoint_key("j", "retrain") == "j/retrain/checkpoints/latest.json"
    assert layout.log_key("j", "baseline", 3) == "j/baseline/logs/attempt-3.log"
    assert layout.arm_result_key("j", "base") == "j/evaluation/arms/base.json"
    assert layout.report_prefix("j") == "j/evaluation/report/"


def test_rewards_keys_parse_back_and_sort_in_order():
    keys = [layout.rewards_key("j", "baseline", e, s) for e in (1, 2, 10) for s in (0, 5, 123456)]
    assert [layout.parse_rewards_key(k) for k in keys] == [(e, s) for e in (1, 2, 10) for s in (0, 5, 123456)]
    assert sorted(keys) == keys, "zero padding keeps lexicographic order = numeric order"
    assert layout.parse_rewards_key("s3://bucket/root/" + keys[4]) == (2, 5)
    assert layout.parse_checkpoint_tag(layout.checkpoint_tag(42)) == 42
    assert layout.parse_checkpoint_tag("final") is None
    for bad in (
        "j/baseline/rewards/epoch=1/step=000001.parquet",
        "j/baseline/rewards/epoch=0001/step=000001.json",
        "j/baseline/epoch=0001/step=000001.parquet",
        "j/baseline/rewards/epoch=0001/xstep=000001.parquet",
    ):
        with pytest.raises(ValueError, match="not a rewards key"):
            layout.parse_rewards_key(bad)


def test_step_names():
    assert layout.check_step("retrain-random") == "retrain-random"
    for bad in ("retrain-", "selection-x", "retrain/x", "Retrain", "Baseline", "baseline-random", "retrain-Random"):
        with pytest.raises(ValueError, match="unknown step"):
            layout.metrics_key("j", bad)
    with pytest.raises(ValueError, match="attempt must be"):
        layout.log_key("j", "baseline", 0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: layout.rewards_key("Job", "baseline", 1, 1), "invalid job name"),
        (lambda: layout.rewards_key("a/b", "baseline", 1, 1), "invalid job name"),
        (lambda: layout.rewards_key("", "baseline", 1, 1), "invalid job name"),
        (lambda: layout.rewards_key("a" * 41, "baseline", 1, 1), "invalid job name"),
        (lambda: layout.rewards_key("1job", "baseline", 1, 1), "invalid job name"),
        (lambda: layout.rewards_key("j", "baseline", -1, 1), r"epoch must be an integer in \[0, 9999\]"),
        (lambda: layout.rewards_key("j", "baseline", 10000, 1), "epoch must be"),
        (
            lambda: layout.rewards_key("j", "baseline", 1, 1_000_000),
            r"step must be an integer in \[0, 999999\]",
        ),
        (lambda: layout.rewards_key("j", "baseline", 1.0, 1), "epoch must be"),
        (lambda: layout.rewards_key("j", "baseline", True, 1), "epoch must be"),
        (lambda: layout.plot_key("j", "../x.png"), "invalid plot name"),
        (lambda: layout.plot_key("j", "scores.parquet"), "invalid plot name"),
        (lambda: layout.checkpoint_prefix("j", "baseline", "a/b"), "invalid checkpoint tag"),
    ],
)
def test_bad_inputs_are_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()
