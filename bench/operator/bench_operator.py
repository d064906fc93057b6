"""Benchmark: N LIMRJobs created at once against the emulated API server.

Measures the time until every job has its first RayJob, API requests per job (by verb and
resource), and the operator's peak memory (VmHWM of the `limr operator` process). The operator
runs as its own process (`limr operator --standalone`), exactly as in a pod; the API emulator
(tests/integration/kube_emulator.py, with CRD validation of every write) runs in this process.

    .venv/bin/python bench/operator/bench_operator.py --jobs 200
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from operator_harness import KUBECONFIG, Cluster, free_port


def job(i: int) -> dict:
    return {"apiVersion": "limr.io/v1alpha1", "kind": "LIMRJob",
            "metadata": {"name": f"bench-{i:04d}", "namespace": f"team-{i % 10}"},
            "spec": {"model": {"name": "Qwen/Qwen2.5-Math-7B"}, "dataset": {"uri": "s3://limr-data/math.json"},
                     "storage": {"uri": "s3://limr-artifacts/runs"}}}


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(n: int, interval: float, validate: bool, settle: float) -> dict:
    cluster = Cluster(validate=validate)
    health, metrics_port = free_port(), free_port()
    env = dict(os.environ, KUBECONFIG=str(KUBECONFIG))
    proc = subprocess.Popen([sys.executable, "-m", "limr_trainer.cli", "operator", "--standalone",
                             "--health-port", str(health), "--metrics-port", str(metrics_port),
                             "--interval", str(interval)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while True:  # ready: liveness answers once kopf has started
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("operator did not start")
                time.sleep(0.1)
        time.sleep(1.0)  # let the initial list+watch settle
        api = cluster.api
        req0, tally0 = api._requests.count, Counter(api.tally)
        rss_idle = peak_rss_mib(proc.pid)
        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: cluster.create_job(job(i)), range(n)))
        t_created = time.monotonic() - t0
        first = {}
        while len(first) < n:
            try:  # cheap: names only, no copies (the emulator runs in another thread of this process)
                keys = [k for k in list(api.store) if k[0] == "ray.io/v1" and k[1] == "rayjobs"]
            except RuntimeError:
                continue
            for key in keys:
                first.setdefault(key[3].rsplit("-baseline-", 1)[0], time.monotonic() - t0)
            if time.monotonic() - t0 > 600:
                raise RuntimeError(f"only {len(first)} of {n} jobs got a RayJob in 600 s")
            time.sleep(0.02)
        t_all = time.monotonic() - t0
        req_first, tally_first = api._requests.count - req0, Counter(api.tally) - tally0
        time.sleep(settle)  # steady state: timers tick, nothing changes
        req_settle = api._requests.count - req0 - req_first
        tally_settle = Counter(api.tally) - tally0 - tally_first
        statuses = Counter((j.get("status") or {}).get("phase") for j in api.list_objects("limr.io/v1alpha1", "limrjobs"))
        scrape = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        rss_peak = peak_rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
        cluster.close()
    recon = {line.split()[0]: float(line.split()[1]) for line in scrape.splitlines()
             if line.startswith("limr_operator_reconcile_duration_seconds_") and not line.startswith("#")
             and "bucket" not in line}
    lat = sorted(first.values())
    return {
        "jobs": n, "interval_s": interval, "crd_validation": validate,
        "create_all_s": round(t_created, 3),
        "first_rayjob_all_s": round(t_all, 3),
        "first_rayjob_p50_s": round(lat[len(lat) // 2], 3),
        "requests_until_all_first": req_first,
        "requests_per_job": round(req_first / n, 2),
        "requests_by_kind": {f"{k[0]} {k[1]}" if k[0] == "created" else f"{k[0]} {k[1]} ({k[2]})": v
                             for k, v in sorted(tally_first.items())},
        "settle_s": settle,
        "requests_per_job_per_minute_settled": round(req_settle / n / (settle / 60), 2),
        "settled_requests_by_kind": {f"{k[0]} {k[1]}": v for k, v in sorted(tally_settle.items())},
        "phases": dict(statuses),
        "operator_rss_idle_mib": round(rss_idle, 1),
        "operator_rss_peak_mib": round(rss_peak, 1),
        "reconciles": recon.get("limr_operator_reconcile_duration_seconds_count"),
        "reconcile_mean_ms": round(1000 * recon.get("limr_operator_reconcile_duration_seconds_sum", 0)
                                   / max(recon.get("limr_operator_reconcile_duration_seconds_count", 1), 1), 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=200)
    p.add_argument("--baseline-jobs", type=int, default=1)
    p.add_argument("--interval", type=float, default=10.0)
    p.add_argument("--settle", type=float, default=12.0)
    p.add_argument("--no-validate", action="store_true")
    args = p.parse_args()
    results = [run(args.baseline_jobs, args.interval, not args.no_validate, args.settle),
               run(args.jobs, args.interval, not args.no_validate, args.settle)]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
