"""Reward records: one row per rollout, the contract between the trainer (writes) and selection (reads).

docs/ARCHITECTURE.md "Reward records": epoch, step, prompt_id, sample, reward, correct, format_error,
response_length, truncated. Responses themselves live elsewhere. One Parquet file per PPO step at
`<job>/<phase>/rewards/epoch=EEEE/step=SSSSSS.parquet` (see `limr_api.layout`).
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


def table_from_rows(
    rows: Iterable[Mapping[str, Any]], reward_values: tuple[float, float, float] | None = REWARD_VALUES
) -> pa.Table:
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
    return validate(table, reward_values)


def validate(table: pa.Table, reward_values: tuple[float, float, float] | None = REWARD_VALUES) -> pa.Table:
    """Check schema (names, types, nulls) and values; return the table in SCHEMA's column order.

    `reward_values` = the job's (correct, wrong, format error) levels: rewards must be one of them,
    `correct` exactly when reward is the first, `format_error` set exactly when it is the last.
    None skips the value checks (only the schema is checked).
    """
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
        for name in ("epoch", "step", "sample", "response_length"):
            if pc.min(table.column(name)).as_py() < 0:
                raise RecordError(f"column {name}: negative value")
    if table.num_rows and reward_values is not None:
        correct_v, _, format_v = (pa.scalar(v, pa.float32()) for v in reward_values)
        reward = table.column("reward")
        bad = pc.invert(pc.is_in(reward, value_set=pa.array(reward_values, pa.float32())))
        if pc.any(bad).as_py():
            raise RecordError(f"column reward: values outside {reward_values}")
        if not pc.all(pc.equal(table.column("correct"), pc.equal(reward, correct_v))).as_py():
            raise RecordError(
                f"columns correct and reward disagree (correct must be exactly reward == {reward_values[0]})"
            )
        fmt_null = pc.is_null(table.column("format_error"))
        if not pc.all(pc.not_equal(fmt_null, pc.equal(reward, format_v))).as_py():
            raise RecordError(
                f"columns format_error and reward disagree (format_error set exactly when reward == {reward_values[2]})"
            )
    return table
