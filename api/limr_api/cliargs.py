"""argparse types for the numbers a user gives a `limr` command: finite, in range, or a clear error.

Every numeric flag of every command goes through one of these, so `nan`, `inf`, `1e999`, a
negative count or a port above 65535 is refused at the command line (exit 2, the flag and its range
named) instead of passing a `<= 0` check and spinning, or failing later with a traceback.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from .constants import INT32_MAX


def _span(low: float, high: float, low_open: bool) -> str:
    if math.isinf(low) and math.isinf(high):
        return " (finite)"
    if math.isinf(low):
        return f", finite and at most {high:g}"
    if math.isinf(high):
        return f", finite and {'above' if low_open else 'at least'} {low:g}"
    return f" in {'(' if low_open else '['}{low:g}, {high:g}]"


def real(low: float = -math.inf, high: float = math.inf, *, low_open: bool = False,
         what: str = "a number") -> Callable[[str], float]:
    """A finite float in [low, high] (or (low, high] with `low_open`); nan and inf never pass."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"{text!r}: expected {what}{_span(low, high, low_open)}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


def integer(low: int, high: int = INT32_MAX, *, what: str = "an integer") -> Callable[[str], int]:
    """A whole number in [low, high], written in decimal."""

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {what} in [{low}, {high}]")
        return value

    parse.__name__ = what
    return parse


# Bounds shared by several commands.
MAX_WORKERS = 256  # processes one command starts
MAX_ATTEMPT = 101  # backoffLimit is at most 100: attempts 1..101
PORT = integer(0, 65535, what="a port number")
attempt = integer(1, MAX_ATTEMPT, what="an attempt number")
workers = integer(1, MAX_WORKERS, what="a number of processes")
