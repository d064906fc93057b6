"""Readers that stream rollout outcomes into a `lim.TrajectoryAccumulator`, checking what they read.

What counts as a success (the paper's "reward exactly +1") is decided per format:
- `limr` (ours): Parquet reward records `[<step>/rewards/]epoch=EEEE/step=SSSSSS.parquet` of ONE step
  of a job (local or s3://). Success is the `correct` column (right whatever reward levels a job set).
  Each file is checked against the record schema (types, no nulls), its rows' epoch and step
  against its path, and (prompt_id, sample) unique within the step; records of two different
  steps (e.g. a job's baseline and its retrain arms) are refused, not merged.
- `openrlhf` (LIMR's own dumps): `step_N.json` files in a folder (steps numbered from 1, one file
  per step; step N belongs to data epoch (N-1) // steps_per_epoch), each a JSON list of
  {prompt, response, reward, response_length}; prompts keyed by their stripped text; success is
  reward == 1.0 (LIMR's levels). The decoder (msgspec, a Struct without `response`) skips the
  response text without building strings, so time and memory do not grow with response length.
- `verl` (`trainer.rollout_data_dir`): see `verl.py`.
Every error is an `InputError` naming the file (and the column or line).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

from limr_trainer.runtime.procpool import ForkedCall
from limr_trainer.storage import Storage, StorageError, StorageSettings
from limr_trainer.storage import parse_uri as parse_storage_uri

from .lim import TrajectoryAccumulator

_RECORD_KEY = re.compile(r"^(?:(?P<step>.*)/)?epoch=(?P<epoch>\d{4})/step=(?P<num>\d{6})\.parquet$")
_RECORD_LIKE = re.compile(r"(?:^|/)epoch=[^/]*/step=[^/]*\.parquet$")
_STEP_FILE = re.compile(r"^step_(\d+)\.json$")


class InputError(ValueError):
    """Input that cannot be read as the format it claims to be (exit code 2)."""


@dataclass
class ReadStats:
    files: int = 0
    rollouts: int = 0


def open_input(source: str | Storage, settings: StorageSettings | None = None) -> Storage:
    """The storage root of an input (a URI or path, opened with `settings`; or a Storage as is)."""
    if isinstance(source, Storage):
        return source
    try:
        return (settings or StorageSettings()).open(source)
    except StorageError as exc:
        raise InputError(str(exc)) from None


# ----------------------------------------------------------------------------------- our records


def record_files(source: str | Storage) -> list[tuple[int, int, str]]:
    """(epoch, step, key) of every reward-record file under the root, of one job step only."""
    storage = open_input(source)
    found: list[tuple[int, int, str]] = []
    owners: dict[str, str] = {}
    for key in storage.list(""):
        if not key.endswith(".parquet"):
            continue
        match = _RECORD_KEY.match(key)
        if match is None:
            if _RECORD_LIKE.search(key):
                raise InputError(f"{storage.uri(key)}: not a reward-record path "
                                 "(expected .../epoch=EEEE/step=SSSSSS.parquet)")
            continue
        owners.setdefault(match.group("step") or "", key)
        found.append((int(match.group("epoch")), int(match.group("num")), key))
    if not found:
        raise InputError(f"{storage.uri()}: no reward records (epoch=EEEE/step=SSSSSS.parquet)")
    if len(owners) > 1:
        a, b = sorted(owners)[:2]
        raise InputError(f"{storage.uri()}: records of more than one job step ({a or '.'!r} and {b or '.'!r}): "
                         f"point --input at one step's folder, e.g. {storage.uri(a or '')}")
    by_step: dict[int, str] = {}
    for _, num, key in found:
        if num in by_step:
            raise InputError(f"{storage.uri(key)}: step {num} also recorded in {storage.uri(by_step[num])}")
        by_step[num] = key
    return sorted(found)


def check_record_table(table, epoch: int, step: int, where: str):
    """The table's (prompt ids, success) after the schema, path and uniqueness checks."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from limr_trainer.data.records import RecordError, validate

    try:
        table = validate(table, reward_values=None)
    except RecordError as exc:
        raise InputError(f"{where}: {exc}") from None
    if table.num_rows == 0:
        return table
    for column, expected in (("epoch", epoch), ("step", step)):
        values = pc.unique(table.column(column)).to_pylist()
        if values != [expected]:
            bad = next(v for v in values if v != expected)
            raise InputError(f"{where}: column {column}: value {bad} in a file of {column} {expected} (its path)")
    pairs = pa.table({"p": table.column("prompt_id"), "s": table.column("sample")})
    if pairs.group_by(["p", "s"]).aggregate([]).num_rows != table.num_rows:
        counts = pairs.group_by(["p", "s"]).aggregate([("p", "count")])
        dup = counts.filter(pc.greater(counts.column("p_count"), 1)).slice(0, 1).to_pylist()[0]
        raise InputError(f"{where}: columns prompt_id, sample: ({dup['p']!r}, {dup['s']}) appears more than once")
    return table


