"""Local storage under hostile and careless input (issue 14 points 10 and 11): confined to its root,
files with the umask's mode, JSON errors by line, no user:password in a URI or endpoint."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from limr_trainer.storage import StorageError, open_storage, parse_uri


@pytest.fixture
def linked_job(tmp_path):
    """A storage root whose job folder is a symbolic link to a folder outside the root."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (outside / "checkpoints").mkdir(parents=True)
    (outside / "checkpoints" / "precious.bin").write_bytes(b"not yours")
    root.mkdir()
    (root / "job").symlink_to(outside, target_is_directory=True)
    return open_storage(str(root)), outside


def test_a_write_through_a_linked_folder_is_refused_and_lands_nowhere(linked_job):
    storage, outside = linked_job
    with pytest.raises(StorageError, match="outside the storage root"):
        storage.put_bytes("job/baseline/metrics.jsonl", b"{}\n")
    assert not (outside / "baseline").exists()


def test_delete_prefix_never_deletes_outside_the_root(linked_job):
    storage, outside = linked_job
    with pytest.raises(StorageError, match="outside the storage root"):
        storage.delete_prefix("job/checkpoints/")
    with pytest.raises(StorageError, match="outside the storage root"):
        storage.delete("job/checkpoints/precious.bin")
    assert (outside / "checkpoints" / "precious.bin").read_bytes() == b"not yours"


def test_reads_through_links_out_are_refused(linked_job, tmp_path):
    storage, outside = linked_job
    with pytest.raises(StorageError, match="outside the storage root"):
        storage.get_bytes("job/checkpoints/precious.bin")
    with pytest.raises(StorageError, match="outside the storage root"):
        storage.list("job/")
    # a file link: listed (it is a name in the root), unreadable, and deleting removes the link only
    root = Path(storage.root)
    (root / "data").mkdir()
    (root / "data" / "leak").symlink_to(outside / "checkpoints" / "precious.bin")
    assert storage.list("data/") == ["data/leak"]
    with pytest.raises(StorageError, match="outside the storage root"):
        storage.get_bytes("data/leak")
    assert storage.delete_prefix("data/") == 1
    assert not (root / "data").exists() and (outside / "checkpoints" / "precious.bin").exists()


def test_links_that_stay_inside_the_root_still_work(tmp_path):
    root = tmp_path / "root"
    storage = open_storage(str(root))
    storage.put_bytes("real/a.txt", b"a")
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert storage.get_bytes("alias/a.txt") == b"a"
    storage.put_bytes("alias/b.txt", b"b")
    assert (root / "real" / "b.txt").read_bytes() == b"b"


def test_a_link_loop_is_a_storage_error(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "loop").symlink_to(root / "loop")
    storage = open_storage(str(root))
    with pytest.raises(StorageError):
        storage.get_bytes("loop/x")


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_have_the_mode_the_umask_gives(tmp_path, umask):
    """The write runs in a child so the umask of the test process is never changed."""
    target = tmp_path / "out"
    script = (f"import os; os.umask({umask}); from limr_trainer.storage import open_storage; "
              f"open_storage({str(target)!r}).put_bytes('a/b.json', b'{{}}')")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert stat.S_IMODE(os.stat(target / "a" / "b.json").st_mode) == 0o666 & ~umask


def test_json_errors_name_the_line_and_nesting_is_an_error_not_a_crash(tmp_path):
    storage = open_storage(str(tmp_path))
    storage.put_bytes("m.jsonl", b'{"a": 1}\n{"a": 2}\n{"a": "\xff"}\n')
    with pytest.raises(StorageError, match="line 3") as err:
        list(storage.iter_jsonl("m.jsonl"))
    assert "position" not in str(err.value)
    storage.put_bytes("deep.json", b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(StorageError, match="nested too deeply"):
        storage.get_json("deep.json")
    storage.put_bytes("bad.json", b'{\n  "a": 1,\n  "b": \n}')
    with pytest.raises(StorageError, match="line 4"):
        storage.get_json("bad.json")


def test_json_lines_keep_unicode_line_separators_inside_strings(tmp_path):
    storage = open_storage(str(tmp_path))
    rows = [{"text": "a\u2028b\x85c\x0cd"}, {"text": "lone \ud83d"}]
    storage.put_jsonl("rows.jsonl", rows)
    assert list(storage.iter_jsonl("rows.jsonl")) == rows


@pytest.mark.parametrize("uri", ["s3://AKIAEXAMPLE:hunter2@bucket/prefix", "file://user:hunter2@host/data"])
def test_user_and_password_in_a_uri_are_refused_and_never_echoed(uri):
    with pytest.raises(StorageError, match="no user:password") as err:
        parse_uri(uri)
    assert "hunter2" not in str(err.value) and "AKIAEXAMPLE" not in str(err.value)


def test_user_and_password_in_an_endpoint_are_refused_and_never_echoed(monkeypatch):
    with pytest.raises(StorageError, match="no user:password") as err:
        open_storage("s3://bucket/p", endpoint="http://minio:hunter2@minio.storage:9000")
    assert "hunter2" not in str(err.value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://key:hunter2@s3.example.com")
    with pytest.raises(StorageError, match="no user:password") as err:
        open_storage("s3://bucket/p")
    assert "hunter2" not in str(err.value)


def test_malformed_uris_are_storage_errors():
    with pytest.raises(StorageError, match="invalid storage URI"):
        parse_uri("s3://[bucket/x")
