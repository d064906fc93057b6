"""The one model resolver: a base model's source -> a local folder on *this* host, cached.

Every process that loads the model (the driver for its tokenizer, each actor, critic and
reference rank, each rollout engine, evaluation) resolves it itself, because a folder on one
Ray host does not exist on the others. Sources:
- `toy://SIZE?seed=S&warm_steps=N&warm_rows=R&warm_lr=LR[&warm_batch=B&warm_mix=M&warm_split=train]`:
  built offline (deterministic; runtime.toy_model);
- `s3://bucket/prefix`: downloaded with the job's storage settings (endpoint, region) and the
  process's AWS credentials;
- a Hugging Face hub id, at `revision` (branch, tag or commit);
- a local folder, used as it is.
Downloads land in `<cache>/models/` under a name derived from (source, revision), through a
temporary folder renamed into place under a per-model lock, so concurrent ranks on one host
download once and never see half a model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from limr_trainer.runtime.cache import locked, models_dir
from limr_trainer.storage import StorageSettings

TOY_SCHEME = "toy://"
_TOY_PARAMS = {"seed": int, "warm_steps": int, "warm_rows": int, "warm_lr": float, "warm_batch": int,
               "warm_mix": str, "warm_split": str}


@dataclass(frozen=True)
class ModelSource:
    """Where a base model comes from (picklable: it travels to workers on other hosts)."""

    name: str
    revision: str | None = None
    storage: StorageSettings = field(default_factory=StorageSettings)

    @classmethod
    def of(cls, spec: Any) -> ModelSource:
        """The base model of a LIMRJobSpec."""
        return cls(spec.model.name, spec.model.revision, StorageSettings.of(spec))

    @property
    def is_toy(self) -> bool:
        return self.name.startswith(TOY_SCHEME)


def parse_toy_uri(uri: str) -> dict[str, Any]:
    """`toy://SIZE?seed=S&warm_steps=N&warm_rows=R&warm_lr=LR` -> ensure_toy_model kwargs."""
    parts = urlsplit(uri)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - set(_TOY_PARAMS)
    if unknown:
        raise ValueError(f"{uri}: unknown parameters {sorted(unknown)} (expected {', '.join(_TOY_PARAMS)})")
    try:
        values = {k: _TOY_PARAMS[k](v) for k, v in query.items()}
    except ValueError:
        numbers = ", ".join(k for k, kind in _TOY_PARAMS.items() if kind is not str)
        raise ValueError(f"{uri}: {numbers} must be numbers") from None
    return {"size": parts.netloc or "tiny", **values}


def resolve_model(source: ModelSource, progress: Any = None) -> str:
    """A local folder holding the model of `source` on this host (built or downloaded once)."""
    if source.is_toy:
        return str(_toy(source.name, progress))
    if source.name.startswith("s3://"):
        return str(_from_s3(source))
    local = source.name.removeprefix("file://")
    if os.path.isdir(local):
        return local
    if source.name.startswith("file://"):
        raise FileNotFoundError(f"{source.name}: no such folder on this host")
    return _from_hub(source)


def _toy(name: str, progress: Any) -> Path:
    import torch

    from limr_trainer.runtime.toy_model import ensure_toy_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model gains nothing from threads; on a busy machine they spin
    try:
        return ensure_toy_model(models_dir(), progress=progress, **parse_toy_uri(name))
    finally:
        torch.set_num_threads(threads)


def _cache_folder(kind: str, source: ModelSource) -> Path:
    key = f"{source.name}@{source.revision or ''}@{source.storage.endpoint or ''}"
    label = "".join(c if c.isalnum() or c in "-_." else "-" for c in source.name.rsplit("/", 1)[-1])[:40]
    return models_dir() / f"{kind}-{label}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _from_s3(source: ModelSource) -> Path:
    """Every object under the URI's prefix, downloaded once per host."""
    folder = _cache_folder("s3", source)
    done = folder / ".complete"
    if done.exists():
        return folder
    with locked(folder):
        if done.exists():
            return folder
        bucket, _, prefix = source.name.removeprefix("s3://").partition("/")
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        keys = source.storage.open(f"s3://{bucket}").get_dir(prefix.strip("/"), tmp)
        if not any(k.rsplit("/", 1)[-1] == "config.json" for k in keys):
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileNotFoundError(f"{source.name}: no config.json under this prefix: not a model folder")
        (tmp / ".complete").write_text(source.name + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    return folder


def _from_hub(source: ModelSource) -> str:
    """A hub snapshot at the revision (the hub's own cache; HF_HOME / HF_HUB_CACHE decide where)."""
    from huggingface_hub import snapshot_download

    return snapshot_download(source.name, revision=source.revision)


def as_source(model: ModelSource | str) -> ModelSource:
    """A ModelSource for a source or a plain name / local folder."""
    return model if isinstance(model, ModelSource) else ModelSource(str(model))


def tied_embeddings(model_dir: str) -> bool:
    """Whether the model in `model_dir` ties lm_head to the input embeddings (its config.json says)."""
    import json

    with open(os.path.join(model_dir, "config.json")) as handle:
        return bool(json.load(handle).get("tie_word_embeddings", False))
