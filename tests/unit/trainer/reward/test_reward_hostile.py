"""The reward under hostile input (issue 14 point 2): no quadratic scan, every scan inside the
timed worker, no time limit that never fires, and an interrupted batch stops its workers at once."""

from __future__ import annotations

import math
import os
import signal
import time

import pytest
from limr_trainer import reward as R
from limr_trainer.reward.pool import CheckerPool

HANG = "\\boxed{9^{9^{9^{9}}}}"  # math-verify/sympy never finishes this against gold 1
OPENINGS = "\\boxed{" * 20_000  # a truncated generation stuck in a loop: 20,000 unclosed boxes


@pytest.mark.timeout(30)  # a hang guard: the quadratic scan this replaced took minutes here
def test_the_boxed_scan_of_twenty_thousand_openings_ends():
    assert R.boxed_contents(OPENINGS) == []
    assert R.last_boxed(OPENINGS + "7}") == "7"
    assert R.format_violation(OPENINGS, truncated=False) == R.NO_BOXED


def test_truncated_responses_are_scanned_in_the_worker_not_the_caller():
    with CheckerPool(1, check="reward_pool_helpers:where_checked") as pool:
        (result,) = pool.map([R.RewardItem("\\boxed{3}", "3", truncated=True)], timeout=30)
        worker_pid = pool._workers[0].proc.pid
    assert result.reason == R.TRUNCATED
    assert result.answer == str(worker_pid) != str(os.getpid())  # the scan ran under the worker's clock


@pytest.mark.timeout(60)  # hang guard: the caller used to scan truncated responses itself, untimed
def test_a_pathological_truncated_response_costs_at_most_its_timeout():
    with CheckerPool(1) as pool:
        results = pool.map([R.RewardItem(OPENINGS, "1", truncated=True), R.RewardItem("\\boxed{1}", "1")],
                           timeout=5)
    assert [r.reason for r in results] == [R.TRUNCATED, R.CORRECT]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 0, -1, 3601, True, "5", None])
def test_a_timeout_that_could_never_fire_is_refused(bad):
    from limr_trainer.reward.pool import check_timeout

    with pytest.raises(ValueError, match="checker timeout"):
        check_timeout(bad)


@pytest.mark.timeout(60)  # hang guard: a nan timeout used to pass `<= 0` and spin forever
def test_the_pool_refuses_a_nan_timeout_before_any_work():
    with CheckerPool(1) as pool, pytest.raises(ValueError, match="checker timeout"):
        pool.map([R.RewardItem(HANG, "1")], timeout=math.nan)


class _Interrupt(Exception):
    pass


def _raise(signum, frame):
    raise _Interrupt


def test_an_interrupted_map_kills_its_busy_workers_at_once_and_the_pool_recovers():
    """Ctrl-C / SIGTERM in the caller: the worker stuck in one answer is killed on the way out (a
    polite stop would wait for that answer), and the next map replaces it."""
    with CheckerPool(1) as pool:
        assert pool.map([R.RewardItem("\\boxed{1}", "1")], timeout=60)[0].correct  # ready and warm
        (worker,) = pool._workers
        old = signal.signal(signal.SIGALRM, _raise)
        try:
            signal.setitimer(signal.ITIMER_REAL, 1.0)
            with pytest.raises(_Interrupt):
                pool.map([R.RewardItem(HANG, "1")], timeout=600)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        started = time.monotonic()
        while worker.proc.poll() is None and time.monotonic() - started < 0.5:
            time.sleep(0.01)
        assert worker.proc.poll() is not None, "the busy worker outlived the interrupted map"
        assert pool.map([R.RewardItem("\\boxed{2}", "2")], timeout=60)[0].correct
