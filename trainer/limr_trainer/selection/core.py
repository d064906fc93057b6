"""The one Selection: reward trajectories -> scores (LIM / linear / random) -> the training subsets.

`limr select` and the pipeline's Selection step both call `run_selection`, so they write the same
files with the same success criterion (each reader's, see `readers`) and the same summary:

    summary.json       strategy, threshold, counts, mean curve, and the digest of every other file
    scores.jsonl       one line per scored sample: key, id, score, lim_score, linear_score, selected,
                       trajectory
    selected.json      the selected dataset records (JSON list, dataset order), or their keys
    arms/random.json   (with arms) a seeded uniform sample of the selection's size
    arms/linear.json   (with arms) the same number of samples with the best linear-progress scores
    trajectories.png, score_histogram.png

Everything is built in memory first (bad input raises InputError and writes nothing); then the
set is committed: the old summary.json goes first, the other files next, the new summary.json
last. A reader takes a selection only through its summary.json and can check each file's digest,
so it never mixes an old file with a new one.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from limr_trainer.storage import Storage, StorageSettings
from limr_trainer.storage.base import json_bytes

from .lim import TrajectoryAccumulator, linear_scores, random_choice, select
from .plots import BackgroundPlots
from .readers import InputError, open_input, read_openrlhf, read_records

SUMMARY = "summary.json"
SCORES = "scores.jsonl"
SELECTED = "selected.json"
ARMS = ("random", "linear")
TRAJECTORIES_PNG = "trajectories.png"
HISTOGRAM_PNG = "score_histogram.png"
FORMATS = ("limr", "openrlhf", "verl")


@dataclass
class SelectionConfig:
    """What a selection does, as data (the CLI's flags; the pipeline builds one from the job)."""

    input: str
    output: str = ""
    strategy: str = "lim"
    threshold: float | None = None
    size: int | None = None
    seed: int = 0
    format: str = "limr"
    steps_per_epoch: int = 8
    max_epochs: int | None = None
    prompts: str | None = None
    workers: int | None = None
    no_plots: bool = False
    arms: bool = False
    success_threshold: float | None = None  # verl without `acc`: score >= this counts as correct
    settings: StorageSettings = field(default_factory=StorageSettings)


def record_key(row: dict[str, Any], fmt: str) -> str:
    """How a dataset record is matched to trajectories: its id (limr) or stripped prompt text."""
    return str(row["id"]) if fmt == "limr" else str(row["prompt"]).strip()


def check_config(config: SelectionConfig) -> None:
    """Refuse settings that would give a silent wrong result (the CLI's and the job's)."""
    from limr_api.cliargs import MAX_WORKERS
    from limr_api.constants import INT32_MAX

    from .lim import STRATEGIES

    if config.format not in FORMATS:
        raise InputError(f"unknown format {config.format!r}: expected one of {', '.join(FORMATS)}")
    if config.strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {config.strategy!r}: expected one of {', '.join(STRATEGIES)}")
    for name, minimum, maximum in (("steps_per_epoch", 1, INT32_MAX), ("max_epochs", 1, INT32_MAX),
                                   ("size", 1, INT32_MAX), ("workers", 1, MAX_WORKERS), ("seed", 0, INT32_MAX)):
        value = getattr(config, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise InputError(f"--{name.replace('_', '-')} must be an integer in [{minimum}, {maximum}], got {value!r}")
    for name in ("threshold", "success_threshold"):
        value = getattr(config, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not np.isfinite(value)):
            raise InputError(f"--{name.replace('_', '-')} must be a finite number, got {value!r}")
    if config.threshold is not None:
        if config.threshold > 1.0:
            raise InputError(f"--threshold {config.threshold:g} would select nothing: scores are at most 1")
        if config.strategy == "linear" and config.threshold < 0.0:
            raise InputError("--threshold: linear scores are R^2 in [0, 1]")
    if config.size is not None and config.strategy != "random":
        raise InputError("--size applies to --strategy random only (lim and linear select by threshold)")


def accumulate(config: SelectionConfig) -> tuple[TrajectoryAccumulator, Any, int | None]:
    """Read the input into per-sample counters: (accumulator, read stats, epochs limit)."""
    from limr_trainer.runtime.procpool import usable_cpus

    storage = open_input(config.input, config.settings)
    acc = TrajectoryAccumulator()
    if config.format == "limr":
        return acc, read_records(storage, acc, config.max_epochs), config.max_epochs
    max_epochs = 21 if config.max_epochs is None and config.format == "openrlhf" else config.max_epochs
    workers = config.workers or usable_cpus()
    if config.format == "openrlhf":
        stats = read_openrlhf(storage, acc, config.steps_per_epoch, max_epochs, workers, config.settings)
    else:
        from .verl import read_verl

        stats = read_verl(storage, acc, config.steps_per_epoch, max_epochs, workers, config.settings,
                          config.success_threshold)
    return acc, stats, max_epochs


def build_outputs(config: SelectionConfig, prompts: list[dict[str, Any]] | None = None) -> dict[str, bytes]:
    """Read, score and select; the output files (name -> bytes), summary.json included."""
    check_config(config)
    if prompts is None and config.prompts:
        from .prompts import load_prompts

        prompts = load_prompts(config.prompts)
    with BackgroundPlots(enabled=not config.no_plots) as plots:  # imports matplotlib while we read
        return _build(config, prompts, plots)


def _build(config: SelectionConfig, prompts: list[dict[str, Any]] | None, plots: BackgroundPlots) -> dict[str, bytes]:
    started = time.monotonic()
    acc, stats, max_epochs = accumulate(config)
    result = select(acc.trajectories(max_epochs), config.strategy, config.threshold, config.size, config.seed)
    key_field = "prompt_id" if config.format == "limr" else "prompt"
    linear = linear_scores(result.values)
    chosen = set(result.selected)
    ids: dict[str, str] = {}
    if prompts is not None:
        for row in prompts:
            ids.setdefault(record_key(row, config.format), str(row["id"]))
        missing = [k for k in result.selected if k not in ids]
        if missing:
            raise InputError(f"{len(missing)} of the {len(result.selected)} selected samples are not in the prompts "
                             f"(matched by {'id' if config.format == 'limr' else 'prompt text'}; e.g. "
                             f"{missing[0][:80]!r}): the records belong to another dataset")
    lines = []
    for i, key in enumerate(result.keys):
        line: dict[str, Any] = {key_field: key}
        if key in ids:
            line["id"] = ids[key]
        line.update(score=float(result.scores[i]), lim_score=float(result.lim_scores[i]),
                    linear_score=float(linear[i]), selected=key in chosen,
                    trajectory=[round(float(v), 6) for v in result.values[i]])
        lines.append(json_bytes(line))
    if prompts is not None:
        selected_rows: list[dict[str, Any]] = [r for r in prompts if record_key(r, config.format) in chosen]
    else:
        selected_rows = [{key_field: k} for k in result.selected]
    files: dict[str, bytes] = {
        SCORES: b"".join(line + b"\n" for line in lines),
        SELECTED: json_bytes(selected_rows, indent=1),
    }
    size = len(result.selected)
    if config.arms:
        files["arms/random.json"] = json.dumps({
            "how": f"uniform sample of {size} of the {len(acc.keys)} samples seen, seed {config.seed}",
            "keys": random_choice(acc.keys, size, config.seed)}).encode()
        files["arms/linear.json"] = json.dumps({
            "how": f"the {size} kept samples with the highest linear-progression score (R^2, slope > 0)",
            "keys": top_by_score(result.keys, linear, size)}).encode()
    if not config.no_plots:
        label = {"lim": "LIM", "linear": "linear", "random": "LIM (random selection)"}[result.strategy]
        files.update(plots.render({
            TRAJECTORIES_PNG: ("trajectories", {"values": result.values, "scores": result.lim_scores,
                                                "mean_curve": result.mean_curve, "epochs": result.epochs}),
            HISTOGRAM_PNG: ("histogram", {"scores": result.scores, "threshold": result.threshold, "selected": size,
                                          "title": f"{label} scores ({len(result.keys)} scored)"}),
        }))
    summary = {
        "strategy": result.strategy,
        "threshold": result.threshold,
        "total": len(acc.keys),
        "scored": len(result.keys),
        "selected": size,
        "dropped": len(result.dropped),
        "selected_records": len(selected_rows),
        "epochs": len(result.epochs),
        "rollouts": stats.rollouts,
        "record_files": stats.files,
        "format": config.format,
        "size": result.size,
        "seed": result.seed if result.seed is not None else config.seed,
        "mean_curve": [round(float(v), 6) for v in result.mean_curve.tolist()],
        "seconds": round(time.monotonic() - started, 3),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    files[SUMMARY] = json.dumps(summary, indent=2).encode()
    return files


def top_by_score(keys: list[str], scores: np.ndarray, size: int) -> list[str]:
    """The `size` keys with the highest scores (ties: first seen), returned in input order."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:size]
    chosen = {int(i) for i in order}
    return [k for i, k in enumerate(keys) if i in chosen]


def commit(storage: Storage, prefix: str, files: dict[str, bytes]) -> None:
    """Write the set so that no reader mixes old and new files: old summary out, files, summary last."""
    summary_key = prefix + SUMMARY
    if storage.exists(summary_key):
        storage.delete(summary_key)
    for name, data in files.items():
        if name != SUMMARY:
            storage.put_bytes(prefix + name, data)
    storage.put_bytes(summary_key, files[SUMMARY])


def read_selection(storage: Storage, prefix: str = "", verify: bool = True) -> dict[str, Any]:
    """summary.json of a committed selection; with `verify`, every file's digest is checked."""
    summary = storage.get_json(prefix + SUMMARY)
    if verify:
        for name, digest in (summary.get("files") or {}).items():
            data = storage.get_bytes(prefix + name)
            if hashlib.sha256(data).hexdigest() != digest:
                raise InputError(f"{storage.uri(prefix + name)} does not belong to {storage.uri(prefix + SUMMARY)} "
                                 "(a selection was interrupted while it was written): run the selection again")
    return summary


def run_selection(config: SelectionConfig, prompts: list[dict[str, Any]] | None = None,
                  storage: Storage | None = None, prefix: str = "") -> dict[str, Any]:
    """Build every output, then commit the set under `config.output` (or `storage` + `prefix`)."""
    files = build_outputs(config, prompts)
    target = storage if storage is not None else open_output(config.output, config.settings)
    commit(target, prefix, files)
    return json.loads(files[SUMMARY])


def open_output(uri: str, settings: StorageSettings) -> Storage:
    from limr_trainer.storage import StorageError

    try:
        return settings.open(uri)
    except StorageError as exc:
        raise InputError(str(exc)) from None


def subset_keys(storage: Storage, prefix: str, arm: str) -> list[str]:
    """The keys an arm trains on: lim = the selection, random / linear = same-size subsets."""
    read_selection(storage, prefix)
    if arm == "lim":
        rows = json.loads(storage.get_bytes(prefix + SELECTED))
        return [str(r.get("id", r.get("prompt_id"))) for r in rows]
    if arm in ARMS:
        return [str(k) for k in storage.get_json(prefix + f"arms/{arm}.json")["keys"]]
    raise ValueError(f"arm {arm!r} has no subset (expected lim, random or linear)")
