"""The built-in toy task, `synthetic://arithmetic?n=N&seed=S`: arithmetic questions with gold answers.

Offline and deterministic in (n, seed), in the LIMR prompt format (the question is the user turn;
a correct response ends in `\\boxed{answer}`), with a difficulty mix so that per-sample learning
curves differ (LIM needs that).
"""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import parse_qs, urlparse

from limr_trainer.data.errors import DatasetError

# difficulty -> (operator, operand range); the mix makes per-sample learning curves differ (LIM needs that).
DIFFICULTIES: dict[str, tuple[str, int, int]] = {
    "easy": ("+", 0, 9),
    "medium": ("+", 10, 49),
    "hard": ("*", 2, 12),
}
DEFAULT_MIX = {"easy": 0.4, "medium": 0.4, "hard": 0.2}


def arithmetic_rows(n: int, seed: int = 0, mix: dict[str, float] | None = None) -> list[dict]:
    """`n` questions `{id, prompt, answer, difficulty}`; the same (n, seed) always gives the same rows."""
    mix = mix or DEFAULT_MIX
    rng = random.Random(seed)
    names = sorted(mix)
    weights = [mix[k] for k in names]
    rows = []
    for i in range(n):
        level = rng.choices(names, weights)[0]
        op, lo, hi = DIFFICULTIES[level]
        a, b = rng.randint(lo, hi), rng.randint(lo, hi)
        value = a + b if op == "+" else a * b
        rows.append({"id": f"arith-{seed}-{i:06d}", "prompt": f"What is {a} {op} {b}?",
                     "answer": str(value), "difficulty": level})
    return rows


def solution_text(row: dict) -> str:
    """The well-formatted response to one toy question (the warm start's target)."""
    expr = row["prompt"].removeprefix("What is ").removesuffix("?")
    return f"{expr} = {row['answer']}. The answer is \\boxed{{{row['answer']}}}."


def parse_synthetic(uri: str) -> dict[str, Any]:
    """`synthetic://arithmetic?n=..&seed=..` -> {"task", "n", "seed"}."""
    parsed = urlparse(uri)
    if parsed.scheme != "synthetic" or parsed.netloc != "arithmetic":
        raise DatasetError(f"{uri}: only synthetic://arithmetic is built in")
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    unknown = set(query) - {"n", "seed"}
    if unknown:
        raise DatasetError(f"{uri}: unknown parameters {sorted(unknown)} (expected n, seed)")
    try:
        return {"task": "arithmetic", "n": int(query.get("n", 256)), "seed": int(query.get("seed", 0))}
    except ValueError:
        raise DatasetError(f"{uri}: n and seed must be integers") from None
