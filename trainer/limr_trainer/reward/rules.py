"""LIMR's format rules (pure): the boxed answer, the character set, repetition, in one pass each.

Checked in this order; the first that fires is the reason (docs/ARCHITECTURE.md, "LIMR facts"):
  truncated        the generation hit its length limit
  no_boxed         no complete `\\boxed{...}`
  too_many_boxed   five or more `\\boxed`
  bad_characters   over 30% of characters outside LIMR's allowed set
  repetition       a unit of 5+ characters repeated 5+ times in a row
Every rule is linear (or n log n) in the response length, so no response can stall the caller.
"""

from __future__ import annotations

import re

import numpy as np

from .results import BAD_CHARACTERS, NO_BOXED, REPETITION, TOO_MANY_BOXED, TRUNCATED

MAX_BOXED = 4  # five or more is a format error
MAX_BAD_SHARE = 0.30
MIN_UNIT, MIN_REPEATS = 5, 5

# LIMR's allowed characters: ASCII letters, digits, whitespace, common punctuation, U+2200-U+22FF.
_BAD_CHAR = re.compile(r"[^a-zA-Z0-9\s.,!?\"'(){}\[\]_\-+=<>/@#$%^&*\\|:;~`\u2200-\u22FF]")
_BOXED = "\\boxed"


def _matching_braces(text: str) -> dict[int, int]:
    """Position of each `{` -> position of its matching `}` (unmatched ones absent), in one pass.

    `\\{` and `\\}` are literal braces, not grouping ones.
    """
    match: dict[int, int] = {}
    stack: list[int] = []
    k, n = 0, len(text)
    while k < n:
        c = text[k]
        if c == "\\" and k + 1 < n and text[k + 1] in "{}":
            k += 2
            continue
        if c == "{":
            stack.append(k)
        elif c == "}" and stack:
            match[stack.pop()] = k
        k += 1
    return match


def boxed_contents(text: str) -> list[str]:
    """Contents of every complete `\\boxed{...}`, in order; braces nest, `\\{` / `\\}` are literal.

    Left to right: a complete box is taken whole (boxes inside it are part of its content); an
    unclosed `\\boxed{` is skipped and the scan goes on inside it. Linear in the text's length: the
    braces are matched once, and every `\\boxed` is looked at once (thousands of unclosed
    openings used to cost quadratic time).
    """
    if _BOXED not in text:
        return []
    match = _matching_braces(text)
    out: list[str] = []
    start, n = 0, len(text)
    while True:
        i = text.find(_BOXED, start)
        if i < 0:
            return out
        j = i + len(_BOXED)
        while j < n and text[j] in " \t":
            j += 1
        start = j
        if j < n and text[j] == "{" and j in match:
            out.append(text[j + 1 : match[j]])
            start = match[j] + 1


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
    a = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
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


