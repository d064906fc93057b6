"""Readers that stream rollout rewards into a `lim.TrajectoryAccumulator`.

- `read_records(uri, acc)`: our Parquet reward records (`.../epoch=EEEE/step=SSSSSS.parquet` under a
  storage prefix, local or s3://); only the epoch, prompt_id and reward columns are read.
- `read_openrlhf(uri, acc, steps_per_epoch, max_epochs)`: LIMR's own OpenRLHF dumps, `step_N.json`
  files directly in a folder (steps numbered from 1; step N belongs to data epoch
  (N-1) // steps_per_epoch; only steps of the first `max_epochs` epochs are read). Each file is a
  JSON list of {prompt, response, reward, response_length}; prompts are keyed by their stripped
  text. The decoder (msgspec, a Struct without `response`) skips the response text without building
  strings, so time and memory do not grow with response length beyond the file's bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import msgspec
import numpy as np

from .lim import TrajectoryAccumulator

_RECORD_KEY = re.compile(r"(?:^|/)epoch=(\d+)/step=(\d+)\.parquet$")
_STEP_KEY = re.compile(r"^step_(\d+)\.json$")


class InputError(ValueError):
    """Input that cannot be read as the format it claims to be (exit code 2)."""


@dataclass
class ReadStats:
    files: int = 0
    rollouts: int = 0


class _Rollout(msgspec.Struct, gc=False):
    prompt: str
    reward: float


_DECODER = msgspec.json.Decoder(list[_Rollout])


def _storage(uri: str):
    from .storage import open_storage

    return open_storage(uri)


def decode_openrlhf(data: bytes | memoryview, where: str = "") -> tuple[list[str], np.ndarray]:
    """(stripped prompts, rewards) of one `step_N.json` file's bytes."""
    try:
        rows = _DECODER.decode(data)
    except msgspec.DecodeError as e:
        raise InputError(f"{where}: not a list of {{prompt, response, reward, response_length}}: {e}") from None
    prompts = [r.prompt.strip() for r in rows]
    rewards = np.fromiter((r.reward for r in rows), dtype=np.float64, count=len(rows))
    return prompts, rewards


def openrlhf_steps(uri: str, steps_per_epoch: int, max_epochs: int | None) -> list[tuple[int, str]]:
    """(step, key) of the dump files to read, in step order."""
    if steps_per_epoch < 1:
        raise InputError(f"--steps-per-epoch must be >= 1, got {steps_per_epoch}")
    out = []
    for key in _storage(uri).list(""):
        m = _STEP_KEY.match(key)
        if not m:
            continue
        step = int(m.group(1))
        if step < 1:
            raise InputError(f"{key}: steps are numbered from 1")
        if max_epochs is None or (step - 1) // steps_per_epoch < max_epochs:
            out.append((step, key))
    if not out:
        raise InputError(f"{uri}: no step_N.json files")
    return sorted(out)


def read_openrlhf(
    uri: str, acc: TrajectoryAccumulator, steps_per_epoch: int = 8, max_epochs: int | None = 21
) -> ReadStats:
    storage = _storage(uri)
    stats = ReadStats()
    for step, key in openrlhf_steps(uri, steps_per_epoch, max_epochs):
        prompts, rewards = decode_openrlhf(storage.get_bytes(key), where=storage.uri(key))
        acc.add(prompts, (step - 1) // steps_per_epoch, rewards)
        stats.files += 1
        stats.rollouts += len(prompts)
    return stats


def record_keys(uri: str) -> list[str]:
    keys = sorted(k for k in _storage(uri).list("") if _RECORD_KEY.search(k))
    if not keys:
        raise InputError(f"{uri}: no reward records (epoch=EEEE/step=SSSSSS.parquet)")
    return keys


def read_records(uri: str, acc: TrajectoryAccumulator, max_epochs: int | None = None) -> ReadStats:
    """Stream our Parquet records; with `max_epochs`, files of later epochs (by path) are skipped."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    storage = _storage(uri)
    keys = record_keys(uri)
    if max_epochs is not None:
        epochs = sorted({int(_RECORD_KEY.search(k).group(1)) for k in keys})[:max_epochs]  # type: ignore[union-attr]
        keys = [k for k in keys if int(_RECORD_KEY.search(k).group(1)) in set(epochs)]  # type: ignore[union-attr]
    stats = ReadStats()
    for key in keys:
        try:
            table = pq.read_table(pa.BufferReader(storage.get_bytes(key)), columns=["epoch", "prompt_id", "reward"])
        except (pa.ArrowInvalid, KeyError) as e:
            raise InputError(f"{storage.uri(key)}: not a reward-record Parquet file: {e}") from None
        if table.num_rows == 0:
            stats.files += 1
            continue
        ids = table.column("prompt_id").combine_chunks().dictionary_encode()
        acc.add_coded(
            ids.dictionary.to_pylist(),
            ids.indices.to_numpy(zero_copy_only=False),
            table.column("epoch").to_numpy(),
            table.column("reward").to_numpy(),
        )
        stats.files += 1
        stats.rollouts += table.num_rows
    return stats
