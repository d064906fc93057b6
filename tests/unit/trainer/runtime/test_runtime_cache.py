"""Caches live under $LIMR_CACHE (never the checkout), and a dead JIT build's lock does not block."""

import os
import time

from limr_trainer.runtime import cache


def test_the_cache_follows_limr_cache_then_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("LIMR_CACHE", str(tmp_path / "c"))
    assert cache.models_dir() == tmp_path / "c" / "models"
    monkeypatch.delenv("LIMR_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache.cache_root() == tmp_path / "x" / "limr"


def test_only_old_build_locks_are_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    old, new = tmp_path / "op_a" / "lock", tmp_path / "op_b" / "lock"
    for lock in (old, new):
        lock.parent.mkdir()
        lock.write_text("")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert cache.clear_stale_build_locks() == [str(old)]
    assert not old.exists() and new.exists()
