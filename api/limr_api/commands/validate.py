"""`limr validate JOB.yaml...`: check job files against the LIMRJob API, as the API server would.

Exit 0 with a one-line summary per valid file; exit 2 when any file is invalid, printing every
error as `<field path>: <what is expected>` (with the YAML line where the field is).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

from limr_api.errors import JobError
from limr_api.job import LIMRJob
from limr_api.loader import load_job

HELP = "check JOB.yaml; print every error with its field path"


def _path_parts(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        parts.append(int(index) if index else name)
    return parts


def locate(text: str, path: str) -> int | None:
    """1-based line of the deepest YAML node on `path` (a dotted field path with [i] indexes)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for part in _path_parts(path):
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part]
            if not match:
                break
            line = match[0][0].start_mark.line + 1
            node = match[0][1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def summary(job: LIMRJob) -> str:
    """One line that says what the job will do."""
    s = job.spec
    phases = []
    if s.baseline.enabled:
        phases.append(f"baseline {s.baseline.epochs} epochs")
    elif s.baseline.recordsUri:
        phases.append(f"baseline records from {s.baseline.recordsUri}")
    if s.selection.enabled:
        how = (
            f"size {s.selection.size}"
            if s.selection.strategy == "random"
            else (f"threshold {s.selection.resolved_threshold():g}")
        )
        phases.append(f"selection {s.selection.strategy} {how}")
    if s.retrain.enabled:
        arms = f" (and {', '.join(s.retrain.comparisons)} arms)" if s.retrain.comparisons else ""
        phases.append(f"retrain {s.retrain.epochs} epochs{arms}")
    if s.evaluation.enabled:
        phases.append(f"evaluation on {', '.join(b.name for b in s.evaluation.benchmarks)}")
    gpus = sum(g.replicas * g.gpus for g in s.cluster.workerGroups)
    return (
        f"LIMRJob {job.metadata.name}: model {s.model.name}, dataset {s.dataset.uri}, "
        f"storage {s.storage.uri}; {' -> '.join(phases)}; "
        f"{len(s.cluster.workerGroups)} worker group(s), {gpus} GPU(s)"
    )


def check(path: str) -> tuple[str, list[str]]:
    """(summary, []) for a valid file, ("", error lines) for an invalid one."""
    try:
        job = load_job(path)
    except JobError as err:
        try:
            text = Path(path).read_text()
        except (OSError, UnicodeDecodeError):
            text = ""
        lines = []
        for field, msg in err.errors:
            if not field:
                lines.append(msg)
                continue
            line = locate(text, field) if text else None
            lines.append(f"{field}: {msg}" + (f" [line {line}]" if line else ""))
        return "", lines
    return summary(job), []


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="limr validate", description=__doc__)
    parser.add_argument("jobs", nargs="+", metavar="JOB.yaml", help="LIMRJob files to check")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad input, 0 on --help
        return int(exc.code or 0)
    status = 0
    for path in args.jobs:
        ok, errors = check(path)
        if errors:
            status = 2
            noun = "error" if len(errors) == 1 else "errors"
            print(f"{path}: invalid LIMRJob ({len(errors)} {noun})", file=sys.stderr)
            for line in errors:
                print(line, file=sys.stderr)
        else:
            print(f"OK {path}: {ok}")
    return status
