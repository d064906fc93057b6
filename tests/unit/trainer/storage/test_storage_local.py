"""Local storage backend: atomic writes under real crashes, listing, round trips, URIs, cheap import."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest
from limr_api import layout
from limr_trainer.storage import ObjectNotFound, StorageError, open_storage, parse_uri
from limr_trainer.storage.base import TEMP_PREFIX
from limr_trainer.storage.local import LocalStorage
from paths import REPO


def _crash_during_write(root: Path, key: str, size: int) -> subprocess.CompletedProcess:
    """Write `size` bytes to `key` in a child process that is SIGKILLed before the write completes.

    The kill comes from inside the write (at the fsync, after the bytes reached the temp file and
    before the rename), the worst moment for a non-atomic writer.
    """
    script = textwrap.dedent(
        f"""
        import os, signal
        from limr_trainer.storage import base, open_storage
        def die(fd):
            os.kill(os.getpid(), signal.SIGKILL)
        base.os.fsync = die
        open_storage({str(root)!r}).put_bytes({key!r}, b"N" * {size})
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "trainer")}
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, timeout=60, check=False
    )


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def test_a_killed_writer_leaves_the_old_object_or_none(tmp_path):
    root = tmp_path / "root"
    storage = LocalStorage(root)
    key = layout.rewards_key("job", "baseline", 3, 17)
    storage.put_bytes(key, b"old complete object")

    result = _crash_during_write(root, key, 4 << 20)
    assert result.returncode == -9, result.stderr.decode()
    assert storage.get_bytes(key) == b"old complete object"
    (leftover,) = _temp_files(root)  # the half-done write exists, holding the new bytes ...
    assert leftover.stat().st_size == 4 << 20
    assert storage.list() == [key]  # ... but is invisible

    fresh = "job/baseline/metrics.jsonl"
    assert _crash_during_write(root, fresh, 1000).returncode == -9
    assert not storage.exists(fresh)
    with pytest.raises(ObjectNotFound):
        storage.get_bytes(fresh)
    assert storage.list() == [key]

    assert storage.clean_interrupted("job/", older_than_s=3600) == 0  # could still be in flight
    assert storage.clean_interrupted("other/", older_than_s=0) == 0
    assert storage.clean_interrupted("job/baseline/rewards/", older_than_s=0) == 1
    assert storage.clean_interrupted("", older_than_s=0) == 1
    assert _temp_files(root) == []
    assert storage.get_bytes(key) == b"old complete object"


def test_a_failed_write_cleans_up_and_keeps_the_old_object(tmp_path, monkeypatch):
    storage = LocalStorage(tmp_path)
    storage.put_json("a/summary.json", {"v": 1})

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("limr_trainer.storage.base.os.fsync", disk_full)
    with pytest.raises(StorageError, match=r"write file://.*/a/summary.json failed: No space left on device"):
        storage.put_json("a/summary.json", {"v": 2})
    monkeypatch.undo()
    assert storage.get_json("a/summary.json") == {"v": 1}
    assert _temp_files(tmp_path) == []


def test_listing_prefixes_and_folder_pruning(tmp_path):
    storage = LocalStorage(tmp_path / "root")
    assert storage.list() == []  # root not created yet
    keys = [
        layout.rewards_key("job", "baseline", 1, 0),
        layout.rewards_key("job", "baseline", 10, 0),
        layout.rewards_key("job", "retrain-random", 1, 0),
        layout.summary_key("job"),
        "job2/x",
    ]
    for key in keys:
        storage.put_bytes(key, b"x")
    (tmp_path / "root" / "job" / f"{TEMP_PREFIX}stray.abc").write_bytes(b"partial")
    assert storage.list() == sorted(keys)
    assert storage.list("job/baseline/rewards/epoch=0001") == [layout.rewards_key("job", "baseline", 1, 0)]
    assert storage.list("job/baseline/rewards/epoch=00") == [
        layout.rewards_key("job", "baseline", 1, 0),
        layout.rewards_key("job", "baseline", 10, 0),
    ]
    assert storage.list("job/re") == [layout.rewards_key("job", "retrain-random", 1, 0)]
    assert storage.list("job2") == ["job2/x"]
    assert storage.list("job/selection/summary.json") == [layout.summary_key("job")]

    assert storage.delete_prefix("job/baseline/") == 2
    assert not (tmp_path / "root" / "job" / "baseline").exists(), (
        "empty folders are removed with their objects"
    )
    storage.delete("job/selection")  # a folder is not an object: nothing happens
    assert storage.exists(layout.summary_key("job"))
    assert not storage.exists("job/selection")


