"""Verbatim-correct gold answers score +1 through math-verify alone (a fast sample; the full run
of MATH500 and MATH-8.5K is bench/reward/correctness.py, recorded in bench/reward/RESULTS.md)."""

from __future__ import annotations

import json
import random

import pytest
from limr_trainer import reward as R
from paths import SHARED

DATA = SHARED / "data" / "limr"


def _golds() -> list[str]:
    if not DATA.is_dir():
        pytest.skip(f"LIMR data not found at {DATA}: the gold-answer check needs ../shared/data/limr")
    m500 = [json.loads(line)["answer"] for line in (DATA / "eval/data/math500.jsonl").open()]
    m8k = [r["answer"] for r in json.loads((DATA / "data/prompts/math.8k.json").read_text())]
    rng = random.Random(3)
    return rng.sample(m500, 120) + rng.sample([a for a in m8k if a.strip()], 120)


def test_sampled_golds_verify_without_the_exact_match_shortcut():
    golds = _golds()
    ok = sum(R.equivalent(g, R.last_boxed(f"Thus $\\boxed{{{g}}}$.") or "", shortcut=False) for g in golds)
    assert ok >= len(golds) - 1, f"{len(golds) - ok} of {len(golds)} gold answers judged wrong"
