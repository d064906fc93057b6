"""The dataset file `limr select --prompts` joins the selection with (JSON list or JSON lines).

Each record needs `id` and `prompt`. Errors name the file and the line (for JSON lines, and for
bytes that are not UTF-8), never a decoder's buffer position.
"""

from __future__ import annotations

import json
from typing import Any

from .readers import InputError


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


def _parse(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = f"line {exc.lineno}, column {exc.colno}" if exc.lineno > 1 or "\n" in text else f"column {exc.colno}"
        raise InputError(f"{where}: invalid JSON: {exc.msg} ({at})") from None
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply") from None


def load_prompts(path: str) -> list[dict[str, Any]]:
    """Records of a JSON list or JSONL file; each needs `id` and `prompt`."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a prompts file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    text = _decode(data, path)
    if text.lstrip().startswith("["):
        rows = _parse(text, path)
        where = [f"{path}: record {n}" for n in range(1, len(rows) + 1)]
    else:
        rows, where = [], []
        for n, line in enumerate(text.split("\n"), 1):  # not splitlines: U+2028 & co. may be in strings
            if line.strip():
                rows.append(_parse(line, f"{path}:{n}"))
                where.append(f"{path}:{n}")
    for row, at in zip(rows, where):
        if not isinstance(row, dict) or "id" not in row or "prompt" not in row:
            raise InputError(f"{at}: a prompts record is an object with 'id' and 'prompt'")
        if not isinstance(row["prompt"], str):
            raise InputError(f"{at}: 'prompt' must be a string")
    return rows
