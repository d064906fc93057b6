"""Local-folder backend (`file://` URIs and plain paths): the default for `limr run` on one machine.

Keys map to files under the root folder. Every write goes through a temp file in the target's own
folder and os.replace, so a crash leaves the old file or none, never a partial one. Temp files
carry a reserved name prefix and are invisible to list(). Folders are an artefact of the
mapping: they are created on write and removed again when their last object is deleted.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from .base import TEMP_PREFIX, ObjectNotFound, Storage, StorageError, atomic_file, check_key, check_prefix

_COPY_CHUNK = 1 << 20


class LocalStorage(Storage):
    """Objects stored as files under `root` (created on the first write)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def uri(self, key: str = "") -> str:
        return "file://" + str(self._path(key) if key else self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._errors("write", key):
            with atomic_file(self._path(key)) as handle:
                handle.write(data)

    def put_file(self, key: str, path: str | os.PathLike[str]) -> None:
        with _OSErrors("read", f"file://{Path(path).resolve()}"):
            source = open(path, "rb")
        with source, self._errors("write", key):
            with atomic_file(self._path(key)) as handle:
                shutil.copyfileobj(source, handle, _COPY_CHUNK)

    def get_bytes(self, key: str) -> bytes:
        with self._errors("read", key):
            return self._path(key).read_bytes()

    def get_file(self, key: str, path: str | os.PathLike[str]) -> None:
        with self._errors("read", key):
            source = open(self._path(key), "rb")
        with source, _OSErrors("write", f"file://{Path(path).resolve()}"):
            with atomic_file(Path(path)) as handle:
                shutil.copyfileobj(source, handle, _COPY_CHUNK)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        check_prefix(prefix)
        # Walk only below the deepest folder the prefix names, and only into folders that can match.
        start = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        if not start.is_dir():
            return []
        keys = []
        for folder, dirs, files in os.walk(start):
            rel = Path(folder).relative_to(self.root).as_posix()
            rel = "" if rel == "." else rel + "/"
            dirs[:] = [d for d in dirs if _may_match(rel + d + "/", prefix)]
            keys.extend(
                rel + name
                for name in files
                if not name.startswith(TEMP_PREFIX) and (rel + name).startswith(prefix)
            )
        return sorted(keys)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._errors("delete", key):
            try:
                path.unlink()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return  # no object at exactly this key: nothing to do, as in S3
        self._prune_empty_parents(path.parent)

    def clean_interrupted(self, prefix: str = "", older_than_s: float = 3600.0) -> int:
        check_prefix(prefix)
        start = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        if not start.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for folder, dirs, files in os.walk(start):
            rel = Path(folder).relative_to(self.root).as_posix()
            rel = "" if rel == "." else rel + "/"
            dirs[:] = [d for d in dirs if _may_match(rel + d + "/", prefix)]
            for name in files:
                path = Path(folder) / name
                # temp name: TEMP_PREFIX + <file name of the key> + "." + random suffix
                target = rel + name[len(TEMP_PREFIX) :].rpartition(".")[0]
                if not name.startswith(TEMP_PREFIX) or not target.startswith(prefix):
                    continue
                try:
                    if path.stat().st_mtime <= cutoff:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue  # its writer finished or cleaned up meanwhile
        return removed

    def _prune_empty_parents(self, folder: Path) -> None:
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return  # not empty (or raced by a writer): stop
            folder = folder.parent

    def _errors(self, op: str, key: str) -> _OSErrors:
        return _OSErrors(op, self.uri(key))


def _may_match(folder_key: str, prefix: str) -> bool:
    """Whether keys under `folder_key` (ending in '/') can start with `prefix`."""
    return folder_key.startswith(prefix) or prefix.startswith(folder_key)


class _OSErrors:
    """Turn OSError into StorageError naming the URI (missing files into ObjectNotFound)."""

    def __init__(self, op: str, uri: str):
        self.op, self.uri = op, uri

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or not isinstance(exc, OSError):
            return False
        if self.op == "read" and isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
            raise ObjectNotFound(f"no object at {self.uri}") from exc
        raise StorageError(f"{self.op} {self.uri} failed: {exc.strerror or exc}") from exc
