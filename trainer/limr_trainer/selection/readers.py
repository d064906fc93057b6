"""Readers that stream rollout rewards into a `lim.TrajectoryAccumulator`.

- `read_records(uri, acc)`: our Parquet reward records (`.../epoch=EEEE/step=SSSSSS.parquet` under a
  storage prefix, local or s3://); only the epoch, prompt_id and correct columns are read
  (`correct` is the record's "reward is exactly +1" under LIMR's levels, whatever levels a job sets).
- `read_openrlhf(uri, acc, steps_per_epoch, max_epochs)`: LIMR's own OpenRLHF dumps, `step_N.json`
  files directly in a folder (steps numbered from 1; step N belongs to data epoch
  (N-1) // steps_per_epoch; only steps of the first `max_epochs` epochs are read). Each file is a
  JSON list of {prompt, response, reward, response_length}; prompts are keyed by their stripped
  text. The decoder (msgspec, a Struct without `response`) skips the response text without building
  strings, so time and memory do not grow with response length beyond the file's bytes.
"""

from __future__ import annotations

import operator
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

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
    """(prompts as written, rewards) of one `step_N.json` file's bytes (callers strip the prompts)."""
    try:
        rows = _DECODER.decode(data)
    except msgspec.DecodeError as e:
        raise InputError(
            f"{where}: not a list of {{prompt, response, reward, response_length}}: {e}"
        ) from None
    prompts = list(map(_PROMPT, rows))
    rewards = np.fromiter(map(_REWARD, rows), dtype=np.float64, count=len(rows))
    return prompts, rewards


_PROMPT = operator.attrgetter("prompt")
_REWARD = operator.attrgetter("reward")


