"""The paper's metric beside ours: LIMR's evaluation judge.

LIMR reports accuracy with Qwen's math evaluation: the last `\\boxed{}` answer compared with the gold
by `math_equal`, with no format rule and no penalty for truncation. `limr_judge` does the same with
this project's answer extraction and equivalence (math-verify in place of `math_equal`), so the
report can show the paper-comparable number next to the rule reward's accuracy. It runs in the
checker pool like the reward (`CheckerPool(check=LIMR_JUDGE)`): same per-answer timeout.
"""

from __future__ import annotations

from typing import Any

from limr_trainer.evaluation.benchmarks import Scorer
from limr_trainer.reward import (
    CORRECT,
    NO_BOXED,
    WRONG,
    RewardItem,
    RewardResult,
    equivalent,
    last_boxed,
    score_batch,
)

LIMR_JUDGE = "limr_trainer.evaluation.judges:limr_judge"


def limr_judge(response: str, gold: str, truncated: bool = False) -> RewardResult:
    """Correct iff the last complete `\\boxed{...}` equals the gold; truncation and format ignored."""
    answer = last_boxed(response)
    if answer is None:
        return RewardResult(0.0, False, NO_BOXED, None)
    if equivalent(gold, answer):
        return RewardResult(1.0, True, CORRECT, answer)
    return RewardResult(0.0, False, WRONG, answer)


def make_scorer(job: Any, pool: Any = None) -> Scorer:
    """A judge over the checker pool (reason = the format rule that fired, or None): the training
    reward by default, or `pool`'s own check (LIMR's judge for the paper metric)."""
    spec = job.spec.reward

    def scorer(responses: list[str], answers: list[str], truncated: list[bool]):
        items = [RewardItem(r, a, t) for r, a, t in zip(responses, answers, truncated)]
        if pool is None:
            results = score_batch(items, workers=spec.workers, timeout=spec.timeoutSeconds)
        else:
            results = pool.map(items, timeout=spec.timeoutSeconds)
        return [(r.reward, r.correct, r.format_error) for r in results]

    return scorer
