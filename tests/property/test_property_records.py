"""Fuzzing the record readers: arbitrary bytes and arbitrary tables only ever give trajectories or an
InputError (never another exception, never a silently wrong count); the order of rows and how a
file is split into row groups never change a result; the other inputs of `limr select` and `limr
reward` (OpenRLHF dumps, the prompts file, reward JSONL) only fail with their own errors (issue 14,
property-based tests)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given
from hypothesis import strategies as st
from limr_trainer.commands.reward import BadInput, read_rows
from limr_trainer.data.records import COLUMNS, SCHEMA, RecordError, validate
from limr_trainer.selection.lim import TrajectoryAccumulator
from limr_trainer.selection.prompts import load_prompts
from limr_trainer.selection.readers import InputError, decode_openrlhf, read_records

KEY = "epoch=0000/step=000001.parquet"


def read_file(data: bytes) -> tuple[TrajectoryAccumulator | None, InputError | None]:
    """read_records over one folder holding `data` as the file of epoch 0, step 1."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / KEY
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        acc = TrajectoryAccumulator()
        try:
            read_records(folder, acc)
        except InputError as err:
            assert str(err) and KEY in str(err)  # every error names the file
            return None, err
        return acc, None


def parquet(table: pa.Table, row_group_size: int | None = None) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=row_group_size)
    return sink.getvalue().to_pybytes()


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_are_an_input_error(data):
    _, err = read_file(data)
    assert err is not None


# One column of any type: the schema's own types and the wrong ones, with nulls, NaN and extremes.
TYPES = {
    "int32": (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    "int64": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    "int8": (pa.int8(), st.integers(-128, 127)),
    "float32": (pa.float32(), st.floats(width=32, allow_nan=True, allow_infinity=True)),
    "float64": (pa.float64(), st.floats(allow_nan=True, allow_infinity=True)),
    "bool": (pa.bool_(), st.booleans()),
    "string": (pa.string(), st.text(max_size=6)),
}


@st.composite
def tables(draw) -> pa.Table:
    rows = draw(st.integers(0, 12))
    names = draw(st.lists(st.sampled_from([*COLUMNS, "extra"]), min_size=0, max_size=11, unique=True))
    columns = {}
    for name in names:
        expected = SCHEMA.field(name).type if name in COLUMNS else None
        kind = draw(st.sampled_from([k for k, (t, _) in TYPES.items() if t == expected] * 4 + list(TYPES)))
        arrow_type, values = TYPES[kind]
        if name == "epoch" and kind == "int32" and draw(st.booleans()):
            values = st.just(0)  # often right, so later checks are reached
        if name == "step" and kind == "int32" and draw(st.booleans()):
            values = st.just(1)
        cells = draw(st.lists(values | st.none() if draw(st.booleans()) else values, min_size=rows, max_size=rows))
        columns[name] = pa.array(cells, arrow_type)
    return pa.table(columns) if columns else pa.table({"x": pa.array([], pa.int32())})


@given(tables())
def test_arbitrary_tables_are_read_only_when_they_are_valid_records(table):
    acc, err = read_file(parquet(table))
    if err is None:  # accepted: then it is a valid record table of epoch 0, step 1, with unique keys
        checked = validate(table, reward_values=None)
        assert set(checked.column("epoch").to_pylist()) <= {0} and set(checked.column("step").to_pylist()) <= {1}
        pairs = list(zip(checked.column("prompt_id").to_pylist(), checked.column("sample").to_pylist()))
        assert len(pairs) == len(set(pairs))
        assert sum(acc.state()[4:5]) == checked.num_rows
    else:
        try:
            checked = validate(table, reward_values=None)
        except RecordError:
            return
        # the schema holds: the refusal must be about the path or duplicate keys
        assert "column epoch" in str(err) or "column step" in str(err) or "more than once" in str(err), err


@st.composite
def valid_tables(draw) -> pa.Table:
    prompts = draw(st.integers(1, 6))
    samples = draw(st.integers(1, 4))
    correct = draw(st.lists(st.booleans(), min_size=prompts * samples, max_size=prompts * samples))
    rows = {"epoch": [0] * len(correct), "step": [1] * len(correct),
            "prompt_id": [f"p{i // samples}" for i in range(len(correct))],
            "sample": [i % samples for i in range(len(correct))],
            "reward": [1.0 if c else -0.5 for c in correct], "correct": correct,
            "format_error": [None] * len(correct), "response_length": [3] * len(correct),
            "truncated": [False] * len(correct)}
    return pa.table(rows, schema=SCHEMA)


@given(valid_tables(), st.randoms(use_true_random=False), st.integers(1, 5))
def test_row_order_and_row_groups_never_change_the_trajectories(table, rnd, group):
    order = list(range(table.num_rows))
    rnd.shuffle(order)
    shuffled = table.take(pa.array(order)).select(list(reversed(COLUMNS)))  # columns in another order too
    first, _ = read_file(parquet(table))
    second, _ = read_file(parquet(shuffled, row_group_size=group))
    a, b = first.trajectories(), second.trajectories()
    by_key = dict(zip(b.keys, b.values.tolist()))
    assert sorted(a.keys) == sorted(b.keys)
    for key, values in zip(a.keys, a.values.tolist()):
        np.testing.assert_array_equal(values, by_key[key])


@given(st.binary(max_size=600) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_openrlhf_dumps_fail_only_with_an_input_error(data):
    try:
        prompts, rewards = decode_openrlhf(data, where="step_1.json")
    except InputError as err:
        assert "step_1.json" in str(err)
        return
    assert len(prompts) == len(rewards) and np.isfinite(rewards).all()


def _with_file(data: bytes, read):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input"
        path.write_bytes(data)
        return read(str(path))


JSONISH = ["[", "]", "{", "}", '"id"', '"prompt"', '"response"', '"answer"', ":", ",", "\n", '"x"', "1", "true",
           "null", "NaN", '"\\ud83d"', "\xff", "\u2028", " "]
jsonish = st.lists(st.sampled_from(JSONISH) | st.text(max_size=3), max_size=40).map(
    lambda parts: "".join(parts).encode("utf-8", "surrogatepass"))


@given(st.binary(max_size=400) | jsonish)
def test_the_prompts_file_fails_only_with_an_input_error(data):
    try:
        rows = _with_file(data, load_prompts)
    except InputError as err:
        assert "input" in str(err)
        return
    assert all(isinstance(r, dict) and "id" in r and isinstance(r["prompt"], str) for r in rows)


@given(st.binary(max_size=400) | jsonish)
def test_reward_input_fails_only_with_bad_input(data):
    try:
        rows = _with_file(data, read_rows)
    except BadInput as err:
        assert "input" in str(err)
        return
    assert all(isinstance(r["response"], str) and isinstance(r["answer"], str) for r in rows)
