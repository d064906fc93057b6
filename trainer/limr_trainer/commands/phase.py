"""`limr phase --job PATH --step KEY [--attempt N]`: one step of a job, the RayJob entrypoint.

Inside a RayJob it joins the existing Ray cluster; a step that already completed (its `_DONE.json`
marker is in storage) returns at once, so a retried RayJob is cheap. Everything the step prints
also goes to `<job>/<step>/logs/attempt-N.log` in storage as it runs (`limr logs` reads it). The
step's summary is printed as one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import sys

HELP = "run one step of a job (the RayJob entrypoint)"


def parse_args(argv: list[str]) -> argparse.Namespace:
    from limr_api import cliargs
    from limr_api.plan import all_keys

    parser = argparse.ArgumentParser(prog="limr phase", description=__doc__)
    parser.add_argument("--job", required=True, help="LIMRJob YAML (the mounted ConfigMap)")
    parser.add_argument("--step", required=True, choices=all_keys(), help="the step to run")
    parser.add_argument("--attempt", type=cliargs.attempt, default=1, help="attempt number (names the log)")
    parser.add_argument("--storage-override", metavar="URI", default=None)
    parser.add_argument("--no-log-upload", action="store_true", help="do not copy the output to storage")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from limr_api import layout, plan
    from limr_api.loader import load_job_or_report

    job = load_job_or_report(args.job)
    if job is None:
        return 2
    step = plan.parse_step(args.step)
    if step not in plan.steps(job.spec):
        print(f"limr phase: step {step.key!r} is not part of this job's plan "
              f"({', '.join(s.key for s in plan.steps(job.spec))})", file=sys.stderr)
        return 2
    from contextlib import nullcontext

    from limr_trainer.storage import StorageError, open_job_storage

    try:
        storage = open_job_storage(job.spec, args.storage_override)
    except StorageError as exc:  # a bad storage URI is bad input, not a crash
        print(f"limr phase: {exc}", file=sys.stderr)
        return 2
    if args.no_log_upload:
        tee = nullcontext()
    else:
        from limr_trainer.runtime.logstream import LogStream

        tee = LogStream(storage, layout.log_key(job.metadata.name, step.key, args.attempt))
    with tee:
        return _run(job, step, storage, args.attempt)


def _run(job, step, storage, attempt: int) -> int:
    from contextlib import nullcontext

    from limr_trainer.pipeline.context import Context
    from limr_trainer.pipeline.steps import run_step

    print(f"limr phase {step.key} of job {job.metadata.name}, attempt {attempt}, storage {storage.uri()}",
          flush=True)

    def log(key: str, event: str, fields: dict) -> None:
        if event == "step":
            print(json.dumps({"step": key, **fields}, default=str), flush=True)

    if step.gpu:
        from limr_trainer.runtime.ray_session import ray_session

        session = ray_session()
    else:
        session = nullcontext()  # selection reads records only: no Ray, no model
    with session:
        summary = run_step(Context(job=job, storage=storage, progress=log), step)
    print(json.dumps({"step": step.key, "attempt": attempt, "summary": summary}, default=str), flush=True)
    return 0
