"""Metric sources for tests/integration/test_prometheus_dashboard.py, each run as its own process
(like in a cluster, where the operator pod and the Ray head pod are scraped separately).

  python prometheus_feeds.py operator METRICS_PORT HEALTH_PORT S3_ENDPOINT BUCKET
      The real `limr operator` command against an emulated Kubernetes API (operator_harness), while
      a thread plays KubeRay and the Job controller: job `demo` fails its first baseline attempt
      (a retry), then succeeds through Selection (summary.json on the S3 server), Retrain and
      Evaluation; job `slow` stays in Baseline. Prints `READY` once `demo` has Succeeded.
  python prometheus_feeds.py trainer PORT
      The trainer's metrics server (limr_trainer.metrics.Prometheus, the object the PPO loop
      feeds) with a few steps of two phases of job `demo`. Prints `READY` after the last step.
Both keep serving until terminated.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from typing import Any


def trainer(port: int) -> None:
    from limr_trainer.metrics import Prometheus

    for phase in ("baseline", "retrain"):
        gauges = Prometheus("demo", phase, port=port)
        for step in range(5):
            accuracy = 0.2 + 0.1 * step
            gauges.observe({
                "step": step, "reward_mean": accuracy * 1.5 - 0.5 - 0.05, "accuracy": accuracy,
                "format_error_rate": 0.1 - 0.01 * step, "kl": 0.002 * step, "entropy": 1.2 - 0.05 * step,
                "response_length": 300.0 + 10 * step, "tokens_per_second": 900.0 + step,
                "seconds": {"generate": 1.0, "reward": 0.2, "reference": 0.3, "critic": 0.3,
                            "train": 0.8, "sync": 0.1, "total": 2.7},
            })
            time.sleep(0.1)
    print("READY", flush=True)
    while True:
        time.sleep(3600)


def _play(cluster: Any, endpoint: str, bucket: str) -> None:
    """KubeRay and the Job controller, by patching the children's status."""
    import boto3
    from operator_harness import wait_for

    ns = "ml"
    ok = ("Complete", "SUCCEEDED")
    summary = {"strategy": "lim", "threshold": 0.6, "scored": 8523, "selected": 1389, "dropped": 0, "total": 8523}
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    s3.put_object(Bucket=bucket, Key="runs/demo/selection/summary.json", Body=json.dumps(summary))
    key = base64.b64encode(b"testing").decode()
    cluster.core.create_namespaced_secret(ns, {"metadata": {"name": "limr-s3-credentials"}, "data": {
        "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": key}})
    spec = {"model": {"name": "Qwen/Qwen2.5-Math-7B"}, "dataset": {"uri": "s3://limr-data/math.json"},
            "storage": {"uri": f"s3://{bucket}/runs", "endpoint": endpoint, "region": "us-east-1",
                        "secretRef": {"name": "limr-s3-credentials"}},
            "backoffLimit": 2}
    for name in ("demo", "slow"):
        cluster.create_job({"apiVersion": "limr.io/v1alpha1", "kind": "LIMRJob",
                            "metadata": {"name": name, "namespace": ns}, "spec": spec})

    def child(name: str, kind: str) -> Any:
        items = cluster.rayjobs(ns) if kind == "RayJob" else cluster.jobs(ns)
        return next((o for o in items if o["metadata"]["name"] == name), None)

    def phase(name: str) -> Any:
        return ((cluster.job(ns, name) or {}).get("status") or {}).get("phase")

    wait_for(lambda: child("demo-baseline-1", "RayJob"), timeout=60, what="first baseline attempt")
    cluster.set_rayjob(ns, "demo-baseline-1", "Failed", "FAILED", message="CUDA OOM")
    steps = [("demo-baseline-2", "RayJob"), ("demo-select-1", "Job"), ("demo-retrain-1", "RayJob"),
             ("demo-eval-1", "RayJob")]
    for name, kind in steps:
        wait_for(lambda name=name, kind=kind: child(name, kind), timeout=60, what=f"{kind} {name}")
        time.sleep(0.5)  # the phase runs a moment: phase durations are not all zero
        if kind == "RayJob":
            cluster.set_rayjob(ns, name, "Running", "RUNNING")
            cluster.set_rayjob(ns, name, *ok)
        else:
            cluster.set_job(ns, name, "Complete")
    wait_for(lambda: phase("demo") == "Succeeded", timeout=60, what="demo Succeeded")
    wait_for(lambda: ((cluster.job(ns, "demo") or {}).get("status") or {}).get("samples", {}).get("total"),
             timeout=60, what="sample counts from summary.json")
    cluster.set_rayjob(ns, "slow-baseline-1", "Running", "RUNNING")
    print("READY", flush=True)


def operator(metrics_port: int, health_port: int, endpoint: str, bucket: str) -> None:
    from limr_operator.commands import operator as command
    from operator_harness import Cluster

    cluster = Cluster()

    def play() -> None:
        try:
            _play(cluster, endpoint, bucket)
        except Exception as exc:  # noqa: BLE001  (make the failure visible to the test, which waits for READY)
            print(f"FEED FAILED: {type(exc).__name__}: {exc}", flush=True)

    threading.Thread(target=play, daemon=True).start()
    sys.exit(command.main(["-A", "--standalone", "--interval", "0.3",
                           "--metrics-port", str(metrics_port), "--health-port", str(health_port)]))


if __name__ == "__main__":
    if sys.argv[1] == "trainer":
        trainer(int(sys.argv[2]))
    elif sys.argv[1] == "operator":
        operator(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        sys.exit(f"unknown feed {sys.argv[1]!r}")
