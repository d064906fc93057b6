"""Where this process keeps what it builds or downloads: `$LIMR_CACHE`, else the user cache.

Never the checkout: the trainer runs from an installed wheel in its image, where the source tree
does not exist. Toy models, resolved base models and DeepSpeed's compiled ops all live here.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_root() -> Path:
    """`$LIMR_CACHE`, else `$XDG_CACHE_HOME/limr`, else `~/.cache/limr`."""
    explicit = os.environ.get("LIMR_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "limr"


def models_dir() -> Path:
    """Built toy models and downloaded base models, one folder per (source, revision)."""
    return cache_root() / "models"


def torch_extensions_dir() -> str:
    """DeepSpeed's JIT-compiled ops: `$TORCH_EXTENSIONS_DIR` when set (the venv prebuilds there)."""
    return os.environ.get("TORCH_EXTENSIONS_DIR") or str(cache_root() / "torch_extensions")


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold `<folder>.lock` exclusively: processes on this host building the same entry take turns."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(folder.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


STALE_BUILD_LOCK_S = 600.0  # a JIT build of DeepSpeed's CPU op takes about a minute


def clear_stale_build_locks(max_age_s: float = STALE_BUILD_LOCK_S) -> list[str]:
    """Remove torch JIT-build locks left by a process killed mid-build (else every later DeepSpeed
    start waits on them forever); a lock younger than `max_age_s` may be a live build and stays."""
    import time

    root = Path(torch_extensions_dir())
    removed = []
    for lock in root.glob("*/lock") if root.is_dir() else []:
        try:
            if time.time() - lock.stat().st_mtime > max_age_s:
                lock.unlink()
                removed.append(str(lock))
        except OSError:
            pass
    return removed
