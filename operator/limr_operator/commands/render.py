"""`limr render JOB.yaml [--step KEY] [--attempt N]`: print the objects the operator would create.

Like `helm template`: nothing is sent to a cluster. The owner uid is a placeholder that the API
server assigns at creation time.
"""

from __future__ import annotations

import argparse
import sys

import yaml
from limr_api import cliargs
from limr_api.errors import JobError
from limr_api.loader import load_job
from limr_api.plan import all_keys, steps

from .. import builders

HELP = "print the Kubernetes objects the operator would create"

PLACEHOLDER_UID = "00000000-0000-0000-0000-000000000000"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the ConfigMap's job.yaml) as readable `|` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(job_path: str, step: str | None = None, attempt: int = 1) -> list[dict]:
    job = load_job(job_path)
    chosen = [s for s in steps(job.spec) if step is None or s.key == step]
    return [obj for s in chosen for obj in builders.children(job, PLACEHOLDER_UID, s, attempt)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="limr render", description=__doc__.splitlines()[0])
    parser.add_argument("job", help="LIMRJob YAML file")
    parser.add_argument("--step", choices=all_keys(), help="only this step (default: every step of the plan)")
    parser.add_argument("--attempt", type=cliargs.attempt, default=1, help="attempt number in the names (default 1)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        objs = render(args.job, args.step, args.attempt)
    except JobError as err:
        for path, msg in err.errors:
            print(f"{path}: {msg}" if path else msg, file=sys.stderr)
        return 2
    if not objs:
        print(f"limr render: step {args.step!r} is not part of the plan of {args.job}", file=sys.stderr)
        return 2
    sys.stdout.write(yaml.dump_all(objs, Dumper=_Dumper, sort_keys=False))
    return 0
