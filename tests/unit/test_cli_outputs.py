"""Every `--output` of a `limr` command that writes (crd, reward, select): a directory, a file in the
way, an unwritable place or a URI the command cannot write is a clear error (exit 2, no traceback),
never a local file named after a URI (issue 14 points 7 and 11)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from limr_api.cli import main as limr
from limr_trainer.data.records import table_from_rows


def _records(root):
    for epoch in range(2):
        rows = [{"epoch": epoch, "step": epoch + 1, "prompt_id": f"p{p}", "sample": 0, "reward": 1.0,
                 "correct": True, "format_error": None, "response_length": 3, "truncated": False} for p in range(3)]
        path = root / f"epoch={epoch:04d}" / f"step={epoch + 1:06d}.parquet"
        path.parent.mkdir(parents=True)
        pq.write_table(table_from_rows(rows), path)
    return root


def _refused(capsys, argv, *needles):
    assert limr(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(n in err for n in needles), err


def test_crd_output(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _refused(capsys, ["crd", "-o", str(tmp_path)], "Is a directory")
    _refused(capsys, ["crd", "-o", "s3://bucket/crd.yaml"], "give a local file")
    _refused(capsys, ["crd", "-o", str(tmp_path / "missing" / "crd.yaml")], "cannot write")
    assert list(tmp_path.iterdir()) == []  # no ./s3:/bucket/crd.yaml
    assert limr(["crd", "-o", str(tmp_path / "crd.yaml")]) == 0


def test_reward_output_is_checked_before_any_scoring(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"response": "\\boxed{1}", "answer": "1"}) + "\n")
    (tmp_path / "taken").write_text("a file")
    _refused(capsys, ["reward", "--input", str(src), "--output", str(tmp_path)], "is a directory")
    _refused(capsys, ["reward", "--input", str(src), "--output", str(tmp_path / "sub") + "/"], "is a directory")
    _refused(capsys, ["reward", "--input", str(src), "--output", "s3://bucket"], "give an object key")
    _refused(capsys, ["reward", "--input", str(src), "--output", "gs://bucket/key"], "unsupported storage URI")
    _refused(capsys, ["reward", "--input", str(src), "--output", str(tmp_path / "taken" / "out.jsonl")], "failed")


def test_select_output_in_the_way(tmp_path, capsys):
    records = _records(tmp_path / "records")
    (tmp_path / "taken").write_text("a file")
    base = ["select", "--input", str(records), "--no-plots", "--output"]
    _refused(capsys, [*base, str(tmp_path / "taken")], "taken")
    _refused(capsys, [*base, "gs://bucket/selection"], "unsupported storage URI")
    _refused(capsys, [*base, "s3://user:hunter2@bucket/selection"], "no user:password")
    assert (tmp_path / "taken").read_text() == "a file"


JOB = """\
apiVersion: limr.io/v1alpha1
kind: LIMRJob
metadata:
  name: small
spec:
  model:
    name: Qwen/Qwen2.5-Math-7B
  dataset:
    uri: s3://data/math.json
  storage:
    uri: s3://runs/limr
"""


@pytest.mark.parametrize("override", ["s3://user:hunter2@bucket/runs", "gs://bucket/runs", "s3://[bad/runs"])
@pytest.mark.parametrize("command", [["run"], ["logs"], ["phase", "--step", "selection", "--job"]],
                         ids=lambda c: c[0])
def test_a_bad_storage_override_is_bad_input(tmp_path, capsys, command, override):
    job = tmp_path / "job.yaml"
    job.write_text(JOB)
    assert limr([*command, str(job), "--storage-override", override]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "hunter2" not in err and "storage URI" in err, err
