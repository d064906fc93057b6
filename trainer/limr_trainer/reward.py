"""LIMR's three-level rule reward: +1 correct, -0.5 wrong but well formatted, -1 format error.

Format rules (DESIGN.md "LIMR facts"), checked in this order; the first that fires is the reason:
  truncated        the generation hit its length limit
  no_boxed         no complete `\\boxed{...}`
  too_many_boxed   five or more `\\boxed`
  bad_characters   over 30% of characters outside LIMR's allowed set
  repetition       a unit of 5+ characters repeated 5+ times in a row
  checker_timeout  the equivalence check ran past its time limit
  checker_error    the checker crashed (its worker process died or raised)
The answer is the last complete `\\boxed{...}` (nested braces). Equivalence: an exact match after a
light normalisation, else math-verify on the gold and the answer each parsed as LaTeX (wrapped in
`$...$` / `\\boxed{}`), so a verbatim-correct answer like `\\frac{\\sqrt{3}}{2}` scores +1 (LIMR's
own reward parsed bare strings and judged ~10% of such answers wrong).

`check()` is the pure in-process rule (no time limit). `score()` / `score_batch()` run it in worker
processes (`limr_trainer.reward_pool`) with a per-answer timeout that needs no signals, so they work
off the main thread and inside Ray actors; a hung or crashed checker costs only its own answer.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

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

FORMAT_RULES: dict[str, str] = {
    TRUNCATED: "truncated generation",
    NO_BOXED: "no complete \\boxed{...}",
    TOO_MANY_BOXED: "five or more \\boxed",
    BAD_CHARACTERS: "over 30% of characters outside the allowed set",
    REPETITION: "a unit of 5+ characters repeated 5+ times in a row",
    CHECKER_TIMEOUT: "checker timeout",
    CHECKER_ERROR: "checker error",
}

MAX_BOXED = 4  # five or more is a format error
MAX_BAD_SHARE = 0.30
MIN_UNIT, MIN_REPEATS = 5, 5
DEFAULT_TIMEOUT = 5.0

# LIMR's allowed characters: ASCII letters, digits, whitespace, common punctuation, U+2200-U+22FF.
_BAD_CHAR = re.compile(r"[^a-zA-Z0-9\s.,!?\"'(){}\[\]_\-+=<>/@#$%^&*\\|:;~`\u2200-\u22FF]")
_BOXED = "\\boxed"


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


# ---------------------------------------------------------------------------------------------
# Format rules (pure)


def boxed_contents(text: str) -> list[str]:
    """Contents of every complete `\\boxed{...}`, in order; braces nest, `\\{` / `\\}` are literal."""
    out: list[str] = []
    start = 0
    n = len(text)
    while True:
        i = text.find(_BOXED, start)
        if i < 0:
            return out
        j = i + len(_BOXED)
        while j < n and text[j] in " \t":
            j += 1
        start = j
        if j >= n or text[j] != "{":
            continue
        depth, k = 1, j + 1
        while k < n:
            c = text[k]
            if c == "\\" and k + 1 < n and text[k + 1] in "{}":
                k += 2
                continue
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        if depth == 0:
            out.append(text[j + 1 : k])
            start = k + 1


def last_boxed(text: str) -> str | None:
    """The answer: the content of the last complete `\\boxed{...}`, or None."""
    found = boxed_contents(text)
    return found[-1] if found else None


def bad_character_share(text: str) -> float:
    """Share of characters outside LIMR's allowed set (0 for an empty text)."""
    if not text:
        return 0.0
    return len(_BAD_CHAR.findall(text)) / len(text)


