"""LIMR's three-level rule reward: +1 correct, -0.5 wrong but well formatted, -1 format error.

- `rules`: the format rules and the boxed-answer scan (pure, linear time);
- `equivalence`: exact match, else math-verify on LaTeX;
- `checker.check`: one response, in this process, no time limit;
- `pool`: worker processes with a per-answer timeout and no signals, so scoring works off the
  main thread and inside Ray actors; a hung or crashed checker costs only its own answer
  (`checker_timeout` / `checker_error`, the format-error reward).
`score_batch` / `score` are what the trainer and the CLI call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .checker import check
from .equivalence import equivalent
from .results import (
    BAD_CHARACTERS,
    CHECKER_ERROR,
    CHECKER_TIMEOUT,
    CORRECT,
    DEFAULT_TIMEOUT,
    DEFAULT_VALUES,
    FORMAT_RULES,
    NO_BOXED,
    REPETITION,
    TOO_MANY_BOXED,
    TRUNCATED,
    WRONG,
    RewardItem,
    RewardResult,
    RewardValues,
    as_item,
)
from .rules import bad_character_share, boxed_contents, format_violation, has_repeated_unit, last_boxed

__all__ = ["BAD_CHARACTERS", "CHECKER_ERROR", "CHECKER_TIMEOUT", "CORRECT", "DEFAULT_TIMEOUT", "DEFAULT_VALUES",
           "FORMAT_RULES", "NO_BOXED", "REPETITION", "TOO_MANY_BOXED", "TRUNCATED", "WRONG", "RewardItem",
           "RewardResult", "RewardValues", "bad_character_share", "boxed_contents", "check", "equivalent",
           "format_violation", "has_repeated_unit", "last_boxed", "score", "score_batch"]


def score_batch(
    items: Iterable[RewardItem | Mapping[str, Any] | tuple],
    workers: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    values: RewardValues = DEFAULT_VALUES,
) -> list[RewardResult]:
    """Score many responses over `workers` processes (default: usable CPUs), `timeout` s per answer.

    Uses a process pool kept for the life of this process (one per worker count); safe from any
    thread. A timeout or crash gives that answer the format-error reward (checker_timeout /
    checker_error). `values` sets the three reward levels (default 1 / -0.5 / -1).
    """
    from .pool import shared_pool

    results = shared_pool(workers).map([as_item(i) for i in items], timeout=timeout)
    return results if values == DEFAULT_VALUES else [values.apply(r) for r in results]


def score(
    response: str,
    answer: str,
    truncated: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    values: RewardValues = DEFAULT_VALUES,
) -> RewardResult:
    """Score one response (in a worker process, with a timeout). See score_batch."""
    from .pool import shared_pool

    result = shared_pool(None, prefer_existing=True).map(
        [RewardItem(response, answer, truncated)], timeout=timeout
    )[0]
    return values.apply(result)
