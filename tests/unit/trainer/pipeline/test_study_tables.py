"""The study's statistics and tables (bench/pipeline/study.py) on made-up per-seed results: no runs."""

from __future__ import annotations

import importlib
import sys

import pytest
from paths import REPO

sys.path.insert(0, str(REPO / "bench/pipeline"))
stats = importlib.import_module("stats")
study = importlib.import_module("study")


def test_mean_se_and_t_interval():
    s = stats.summary([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (s["mean"], s["sd"], s["se"]) == (3.0, pytest.approx(1.581, abs=1e-3), pytest.approx(0.707, abs=1e-3))
    assert s["ci95"] == pytest.approx(2.776 * 0.7071, abs=1e-3)  # t(0.975, 4)
    assert stats.paired([3, 4], [1, 1])["mean"] == 2.5 and stats.ratio([2, 4], [2, 2])["mean"] == 1.5
    assert stats.interval(s) == "3.0 ± 2.0"


def _seed(seed, base, full, lim, rnd, lin):
    early = [{"epoch": 1, "selected": 30, "jaccard_final": 0.5, "baseline_steps_saved_share": 0.75, "accuracy": lim - 2},
             {"epoch": 2, "selected": 25, "jaccard_final": 0.8, "baseline_steps_saved_share": 0.5, "accuracy": lim - 1},
             {"epoch": 3, "selected": 24, "jaccard_final": 1.0, "baseline_steps_saved_share": 0.25, "accuracy": lim}]
    return {
        "seed": seed, "epochs": 4, "questions": {"full": 96, "lim": 24, "random": 24, "linear": 24},
        "same_epochs": {"base": base, "full": full, "lim": lim, "random": rnd, "linear": lin},
        "steps_same_epochs": {"full": 24, "lim": 4, "random": 4, "linear": 4},
        "same_steps_epochs": 24,
        "same_steps": {"base": base, "full": full, "lim": lim + 3, "random": rnd + 1, "linear": lin + 1},
        "steps_same_steps": {"full": 24, "lim": 24, "random": 24, "linear": 24},
        "early_selection": early,
        "early_stop_rule": {"rule": study.EARLY_RULE, "stable_after_epoch": 3, "steps_needed": 18, "steps_planned": 24},
    }


def test_study_json_and_table():
    per_seed = [_seed(s, 40.0, 47.0 + s, 45.0 + s, 42.0, 43.0) for s in range(5)]
    out = study.aggregate(per_seed, wall=1800.0)
    assert out["seeds"] == [0, 1, 2, 3, 4]
    assert out["questions"] == {"full": 96, "lim": 24, "random": 24, "linear": 24}
    assert set(out["arms"]) == {"base", "full", "lim", "random", "linear"} and out["arms"]["full"][4] == 51.0
    assert "same epochs" in out["budget"]
    targets = out["statistics"]["same_epochs"]["targets"]
    assert targets["full_above_base"] and targets["lim_at_least_random"] and targets["lim_at_most_30pct_of_questions"]
    assert targets["lim_at_least_95pct_of_full"]  # 45-49 / 47-51 is above 0.95 on average
    steps = out["statistics"]["same_steps"]
    assert steps["lim_minus_random"]["mean"] == pytest.approx(7.0)  # (45 + s + 3) - (42 + 1)
    early = out["early_selection"]
    assert early[0]["epoch"] == 1 and early[0]["minus_lim"]["mean"] == pytest.approx(-2.0)
    assert early[-1]["stable_after_epoch_per_seed"] == [3] * 5
    md = study.markdown(out)
    assert "| LIM subset | 24 | 4 | 47.0 ± " in md and "same steps: accuracy" in md
    assert "| 1 | 75% | 30 ± 0 | 0.50 ± 0.00 | 45.0 ± 2.0 | -2.0 ± 0.0 |" in md
    assert "lim_at_least_random: met" in md


def test_a_missed_target_is_said():
    per_seed = [_seed(s, 40.0, 41.0 + s % 2, 38.0, 39.0 + s % 2, 38.0) for s in range(5)]
    md = study.markdown(study.aggregate(per_seed, wall=10.0))
    assert "lim_at_least_random: NOT met" in md and "lim_at_least_95pct_of_full: NOT met" in md


def test_grpo_full_against_the_same_base():
    per_seed = [{**_seed(s, 40.0, 47.0, 45.0, 42.0, 43.0), "grpo_full": 44.0 + s} for s in range(5)]
    out = study.aggregate(per_seed, wall=10.0)
    grpo = out["statistics"]["grpo"]
    assert out["grpo"]["full"] == [44.0, 45.0, 46.0, 47.0, 48.0] and grpo["full_minus_base"]["mean"] == 6.0
    assert grpo["targets"]["grpo_generalises (full - base > 2 SE)"]
    assert "GRPO (FULL only, no critic): FULL 46.0 ± " in study.markdown(out)
    without = study.aggregate([_seed(s, 40.0, 47.0, 45.0, 42.0, 43.0) for s in range(5)], wall=10.0)
    assert "grpo" not in without["statistics"]  # an --epochs-only study has no GRPO runs