def has_repeated_unit(text: str, min_unit: int = MIN_UNIT, min_repeats: int = MIN_REPEATS) -> bool:
    """True when some substring of length >= min_unit occurs min_repeats times in a row.

    Exact, and fast on long texts: u repeated r times with |u| = L means s[j] == s[j+L] on a run of
    (r-1)L positions, which contains r-1 consecutive multiples of L; so L is a candidate only when
    r samples of s taken L apart are equal (one vectorised pass over all L, about n*ln(n) samples),
    and only candidates get the full run check.
    """
    n = len(text)
    if n < min_unit * min_repeats:
        return False
    a = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    need = min_repeats - 1
    all_lengths = np.arange(min_unit, n // min_repeats + 1)
    all_counts = (n - 1) // all_lengths + 1  # samples at 0, L, 2L, ... < n
    # blocks of unit lengths with at most ~2M samples each, so memory stays bounded on huge texts
    bounds = np.searchsorted(
        np.cumsum(all_counts), np.arange(1, all_counts.sum() // _SAMPLE_BLOCK + 2) * _SAMPLE_BLOCK
    )
    start = 0
    for stop in [*bounds.tolist(), len(all_lengths)]:
        stop = max(stop, start + 1)
        lengths, counts = all_lengths[start:stop], all_counts[start:stop]
        start = stop
        if len(lengths) == 0:
            break
        if _candidates_repeat(a, lengths, counts, need):
            return True
        if start >= len(all_lengths):
            break
    return False


_SAMPLE_BLOCK = 1 << 21


def _candidates_repeat(a: np.ndarray, lengths: np.ndarray, counts: np.ndarray, need: int) -> bool:
    """has_repeated_unit for the unit lengths `lengths` (counts: samples per length)."""
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    group = np.repeat(np.arange(len(lengths)), counts)
    pos = (np.arange(int(counts.sum())) - starts[group]) * lengths[group]
    v = a[pos]
    eq = (v[1:] == v[:-1]) & (group[1:] == group[:-1])
    c = np.zeros(len(eq) + 1, dtype=np.int64)
    np.cumsum(eq, out=c[1:])
    hits = np.flatnonzero(c[need:] - c[:-need] == need)
    for length in np.unique(lengths[group[hits]]):
        length = int(length)
        run = need * length
        e = a[:-length] == a[length:]
        if len(e) < run:
            continue
        ce = np.zeros(len(e) + 1, dtype=np.int64)
        np.cumsum(e, out=ce[1:])
        if np.any(ce[run:] - ce[:-run] == run):
            return True
    return False


def format_violation(response: str, truncated: bool = False) -> str | None:
    """The first format rule (a FORMAT_RULES key) the response breaks, or None."""
    if truncated:
        return TRUNCATED
    if last_boxed(response) is None:
        return NO_BOXED
    if response.count(_BOXED) > MAX_BOXED:
        return TOO_MANY_BOXED
    if bad_character_share(response) > MAX_BAD_SHARE:
        return BAD_CHARACTERS
    if has_repeated_unit(response):
        return REPETITION
    return None


# ---------------------------------------------------------------------------------------------
# Equivalence

_SPACING = re.compile(r"\\[,!;: ]|\\(?:left|right)(?![a-zA-Z])|\s+")


def normalize(answer: str) -> str:
    """Light normalisation for the exact-match short cut (only rewrites that cannot change a value)."""
    s = answer.strip()
    if len(s) >= 2 and s[0] == "$" and s[-1] == "$":
        s = s.strip("$")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _SPACING.sub("", s)
    return s.rstrip(".")


def _quiet_math_verify() -> None:
    # math-verify warns once per process that we disabled its signal-based timeout: we enforce
    # the time limit with worker processes instead (limr_trainer.reward_pool).
    for name in ("math_verify", "math_verify.parser", "math_verify.grader"):
        logging.getLogger(name).setLevel(logging.ERROR)


@functools.lru_cache(maxsize=1)
def _math_verify():
    _quiet_math_verify()
    import math_verify

    return math_verify


def _parse_first(candidates: Iterable[str]) -> list:
    mv = _math_verify()
    for text in candidates:
        parsed = mv.parse(text, parsing_timeout=None)
        if parsed:
            return parsed
    return []


@functools.lru_cache(maxsize=8192)
def parse_gold(gold: str) -> tuple:
    """The gold answer parsed as LaTeX math, then as a boxed answer, then bare (cached: 8 rollouts share it)."""
    return tuple(_parse_first((f"${gold}$", f"\\boxed{{{gold}}}", gold)))


def parse_answer(answer: str) -> list:
    """An extracted boxed answer parsed as a boxed LaTeX answer, then as inline math, then bare."""
    return _parse_first((f"\\boxed{{{answer}}}", f"${answer}$", answer))


def equivalent(gold: str, answer: str, shortcut: bool = True) -> bool:
    """Whether `answer` (a boxed answer's content) equals `gold`. `shortcut`: exact match first."""
    if not answer.strip():
        return False
    if shortcut and normalize(gold) == normalize(answer):
        return True
    g = parse_gold(gold)
    a = parse_answer(answer)
    if not g or not a:
        return False
    return bool(_math_verify().verify(list(g), a, timeout_seconds=None))


def check(response: str, gold: str, truncated: bool = False) -> RewardResult:
    """The reward of one response, in this process and without a time limit (pure rule)."""
    violation = format_violation(response, truncated)
    answer = last_boxed(response)
    if violation is not None:
        return format_error_result(violation, answer)
    assert answer is not None
    if equivalent(gold, answer):
        return RewardResult(CORRECT_REWARD, True, CORRECT, answer)
    return RewardResult(WRONG_REWARD, False, WRONG, answer)


# ---------------------------------------------------------------------------------------------
# Batch API over worker processes


@dataclass(frozen=True, slots=True)
class RewardItem:
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
    from .reward_pool import shared_pool

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
    from .reward_pool import shared_pool

    result = shared_pool(None, prefer_existing=True).map(
        [RewardItem(response, answer, truncated)], timeout=timeout
    )[0]
    return values.apply(result)
