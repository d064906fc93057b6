"""Reward correctness on verbatim-correct answers: every gold answer of MATH500 and MATH-8.5K is
returned as `... \\boxed{<gold>}` and must score +1.

Columns: ours through the real batch path (`score_batch`: format rules, exact-match short cut,
math-verify); ours with math-verify alone (no short cut: what the short cut hides); and LIMR's
approach, bare-string parsing (`math_verify.parse(answer)` and `parse(gold)` without LaTeX wrapping).
    python bench/reward/correctness.py
"""

from __future__ import annotations

import json
from pathlib import Path

from limr_trainer import reward as R

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "limr"


def bare(gold: str, answer: str) -> bool:
    from math_verify import parse, verify

    try:
        return bool(
            verify(
                parse(gold, parsing_timeout=None), parse(answer, parsing_timeout=None), timeout_seconds=None
            )
        )
    except Exception:  # noqa: BLE001
        return False


def main() -> int:
    sets = {
        "MATH500": [json.loads(line)["answer"] for line in (DATA / "eval/data/math500.jsonl").open()],
        "MATH-8.5K": [r["answer"] for r in json.loads((DATA / "data/prompts/math.8k.json").read_text())],
    }
    print("| gold set | answers | ours (`score_batch`) | ours, math-verify only | LIMR-style bare strings |")
    print("|---|---|---|---|---|")
    misses = {}
    for name, golds in sets.items():
        res = R.score_batch(
            [{"response": f"Thus the answer is $\\boxed{{{g}}}$.", "answer": g} for g in golds],
            workers=2,
            timeout=10,
        )
        ours = sum(r.reward == 1.0 for r in res)
        misses[name] = [(g, r.reason) for g, r in zip(golds, res) if r.reward != 1.0]
        mv = sum(R.equivalent(g, g, shortcut=False) for g in golds)
        limr = sum(bare(g, g) for g in golds)
        n = len(golds)
        print(
            f"| {name} | {n} | {ours} ({100 * ours / n:.2f}%) | {mv} ({100 * mv / n:.2f}%) | {limr} ({100 * limr / n:.2f}%) |",
            flush=True,
        )
    for name, m in misses.items():
        print(f"{name} not +1 through score_batch: {m}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
