"""The reward's vocabulary: levels, reasons (the format rules' names) and the result of one check."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CORRECT_REWARD = 1.0
WRONG_REWARD = -0.5
FORMAT_REWARD = -1.0

CORRECT = "correct"
WRONG = "wrong_answer"
TRUNCATED = "truncated"
NO_BOXED = "no_boxed"
TOO_MANY_BOXED = "too_many_boxed"
BAD_CHARACTERS = "bad_characters"
REPETITION = "repetition"
CHECKER_TIMEOUT = "checker_timeout"
CHECKER_ERROR = "checker_error"
DEFAULT_TIMEOUT = 5.0  # seconds per answer

FORMAT_RULES: dict[str, str] = {
    TRUNCATED: "truncated generation",
    NO_BOXED: "no complete \\boxed{...}",
    TOO_MANY_BOXED: "five or more \\boxed",
    BAD_CHARACTERS: "over 30% of characters outside the allowed set",
    REPETITION: "a unit of 5+ characters repeated 5+ times in a row",
    CHECKER_TIMEOUT: "checker timeout",
    CHECKER_ERROR: "checker error",
}

@dataclass(frozen=True, slots=True)
class RewardResult:
    """One scored response. `reason` is CORRECT, WRONG or a FORMAT_RULES key."""

    reward: float
    correct: bool
    reason: str
    answer: str | None = None  # the extracted last \boxed{...} content, if any

    @property
    def format_error(self) -> str | None:
        """The format rule that fired (the records' `format_error`), or None."""
        return None if self.reason in (CORRECT, WRONG) else self.reason


def format_error_result(reason: str, answer: str | None = None) -> RewardResult:
    return RewardResult(FORMAT_REWARD, False, reason, answer)




@dataclass(frozen=True, slots=True)
class RewardItem:
    """One response to score against its gold answer."""

    response: str
    answer: str  # the gold answer
    truncated: bool = False


def as_item(item: RewardItem | Mapping[str, Any] | tuple) -> RewardItem:
    """Accept a RewardItem, a mapping {response, answer, truncated?} or a tuple."""
    if isinstance(item, RewardItem):
        return item
    if isinstance(item, Mapping):
        return RewardItem(str(item["response"]), str(item["answer"]), bool(item.get("truncated", False)))
    return RewardItem(*item)


@dataclass(frozen=True, slots=True)
class RewardValues:
    """The three reward levels (LIMRJob `spec.reward`: correct, wrong, formatError)."""

    correct: float = CORRECT_REWARD
    wrong: float = WRONG_REWARD
    format_error: float = FORMAT_REWARD

    def apply(self, result: RewardResult) -> RewardResult:
        """`result` with its reward taken from these levels (reason and correctness unchanged)."""
        if result.correct:
            value = self.correct
        elif result.reason == WRONG:
            value = self.wrong
        else:
            value = self.format_error
        return (
            result
            if value == result.reward
            else RewardResult(value, result.correct, result.reason, result.answer)
        )


DEFAULT_VALUES = RewardValues()
