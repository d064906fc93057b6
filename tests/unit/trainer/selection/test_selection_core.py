"""The one selection core: arm subsets and how the output set is committed."""

import json
import os

import numpy as np
import pytest
from limr_trainer.selection import core
from limr_trainer.storage import open_storage


def test_top_by_score_keeps_input_order_and_breaks_ties_by_first_seen():
    keys = ["a", "b", "c", "d"]
    assert core.top_by_score(keys, np.array([0.1, 0.9, 0.5, 0.9]), 2) == ["b", "d"]
    assert core.top_by_score(keys, np.array([0.5, 0.5, 0.5, 0.5]), 3) == ["a", "b", "c"]


def test_commit_removes_the_old_summary_first_and_writes_the_new_one_last(tmp_path):
    storage = open_storage(str(tmp_path))
    storage.put_bytes("summary.json", b'{"old": true}')
    order = []
    real_put, real_delete = storage.put_bytes, storage.delete
    storage.put_bytes = lambda key, data: (order.append(("put", key)), real_put(key, data))[1]
    storage.delete = lambda key: (order.append(("delete", key)), real_delete(key))[1]
    core.commit(storage, "", {"scores.jsonl": b"x\n", "summary.json": b"{}", "selected.json": b"[]"})
    assert order[0] == ("delete", "summary.json") and order[-1] == ("put", "summary.json")


def test_a_file_of_another_commit_is_caught_by_its_digest(tmp_path):
    storage = open_storage(str(tmp_path))
    files = {"scores.jsonl": b"a\n", "selected.json": b"[]"}
    import hashlib

    summary = {"files": {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}}
    core.commit(storage, "", {**files, "summary.json": json.dumps(summary).encode()})
    assert core.read_selection(storage)["files"]
    storage.put_bytes("scores.jsonl", b"from another run\n")
    with pytest.raises(core.InputError, match="does not belong"):
        core.read_selection(storage)


def test_a_write_that_fails_midway_leaves_no_summary_so_no_mix(tmp_path):
    """The commit when a write fails (e.g. ENOSPC) after the first file: the old summary is already
    gone, so a reader refuses the folder instead of taking old files with new ones. (The same on a
    real full disk: tests/integration/trainer/test_select_cli.py::test_a_full_disk_...)"""
    import errno

    from limr_trainer.storage import StorageError

    storage = open_storage(str(tmp_path))
    old = {"scores.jsonl": b"old\n", "selected.json": b"[1]"}
    import hashlib

    summary = json.dumps({"files": {k: hashlib.sha256(v).hexdigest() for k, v in old.items()}}).encode()
    core.commit(storage, "", {**old, "summary.json": summary})
    real_put = storage.put_bytes

    def full_disk(key, data):
        if key == "selected.json":
            raise StorageError(f"write {storage.uri(key)} failed: {os.strerror(errno.ENOSPC)}")
        real_put(key, data)

    storage.put_bytes = full_disk
    with pytest.raises(StorageError, match="No space left"):
        core.commit(storage, "", {"scores.jsonl": b"new\n", "selected.json": b"[2]", "summary.json": b"{}"})
    assert not storage.exists("summary.json")
    with pytest.raises(Exception, match="no object"):
        core.read_selection(storage)
