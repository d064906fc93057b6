"""Only shared-memory files that appeared since a snapshot (and nobody maps) are removed."""

from limr_trainer.runtime import shm


def test_new_shm_files_only_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(shm, "SHM", tmp_path)
    (tmp_path / "psm_old").write_bytes(b"")
    before = shm.snapshot()
    (tmp_path / "psm_new").write_bytes(b"")
    (tmp_path / "other").write_bytes(b"")
    assert shm.cleanup(before) == ["psm_new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "psm_old"]