def test_round_trips(tmp_path):
    storage = LocalStorage(tmp_path)
    rows = [{"prompt_id": f"p{i}", "reward": [1.0, -0.5, -1.0][i % 3], "text": "π ≈ 3.14"} for i in range(20)]
    assert storage.put_jsonl(layout.metrics_key("job", "baseline"), rows) == 20
    assert list(storage.iter_jsonl(layout.metrics_key("job", "baseline"))) == rows
    assert (tmp_path / "job/baseline/metrics.jsonl").read_text(encoding="utf-8").count("\n") == 20

    storage.put_bytes("j/blank-lines.jsonl", b'{"a": 1}\n\n{"a": 2}\n')
    assert list(storage.iter_jsonl("j/blank-lines.jsonl")) == [{"a": 1}, {"a": 2}]
    storage.put_bytes("j/broken.jsonl", b'{"a": 1}\n{"a": \n')
    with pytest.raises(StorageError, match=r"j/broken.jsonl line 2 is not valid JSON"):
        list(storage.iter_jsonl("j/broken.jsonl"))

    table = pa.table({"epoch": [1, 2], "score": [0.25, None], "prompt": ["a", "b"]})
    storage.put_parquet(layout.scores_key("job"), table)
    assert storage.read_parquet(layout.scores_key("job")).equals(table)
    storage.put_json(layout.summary_key("job"), {"selected": 3, "threshold": 0.6})
    assert storage.get_json(layout.summary_key("job")) == {"selected": 3, "threshold": 0.6}


def test_key_and_file_conflicts_are_storage_errors(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.put_bytes("a", b"file")
    with pytest.raises(StorageError, match=r"write file://.*/a/b failed"):
        storage.put_bytes("a/b", b"x")
    with pytest.raises(StorageError, match=f"{TEMP_PREFIX!r} is reserved"):
        storage.put_bytes(f"x/{TEMP_PREFIX}1", b"x")
    with pytest.raises(ObjectNotFound, match="no object at file://"):
        storage.get_file("missing", tmp_path / "out")


def test_uris_and_paths(tmp_path, monkeypatch):
    assert parse_uri("s3://bucket/a/b/") == ("s3", "bucket", "a/b")
    assert parse_uri("s3://bucket") == ("s3", "bucket", "")
    assert parse_uri("file:///data/runs") == ("file", "/data/runs", "")
    assert parse_uri("runs/local") == ("file", "runs/local", "")
    for bad, why in [
        ("s3:///p", "needs a bucket"),
        ("file://host/p", "absolute path"),
        ("gs://b", "unsupported"),
        ("", "invalid storage URI"),
        ("s3://b/p?x=1", "no query"),
    ]:
        with pytest.raises(StorageError, match=why):
            parse_uri(bad)

    monkeypatch.chdir(tmp_path)
    relative = open_storage("runs", multipart_threshold=1)  # S3 tuning is ignored for local roots
    assert isinstance(relative, LocalStorage) and relative.root == tmp_path / "runs"
    relative.put_bytes("k", b"v")
    by_uri = open_storage(relative.uri())
    assert by_uri.uri("k") == f"file://{tmp_path}/runs/k" and by_uri.get_bytes("k") == b"v"


def test_importing_storage_loads_neither_boto3_nor_pyarrow():
    code = (
        "import sys, limr_trainer.storage, limr_api.layout;"
        "print(sorted(m for m in ('boto3', 'botocore', 'pyarrow') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "trainer")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
