"""A reward workload built from real MATH-8.5K gold answers: ~1,000-3,000-character responses that
end in a correct boxed answer (50%), a wrong one (30%), no box (10%) or a repetition loop (10%)."""

from __future__ import annotations

import json
import random
from pathlib import Path

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "limr"
STEPS = [
    "First we rewrite the equation as $x^2 - {a}x + {b} = 0$ and factor it.",
    "By Vieta's formulas the sum of the roots is ${a}$ and their product is ${b}$.",
    "Substituting $y = {a}$ gives $\\frac{{{b}}}{{y+1}} = \\sqrt{{{a}}}$, which we square.",
    "Checking the case $n = {a}$ separately, the remainder modulo ${b}$ is unchanged.",
    "We draw the triangle with sides ${a}$, ${b}$ and use the law of cosines.",
]


def golds() -> list[str]:
    return [
        r["answer"]
        for r in json.loads((DATA / "data/prompts/math.8k.json").read_text())
        if r["answer"].strip()
    ]


def make(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    answers = golds()
    items = []
    for _ in range(n):
        gold = rng.choice(answers)
        parts, length = [], rng.randint(1000, 3000)
        while sum(map(len, parts)) < length:
            parts.append(rng.choice(STEPS).format(a=rng.randint(2, 99), b=rng.randint(2, 999)))
        body = " ".join(parts)
        kind = rng.random()
        if kind < 0.5:
            resp = f"{body}\nTherefore the answer is $\\boxed{{{gold}}}$."
        elif kind < 0.8:
            resp = f"{body}\nTherefore the answer is $\\boxed{{{rng.randint(0, 500)}}}$."
        elif kind < 0.9:
            resp = f"{body}\nTherefore the answer is {gold}."
        else:
            resp = body + " Let me double check. " * 8 + f"$\\boxed{{{gold}}}$"
        items.append({"response": resp, "answer": gold})
    return items
