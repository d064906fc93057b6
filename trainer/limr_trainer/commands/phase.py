"""`limr phase --job PATH --phase P [--arm A] [--attempt N]`: one phase of a job, the RayJob entrypoint.

Inside a RayJob it joins the existing Ray cluster (`ray.init()`); a phase that already completed
(its `_DONE.json` marker is in storage) returns at once, so a retried RayJob is cheap. The phase
summary is printed as one JSON line (the operator reads the stored one).
"""

from __future__ import annotations

import argparse
import json
import sys

PHASE_CHOICES = ("baseline", "selection", "retrain", "evaluation")
ARM_CHOICES = ("lim", "random", "linear", "full")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="limr phase", description=__doc__)
    parser.add_argument("--job", required=True, help="LIMRJob YAML (the mounted ConfigMap)")
    parser.add_argument("--phase", required=True, choices=PHASE_CHOICES)
    parser.add_argument("--arm", choices=ARM_CHOICES, default=None, help="retrain arm (default lim)")
    parser.add_argument("--attempt", type=int, default=1, help="attempt number (logged)")
    parser.add_argument("--storage-override", metavar="URI", default=None)
    parser.add_argument("--no-ray", action="store_true", help="do not connect to Ray (selection needs none)")
    args = parser.parse_args(argv)
    if args.arm is not None and args.phase != "retrain":
        parser.error("--arm applies to --phase retrain only")
    return args


def main(argv: list[str]) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from limr_trainer import phases
    from limr_trainer.spec import load_job_or_report

    job = load_job_or_report(args.job)
    if job is None:
        return 2
    if args.phase == "retrain" and (args.arm or "lim") != "lim" and args.arm not in job.spec.retrain.comparisons:
        print(f"arm {args.arm!r} is not in spec.retrain.comparisons", file=sys.stderr)
        return 2
    storage = phases.open_job_storage(job, args.storage_override)
    name = phases.step_phase(args.phase, args.arm)
    print(f"limr phase {name} of job {job.metadata.name}, attempt {args.attempt}, storage {storage.uri()}",
          flush=True)
    if args.phase != "selection":  # selection reads records only: no model needed
        job = phases.resolve_model(job)
    needs_ray = args.phase != "selection" and not args.no_ray
    if needs_ray:
        import ray

        ray.init()  # the RayJob's cluster (RAY_ADDRESS / the local head)

    def log(phase: str, event: str, fields: dict) -> None:
        if event == "step":
            print(json.dumps({"phase": phase, **fields}, default=str), flush=True)

    try:
        summary = phases.run_step(phases.Context(job=job, storage=storage, progress=log), args.phase, args.arm)
    finally:
        if needs_ray:
            import ray

            ray.shutdown()
    print(json.dumps({"phase": name, "attempt": args.attempt, "summary": summary}, default=str), flush=True)
    return 0
