"""Reward records: one row per rollout, the contract between the trainer (writes) and selection (reads).

DESIGN.md "Reward records": epoch, step, prompt_id, sample, reward, correct, format_error,
response_length, truncated. Responses themselves live elsewhere. One Parquet file per PPO step at
`<job>/<phase>/rewards/epoch=EEEE/step=SSSSSS.parquet` (see `limr_trainer.layout`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

SCHEMA = pa.schema(
    [
        pa.field("epoch", pa.int32(), nullable=False),  # data epoch, 0-based
        pa.field("step", pa.int32(), nullable=False),  # global PPO step
        pa.field("prompt_id", pa.string(), nullable=False),  # the dataset record's id
        pa.field("sample", pa.int32(), nullable=False),  # rollout index within the prompt's group
        pa.field("reward", pa.float32(), nullable=False),  # 1.0 / -0.5 / -1.0
        pa.field("correct", pa.bool_(), nullable=False),
        pa.field("format_error", pa.string(), nullable=True),  # rule name (limr_trainer.reward), or null
        pa.field("response_length", pa.int32(), nullable=False),  # tokens
        pa.field("truncated", pa.bool_(), nullable=False),
    ]
)
COLUMNS = tuple(SCHEMA.names)
REWARD_VALUES = (1.0, -0.5, -1.0)


class RecordError(ValueError):
    """A table or row that does not follow the reward-record schema."""


def table_from_rows(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Build a validated table from dict rows (`format_error` may be absent = null)."""
    cols: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for i, row in enumerate(rows):
        missing = [c for c in COLUMNS if c != "format_error" and c not in row]
        if missing:
            raise RecordError(f"row {i}: missing {', '.join(missing)}")
        for name in COLUMNS:
            cols[name].append(row.get(name))
    try:
        table = pa.table(cols, schema=SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as e:
        raise RecordError(f"rows do not fit the reward-record schema: {e}") from e
    validate(table)
    return table


def validate(table: pa.Table) -> pa.Table:
    """Check schema (names, types, nulls) and values; return the table cast to SCHEMA's field order."""
    import pyarrow.compute as pc

    names = set(table.schema.names)
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise RecordError(f"missing columns: {', '.join(missing)}")
    extra = sorted(names - set(COLUMNS))
    if extra:
        raise RecordError(f"unexpected columns: {', '.join(extra)}")
    table = table.select(list(COLUMNS))
    for field in SCHEMA:
        col = table.column(field.name)
        if not col.type.equals(field.type):
            raise RecordError(f"column {field.name}: type {col.type}, expected {field.type}")
        if not field.nullable and col.null_count:
            raise RecordError(f"column {field.name}: {col.null_count} null value(s)")
    if table.num_rows:
        bad = pc.invert(pc.is_in(table.column("reward"), value_set=pa.array(REWARD_VALUES, pa.float32())))
        if pc.any(bad).as_py():
            raise RecordError(f"column reward: values outside {REWARD_VALUES}")
        for name in ("epoch", "step", "sample", "response_length"):
            if pc.min(table.column(name)).as_py() < 0:
                raise RecordError(f"column {name}: negative value")
        correct = table.column("correct")
        reward_one = pc.equal(table.column("reward"), pa.scalar(1.0, pa.float32()))
        if not pc.all(pc.equal(correct, reward_one)).as_py():
            raise RecordError("columns correct and reward disagree (correct must be exactly reward == 1.0)")
        fmt_null = pc.is_null(table.column("format_error"))
        reward_minus1 = pc.equal(table.column("reward"), pa.scalar(-1.0, pa.float32()))
        if not pc.all(pc.not_equal(fmt_null, reward_minus1)).as_py():
            raise RecordError(
                "columns format_error and reward disagree (format_error set exactly when reward == -1)"
            )
    return table.cast(SCHEMA)
