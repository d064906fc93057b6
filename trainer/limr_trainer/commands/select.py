"""`limr select`: score reward trajectories with LIM / linear / random and write the selection.

Reads our Parquet reward records (`--format limr`, the default) or LIMR's own OpenRLHF dumps
(`--format openrlhf`), streams them into per-sample counters, scores, selects, and writes to
`--output` (a folder or storage URI): scores.jsonl, selected.json, summary.json,
trajectories.png and score_histogram.png. Every output is built in memory first and each object
is written atomically, so bad input leaves nothing behind. Exit code 2 for bad input.
(The work itself is `limr_trainer.selection.run_selection`.)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="limr select", description=__doc__.split("\n")[0])
    p.add_argument(
        "--input", required=True, help="records prefix/folder (limr) or folder of step_N.json (openrlhf)"
    )
    p.add_argument("--strategy", choices=("lim", "linear", "random"), default="lim")
    p.add_argument("--threshold", type=float, default=None, help="score threshold (lim 0.6, linear 0.7)")
    p.add_argument("--size", type=int, default=None, help="random: how many (default: LIM's count)")
    p.add_argument("--seed", type=int, default=0, help="random: seed")
    p.add_argument("--format", choices=("limr", "openrlhf"), default="limr")
    p.add_argument("--steps-per-epoch", type=int, default=8, help="openrlhf: PPO steps per data epoch")
    p.add_argument(
        "--max-epochs", type=int, default=None, help="use the first N data epochs (openrlhf default 21)"
    )
    p.add_argument(
        "--prompts", default=None, help="dataset file (JSON list or JSONL of {id, prompt, answer})"
    )
    p.add_argument("--output", required=True, help="output folder or storage URI")
    p.add_argument(
        "--workers", type=int, default=None, help="openrlhf: reader processes (default: usable CPUs)"
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from limr_trainer.selection import SelectionConfig, run_selection
    from limr_trainer.storage import StorageError

    try:
        summary = run_selection(SelectionConfig(**vars(args)))
    except (ValueError, StorageError, OSError, UnicodeDecodeError) as e:  # InputError is a ValueError
        print(f"limr select: {e}", file=sys.stderr)
        return 2
    print(
        f"limr select: {summary['strategy']}: {summary['selected']} selected of {summary['scored']} scored "
        f"({summary['dropped']} dropped, {summary['epochs']} epochs, {summary['rollouts']} rollouts) -> {args.output}"
    )
    return 0
