"""`limr run JOB.yaml`: the whole LIMR pipeline on a local Ray cluster (see limr_trainer.pipeline.local)."""

from __future__ import annotations

import argparse
import signal
import sys

HELP = "run the whole LIMR pipeline of JOB.yaml on a local Ray cluster"


def parse_args(argv: list[str]) -> argparse.Namespace:
    from limr_api import cliargs

    parser = argparse.ArgumentParser(prog="limr run", description=__doc__)
    parser.add_argument("job", help="LIMRJob YAML file")
    parser.add_argument(
        "--storage-override", metavar="URI", default=None,
        help="write artefacts here instead of spec.storage.uri (a local path or s3:// URI)",
    )
    parser.add_argument("--num-cpus", type=cliargs.integer(1, 4096, what="a CPU count"), default=None,
                        help="CPUs of the local Ray cluster (default: all)")
    return parser.parse_args(argv)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM both stop cleanly (also when started in the background, where the shell
    leaves SIGINT ignored)."""
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)


def main(argv: list[str]) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad input, 0 on --help
        return int(exc.code or 0)
    from limr_api.loader import load_job_or_report

    job = load_job_or_report(args.job)
    if job is None:
        return 2
    from limr_trainer.storage import StorageError, open_job_storage

    try:  # a bad storage URI (or --storage-override) is bad input: say so before Ray starts
        open_job_storage(job.spec, args.storage_override)
    except StorageError as exc:
        print(f"limr run: {exc}", file=sys.stderr)
        return 2
    from rich.console import Console

    from limr_trainer.pipeline.local import run_job

    console = Console()
    _interrupt_on_signals()
    try:
        run_job(job, storage_override=args.storage_override, console=console, num_cpus=args.num_cpus)
    except KeyboardInterrupt:
        console.print("interrupted: Ray shut down; run the same command again to resume")
        return 130
    return 0
