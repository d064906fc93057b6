"""Load `spec.dataset` into rows `{id, prompt, answer}`.

Sources: a local path / file:// URI or an s3:// URI (read through `limr_trainer.storage`) in json
(a list of objects), jsonl, parquet or arrow (HF `save_to_disk` folder or a single .arrow file),
or `synthetic://arithmetic?n=N&seed=S` for the built-in toy task (`limr_trainer.data.synthetic`).
Ids are strings: the `idField` value when present, else the row index.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from limr_api.training import DatasetSpec

from limr_trainer.data.errors import DatasetError
from limr_trainer.data.synthetic import synthetic_rows
from limr_trainer.storage import StorageSettings


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


def _read_s3(uri: str, fmt: str, settings: StorageSettings | None) -> list[dict]:
    """One object, or every object under a prefix when `uri` ends with '/' (the job's S3 settings)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    store = (settings or StorageSettings()).open(f"s3://{bucket}")
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


def load_rows(spec: DatasetSpec, settings: StorageSettings | None = None) -> list[dict]:
    """All rows of the dataset (first `spec.limit` when set), in file order.

    `settings`: the job's S3 endpoint and region, for an s3:// dataset."""
    uri = spec.uri
    if uri.startswith("synthetic://"):
        records = synthetic_rows(uri)
    elif uri.startswith("s3://"):
        records = _read_s3(uri, spec.format, settings)
    else:
        records = _read_local(Path(uri.removeprefix("file://")), spec.format)
    rows = normalise_rows(records, spec)
    return rows[: spec.limit] if spec.limit else rows


__all__ = ["DatasetError", "load_rows", "normalise_rows"]
