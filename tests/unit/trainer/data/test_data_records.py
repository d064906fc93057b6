"""The reward-record schema: building tables from rows and rejecting what breaks the contract."""

from __future__ import annotations

import pyarrow as pa
import pytest
from limr_trainer.data.records import COLUMNS, SCHEMA, RecordError, table_from_rows, validate

ROW = {
    "epoch": 0,
    "step": 1,
    "prompt_id": "id-1",
    "sample": 0,
    "reward": 1.0,
    "correct": True,
    "format_error": None,
    "response_length": 17,
    "truncated": False,
}


def test_columns_are_the_contract():
    assert COLUMNS == (
        "epoch",
        "step",
        "prompt_id",
        "sample",
        "reward",
        "correct",
        "format_error",
        "response_length",
        "truncated",
    )
    assert [f.name for f in SCHEMA if f.nullable] == ["format_error"]


def test_table_from_rows_round_trips():
    rows = [
        ROW,
        {**ROW, "sample": 1, "reward": -1.0, "correct": False, "format_error": "no_boxed"},
        {
            k: v
            for k, v in {**ROW, "sample": 2, "reward": -0.5, "correct": False}.items()
            if k != "format_error"
        },
    ]
    t = table_from_rows(rows)
    assert t.schema.equals(SCHEMA) and t.num_rows == 3
    assert t.column("format_error").to_pylist() == [None, "no_boxed", None]


@pytest.mark.parametrize(
    "change,message",
    [
        ({"reward": 0.5}, "reward: values outside"),
        ({"correct": False}, "correct and reward disagree"),
        ({"reward": -1.0, "correct": False}, "format_error and reward disagree"),
        ({"sample": -1}, "sample: negative"),
        ({"prompt_id": None}, "prompt_id: 1 null"),
    ],
)
def test_bad_rows_are_rejected(change, message):
    with pytest.raises(RecordError, match=message):
        table_from_rows([{**ROW, **change}])


def test_missing_field_and_wrong_types():
    with pytest.raises(RecordError, match="row 0: missing epoch"):
        table_from_rows([{k: v for k, v in ROW.items() if k != "epoch"}])
    t = table_from_rows([ROW])
    with pytest.raises(RecordError, match="column epoch: type int64"):
        validate(t.set_column(0, "epoch", pa.array([0], pa.int64())))
    with pytest.raises(RecordError, match="unexpected columns: response"):
        validate(t.append_column("response", pa.array(["text"])))
    with pytest.raises(RecordError, match="missing columns: truncated"):
        validate(t.drop_columns(["truncated"]))


def test_a_job_with_other_reward_levels():
    levels = (2.0, 0.0, -3.0)
    rows = [{**ROW, "reward": 2.0}, {**ROW, "reward": -3.0, "correct": False, "format_error": "truncated"}]
    assert table_from_rows(rows, reward_values=levels).num_rows == 2
    with pytest.raises(RecordError, match="values outside"):
        table_from_rows(rows)  # LIMR's levels by default
    assert table_from_rows(rows, reward_values=None).num_rows == 2  # schema only
