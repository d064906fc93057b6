"""`limr select`: score reward trajectories with LIM / linear / random and write the selection.

Reads our Parquet reward records of one job step (`--format limr`, the default), LIMR's own
OpenRLHF dumps (`--format openrlhf`) or verl's rollout dumps (`--format verl`), streams them into
per-sample counters, scores, selects, and writes to `--output` (a folder or storage URI):
summary.json, scores.jsonl, selected.json and two plots. Every output is built in memory first
and the set is committed with summary.json last, so bad input leaves nothing behind and an
interrupted run never leaves a mix of old and new files. Exit code 2 for bad input.
(The work itself is `limr_trainer.selection.core.run_selection`, also the pipeline's Selection.)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from limr_api import cliargs

HELP = "score reward records with LIM / linear / random and select"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="limr select", description=__doc__.split("\n")[0])
    p.add_argument("--input", required=True,
                   help="one step's records (limr: e.g. <root>/<job>/baseline), or a folder of dumps")
    p.add_argument("--strategy", choices=("lim", "linear", "random"), default="lim")
    p.add_argument("--threshold", type=cliargs.real(high=1.0, what="a score"), default=None,
                   help="score threshold (lim 0.6, linear 0.7; scores are at most 1)")
    p.add_argument("--size", type=cliargs.integer(1, what="a sample count"), default=None,
                   help="random: how many (default: LIM's count)")
    p.add_argument("--seed", type=cliargs.integer(0, what="a seed"), default=0, help="random: seed")
    p.add_argument("--format", choices=("limr", "openrlhf", "verl"), default="limr",
                   help="limr: our Parquet reward records (correct = the `correct` column); openrlhf: LIMR's "
                   "step_N.json dumps (correct = reward 1); verl: verl's <step>.jsonl rollout dumps "
                   "(trainer.rollout_data_dir; samples grouped by their `input` text; correct = the line's "
                   "`acc` when it has one (true or a number >= 1), else score >= --success-threshold)")
    p.add_argument("--steps-per-epoch", type=cliargs.integer(1, what="a step count"), default=8,
                   help="openrlhf / verl: steps per data epoch")
    p.add_argument("--max-epochs", type=cliargs.integer(1, what="an epoch count"), default=None,
                   help="use the first N data epochs (openrlhf default 21)")
    p.add_argument("--success-threshold", type=cliargs.real(what="a score"), default=None,
                   help="verl lines without `acc`: a rollout is correct when its score >= this (default 1.0)")
    p.add_argument("--prompts", default=None, help="dataset file (JSON list or JSONL of {id, prompt, answer})")
    p.add_argument("--output", required=True, help="output folder or storage URI")
    p.add_argument("--workers", type=cliargs.workers, default=None,
                   help="openrlhf / verl: reader processes (default: usable CPUs)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    from limr_trainer.selection.core import SelectionConfig, run_selection
    from limr_trainer.storage import StorageError

    try:
        summary = run_selection(SelectionConfig(**vars(args)))
    except (ValueError, StorageError, OSError) as e:  # InputError is a ValueError
        print(f"limr select: {e}", file=sys.stderr)
        return 2
    print(
        f"limr select: {summary['strategy']}: {summary['selected']} selected of {summary['scored']} scored "
        f"({summary['dropped']} dropped, {summary['epochs']} epochs, {summary['rollouts']} rollouts) -> {args.output}"
    )
    return 0
