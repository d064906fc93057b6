"""DeepSpeed checkpoints that go to storage file by file, never staged whole on the pod's disk.

DeepSpeed writes a checkpoint through its `checkpoint_engine` (`save(state_dict, path)` per file: the
model states, each rank's ZeRO optimizer shard). This engine writes each file to a temporary local
path, uploads it to the job's storage under the same relative key and deletes it at once, so a
rank's local disk holds at most one file (for 7B actor + critic with fp32 Adam a whole checkpoint
is ~200 GB). Loading downloads what this rank reads: the model states and its own ZeRO shard
(DeepSpeed looks for the files on disk before it asks the engine to load them); they are removed
with the scratch folder once the checkpoint is loaded.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from limr_trainer.storage import ObjectNotFound, StorageRoot


def _engine_class() -> type:
    from deepspeed.runtime.checkpoint_engine.torch_checkpoint_engine import TorchCheckpointEngine

    class StreamingCheckpointEngine(TorchCheckpointEngine):
        """TorchCheckpointEngine whose files live in storage (see the module docstring)."""

        def __init__(self, storage: Any, prefix: str, local: str, inner: Any):
            super().__init__(None)
            self.storage, self.prefix, self.local, self.inner = storage, prefix, local, inner
            self.uploaded: list[str] = []

        def _key(self, path: str) -> str:
            return self.prefix + os.path.relpath(path, self.local).replace(os.sep, "/")

        def makedirs(self, path: str, exist_ok: bool = False) -> None:
            os.makedirs(path, exist_ok=True)

        def save(self, state_dict: Any, path: str) -> None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            super().save(state_dict, path)
            try:
                self.storage.put_file(self._key(path), path)
                self.uploaded.append(self._key(path))
            finally:
                os.unlink(path)

        def load(self, path: str, map_location: Any = None) -> Any:
            if not os.path.exists(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                try:
                    self.storage.get_file(self._key(path), path)
                except ObjectNotFound:
                    raise FileNotFoundError(f"no checkpoint file {self.storage.uri(self._key(path))}") from None
            return super().load(path, map_location=map_location)  # DeepSpeed may read a file twice

    return StreamingCheckpointEngine


@contextmanager
def streaming_checkpoints(engine: Any, root: StorageRoot, prefix: str) -> Iterator[str]:
    """`with streaming_checkpoints(engine, root, prefix) as folder: engine.save_checkpoint(folder, tag)`:
    the engine's files go to `prefix` in storage as they are written; yields the scratch folder."""
    local = tempfile.mkdtemp(prefix="limr-ckpt-")
    original = engine.checkpoint_engine
    engine.checkpoint_engine = _engine_class()(root.open(), prefix, local, original)
    try:
        yield local
    finally:
        engine.checkpoint_engine = original
        shutil.rmtree(local, ignore_errors=True)


_ZERO_SHARD = re.compile(r"(?:^|/)(?:bf16_)?zero_pp_rank_(\d+)_mp_rank_\d+_optim_states\.pt$")


def files_for_rank(keys: list[str], rank: int) -> list[str]:
    """The checkpoint files one data-parallel rank reads back: all but the other ranks' ZeRO shards."""
    out = []
    for key in keys:
        match = _ZERO_SHARD.search(key)
        if match is None or int(match.group(1)) == rank:
            out.append(key)
    return out


def fetch_for_load(root: StorageRoot, prefix: str, local: str, rank: int) -> int:
    """Download this rank's files of the checkpoint under `prefix` into `local`; how many."""
    storage = root.open()
    keys = files_for_rank(storage.list(prefix), rank)
    for key in keys:
        target = os.path.join(local, key[len(prefix):])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        storage.get_file(key, target)
    return len(keys)
