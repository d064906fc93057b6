"""The storage interface: a flat key -> bytes store with typed helpers built once on top of bytes.

Backends implement only the byte-level primitives; JSON, JSONL, Parquet and whole-folder transfers
live here so every backend encodes them identically. pyarrow is imported only by the Parquet
helpers, so importing this module stays cheap (the operator image has no reason to load it).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pyarrow

# Local writes go through temp files with this name prefix; keys may not use it (see check_key).
TEMP_PREFIX = ".limr-tmp-"


class StorageError(Exception):
    """A storage operation failed; the message names the URI and the cause."""


class ObjectNotFound(StorageError):
    """The key holds no object."""


def check_key(key: str) -> str:
    """Return `key` if it is a valid relative object key, else raise StorageError.

    Keys are '/'-separated relative paths: no leading '/', no empty, '.' or '..' segments, no
    backslashes. The same rule on both backends keeps a key meaning the same object everywhere.
    """
    if not isinstance(key, str) or not key:
        raise StorageError(f"invalid storage key {key!r}: must be a non-empty string")
    if "\\" in key or "\x00" in key:
        raise StorageError(f"invalid storage key {key!r}: backslashes and NUL are not allowed")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise StorageError(f"invalid storage key {key!r}: segments must be non-empty and not '.' or '..'")
        if segment.startswith(TEMP_PREFIX):
            raise StorageError(f"invalid storage key {key!r}: {TEMP_PREFIX!r} is reserved")
    return key


def check_prefix(prefix: str) -> str:
    """Return `prefix` if it can start a valid key ('' lists everything), else raise StorageError."""
    if prefix == "":
        return prefix
    check_key(prefix.removesuffix("/"))
    return prefix


def join_key(prefix: str, key: str) -> str:
    """`prefix` + '/' + `key` without doubled slashes ('' prefix gives `key`)."""
    return f"{prefix.rstrip('/')}/{key}" if prefix else key


class Storage(ABC):
    """One storage root (an S3 bucket/prefix or a local folder) addressed by relative keys.

    Writes are atomic per object: a reader sees the complete new object, the previous one, or
    nothing; never a partial object. Keys are deterministic, so a retried write overwrites.
    """

    # ---- primitives every backend implements -------------------------------------------------
    @abstractmethod
    def uri(self, key: str = "") -> str:
        """The full URI of `key` (of the root when empty), for logs, status and error messages."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Write `data` to `key` atomically, replacing any previous object."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Read the object at `key`; ObjectNotFound if there is none."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored at exactly `key`."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """All keys starting with `prefix` (a plain string prefix, as in S3), sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object at `key`; no error when it is absent."""

    @abstractmethod
    def clean_interrupted(self, prefix: str = "", older_than_s: float = 3600.0) -> int:
        """Remove leftovers of interrupted writes under `prefix` older than `older_than_s` seconds.

        Never visible as objects, they only take space: temp files of a killed local writer,
        incomplete multipart uploads whose abort could not reach the server. The age guard keeps
        writes still in flight safe. Returns how many were removed.
        """

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with `prefix`; returns how many were removed."""
        keys = self.list(prefix)
        for key in keys:
            self.delete(key)
        return len(keys)

    # ---- files and folders (backends may stream instead of buffering) -------------------------
    def put_file(self, key: str, path: str | os.PathLike[str]) -> None:
        """Upload the local file `path` to `key` atomically."""
        self.put_bytes(key, Path(path).read_bytes())

    def get_file(self, key: str, path: str | os.PathLike[str]) -> None:
        """Download `key` to the local file `path` (written atomically, parents created)."""
        write_file_atomic(Path(path), self.get_bytes(key))

    def put_dir(self, prefix: str, folder: str | os.PathLike[str]) -> list[str]:
        """Upload every file under `folder` to `prefix/<relative path>`; returns the keys.

        Atomic per file only: callers that need the folder as a unit write a marker key last.
        """
        root = Path(folder)
        keys = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            key = join_key(prefix, path.relative_to(root).as_posix())
            self.put_file(key, path)
            keys.append(key)
        return keys

    def get_dir(self, prefix: str, folder: str | os.PathLike[str]) -> list[str]:
        """Download every key under `prefix/` into `folder`, keeping relative paths; returns keys."""
        base = prefix.rstrip("/") + "/" if prefix else ""
        keys = self.list(base)
        for key in keys:
            self.get_file(key, Path(folder) / key[len(base) :])
        return keys

    # ---- typed helpers, one encoding for all backends ----------------------------------------
    def put_json(self, key: str, obj: Any) -> None:
        """Write one JSON document (UTF-8, indented, trailing newline)."""
        self.put_bytes(key, json_bytes(obj, indent=2) + b"\n")

    def get_json(self, key: str) -> Any:
        """Read one JSON document (StorageError naming the line of bad UTF-8 or JSON)."""
        uri = self.uri(key)
        return _decode_json(decode_text(self.get_bytes(key), uri), uri)

    def put_jsonl(self, key: str, rows: Iterable[Any]) -> int:
        """Write rows as JSON Lines (one compact document per line); returns the row count."""
        lines = [json_bytes(row, separators=(",", ":")) for row in rows]
        self.put_bytes(key, b"".join(line + b"\n" for line in lines))
        return len(lines)

    def iter_jsonl(self, key: str) -> Iterator[Any]:
        """Yield the rows of a JSON Lines object (blank lines skipped)."""
        uri = self.uri(key)
        # split at "\n" only: str.splitlines would also split inside strings holding U+2028 & co.
        for number, line in enumerate(decode_text(self.get_bytes(key), uri).split("\n"), start=1):
            if line.strip():
                yield _decode_json(line, f"{uri} line {number}")

    def put_parquet(self, key: str, table: pyarrow.Table, compression: str = "zstd") -> None:
        """Write a pyarrow Table as one Parquet object."""
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression=compression)
        self.put_bytes(key, buffer.getvalue())

    def read_parquet(self, key: str) -> pyarrow.Table:
        """Read a Parquet object into a pyarrow Table."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        data = self.get_bytes(key)
        try:
            return pq.read_table(pa.BufferReader(data))
        except pa.ArrowException as exc:
            raise StorageError(f"{self.uri(key)} is not a valid Parquet file: {exc}") from exc


