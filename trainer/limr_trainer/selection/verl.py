"""verl's rollout dumps (`trainer.rollout_data_dir`) as reward trajectories.

verl (`RayPPOTrainer._dump_generations`) writes one `<step>.jsonl` per training step, steps numbered
from 1, one JSON line per rollout: `input` (the decoded prompt), `output`, `gts`, `score` (the reward
function's value, before any KL term), `step`, then the reward function's extra fields (e.g. `acc`,
`pred`). Step N belongs to data epoch (N - 1) // steps_per_epoch.

- A sample is its prompt: lines are grouped by the stripped `input` text. With verl's default
  `trainer.balance_batch` the rollouts of one prompt are not adjacent; grouping by text does not
  care, and no `uid` is dumped to group by.
- What counts as correct (the paper's "reward exactly +1"): the line's `acc` when it has one
  (`true`, or a number >= 1), else `score >= success_threshold` (default 1.0, right for rewards of
  +1 / 0 and +1 / -1). `acc: null` counts as absent.
- A line's `step`, when present, must be its file's step (a renamed or mixed-up file is refused).
Only `input`, `score`, `step` and `acc` are decoded (msgspec skips `output` and the rest without
building strings), and the files are read in shares over forked readers, as LIMR's own dumps are.
Every error is an `InputError` naming the file and the line.
"""

from __future__ import annotations

import functools
import json
import math
import re

import msgspec
import numpy as np

from limr_trainer.storage import Storage, StorageSettings

from .lim import TrajectoryAccumulator
from .readers import InputError, ReadStats, _FileReader, numbered_files, open_input, read_in_shares

DEFAULT_SUCCESS_THRESHOLD = 1.0
_STEP_FILE = re.compile(r"^(\d+)\.jsonl$")


class _Rollout(msgspec.Struct, gc=False):
    input: str
    score: float
    step: int | None = None
    acc: bool | float | None = None


_DECODER = msgspec.json.Decoder(_Rollout)


def verl_steps(source: str | Storage, steps_per_epoch: int, max_epochs: int | None) -> list[tuple[int, str]]:
    """(step, key) of the `<step>.jsonl` files to read, in step order."""
    return numbered_files(open_input(source), _STEP_FILE, "<step>.jsonl", steps_per_epoch, max_epochs)


def successes(rollouts: list[_Rollout], success_threshold: float) -> np.ndarray:
    """1.0 where a rollout counts as correct (`acc` when present, else the score threshold), else 0.0."""
    out = np.empty(len(rollouts), dtype=np.float64)
    for i, r in enumerate(rollouts):
        acc = r.acc
        if acc is None:
            out[i] = 1.0 if r.score >= success_threshold else 0.0
        else:
            out[i] = 1.0 if acc is True or (acc is not False and acc >= 1.0) else 0.0
    return out


def decode_verl(data: bytes | memoryview, step: int, where: str = "") -> list[_Rollout]:
    """The rollouts of one `<step>.jsonl` file, checked (finite score and acc, the file's step)."""
    try:
        rows = _DECODER.decode_lines(data)
    except msgspec.DecodeError:
        _raise_at_line(bytes(data), where)
        raise  # pragma: no cover - _raise_at_line always raises
    for r in rows:
        bad = not math.isfinite(r.score) or (isinstance(r.acc, float) and not math.isfinite(r.acc))
        if bad or (r.step is not None and r.step != step):
            _raise_at_line(bytes(data), where, step)
    return rows


def _raise_at_line(data: bytes, where: str, step: int | None = None) -> None:
    """Find the first bad line and raise an InputError naming it (the slow path, errors only)."""
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        at = f"{where}:{number}"
        try:
            row = _DECODER.decode(line)
        except msgspec.DecodeError as exc:
            try:  # Python's json reads NaN / Infinity, which verl's json.dumps writes for a nan score
                raw = json.loads(line)
            except (ValueError, RecursionError):
                raise InputError(f"{at}: not a JSON object of a verl rollout ({exc})") from None
            for name in ("score", "acc"):
                value = raw.get(name) if isinstance(raw, dict) else None
                if isinstance(value, float) and not math.isfinite(value):
                    raise InputError(f"{at}: {name} {value} is not a finite number") from None
            raise InputError(f"{at}: not a verl rollout line with input (text) and score (number): {exc}") from None
        for name in ("score", "acc"):
            value = getattr(row, name)
            if isinstance(value, float) and not math.isfinite(value):
                raise InputError(f"{at}: {name} {value} is not a finite number")
        if step is not None and row.step is not None and row.step != step:
            raise InputError(f"{at}: step {row.step} in the file of step {step} (its name)")
    raise InputError(f"{where}: not a JSON-lines verl rollout dump")


def _read_steps(uri: str, settings: StorageSettings | None, steps: list[tuple[int, str]], steps_per_epoch: int,
                success_threshold: float = DEFAULT_SUCCESS_THRESHOLD) -> tuple[tuple, int]:
    """(accumulator state, files read) of one share of the dumps (runs in a forked reader too)."""
    storage = open_input(uri, settings)
    acc = TrajectoryAccumulator()
    reader = _FileReader(storage)
    for step, key in steps:
        rollouts = decode_verl(reader.read(key), step, where=storage.uri(key))
        acc.add([r.input for r in rollouts], (step - 1) // steps_per_epoch, successes(rollouts, success_threshold),
                normalize=str.strip)
    return acc.state(), len(steps)


def read_verl(source: str | Storage, acc: TrajectoryAccumulator, steps_per_epoch: int = 8,
              max_epochs: int | None = None, workers: int = 1, settings: StorageSettings | None = None,
              success_threshold: float | None = None) -> ReadStats:
    """Stream verl's `<step>.jsonl` dumps into `acc`, over `workers` reader processes."""
    threshold = DEFAULT_SUCCESS_THRESHOLD if success_threshold is None else float(success_threshold)
    if not math.isfinite(threshold):
        raise InputError(f"--success-threshold must be a finite number, got {success_threshold!r}")
    storage = open_input(source, settings)
    steps = verl_steps(storage, steps_per_epoch, max_epochs)
    read = functools.partial(_read_steps, success_threshold=threshold)
    return read_in_shares(read, storage.uri(), settings, steps, steps_per_epoch, acc, workers)
