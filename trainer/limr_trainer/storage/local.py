"""Local-folder backend (`file://` URIs and plain paths): the default for `limr run` on one machine.

Keys map to files under the root folder. Every write goes through a temp file in the target's own
folder and os.replace, so a crash leaves the old file or none, never a partial one. Temp files
carry a reserved name prefix and are invisible to list(). Folders are an artefact of the
mapping: they are created on write and removed again when their last object is deleted.

The root confines every operation: a key whose file a symbolic link below the root leads outside it
is refused (reads and writes alike), a delete removes a link itself and never what it points to, and
listing does not descend into linked folders. So a linked job folder cannot make a write land, or a
`delete_prefix` (checkpoint pruning) delete, anywhere outside the root.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

from .base import TEMP_PREFIX, ObjectNotFound, Storage, StorageError, atomic_file, check_key, check_prefix

_COPY_CHUNK = 1 << 20


class LocalStorage(Storage):
    """Objects stored as files under `root` (created on the first write)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def uri(self, key: str = "") -> str:
        return "file://" + str(self.root / check_key(key) if key else self.root)

    def _path(self, key: str, follow: bool = True) -> Path:
        """The file of `key`, after checking that no symbolic link leads it out of the root.

        `follow`: the file itself may be a link and is followed (reads); otherwise only its folder
        is resolved (writes and deletes replace or remove the name inside the root, never a target).
        """
        path = self.root / check_key(key)
        self._inside(path if follow else path.parent, key)
        return path

    def _inside(self, path: Path, key: str) -> None:
        try:
            real = path.resolve()
        except (OSError, RuntimeError) as exc:  # a link loop
            raise StorageError(f"{self.uri(key)}: cannot resolve its path: {exc}") from None
        if real != self.root and self.root not in real.parents:
            raise StorageError(f"{self.uri(key)}: refused: a symbolic link leads it outside the storage root "
                               f"{self.root} (to {real}); remove the link or use a root that holds the data")

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._errors("write", key), atomic_file(self._path(key, follow=False)) as handle:
            handle.write(data)

    def put_file(self, key: str, path: str | os.PathLike[str]) -> None:
        source_uri = f"file://{Path(path).resolve()}"
        target = self._path(key, follow=False)
        with _opened(path, source_uri) as source, self._errors("write", key), atomic_file(target) as handle:
            shutil.copyfileobj(source, handle, _COPY_CHUNK)

    def get_bytes(self, key: str) -> bytes:
        with self._errors("read", key):
            return self._path(key).read_bytes()

    def get_file(self, key: str, path: str | os.PathLike[str]) -> None:
        target_uri = f"file://{Path(path).resolve()}"
        opened = _opened(self._path(key), self.uri(key))
        with opened as source, _os_errors("write", target_uri), atomic_file(Path(path)) as handle:
            shutil.copyfileobj(source, handle, _COPY_CHUNK)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        check_prefix(prefix)
        # Walk only below the deepest folder the prefix names, and only into folders that can match.
        start = self._start(prefix)
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
        path = self._path(key, follow=False)
        with self._errors("delete", key):
            try:
                path.unlink()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return  # no object at exactly this key: nothing to do, as in S3
        self._prune_empty_parents(path.parent)

    def clean_interrupted(self, prefix: str = "", older_than_s: float = 3600.0) -> int:
        check_prefix(prefix)
        start = self._start(prefix)
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

    def _start(self, prefix: str) -> Path:
        """The deepest folder `prefix` names (walks start there), checked to be inside the root."""
        if "/" not in prefix:
            return self.root
        folder = prefix.rpartition("/")[0]
        start = self.root / folder
        self._inside(start, folder)
        return start

    def _prune_empty_parents(self, folder: Path) -> None:
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return  # not empty (or raced by a writer): stop
            folder = folder.parent

    def _errors(self, op: str, key: str) -> AbstractContextManager[None]:
        return _os_errors(op, self.uri(key))


def _may_match(folder_key: str, prefix: str) -> bool:
    """Whether keys under `folder_key` (ending in '/') can start with `prefix`."""
    return folder_key.startswith(prefix) or prefix.startswith(folder_key)


@contextmanager
def _os_errors(op: str, uri: str) -> Iterator[None]:
    """Turn OSError into StorageError naming the URI (a missing file on read into ObjectNotFound)."""
    try:
        yield
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        if op == "read":
            raise ObjectNotFound(f"no object at {uri}") from exc
        raise StorageError(f"{op} {uri} failed: {exc.strerror or exc}") from exc
    except OSError as exc:
        raise StorageError(f"{op} {uri} failed: {exc.strerror or exc}") from exc


@contextmanager
def _opened(path: str | os.PathLike[str], uri: str) -> Iterator[BinaryIO]:
    """Open `path` for reading, with errors named after `uri`."""
    with _os_errors("read", uri):
        source = open(path, "rb")  # noqa: SIM115 - closed by the `with source` below
    with source:
        yield source
