"""The built-in toy task, `synthetic://arithmetic?n=N&seed=S[&mix=...][&split=train|test]`.

Arithmetic questions with gold answers, offline and deterministic in the URI, in the LIMR prompt
format (the question is the user turn; a correct response ends in `\\boxed{answer}`), with a
difficulty mix so that per-sample learning curves differ (LIM needs that):
- `mix=easy:3,sum2:5,prod2:2` weighs the levels of `DIFFICULTIES` (default `DEFAULT_MIX`);
- `split=train` / `split=test` keeps only the questions of one side of a fixed partition of the
  question space (a hash of the question text, `TEST_SHARE` of it on the test side), so a held-out
  set drawn from `split=test` never contains a training question, whatever n and the seeds.
Questions are drawn with replacement (a large training set repeats the few easy sums).
"""

from __future__ import annotations

import random
import zlib
from typing import Any
from urllib.parse import parse_qs, urlparse

from limr_trainer.data.errors import DatasetError

# level -> (operator, left operand range, right operand range)
DIFFICULTIES: dict[str, tuple[str, tuple[int, int], tuple[int, int]]] = {
    "easy": ("+", (0, 9), (0, 9)),  # one-digit sums: 100 questions
    "medium": ("+", (10, 49), (10, 49)),  # two-digit sums below 100
    "hard": ("*", (2, 12), (2, 12)),  # the times table: 121 questions
    "sum2": ("+", (10, 99), (10, 99)),  # any two-digit sum: 8,100 questions
    "prod1": ("*", (10, 99), (2, 9)),  # a two-digit number times a digit: 720 questions
    "prod2": ("*", (10, 99), (10, 99)),  # two-digit products: beyond a tiny model without working
}
DEFAULT_MIX = {"easy": 0.4, "medium": 0.4, "hard": 0.2}
SPLITS = ("train", "test")
TEST_SHARE = 20  # percent of the question space on the test side (hash of the question text)


def split_of(prompt: str) -> str:
    """Which side of the fixed partition a question is on ("train" or "test")."""
    return "test" if zlib.crc32(prompt.encode()) % 100 < TEST_SHARE else "train"


def arithmetic_rows(n: int, seed: int = 0, mix: dict[str, float] | None = None,
                    split: str | None = None) -> list[dict]:
    """`n` questions `{id, prompt, answer, difficulty}`; the same arguments always give the same rows.

    With `split`, questions of the other side are skipped (the generator draws again)."""
    mix = mix or DEFAULT_MIX
    unknown = sorted(set(mix) - set(DIFFICULTIES))
    if unknown:
        raise DatasetError(f"unknown difficulty {unknown[0]!r}: expected one of {', '.join(DIFFICULTIES)}")
    if split is not None and split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}: expected train or test")
    rng = random.Random(seed)
    names = sorted(mix)
    weights = [mix[k] for k in names]
    rows: list[dict] = []
    while len(rows) < n:
        level = rng.choices(names, weights)[0]
        op, (lo1, hi1), (lo2, hi2) = DIFFICULTIES[level]
        a, b = rng.randint(lo1, hi1), rng.randint(lo2, hi2)
        prompt = f"What is {a} {op} {b}?"
        if split is not None and split_of(prompt) != split:
            continue
        value = a + b if op == "+" else a * b
        rows.append({"id": f"arith-{seed}-{len(rows):06d}", "prompt": prompt, "answer": str(value),
                     "difficulty": level})
    return rows


def solution_text(row: dict) -> str:
    """The well-formatted response to one toy question (the warm start's target).

    Two-digit sums (`sum2`) are worked digit by digit, units first, so they share their steps
    (the one-digit sums) with every other sum: what is learned on one question carries over to
    held-out ones. Other levels state the result directly."""
    expr = row["prompt"].removeprefix("What is ").removesuffix("?")
    answer = row["answer"]
    if row.get("difficulty") == "sum2":
        left, _, right = expr.partition(" + ")
        a, b = int(left), int(right)
        units, carry = a % 10 + b % 10, (a % 10 + b % 10) // 10
        tens = a // 10 + b // 10 + carry
        step2 = f"{a // 10} + {b // 10} + 1 = {tens}" if carry else f"{a // 10} + {b // 10} = {tens}"
        return f"{a % 10} + {b % 10} = {units}, {step2}. The answer is \\boxed{{{answer}}}."
    return f"{expr} = {answer}. The answer is \\boxed{{{answer}}}."


def parse_mix(text: str, uri: str = "") -> dict[str, float]:
    """`easy:3,sum2:5` -> {"easy": 3.0, "sum2": 5.0} (weights need not sum to 1)."""
    mix: dict[str, float] = {}
    for part in filter(None, text.split(",")):
        name, sep, weight = part.partition(":")
        try:
            value = float(weight) if sep else float("nan")
        except ValueError:
            value = float("nan")
        if not value > 0 or value == float("inf"):
            raise DatasetError(f"{uri}: mix entry {part!r}: expected LEVEL:WEIGHT with a weight > 0")
        if name not in DIFFICULTIES:
            raise DatasetError(f"{uri}: mix level {name!r}: expected one of {', '.join(DIFFICULTIES)}")
        mix[name] = value
    if not mix:
        raise DatasetError(f"{uri}: mix is empty (expected e.g. mix=easy:3,sum2:5)")
    return mix


def parse_synthetic(uri: str) -> dict[str, Any]:
    """`synthetic://arithmetic?n=..&seed=..[&mix=..][&split=..]` -> {"task", "n", "seed"[, "mix", "split"]}."""
    parsed = urlparse(uri)
    if parsed.scheme != "synthetic" or parsed.netloc != "arithmetic":
        raise DatasetError(f"{uri}: only synthetic://arithmetic is built in")
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    unknown = set(query) - {"n", "seed", "mix", "split"}
    if unknown:
        raise DatasetError(f"{uri}: unknown parameters {sorted(unknown)} (expected n, seed, mix, split)")
    try:
        out: dict[str, Any] = {"task": "arithmetic", "n": int(query.get("n", 256)), "seed": int(query.get("seed", 0))}
    except ValueError:
        raise DatasetError(f"{uri}: n and seed must be integers") from None
    if out["n"] < 0:
        raise DatasetError(f"{uri}: n must be >= 0")
    if "mix" in query:
        out["mix"] = parse_mix(query["mix"], uri)
    if "split" in query:
        if query["split"] not in SPLITS:
            raise DatasetError(f"{uri}: split must be train or test, not {query['split']!r}")
        out["split"] = query["split"]
    return out


def synthetic_rows(uri: str) -> list[dict]:
    """The rows a `synthetic://arithmetic?...` URI names."""
    params = parse_synthetic(uri)
    return arithmetic_rows(params["n"], seed=params["seed"], mix=params.get("mix"), split=params.get("split"))
