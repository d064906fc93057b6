"""Every status the reconcile writes is accepted by the generated LIMRJob CRD (as the API server
would check the status subresource), through a whole run, a failing run and an invalid spec."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from limr_operator.reconcile import invalid_spec_status, reconcile
from operator_fixtures import REPO, job_dict, load

sys.path.insert(0, str(REPO / "tests"))
crd_check = pytest.importorskip("crd_check", reason="tests/crd_check.py (CRD validation helper) is missing")
CRD_PATH = REPO / "manifests" / "crd" / "limr.io_limrjobs.yaml"
NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def crd():
    if not CRD_PATH.exists():
        pytest.skip(f"generated CRD missing at {CRD_PATH} (run `make crd`)")
    return yaml.safe_load(Path(CRD_PATH).read_text())


def _drop_none(value):
    """A merge patch deletes null fields: the stored object has none."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _check(crd, body, status):
    obj = {**body, "status": _drop_none(status)}
    assert crd_check.crd_errors(crd, obj) == []


def _rj(name, ds, js):
    return {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": name, "creationTimestamp": "x"},
            "spec": {}, "status": {"jobDeploymentStatus": ds, "jobStatus": js}}


def test_statuses_of_a_whole_run_validate(crd):
    body = job_dict(retrain={"comparisons": ["random"]})
    job = load(body)
    status, observed = {}, {}
    summary = {"strategy": "lim", "threshold": 0.6, "scored": 10, "selected": 4, "dropped": 1, "total": 11}
    for i in range(12):
        res = reconcile(job, "u", 1, status, observed, NOW + timedelta(minutes=i), summary=summary)
        status = res.status
        _check(crd, body, status)
        for a in res.actions:
            if a.kind == "RayJob":
                observed[a.name] = _rj(a.name, "Complete", "SUCCEEDED")
            elif a.kind == "Job":
                observed[a.name] = {"kind": "Job", "metadata": {"name": a.name},
                                    "status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    assert status["phase"] == "Succeeded" and status["selectedOfTotal"] == "4/11"


def test_failure_unknown_and_suspended_statuses_validate(crd):
    body = job_dict(backoffLimit=0)
    job = load(body)
    first = reconcile(job, "u", 1, {}, {}, NOW).status
    weird = reconcile(job, "u", 1, first, {"demo-baseline-1": _rj("demo-baseline-1", "Boom", "X")}, NOW).status
    _check(crd, body, weird)
    failed = reconcile(job, "u", 1, weird, {"demo-baseline-1": _rj("demo-baseline-1", "Failed", "FAILED")}, NOW)
    _check(crd, body, failed.status)
    susp_body = job_dict(suspend=True)
    _check(crd, susp_body, reconcile(load(susp_body), "u", 2, first, {}, NOW).status)
    _check(crd, body, invalid_spec_status({}, [("spec.backoffLimit", "must be >= 0")], 1, NOW))
