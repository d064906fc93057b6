"""The paper's metric beside ours: LIMR's evaluation judge.

LIMR reports accuracy with Qwen's math evaluation: the last `\\boxed{}` answer compared with the gold
by `math_equal`, with no format rule and no penalty for truncation. `limr_judge` does the same with
this project's answer extraction and equivalence (math-verify in place of `math_equal`), so the
report can show the paper-comparable number next to the rule reward's accuracy. It runs in the
checker pool like the reward (`CheckerPool(check=LIMR_JUDGE)`): same per-answer timeout.
"""

from __future__ import annotations

from limr_trainer.reward import CORRECT, NO_BOXED, WRONG, RewardResult, equivalent, last_boxed

LIMR_JUDGE = "limr_trainer.evaluation.judges:limr_judge"


def limr_judge(response: str, gold: str, truncated: bool = False) -> RewardResult:
    """Correct iff the last complete `\\boxed{...}` equals the gold; truncation and format ignored."""
    answer = last_boxed(response)
    if answer is None:
        return RewardResult(0.0, False, NO_BOXED, None)
    if equivalent(gold, answer):
        return RewardResult(1.0, True, CORRECT, answer)
    return RewardResult(0.0, False, WRONG, answer)
