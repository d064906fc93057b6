"""The Selection phase as a library: read reward trajectories, score (LIM / linear / random),
select, and write scores.jsonl, selected.json, summary.json and the plots to a storage URI.

`limr select` is a thin CLI over `run_selection(SelectionConfig(...))`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from .lim import TrajectoryAccumulator, select
from .reward_pool import usable_cpus
from .selection_plots import BackgroundPlots
from .selection_readers import InputError, read_openrlhf, read_records

SCORES = "scores.jsonl"
SELECTED = "selected.json"
SUMMARY = "summary.json"
TRAJECTORIES_PNG = "trajectories.png"
HISTOGRAM_PNG = "score_histogram.png"


def load_prompts(path: str) -> list[dict[str, Any]]:
    """Records of a JSON list or JSONL file; each needs `id` and `prompt`."""
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8")
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: invalid JSON: {e}") from None
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{n}: invalid JSON: {e}") from None
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or "id" not in row or "prompt" not in row:
            raise InputError(f"{path}: record {n} needs 'id' and 'prompt'")
    return rows


def record_key(row: dict[str, Any], fmt: str) -> str:
    """How a dataset record is matched to trajectories: its id (limr) or stripped prompt (openrlhf)."""
    return str(row["id"]) if fmt == "limr" else str(row["prompt"]).strip()


@dataclass
class SelectionConfig:
    """What `limr select` does, as data (the CLI flags; the pipeline's Selection phase builds one)."""

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


def build_outputs(args: SelectionConfig) -> dict[str, bytes]:
    """Read, score and select; return the output files (name -> bytes). InputError on bad input."""
    if args.format not in ("limr", "openrlhf"):
        raise InputError(f"unknown format {args.format!r}: expected limr or openrlhf")

    for name in ("steps_per_epoch", "max_epochs", "size", "workers"):
        value = getattr(args, name)
        if value is not None and value < (1 if name != "size" else 0):
            raise InputError(f"--{name.replace('_', '-')} must be positive, got {value}")
    prompts = load_prompts(args.prompts) if args.prompts else None
    with BackgroundPlots(enabled=not args.no_plots) as plots:  # imports matplotlib while we read
        return _build(args, prompts, plots)


def _build(
    args: SelectionConfig, prompts: list[dict[str, Any]] | None, plots: BackgroundPlots
) -> dict[str, bytes]:
    started = time.monotonic()
    acc = TrajectoryAccumulator()
    if args.format == "openrlhf":
        max_epochs = 21 if args.max_epochs is None else args.max_epochs
        stats = read_openrlhf(
            args.input, acc, args.steps_per_epoch, max_epochs, args.workers or usable_cpus()
        )
    else:
        max_epochs = args.max_epochs
        stats = read_records(args.input, acc, max_epochs)
    result = select(acc.trajectories(max_epochs), args.strategy, args.threshold, args.size, args.seed)
    key_field = "prompt_id" if args.format == "limr" else "prompt"
    ids: dict[str, str] = {}
    if prompts is not None:
        for row in prompts:
            ids.setdefault(record_key(row, args.format), str(row["id"]))
    chosen = set(result.selected)
    lines = []
    for key, score in zip(result.keys, result.scores.tolist()):
        line: dict[str, Any] = {key_field: key}
        if key in ids:
            line["id"] = ids[key]
        line["score"] = score
        line["selected"] = key in chosen
        lines.append(json.dumps(line, ensure_ascii=False))
    if prompts is not None:
        selected_rows: list[dict[str, Any]] = [r for r in prompts if record_key(r, args.format) in chosen]
    else:
        selected_rows = [{key_field: k} for k in result.selected]
    summary = {
        "strategy": result.strategy,
        "threshold": result.threshold,
        "scored": len(result.keys),
        "selected": len(result.selected),
        "dropped": len(result.dropped),
        "selected_records": len(selected_rows),
        "samples": len(acc.keys),
        "epochs": len(result.epochs),
        "rollouts": stats.rollouts,
        "files": stats.files,
        "format": args.format,
        "size": result.size,
        "seed": result.seed,
        "mean_curve": [round(v, 6) for v in result.mean_curve.tolist()],
        "seconds": round(time.monotonic() - started, 3),
    }
    out = {
        SCORES: ("\n".join(lines) + ("\n" if lines else "")).encode(),
        SELECTED: json.dumps(selected_rows, ensure_ascii=False, indent=1).encode(),
        SUMMARY: json.dumps(summary, indent=2).encode(),
    }
    if not args.no_plots:
        label = {"lim": "LIM", "linear": "linear", "random": "LIM (random selection)"}[result.strategy]
        out.update(
            plots.render(
                {
                    TRAJECTORIES_PNG: (
                        "trajectories",
                        {
                            "values": result.values,
                            "scores": result.lim_scores,
                            "mean_curve": result.mean_curve,
                            "epochs": result.epochs,
                        },
                    ),
                    HISTOGRAM_PNG: (
                        "histogram",
                        {
                            "scores": result.scores,
                            "threshold": result.threshold,
                            "selected": len(result.selected),
                            "title": f"{label} scores ({len(result.keys)} scored)",
                        },
                    ),
                }
            )
        )
    return out


def run_selection(config: SelectionConfig) -> dict[str, Any]:
    """Build every output first (bad input raises InputError and writes nothing), then put each
    object atomically under `config.output`; return the summary."""
    from .storage import open_storage

    files = build_outputs(config)
    storage = open_storage(config.output)
    for name, data in files.items():
        storage.put_bytes(name, data)
    return json.loads(files[SUMMARY])
