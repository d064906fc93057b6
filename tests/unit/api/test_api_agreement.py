"""Sweep: pydantic and the generated CRD give the same verdict on single-field mutations of a job.

Every leaf of the CRD's spec schema gets values around its bounds, of wrong types, null, too long,
off-pattern and unknown siblings; a fixed-seed sample of those mutated jobs (all of them with
LIMR_API_FULL_SWEEP=1, about 1,300 per base job) is checked with `load_job` and with the CRD
(jsonschema + CEL via tests/crd_check.py). Both must accept, or both must reject.
"""

from __future__ import annotations

import copy
import os
import random
from typing import Any

import pytest
import yaml
from crd_check import crd_errors
from limr_api import JobError, load_job
from limr_api.crd import crd
from paths import REPO

CRD = crd()
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
SAMPLE = None if os.environ.get("LIMR_API_FULL_SWEEP") == "1" else 150
MINIMAL = {
    "apiVersion": "limr.io/v1alpha1",
    "kind": "LIMRJob",
    "metadata": {"name": "mini"},
    "spec": {"model": {"name": "m"}, "dataset": {"uri": "d"}, "storage": {"uri": "/tmp/s"}},
}
PAPER = yaml.safe_load((REPO / "manifests/examples/qwen-math-7b-limr.yaml").read_text())


def leaves(node: dict[str, Any], at: list[Any]):
    """(path, schema) of every field below `node`, plus an unknown sibling in each object."""
    if node.get("type") == "object" and "properties" in node:
        for key, sub in node["properties"].items():
            yield from leaves(sub, [*at, key])
        yield [*at, "unknownField"], {"type": "unknown"}
    elif node.get("type") == "array" and node["items"].get("type") == "object":
        yield at, node
        yield from leaves(node["items"], [*at, 0])
    else:
        yield at, node


def candidates(node: dict[str, Any]) -> list[Any]:
    """Values that probe one field: wrong types, null, bounds, lengths, patterns, enums."""
    kind = node.get("type")
    out: list[Any] = [None, "x", 1.5, True, [], {}]
    lo, hi = node.get("minimum"), node.get("maximum")
    if kind == "integer":
        out += [3, "3", 3.0, 2**70]
        out += [] if lo is None else [lo - 1, lo]
        out += [] if hi is None else [hi, hi + 1]
    if kind == "number":
        out += [2, "1.0"]
        out += [] if lo is None else [lo - 0.5, lo]
        out += [] if hi is None else [hi, hi + 0.5]
    if kind == "string":
        n = node.get("maxLength", 10)
        out += ["", "a" * n, "a" * (n + 1), "Foo_bar", "s3://ok-bucket/x", "gs://b", "http://h", 7]
    if kind == "boolean":
        out += [False, "yes", 0, 1]
    if kind == "array":
        out += [[{}], [None], ["random"], ["random", "random"], [0.5, 0.5], [0.5, 1.0]]
    for value in node.get("enum", [])[:1]:
        out += [value, value.upper()]
    return out


def mutate(job: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any] | None:
    job = copy.deepcopy(job)
    node: Any = job
    for part in path[:-1]:
        if isinstance(part, int):
            if not isinstance(node, list) or not node:
                return None
            node = node[part]
        else:
            node = node.setdefault(part, {})
    if not isinstance(node, dict):
        return None
    node[path[-1]] = value
    return job


def cases(base: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path, node in leaves(SCHEMA, []):
        if path[0] not in ("spec", "metadata"):
            continue
        for value in candidates(node):
            job = mutate(base, path, value)
            if job is not None:
                out.append((f"{'.'.join(map(str, path))}={value!r:.30}", job))
    if SAMPLE is not None:
        out = random.Random(20251125).sample(out, SAMPLE)
    return out


@pytest.mark.parametrize("base", [MINIMAL, PAPER], ids=["minimal", "paper"])
def test_pydantic_and_crd_agree_on_single_field_mutations(base):
    all_cases = cases(base)
    disagreements = []
    accepted = 0
    for label, job in all_cases:
        try:
            load_job(job)
            pydantic_ok = True
        except JobError:
            pydantic_ok = False
        errors = crd_errors(CRD, job)
        accepted += pydantic_ok
        if pydantic_ok != (errors == []):
            disagreements.append(f"{label}: pydantic {'accepts' if pydantic_ok else 'rejects'}, CRD {errors}")
    assert disagreements == []
    assert 0 < accepted < len(all_cases)  # the sample holds both valid and invalid jobs
