"""LIMR's released LIM scores thresholded at 0.6 give exactly the 1,389 ids of LIMR's subset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from limr_trainer.selection.core import record_key
from limr_trainer.selection.lim import threshold_select
from limr_trainer.selection.prompts import load_prompts
from paths import SHARED

DATA = SHARED / "data" / "limr"


@pytest.fixture(scope="module")
def data():
    if not DATA.is_dir():
        pytest.skip(f"LIMR data not found at {DATA}: this check needs ../shared/data/limr")
    return DATA


def _limr_subset_ids(data: Path) -> list[str]:
    import pyarrow as pa

    with pa.OSFile(str(data / "data/train/limr/train/data-00000-of-00001.arrow"), "rb") as f:
        table = pa.ipc.open_stream(f).read_all()
    return table.column("id").to_pylist()


def test_released_scores_at_0_6_select_limr_subset(data):
    scores = json.loads((data / "data/scores.json").read_text())
    keys = [row["prompt"].strip() for row in scores]
    selected = set(threshold_select(keys, [row["score"] for row in scores], 0.6))
    prompts = load_prompts(str(data / "data/prompts/math.8k.json"))
    ids = [str(r["id"]) for r in prompts if record_key(r, "openrlhf") in selected]
    expected = _limr_subset_ids(data)
    assert len(expected) == 1389
    assert sorted(ids) == sorted(expected)
    # the boundary matters: scores of exactly 0.6 are in LIMR's subset
    at_boundary = [row for row in scores if row["score"] == 0.6]
    assert at_boundary and all(row["prompt"].strip() in selected for row in at_boundary)
