"""`limr logs JOB.yaml [--step KEY] [--attempt N] [--follow]`: a step attempt's driver output.

Reads `<job>/<step>/logs/attempt-N.log` from the job's storage, which the step uploads while it
runs, so the output outlives the phase's Ray cluster. Defaults: the last step of the plan that has
a log, and its newest attempt. `--follow` prints new output until the step is done.
"""

from __future__ import annotations

import argparse
import re
import sys
import time

HELP = "print (or follow) a step attempt's driver output from storage"
_ATTEMPT = re.compile(r"attempt-(\d+)\.log$")


def parse_args(argv: list[str]) -> argparse.Namespace:
    from limr_api import cliargs
    from limr_api.plan import all_keys

    p = argparse.ArgumentParser(prog="limr logs", description=__doc__)
    p.add_argument("job", help="LIMRJob YAML file")
    p.add_argument("--step", choices=all_keys(), default=None, help="step (default: the last with a log)")
    p.add_argument("--attempt", type=cliargs.attempt, default=None, help="attempt (default: the newest)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until the step is done")
    p.add_argument("--interval", type=cliargs.real(0.1, 3600.0, what="seconds"), default=2.0,
                   help="seconds between reads with --follow")
    p.add_argument("--storage-override", metavar="URI", default=None)
    return p.parse_args(argv)


def attempts(storage, job: str, step: str) -> list[int]:
    from limr_api import layout

    found = []
    for key in storage.list(layout.logs_prefix(job, step)):
        m = _ATTEMPT.search(key)
        if m:
            found.append(int(m.group(1)))
    return sorted(found)


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
    from limr_trainer.storage import ObjectNotFound, StorageError, open_job_storage

    name = job.metadata.name
    try:
        storage = open_job_storage(job.spec, args.storage_override)
        steps = [args.step] if args.step else [s.key for s in reversed(plan.steps(job.spec))]
        chosen = next(((s, attempts(storage, name, s)) for s in steps if attempts(storage, name, s)), None)
        if chosen is None:
            print(f"limr logs: no logs yet for {', '.join(steps)} under {storage.uri(name + '/')}", file=sys.stderr)
            return 1
        step, found = chosen
        attempt = args.attempt or found[-1]
        key = layout.log_key(name, step, attempt)
        printed = 0
        while True:
            try:
                data = storage.get_bytes(key)
            except ObjectNotFound:
                print(f"limr logs: no log {storage.uri(key)} (attempts with logs: {found})", file=sys.stderr)
                return 1
            if len(data) < printed:  # the head was cut: start over
                printed = 0
            sys.stdout.buffer.write(data[printed:])
            sys.stdout.flush()
            printed = len(data)
            if not args.follow or storage.exists(layout.done_key(name, step)):
                return 0
            time.sleep(args.interval)
    except StorageError as exc:
        print(f"limr logs: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
