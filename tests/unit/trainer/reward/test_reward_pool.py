"""The process pool: per-answer timeouts without signals, crashes cost one answer, any thread."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from limr_trainer import reward as R
from limr_trainer.reward.pool import CheckerPool

HANG = "\\boxed{9^{9^{9^{9}}}}"  # math-verify/sympy never finishes this against gold 1


@pytest.fixture(scope="module")
def pool():
    # the helper module lives next to this file; workers inherit the parent's import path
    assert (Path(__file__).parent / "reward_pool_helpers.py").exists()
    with CheckerPool(2, check="reward_pool_helpers:check_or_die") as p:
        yield p


def test_hang_and_crash_cost_only_their_own_answer(pool):
    items = [
        R.RewardItem("so \\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}"),
        R.RewardItem(HANG, "1"),
        R.RewardItem("\\boxed{2} DIE", "2"),
        R.RewardItem("\\boxed{2} RAISE", "2"),
        R.RewardItem("\\boxed{3}", "4"),
        R.RewardItem("\\boxed{3}", "4", truncated=True),
        R.RewardItem("no box", "4"),
    ]
    before = pool.restarts
    results = pool.map(items, timeout=1.5)
    assert [r.reason for r in results] == [
        R.CORRECT,
        R.CHECKER_TIMEOUT,
        R.CHECKER_ERROR,
        R.CHECKER_ERROR,
        R.WRONG,
        R.TRUNCATED,
        R.NO_BOXED,
    ]
    assert [r.reward for r in results] == [1.0, -1.0, -1.0, -1.0, -0.5, -1.0, -1.0]
    assert pool.restarts - before == 2  # the hung worker and the dead one were replaced
    # the pool keeps working after replacing workers
    again = pool.map([R.RewardItem("\\boxed{5}", "5")] * 4, timeout=30)
    assert all(r.correct for r in again)


def test_works_off_the_main_thread(pool):
    out: list = []
    t = threading.Thread(
        target=lambda: out.extend(
            pool.map([R.RewardItem(HANG, "1"), R.RewardItem("\\boxed{0.5}", "\\frac12")], timeout=1.0)
        )
    )
    t.start()
    t.join(60)
    assert [r.reason for r in out] == [R.CHECKER_TIMEOUT, R.CORRECT]
