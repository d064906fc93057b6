"""Shared-memory files that killed vLLM engines leave in /dev/shm (`psm_*`), and their removal.

A multiprocess vLLM engine killed with its actor can leave its shared-memory segment behind; on a
long-lived node they add up. Only files no live process maps (and, where given, that appeared
since a snapshot) are removed, so a concurrent engine is never touched.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

SHM = Path("/dev/shm")
PATTERN = "psm_*"


def snapshot() -> set[str]:
    """Names of the `psm_*` files there now."""
    try:
        return {p.name for p in SHM.glob(PATTERN)}
    except OSError:
        return set()


def _mapped(path: str) -> bool:
    for maps in glob.glob("/proc/[0-9]*/maps"):
        try:
            with open(maps) as handle:
                if path in handle.read():
                    return True
        except OSError:
            continue
    return False


def cleanup(before: set[str] | None = None) -> list[str]:
    """Remove this user's unmapped `psm_*` files (only those not in `before` when it is given)."""
    removed = []
    for name in sorted(snapshot() - (before or set())):
        path = SHM / name
        try:
            if path.stat().st_uid == os.getuid() and not _mapped(str(path)):
                path.unlink()
                removed.append(name)
        except OSError:
            pass
    return removed
