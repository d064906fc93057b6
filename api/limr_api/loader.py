"""Load a LIMRJob from a file or a mapping: bounded YAML, then the models; errors name the field."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .boundedyaml import MAX_DEPTH, YAMLLimitError, load_documents
from .errors import JobError
from .explain import explain
from .job import LIMRJob


def read_text(path: Path) -> str:
    """A job file's text; JobError (naming the file and, for bad UTF-8, the line) otherwise."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise JobError([("", f"{path}: no such file")]) from None
    except IsADirectoryError:
        raise JobError([("", f"{path}: is a directory, not a job file")]) from None
    except OSError as exc:
        raise JobError([("", f"{path}: cannot read ({exc.strerror})")]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise JobError([("", f"{path}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x})")]) from None


def load_yaml(source: str | Path) -> dict[str, Any]:
    """Read one YAML document (with the limits of `boundedyaml`); errors name the file and the line."""
    path = Path(source)
    text = read_text(path)
    try:
        docs = load_documents(text)
    except YAMLLimitError as exc:
        raise JobError([("", f"{path}: {exc}")]) from None
    if len(docs) != 1:
        raise JobError([("", f"{path}: expected exactly one YAML document, found {len(docs)}")])
    if not isinstance(docs[0], dict):
        raise JobError([("", f"{path}: a LIMRJob is a mapping with apiVersion, kind, metadata and spec")])
    return docs[0]


def _check_depth(value: Any) -> None:
    """The YAML depth limit for objects that arrive as mappings (kopf bodies), checked without
    recursion so that no nesting can overflow the stack."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, Mapping) else node if isinstance(node, (list, tuple)) else ()
        for child in children:
            if isinstance(child, (Mapping, list, tuple)):
                if depth + 1 > MAX_DEPTH:
                    raise JobError([("", f"nested deeper than {MAX_DEPTH} levels")])
                stack.append((child, depth + 1))


def _plain(value: Any) -> Any:
    """Mappings (e.g. kopf bodies) and sequences as plain dicts and lists (depth checked first)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def load_job(source: str | Path | Mapping[str, Any]) -> LIMRJob:
    """Parse and validate a LIMRJob from a file path or a mapping; raises JobError.

    Field names are the API's (`lambda`, not the Python attribute `lambd`), as in the CRD.
    """
    if isinstance(source, Mapping):
        _check_depth(source)
        data = _plain(source)
    else:
        data = load_yaml(source)
    try:
        return LIMRJob.model_validate(data, by_name=False)
    except ValidationError as err:
        raise JobError(explain(err)) from None


def load_job_or_report(source: str | Path, stream: Any = None) -> LIMRJob | None:
    """For commands: the job, or None after printing each error as `FILE: field.path: message`
    (the caller then exits 2). One place, so every command explains bad input the same way."""
    try:
        return load_job(source)
    except JobError as err:
        out = stream or sys.stderr
        for path, msg in err.errors:
            print(f"{source}: {path + ': ' if path else ''}{msg}", file=out)
        return None
