"""The toy jobs of the design runs and the study: the demo job edited, run with `limr run`, read back."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEMO_JOB = REPO / "manifests/examples/tiny-local.yaml"


def demo_job() -> dict:
    """The `make demo` job as a dict (a fresh copy)."""
    return yaml.safe_load(DEMO_JOB.read_text())


def set_path(doc: dict, path: str, value: object) -> None:
    """`spec.ppo.seed=3` style edit of a nested dict (creating mappings on the way)."""
    parts = path.split(".")
    for part in parts[:-1]:
        doc = doc.setdefault(part, {})
    doc[parts[-1]] = value


def run_job(job: dict, out: Path, env: dict) -> tuple[int, float]:
    """`limr run` of `job` (written to out/<name>.yaml, its output to out/<name>.log): (exit code, seconds).
    A job that finished earlier is skipped by `limr run` itself in a second or two."""
    name = job["metadata"]["name"]
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    started = time.time()
    with (out / f"{name}.log").open("a") as log:
        rc = subprocess.call([sys.executable, "-m", "limr_trainer", "run", str(path)], cwd=REPO, env=env,
                             stdout=log, stderr=subprocess.STDOUT)
    return rc, time.time() - started


def arm_accuracy(root: Path, arm: str) -> float:
    """An arm's held-out accuracy in percent: the mean of its benchmarks' accuracies."""
    benches = json.loads((root / f"evaluation/arms/{arm}.json").read_text())["benchmarks"]
    return 100.0 * sum(b["accuracy"] for b in benches.values()) / len(benches)


def done(root: Path, step: str) -> dict:
    """A finished step's summary (`_DONE.json`)."""
    return json.loads((root / step / "_DONE.json").read_text())
