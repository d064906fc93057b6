"""Load `spec.dataset` into rows `{id, prompt, answer}`, and render chat prompts.

Sources: a local path / file:// URI or an s3:// URI (read through `limr_trainer.storage`) in json
(a list of objects), jsonl, parquet or arrow (HF `save_to_disk` folder or a single .arrow file),
or `synthetic://arithmetic?n=N&seed=S` for the built-in toy task (`limr_trainer.toy`).
Ids are strings: the `idField` value when present, else the row index.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from limr_trainer.spec import LIMR_SYSTEM_PROMPT, DatasetSpec


class DatasetError(ValueError):
    """The dataset cannot be read or lacks a required field; the message says which."""


def parse_synthetic(uri: str) -> dict[str, Any]:
    """`synthetic://arithmetic?n=..&seed=..` -> {"task", "n", "seed"}."""
    parsed = urlparse(uri)
    if parsed.scheme != "synthetic" or parsed.netloc != "arithmetic":
        raise DatasetError(f"{uri}: only synthetic://arithmetic is built in")
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    unknown = set(query) - {"n", "seed"}
    if unknown:
        raise DatasetError(f"{uri}: unknown parameters {sorted(unknown)} (expected n, seed)")
    try:
        return {"task": "arithmetic", "n": int(query.get("n", 256)), "seed": int(query.get("seed", 0))}
    except ValueError:
        raise DatasetError(f"{uri}: n and seed must be integers") from None


def _records_from_bytes(data: bytes, fmt: str, name: str) -> list[dict]:
    if fmt == "json":
        obj = json.loads(data)
        if isinstance(obj, dict):  # {"data": [...]} or {id: row}
            obj = obj.get("data", obj.get("rows", list(obj.values())))
        if not isinstance(obj, list):
            raise DatasetError(f"{name}: a json dataset is a list of objects")
        return obj
    if fmt == "jsonl":
        return [json.loads(line) for line in data.decode().splitlines() if line.strip()]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data)).to_pylist()
    if fmt == "arrow":
        import pyarrow as pa

        try:
            return pa.ipc.open_stream(io.BytesIO(data)).read_all().to_pylist()
        except pa.ArrowInvalid:
            return pa.ipc.open_file(io.BytesIO(data)).read_all().to_pylist()
    raise DatasetError(f"{name}: unknown format {fmt!r}")


def _read_local(path: Path, fmt: str) -> list[dict]:
    if path.is_dir():  # HF save_to_disk folder: data-*.arrow files (or parquet/jsonl shards)
        suffix = {"arrow": ".arrow", "parquet": ".parquet", "jsonl": ".jsonl", "json": ".json"}[fmt]
        files = sorted(p for p in path.rglob(f"*{suffix}") if not p.name.startswith("."))
        files = [p for p in files if p.name not in ("dataset_info.json", "state.json")]
        if not files:
            raise DatasetError(f"{path}: no {suffix} files in this folder")
        return [r for p in files for r in _records_from_bytes(p.read_bytes(), fmt, str(p))]
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    return _records_from_bytes(path.read_bytes(), fmt, str(path))


def _read_s3(uri: str, fmt: str, endpoint: str | None) -> list[dict]:
    """One object, or every object under a prefix when `uri` ends with '/'."""
    from limr_trainer.storage import open_storage

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    store = open_storage(f"s3://{bucket}", endpoint=endpoint)
    keys = store.list(key) if uri.endswith("/") else [key]
    if not keys:
        raise DatasetError(f"{uri}: no objects")
    return [r for k in keys for r in _records_from_bytes(store.get_bytes(k), fmt, f"s3://{bucket}/{k}")]


def normalise_rows(records: list[dict], spec: DatasetSpec) -> list[dict]:
    """Map raw records to {id, prompt, answer} (+ other fields kept); checks ids are unique."""
    rows, seen = [], set()
    for i, rec in enumerate(records):
        for field_name in (spec.promptField, spec.answerField):
            if field_name not in rec:
                raise DatasetError(f"row {i}: missing field {field_name!r} (dataset.{'promptField' if field_name == spec.promptField else 'answerField'})")
        rid = str(rec.get(spec.idField, i))
        if rid in seen:
            raise DatasetError(f"row {i}: duplicate id {rid!r} in field {spec.idField!r}")
        seen.add(rid)
        extra = {k: v for k, v in rec.items() if k not in (spec.idField, spec.promptField, spec.answerField)}
        rows.append({**extra, "id": rid, "prompt": str(rec[spec.promptField]), "answer": str(rec[spec.answerField])})
    return rows


def load_rows(spec: DatasetSpec, endpoint: str | None = None) -> list[dict]:
    """All rows of the dataset (first `spec.limit` when set), in file order."""
    uri = spec.uri
    if uri.startswith("synthetic://"):
        from limr_trainer.toy import arithmetic_rows

        params = parse_synthetic(uri)
        records = arithmetic_rows(params["n"], seed=params["seed"])
    elif uri.startswith("s3://"):
        records = _read_s3(uri, spec.format, endpoint)
    else:
        records = _read_local(Path(uri.removeprefix("file://")), spec.format)
    rows = normalise_rows(records, spec)
    return rows[: spec.limit] if spec.limit else rows


def render_prompt(tokenizer, question: str, system_prompt: str | None = LIMR_SYSTEM_PROMPT) -> str:
    """The LIMR chat prompt: system turn (when set), the question as user turn, generation prompt."""
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        {"role": "user", "content": question}
    ]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def truncate_prompt_ids(ids: list[int], max_len: int) -> list[int]:
    """Keep the last `max_len` prompt tokens (left truncation keeps the generation prompt)."""
    return ids[-max_len:] if len(ids) > max_len else ids


__all__ = ["DatasetError", "load_rows", "normalise_rows", "parse_synthetic", "render_prompt", "truncate_prompt_ids"]
