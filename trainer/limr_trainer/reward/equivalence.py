"""Whether a boxed answer equals the gold answer: a light exact match, else math-verify on LaTeX.

The gold and the answer are each parsed as LaTeX (wrapped in `$...$` / `\\boxed{}`), so a
verbatim-correct answer like `\\frac{\\sqrt{3}}{2}` is equal (LIMR's own reward parsed bare
strings and judged ~10% of such answers wrong). math-verify's own timeout uses SIGALRM, so it is
switched off here: the time limit is the checker pool's (`limr_trainer.reward.pool`).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable

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
