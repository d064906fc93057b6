"""Shared test jobs for the operator tests (built here until manifests/examples/ has them)."""

from __future__ import annotations

import copy
from typing import Any

from limr_api.loader import load_job
from paths import REPO

EXAMPLES = REPO / "manifests" / "examples"


def job_dict(name: str = "demo", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": "limr.io/v1alpha1",
        "kind": "LIMRJob",
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {
            "model": {"name": "Qwen/Qwen2.5-Math-7B"},
            "dataset": {"uri": "s3://limr-data/math-8.5k.json"},
            "storage": {"uri": "s3://limr-artifacts/runs", "endpoint": "http://minio:9000",
                        "secretRef": {"name": "s3-creds"}},
        },
    }
    for key, value in spec.items():
        base["spec"][key] = copy.deepcopy(value)
    return base


def built_jobs() -> dict[str, dict[str, Any]]:
    """A few shapes: defaults, the paper's 16-GPU cluster with arms and a queue, a records-only start."""
    paper = job_dict(
        "qwen-math-7b-limr-paper-replication-h100",
        retrain={"comparisons": ["random", "linear", "full"]},
        phaseDeadlineSeconds=86400,
        cluster={
            "queue": "gpu-queue",
            "head": {"cpu": "8", "memory": "32Gi", "nodeSelector": {"pool": "cpu"}},
            "workerGroups": [
                {"name": "rollout", "role": "rollout", "replicas": 1, "gpus": 4, "cpu": "32", "memory": "256Gi",
                 "nodeSelector": {"gpu": "h100"},
                 "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
                {"name": "train", "role": "train", "replicas": 3, "gpus": 4, "cpu": "32", "memory": "256Gi"},
            ],
        },
    )
    records = job_dict("from-records", baseline={"enabled": False, "recordsUri": "s3://limr-artifacts/old/baseline/"},
                       evaluation={"enabled": False})
    return {"defaults": job_dict(), "paper": paper, "records": records}


def example_jobs() -> dict[str, dict[str, Any]]:
    """The checked-in examples when present, plus the built shapes."""
    from limr_api.loader import load_yaml

    out = {p.stem: load_yaml(p) for p in sorted(EXAMPLES.glob("*.yaml"))} if EXAMPLES.is_dir() else {}
    out.update(built_jobs())
    return out


def load(d: dict[str, Any]):
    return load_job(d)