class _FileReader:
    """Bytes of one dump at a time. Local files are read into one reused buffer (no per-file
    allocation, no page-fault storm); other storage returns the object's bytes."""

    def __init__(self, uri: str, storage) -> None:
        from .storage import parse_uri

        scheme, location, _ = parse_uri(uri)
        self._root = Path(location) if scheme == "file" else None
        self._storage = storage
        self._buf = bytearray()

    def read(self, key: str) -> bytes | memoryview:
        if self._root is None:
            return self._storage.get_bytes(key)
        with open(self._root / key, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if len(self._buf) < size:
                self._buf = bytearray(size)
            view = memoryview(self._buf)[:size]
            got = f.readinto(view)
            return view[:got]


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


def _read_steps(
    uri: str, steps: list[tuple[int, str]], acc: TrajectoryAccumulator, steps_per_epoch: int
) -> ReadStats:
    storage = _storage(uri)
    stats = ReadStats()
    reader = _FileReader(uri, storage)
    for step, key in steps:
        prompts, rewards = decode_openrlhf(reader.read(key), where=storage.uri(key))
        acc.add(prompts, (step - 1) // steps_per_epoch, rewards, normalize=str.strip)
        stats.files += 1
        stats.rollouts += len(prompts)
    return stats


def read_openrlhf(
    uri: str,
    acc: TrajectoryAccumulator,
    steps_per_epoch: int = 8,
    max_epochs: int | None = 21,
    workers: int = 1,
) -> ReadStats:
    """Stream LIMR dumps into `acc`; with workers > 1 the files are split over reader processes.

    Decoding JSON is the whole cost (msgspec skips responses at ~3 GB/s per core), so reader
    processes scale it; each returns only its counters (samples x epochs), merged here. When this
    process has a single thread, readers are forks (no interpreter start, no re-import) and this
    process reads the first share itself; otherwise every share goes to a fresh interpreter
    (`python -m limr_trainer.selection_readers`), which is safe from any thread.
    """
    steps = openrlhf_steps(uri, steps_per_epoch, max_epochs)
    workers = max(1, min(workers, len(steps) // 4))
    if workers == 1:
        return _read_steps(uri, steps, acc, steps_per_epoch)
    shares = [steps[w::workers] for w in range(workers)]
    if _can_fork():
        return _read_forked(uri, shares, acc, steps_per_epoch)
    return _read_subprocesses(uri, shares, acc, steps_per_epoch)


def _can_fork() -> bool:
    """Forking is safe only without other threads (a lock held by one would stay held in the child)."""
    return hasattr(os, "fork") and threading.active_count() == 1


def _fork_reader(uri: str, steps: list[tuple[int, str]], steps_per_epoch: int) -> tuple[int, int]:
    """(pid, read end of a pipe): a forked child reads `steps` and pickles
    ("ok", state, files) or ("error", exception) to the pipe, then exits without cleanup."""
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(w)
        return pid, r
    status = 1
    try:
        os.close(r)
        try:
            acc = TrajectoryAccumulator()
            stats = _read_steps(uri, steps, acc, steps_per_epoch)
            payload: tuple = ("ok", acc.state(), stats.files)
        except Exception as e:  # noqa: BLE001 - handed to the parent, which raises it
            payload = ("error", e if _picklable(e) else InputError(f"{type(e).__name__}: {e}"))
        with os.fdopen(w, "wb") as f:
            pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
        status = 0
    finally:
        os._exit(status)


def _picklable(e: Exception) -> bool:
    try:
        pickle.loads(pickle.dumps(e))
    except Exception:  # noqa: BLE001
        return False
    return True


def _read_forked(
    uri: str, shares: list[list[tuple[int, str]]], acc: TrajectoryAccumulator, steps_per_epoch: int
) -> ReadStats:
    pending = [_fork_reader(uri, share, steps_per_epoch) for share in shares[1:]]
    try:
        stats = _read_steps(uri, shares[0], acc, steps_per_epoch)
        error: Exception | None = None
        while pending:
            pid, fd = pending[0]
            with os.fdopen(fd, "rb") as f:
                pending[0] = (pid, -1)
                data = f.read()
            _, status = os.waitpid(pid, 0)
            pending.pop(0)
            payload = pickle.loads(data) if data and status == 0 else None
            if payload is None or payload[0] == "error":
                if error is None:
                    error = payload[1] if payload else InputError(f"reader process failed ({status=})")
                continue
            _, state, files = payload
            acc.merge(state)
            stats.files += files
            stats.rollouts += state[4]
        if error is not None:
            raise error
        return stats
    finally:
        for pid, fd in pending:  # only after a failure here: stop and reap the children we started
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
            if fd >= 0:
                os.close(fd)


def _read_subprocesses(
    uri: str, shares: list[list[tuple[int, str]]], acc: TrajectoryAccumulator, steps_per_epoch: int
) -> ReadStats:
    procs = []
    for share in shares:
        job = pickle.dumps((uri, share, steps_per_epoch))
        proc = subprocess.Popen(
            [sys.executable, "-m", "limr_trainer.selection_readers"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_reader_env(),
        )
        procs.append((proc, job))
    stats = ReadStats()
    errors = []
    for proc, job in procs:
        out, err = proc.communicate(job)
        if proc.returncode != 0:
            errors.append(
                err.decode(errors="replace").strip().splitlines()[-1:] or [f"reader exited {proc.returncode}"]
            )
            continue
        state, files = pickle.loads(out)
        acc.merge(state)
        stats.files += files
        stats.rollouts += state[4]
    if errors:
        raise InputError("; ".join(e[0].removeprefix("InputError: ") for e in errors))
    return stats


def _reader_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    paths = [root] + [p for p in sys.path if p and os.path.isdir(p)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def _reader_main() -> int:
    """Reader process: (uri, steps, steps_per_epoch) pickled on stdin -> (state, files) on stdout."""
    uri, steps, steps_per_epoch = pickle.loads(sys.stdin.buffer.read())
    acc = TrajectoryAccumulator()
    try:
        stats = _read_steps(uri, steps, acc, steps_per_epoch)
    except InputError as e:
        print(f"InputError: {e}", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(pickle.dumps((acc.state(), stats.files)))
    return 0


if __name__ == "__main__":
    raise SystemExit(_reader_main())


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
            table = pq.read_table(
                pa.BufferReader(storage.get_bytes(key)), columns=["epoch", "prompt_id", "correct"]
            )
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
            # `correct` is "reward exactly +1" under LIMR's levels, and stays right if a job changes them
            table.column("correct").to_numpy(zero_copy_only=False).astype(np.float64),
        )
        stats.files += 1
        stats.rollouts += table.num_rows
    return stats