def json_bytes(obj: Any, **dumps: Any) -> bytes:
    """`obj` as UTF-8 JSON; text that has no UTF-8 form (a lone surrogate such as "\\ud83d", which
    json.loads accepts) is written as \\u escapes instead of failing the whole write."""
    text = json.dumps(obj, ensure_ascii=False, **dumps)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True, **dumps).encode("ascii")


def decode_text(data: bytes, where: str) -> str:
    """UTF-8 text, or StorageError naming the line (not a decoder's buffer position) of the bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise StorageError(f"{where}: line {line}, column {column}: not UTF-8 text "
                           f"(byte 0x{data[exc.start]:02x})") from None


def _decode_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise StorageError(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise StorageError(f"{where} is not usable JSON: nested too deeply") from None


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Open a handle whose bytes appear at `path` only once complete, even if the process dies.

    The bytes go to a temp file in the same folder (same filesystem), are fsynced, and then
    os.replace swaps it in; the folder is fsynced so the rename itself survives a power loss.
    On an exception the temp file is removed and `path` is untouched. The file gets the mode a plain
    open() would give (0666 less the umask), not mkstemp's private 0600.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600: give the mode open() would
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    fsync_dir(path.parent)


def current_umask() -> int:
    """This process's umask, read without changing it (os.umask can only be read by setting it,
    which would briefly change the mode of files other threads create)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # pragma: no cover - no /proc: the racy way, with a safe interim mask
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (see atomic_file)."""
    with atomic_file(path) as handle:
        handle.write(data)


def fsync_dir(folder: Path) -> None:
    """fsync a folder so a rename inside it is durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
