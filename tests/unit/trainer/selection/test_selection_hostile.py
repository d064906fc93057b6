"""`limr select` on broken or mixed-up reward records (issue 14 point 5): every one is refused with
exit 2 and a message naming the file and the column (or the two files), never counted silently,
never a traceback, and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from limr_trainer.commands import select as select_cmd
from limr_trainer.data.records import SCHEMA, table_from_rows


def rows(epoch: int, step: int, prompts: int = 4, samples: int = 2, correct_every: int = 2) -> list[dict]:
    out = []
    for p in range(prompts):
        for s in range(samples):
            good = (p + s + epoch) % correct_every == 0
            out.append({"epoch": epoch, "step": step, "prompt_id": f"p{p}", "sample": s,
                        "reward": 1.0 if good else -0.5, "correct": good, "format_error": None,
                        "response_length": 5, "truncated": False})
    return out


def write_step(root: Path, epoch: int, step: int, table: pa.Table | None = None) -> Path:
    path = root / f"epoch={epoch:04d}" / f"step={step:06d}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table if table is not None else table_from_rows(rows(epoch, step)), path)
    return path


def good_records(root: Path, epochs: int = 3) -> Path:
    for e in range(epochs):
        write_step(root, e, e + 1)
    return root


def with_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def run(capsys, records: Path, out: Path, *extra: str) -> tuple[int, str]:
    code = select_cmd.main(["--input", str(records), "--output", str(out), "--no-plots", *extra])
    return code, capsys.readouterr().err


def refused(capsys, tmp_path, records: Path, *needles: str, extra: tuple[str, ...] = ()) -> None:
    out = tmp_path / "out"
    code, err = run(capsys, records, out, *extra)
    assert code == 2, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_good_records_select(tmp_path, capsys):
    code, err = run(capsys, good_records(tmp_path / "rec"), tmp_path / "out")
    assert code == 0, err
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["rollouts"] == 3 * 8


@pytest.mark.parametrize("values", [[float("nan")] * 8, [float("inf")] * 8, [2.0] * 8, [1.0, 0.0] * 4])
def test_a_correct_column_that_is_not_boolean_is_refused(tmp_path, capsys, values):
    rec = good_records(tmp_path / "rec")
    base = table_from_rows(rows(1, 2))
    write_step(rec, 1, 2, with_column(base, "correct", pa.array(values, pa.float64())))
    refused(capsys, tmp_path, rec, "step=000002.parquet", "column correct")


def test_nulls_are_refused_by_column(tmp_path, capsys):
    rec = good_records(tmp_path / "rec")
    base = table_from_rows(rows(1, 2))
    nulls = pa.array(["p0", None] + ["p1"] * 6, pa.string())
    write_step(rec, 1, 2, with_column(base, "prompt_id", nulls).cast(SCHEMA.remove(2).insert(
        2, pa.field("prompt_id", pa.string(), nullable=True))))
    refused(capsys, tmp_path, rec, "step=000002.parquet", "column prompt_id", "null")
    correct = pa.array([True, None] * 4, pa.bool_())
    write_step(rec, 1, 2, with_column(base, "correct", correct))
    refused(capsys, tmp_path, rec, "step=000002.parquet", "column correct", "null")


def test_a_string_correct_column_is_refused(tmp_path, capsys):
    rec = good_records(tmp_path / "rec")
    base = table_from_rows(rows(1, 2))
    write_step(rec, 1, 2, with_column(base, "correct", pa.array(["true", "false"] * 4)))
    refused(capsys, tmp_path, rec, "step=000002.parquet", "column correct", "string")


def test_rows_whose_epoch_is_not_their_folders_are_refused(tmp_path, capsys):
    rec = good_records(tmp_path / "rec")
    write_step(rec, 1, 2, table_from_rows(rows(7, 2)))  # in epoch=0001/, the rows say epoch 7
    refused(capsys, tmp_path, rec, "epoch=0001/step=000002.parquet", "column epoch", "7")


def test_negative_epochs_are_refused(tmp_path, capsys):
    rec = good_records(tmp_path / "rec")
    base = table_from_rows(rows(0, 1))
    write_step(rec, 0, 1, with_column(base, "epoch", pa.array([-1] * 8, pa.int32())))
    refused(capsys, tmp_path, rec, "step=000001.parquet", "column epoch", "negative")
    bad = tmp_path / "rec2"
    good_records(bad)
    (bad / "epoch=-001").mkdir()
    pq.write_table(table_from_rows(rows(0, 9)), bad / "epoch=-001" / "step=000009.parquet")
    refused(capsys, tmp_path, bad, "epoch=-001/step=000009.parquet", "not a reward-record path")


def test_duplicated_rows_are_refused_not_counted_twice(tmp_path, capsys):
    rec = good_records(tmp_path / "rec")
    twice = rows(1, 2) + rows(1, 2)[:1]
    write_step(rec, 1, 2, table_from_rows(twice))
    refused(capsys, tmp_path, rec, "step=000002.parquet", "prompt_id, sample", "'p0', 0")


def test_one_step_recorded_in_two_files_is_refused(tmp_path, capsys):
    rec = good_records(tmp_path / "rec")
    write_step(rec, 2, 2, table_from_rows(rows(2, 2)))  # step 2 again, under epoch 2
    refused(capsys, tmp_path, rec, "step 2 also recorded in")


def test_a_jobs_root_with_baseline_and_retrain_records_is_refused(tmp_path, capsys):
    job = tmp_path / "job"
    good_records(job / "baseline" / "rewards")
    good_records(job / "retrain" / "rewards")
    refused(capsys, tmp_path, job, "more than one job step", "baseline/rewards", "retrain/rewards")


def test_a_bit_rotted_parquet_file_is_named(tmp_path, capsys):
    rec = good_records(tmp_path / "rec")
    path = write_step(rec, 1, 2)
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64
    path.write_bytes(bytes(data))
    refused(capsys, tmp_path, rec, "step=000002.parquet")
    path.write_bytes(b"PAR1 not really")
    refused(capsys, tmp_path, rec, "step=000002.parquet", "not a readable Parquet file")


def test_two_names_for_one_openrlhf_step_are_refused(tmp_path, capsys):
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    dump = [{"prompt": "q", "response": "r", "reward": 1.0, "response_length": 3}]
    for name in ("step_1.json", "step_01.json", "step_2.json"):
        (dumps / name).write_text(json.dumps(dump))
    refused(capsys, tmp_path, dumps, "two files for step 1", "step_01.json", "step_1.json",
            extra=("--format", "openrlhf", "--steps-per-epoch", "1"))


def test_non_finite_openrlhf_rewards_are_refused(tmp_path, capsys):
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    (dumps / "step_1.json").write_text('[{"prompt": "q", "response": "r", "reward": NaN, "response_length": 3}]')
    (dumps / "step_2.json").write_text('[{"prompt": "q", "response": "r", "reward": 1e999, "response_length": 3}]')
    refused(capsys, tmp_path, dumps, "step_", extra=("--format", "openrlhf", "--steps-per-epoch", "1"))


def test_prompts_that_miss_the_selected_ids_are_refused(tmp_path, capsys):
    rec = good_records(tmp_path / "rec")
    other = tmp_path / "other.json"
    other.write_text(json.dumps([{"id": f"q{i}", "prompt": f"question {i}"} for i in range(4)]))
    refused(capsys, tmp_path, rec, "not in the prompts", "another dataset", extra=("--prompts", str(other)))