def read_records(source: str | Storage, acc: TrajectoryAccumulator, max_epochs: int | None = None) -> ReadStats:
    """Stream our Parquet records into `acc`; with `max_epochs`, only the first N epochs' files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    storage = open_input(source)
    files = record_files(storage)
    if max_epochs is not None:
        keep = set(sorted({e for e, _, _ in files})[:max_epochs])
        files = [f for f in files if f[0] in keep]
    stats = ReadStats()
    for epoch, step, key in files:
        where = storage.uri(key)
        try:
            table = pq.read_table(pa.BufferReader(storage.get_bytes(key)))
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{where}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
        except StorageError as exc:
            raise InputError(str(exc)) from None
        table = check_record_table(table, epoch, step, where)
        stats.files += 1
        if table.num_rows == 0:
            continue
        ids = table.column("prompt_id").combine_chunks().dictionary_encode()
        acc.add_coded(ids.dictionary.to_pylist(), ids.indices.to_numpy(zero_copy_only=False), epoch,
                      table.column("correct").to_numpy(zero_copy_only=False).astype(np.float64))
        stats.rollouts += table.num_rows
    return stats


# ---------------------------------------------------------------------------- LIMR's OpenRLHF dumps


class _Rollout(msgspec.Struct, gc=False):
    prompt: str
    reward: float


_DECODER = msgspec.json.Decoder(list[_Rollout])
_PROMPT = operator.attrgetter("prompt")
_REWARD = operator.attrgetter("reward")


def decode_openrlhf(data: bytes | memoryview, where: str = "") -> tuple[list[str], np.ndarray]:
    """(prompts as written, rewards) of one `step_N.json` file's bytes (callers strip the prompts)."""
    try:
        rows = _DECODER.decode(data)
    except msgspec.DecodeError as e:
        raise InputError(f"{where}: not a list of {{prompt, response, reward, response_length}}: {e}") from None
    prompts = list(map(_PROMPT, rows))
    rewards = np.fromiter(map(_REWARD, rows), dtype=np.float64, count=len(rows))
    if not np.isfinite(rewards).all():
        bad = int(np.flatnonzero(~np.isfinite(rewards))[0])
        raise InputError(f"{where}: rollout {bad}: reward {rewards[bad]} is not a finite number")
    return prompts, rewards


class _FileReader:
    """Bytes of one dump at a time. Local files are read into one reused buffer (no per-file
    allocation, no page-fault storm); other storage returns the object's bytes."""

    def __init__(self, storage: Storage) -> None:
        scheme, location, _ = parse_storage_uri(storage.uri())
        self._root = Path(location) if scheme == "file" else None
        self._storage = storage
        self._buf = bytearray()

    def read(self, key: str) -> bytes | memoryview:
        if self._root is None:
            return self._storage.get_bytes(key)
        import os

        with open(self._root / key, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if len(self._buf) < size:
                self._buf = bytearray(size)
            view = memoryview(self._buf)[:size]
            got = f.readinto(view)
            return view[:got]


def numbered_files(storage: Storage, pattern: re.Pattern[str], what: str, steps_per_epoch: int,
                   max_epochs: int | None) -> list[tuple[int, str]]:
    """(step, key) of the step-numbered dump files directly under the root, in step order.

    Steps are numbered from 1; two names for one step (`step_01.json` beside `step_1.json`) are
    refused rather than both counted.
    """
    if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or steps_per_epoch < 1:
        raise InputError(f"--steps-per-epoch must be an integer >= 1, got {steps_per_epoch!r}")
    seen: dict[int, str] = {}
    for key in storage.list(""):
        m = pattern.match(key)
        if not m:
            continue
        step = int(m.group(1))
        if step < 1:
            raise InputError(f"{storage.uri(key)}: steps are numbered from 1")
        if step in seen:
            raise InputError(f"{storage.uri(key)} and {seen[step]}: two files for step {step}")
        seen[step] = key
    out = [(step, key) for step, key in seen.items()
           if max_epochs is None or (step - 1) // steps_per_epoch < max_epochs]
    if not out:
        raise InputError(f"{storage.uri()}: no {what} files")
    return sorted(out)


def openrlhf_steps(source: str | Storage, steps_per_epoch: int, max_epochs: int | None) -> list[tuple[int, str]]:
    """(step, key) of the `step_N.json` files to read, in step order."""
    return numbered_files(open_input(source), _STEP_FILE, "step_N.json", steps_per_epoch, max_epochs)


def _read_steps(uri: str, settings: StorageSettings | None, steps: list[tuple[int, str]],
                steps_per_epoch: int) -> tuple[tuple, int]:
    """(accumulator state, files read) of one share of the dumps (runs in a forked reader too)."""
    storage = open_input(uri, settings)
    acc = TrajectoryAccumulator()
    reader = _FileReader(storage)
    for step, key in steps:
        prompts, rewards = decode_openrlhf(reader.read(key), where=storage.uri(key))
        acc.add(prompts, (step - 1) // steps_per_epoch, rewards, normalize=str.strip)
    return acc.state(), len(steps)


def read_in_shares(read: Callable[..., tuple[tuple, int]], uri: str, settings: StorageSettings | None,
                   steps: list[tuple[int, str]], steps_per_epoch: int, acc: TrajectoryAccumulator,
                   workers: int) -> ReadStats:
    """Split the files over `workers` readers (forked when this process has one thread; decoding JSON
    is the whole cost), each returning only its counters (samples x epochs), merged here."""
    workers = max(1, min(workers, len(steps) // 4))
    shares = [steps[w::workers] for w in range(workers)]
    calls = [ForkedCall(read).send(uri, settings, share, steps_per_epoch) for share in shares[1:]]
    stats = ReadStats()
    try:
        outcomes = [read(uri, settings, shares[0], steps_per_epoch)]
        outcomes += [call.result() for call in calls]
    finally:
        for call in calls:
            call.close()
    for state, files in outcomes:
        acc.merge(state)
        stats.files += files
        stats.rollouts += state[4]
    return stats


def read_openrlhf(source: str | Storage, acc: TrajectoryAccumulator, steps_per_epoch: int = 8,
                  max_epochs: int | None = 21, workers: int = 1,
                  settings: StorageSettings | None = None) -> ReadStats:
    """Stream LIMR dumps into `acc`, over `workers` reader processes."""
    storage = open_input(source, settings)
    steps = openrlhf_steps(storage, steps_per_epoch, max_epochs)
    return read_in_shares(_read_steps, storage.uri(), settings, steps, steps_per_epoch, acc, workers)
