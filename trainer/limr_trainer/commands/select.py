"""`limr select`: score reward trajectories with LIM / linear / random and write the selection.

Reads our Parquet reward records (`--format limr`, the default) or LIMR's own OpenRLHF dumps
(`--format openrlhf`), streams them into per-sample counters, scores, selects, and writes to
`--output` (a folder or storage URI): scores.jsonl, selected.json, summary.json,
trajectories.png and score_histogram.png. Every output is built in memory first and each object
is written atomically, so bad input leaves nothing behind. Exit code 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

SCORES = "scores.jsonl"
SELECTED = "selected.json"
SUMMARY = "summary.json"
TRAJECTORIES_PNG = "trajectories.png"
HISTOGRAM_PNG = "score_histogram.png"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="limr select", description=__doc__.split("\n")[0])
    p.add_argument("--input", required=True, help="records prefix/folder (limr) or folder of step_N.json (openrlhf)")
    p.add_argument("--strategy", choices=("lim", "linear", "random"), default="lim")
    p.add_argument("--threshold", type=float, default=None, help="score threshold (lim 0.6, linear 0.7)")
    p.add_argument("--size", type=int, default=None, help="random: how many (default: LIM's count)")
    p.add_argument("--seed", type=int, default=0, help="random: seed")
    p.add_argument("--format", choices=("limr", "openrlhf"), default="limr")
    p.add_argument("--steps-per-epoch", type=int, default=8, help="openrlhf: PPO steps per data epoch")
    p.add_argument("--max-epochs", type=int, default=None, help="use the first N data epochs (openrlhf default 21)")
    p.add_argument("--prompts", default=None, help="dataset file (JSON list or JSONL of {id, prompt, answer})")
    p.add_argument("--output", required=True, help="output folder or storage URI")
    p.add_argument("--workers", type=int, default=None, help="openrlhf: reader processes (default: usable CPUs)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    return p


def load_prompts(path: str) -> list[dict[str, Any]]:
    """Records of a JSON list or JSONL file; each needs `id` and `prompt`."""
    from limr_trainer.selection_readers import InputError

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


def run(args: argparse.Namespace) -> dict[str, bytes]:
    """Read, score and select; return the output files (name -> bytes)."""
    from limr_trainer.lim import TrajectoryAccumulator, select
    from limr_trainer.selection_readers import InputError, read_openrlhf, read_records

    for name in ("steps_per_epoch", "max_epochs", "size", "workers"):
        value = getattr(args, name)
        if value is not None and value < (1 if name != "size" else 0):
            raise InputError(f"--{name.replace('_', '-')} must be positive, got {value}")
    prompts = load_prompts(args.prompts) if args.prompts else None
    started = time.monotonic()
    acc = TrajectoryAccumulator()
    if args.format == "openrlhf":
        max_epochs = 21 if args.max_epochs is None else args.max_epochs
        from limr_trainer.reward_pool import usable_cpus

        stats = read_openrlhf(args.input, acc, args.steps_per_epoch, max_epochs, args.workers or usable_cpus())
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
        from limr_trainer.selection_plots import histogram_png, trajectories_png

        label = {"lim": "LIM", "linear": "linear", "random": "LIM (random selection)"}[result.strategy]
        out[TRAJECTORIES_PNG] = trajectories_png(result.values, result.lim_scores, result.mean_curve, result.epochs)
        out[HISTOGRAM_PNG] = histogram_png(
            result.scores, result.threshold, len(result.selected), title=f"{label} scores ({len(result.keys)} scored)"
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from limr_trainer.selection_readers import InputError
    from limr_trainer.storage import StorageError, open_storage

    try:
        files = run(args)
    except (InputError, ValueError, StorageError, OSError, UnicodeDecodeError) as e:
        print(f"limr select: {e}", file=sys.stderr)
        return 2
    storage = open_storage(args.output)
    for name, data in files.items():
        storage.put_bytes(name, data)
    summary = json.loads(files[SUMMARY])
    print(
        f"limr select: {summary['strategy']}: {summary['selected']} selected of {summary['scored']} scored "
        f"({summary['dropped']} dropped, {summary['epochs']} epochs, {summary['rollouts']} rollouts) -> {args.output}"
    )
    return 0
