"""One response's reward, in this process and without a time limit (the pure rule).

The checker pool (`limr_trainer.reward.pool`) runs exactly this function in its worker processes,
so the format scan, the answer extraction and math-verify are all inside the per-answer timeout.
"""

from __future__ import annotations

from .equivalence import equivalent
from .results import CORRECT, CORRECT_REWARD, WRONG, WRONG_REWARD, RewardResult, format_error_result
from .rules import format_violation, last_boxed


def check(response: str, gold: str, truncated: bool = False) -> RewardResult:
    """+1 correct, -0.5 wrong but well formatted, -1 (with the rule's name) for a format error."""
    violation = format_violation(response, truncated)
    answer = last_boxed(response)
    if violation is not None:
        return format_error_result(violation, answer)
    assert answer is not None
    if equivalent(gold, answer):
        return RewardResult(CORRECT_REWARD, True, CORRECT, answer)
    return RewardResult(WRONG_REWARD, False, WRONG, answer)
