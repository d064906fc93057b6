"""Benchmark: N LIMRJobs created at once; the operator against the real kube-apiserver or the emulator.

Measures the time until every job has its first RayJob, API requests per job (by verb and
resource), and the operator's peak memory (VmHWM of the `limr operator` process). The operator
runs as its own process (`limr operator --standalone -A`), exactly as in a pod. Each run also does
a 1-job baseline first, side by side.

  --target real      a control plane of its own from scripts/cluster.sh (etcd, kube-apiserver with
                     RBAC, admission and an audit log, kube-controller-manager; KubeRay's CRDs but not
                     its operator, so no RayCluster is ever made: the operator's own cost is measured);
                     the chart is installed with helm and the operator runs as its ServiceAccount (a
                     TokenRequest token). Requests are counted from the API server's audit log, by user.
                     LIMR_BENCH_KUBERAY=1 runs KubeRay and Kueue too.
  --target emulator  bench/operator/kube_emulator.py in this process (kmock + server-side metadata,
                     CRD validation of every LIMRJob write with tests/crd_check.py unless --no-validate).

    .venv/bin/python bench/operator/bench_operator.py --target real --jobs 200
    .venv/bin/python bench/operator/bench_operator.py --target emulator --jobs 200
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(REPO / "tests")]

NAMESPACES = 10
BENCH_ENV = {  # a cluster of its own: never the one the tests use
    "LIMR_CLUSTER_DIR": str(REPO / ".cache" / "cluster-bench"),
    "LIMR_CLUSTER_PORT_BASE": "28000",
    "LIMR_CLUSTER_AUDIT": "1",
    "LIMR_CLUSTER_KUBERAY_CRDS": "1",
}


def job(i: int) -> dict:
    return {"apiVersion": "limr.io/v1alpha1", "kind": "LIMRJob",
            "metadata": {"name": f"bench-{i:04d}", "namespace": f"team-{i % NAMESPACES}"},
            "spec": {"model": {"name": "Qwen/Qwen2.5-Math-7B"}, "dataset": {"uri": "s3://limr-data/math.json"},
                     "storage": {"uri": "s3://limr-artifacts/runs"}}}


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_operator(kubeconfig: Path, interval: float, log: Path) -> tuple[subprocess.Popen, int]:
    health, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["KUBECONFIG"] = str(kubeconfig)
    limr = Path(sys.executable).with_name("limr")
    proc = subprocess.Popen([str(limr), "operator", "--standalone", "--all-namespaces", "--health-port", str(health),
                             "--metrics-port", str(metrics_port), "--interval", str(interval)],
                            env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=REPO)
    deadline = time.monotonic() + 60
    while True:  # ready: liveness answers once kopf has started
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=1)
            return proc, metrics_port
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"operator did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.1)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:  # kopf waits for running handlers; the numbers are taken already
        proc.kill()
        proc.wait(30)


def reconcile_stats(metrics_port: int) -> dict[str, float]:
    scrape = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    return {line.split()[0]: float(line.split()[1]) for line in scrape.splitlines()
            if line.startswith("limr_operator_reconcile_duration_seconds_") and "bucket" not in line}


def wait_all_first(n: int, t0: float, names: Any) -> dict[str, float]:
    """First time each job's baseline RayJob was seen (`names()` lists RayJob names)."""
    first: dict[str, float] = {}
    while len(first) < n:
        for name in names():
            first.setdefault(name.rsplit("-baseline-", 1)[0], time.monotonic() - t0)
        if time.monotonic() - t0 > 900:
            raise RuntimeError(f"only {len(first)} of {n} jobs got a RayJob in 900 s")
        time.sleep(0.05)
    return first


def summary(n: int, t_created: float, first: dict[str, float], rss_idle: float, rss_peak: float,
            recon: dict[str, float], **extra: Any) -> dict[str, Any]:
    lat = sorted(first.values())
    count = recon.get("limr_operator_reconcile_duration_seconds_count", 0)
    return {"jobs": n, "create_all_s": round(t_created, 3), "first_rayjob_all_s": round(lat[-1], 3),
            "first_rayjob_p50_s": round(lat[len(lat) // 2], 3), **extra,
            "operator_rss_idle_mib": round(rss_idle, 1), "operator_rss_peak_mib": round(rss_peak, 1),
            "reconciles": count,
            "reconcile_mean_ms": round(1000 * recon.get("limr_operator_reconcile_duration_seconds_sum", 0)
                                       / max(count, 1), 2)}


# ------------------------------------------------------------------------------------ the real server
class Audit:
    """Requests from the API server's audit log (one JSON event per line, stage ResponseComplete)."""

    def __init__(self, path: Path):
        self.path = path

    def offset(self) -> int:
        return self.path.stat().st_size

    def events(self, start: int, end: int | None = None) -> list[dict[str, Any]]:
        with self.path.open("rb") as fh:
            fh.seek(start)
            data = fh.read() if end is None else fh.read(end - start)
        out = []
        for line in data.splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("stage") == "ResponseComplete":
                    out.append(event)
        return out


def tally(events: list[dict[str, Any]], user: str) -> tuple[int, int, dict[str, int]]:
    """(all requests, the operator's, the operator's by 'verb resource')."""
    mine = [e for e in events if e["user"]["username"] == user]
    kinds = Counter(f"{e['verb']} {e.get('objectRef', {}).get('resource', e.get('requestURI', '?'))}"
                    + (f"/{e['objectRef']['subresource']}" if e.get("objectRef", {}).get("subresource") else "")
                    for e in mine)
    return len(events), len(mine), dict(sorted(kinds.items()))


def cluster_script(command: str) -> None:
    env = {**os.environ, **BENCH_ENV}
    if os.environ.get("LIMR_BENCH_KUBERAY") != "1":
        env.update(LIMR_CLUSTER_NO_KUBERAY="1", LIMR_CLUSTER_NO_KUEUE="1")
    subprocess.run(["bash", str(REPO / "scripts" / "cluster.sh"), command], env=env, check=True, cwd=REPO)


def run_real(n: int, interval: float, settle: float, workdir: Path) -> dict[str, Any]:
    import kubernetes
    from realcluster import RealCluster
    from realoperator import Release, install_crd

    state = Path(BENCH_ENV["LIMR_CLUSTER_DIR"])
    env = dict(line.removeprefix("export ").split("=", 1) for line in subprocess.run(
        ["bash", str(REPO / "scripts" / "cluster.sh"), "env"], env={**os.environ, **BENCH_ENV}, capture_output=True,
        text=True, check=True).stdout.splitlines())
    c = RealCluster(kubeconfig=Path(env["KUBECONFIG"]), kubectl_path=Path(env["LIMR_CLUSTER_KUBECTL"]),
                    server=env["LIMR_CLUSTER_SERVER"], workdir=workdir)
    install_crd(c)
    tag = f"{n}-{int(time.time())}"
    release = Release(c, f"limr-bench-{tag}", f"limr-bench-{tag}").install()
    operator_user = f"system:serviceaccount:{release.namespace}:{release.service_account}"
    client = kubernetes.config.new_client_from_config(config_file=str(c.kubeconfig))
    custom = kubernetes.client.CustomObjectsApi(client)
    spaces = [f"team-{i}-{tag}" for i in range(NAMESPACES)]
    for ns in spaces:
        c.create_namespace(ns)
    audit = Audit(state / "logs" / "audit.log")
    proc, metrics_port = start_operator(release.kubeconfig(), interval, workdir / f"operator-{n}.log")
    try:
        time.sleep(1.0)  # the initial list+watch settles
        rss_idle = peak_rss_mib(proc.pid)
        start = audit.offset()
        t0 = time.monotonic()

        def create(i: int) -> None:
            body = job(i)
            body["metadata"]["namespace"] = spaces[i % NAMESPACES]
            custom.create_namespaced_custom_object("limr.io", "v1alpha1", body["metadata"]["namespace"],
                                                   "limrjobs", body)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(n)))
        t_created = time.monotonic() - t0

        def names() -> list[str]:  # one LIST of every namespace's RayJobs by the benchmark
            return [r["metadata"]["name"] for r in custom.list_cluster_custom_object("ray.io", "v1", "rayjobs")["items"]
                    if r["metadata"]["namespace"] in spaces]

        first = wait_all_first(n, t0, names)
        at_first = audit.offset()
        time.sleep(settle)  # steady state: timers tick, nothing changes
        time.sleep(1.0)  # the audit log's last lines
        until_first = audit.events(start, at_first)
        settled = audit.events(at_first)
        rss_peak = peak_rss_mib(proc.pid)
        recon = reconcile_stats(metrics_port)
    finally:
        stop(proc)
        for ns in spaces:
            for item in custom.list_namespaced_custom_object("limr.io", "v1alpha1", ns, "limrjobs")["items"]:
                custom.patch_namespaced_custom_object("limr.io", "v1alpha1", ns, "limrjobs", item["metadata"]["name"],
                                                      {"metadata": {"finalizers": None}})
            c.delete_namespace(ns)
        release.uninstall()
        c.delete_namespace(release.namespace)
    total, mine, kinds = tally(until_first, operator_user)
    total_s, mine_s, kinds_s = tally(settled, operator_user)
    return summary(n, t_created, first, rss_idle, rss_peak, recon, target="real kube-apiserver v1.37.2",
                   interval_s=interval,
                   requests_until_all_first=total, operator_requests_until_all_first=mine,
                   operator_requests_per_job=round(mine / n, 2), requests_per_job_all_clients=round(total / n, 2),
                   operator_requests_by_kind=kinds, settle_s=settle,
                   operator_requests_per_job_per_minute_settled=round(mine_s / n / (settle / 60), 2),
                   operator_settled_requests_by_kind=kinds_s, other_requests_settled=total_s - mine_s)


# --------------------------------------------------------------------------------------- the emulator
def run_emulator(n: int, interval: float, validate: bool, settle: float, workdir: Path) -> dict[str, Any]:
    import kubernetes
    import yaml
    from kube_emulator import EmulatorThread, kubeconfig

    def setup(api: Any) -> None:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        crd = yaml.load((REPO / "manifests" / "crd" / "limr.io_limrjobs.yaml").read_text(), Loader=loader)
        checker = None
        if validate:
            from crd_check import crd_errors

            checker = crd_errors
        api.register_crd(crd, checker)
        api.register_crd({"spec": {"group": "ray.io", "scope": "Namespaced",
                                   "names": {"plural": "rayjobs", "kind": "RayJob"},
                                   "versions": [{"name": "v1", "subresources": {"status": {}}}]}})
        api.register("v1", "configmaps", "ConfigMap")
        api.register("v1", "secrets", "Secret")
        api.register("batch/v1", "jobs", "Job", status=True)

    emu = EmulatorThread(setup).start()
    config = workdir / "emulator.kubeconfig"
    config.write_text(yaml.safe_dump(kubeconfig(emu.url)))
    client = kubernetes.config.new_client_from_config(config_file=str(config))
    custom = kubernetes.client.CustomObjectsApi(client)
    proc, metrics_port = start_operator(config, interval, workdir / f"operator-emulator-{n}.log")
    api = emu.api
    try:
        time.sleep(1.0)
        req0, tally0 = api._requests.count, Counter(api.tally)
        rss_idle = peak_rss_mib(proc.pid)
        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: custom.create_namespaced_custom_object(
                "limr.io", "v1alpha1", f"team-{i % NAMESPACES}", "limrjobs", job(i)), range(n)))
        t_created = time.monotonic() - t0

        def names() -> list[str]:  # names only, no copies (the emulator runs in a thread of this process)
            try:
                return [k[3] for k in list(api.store) if k[0] == "ray.io/v1" and k[1] == "rayjobs"]
            except RuntimeError:
                return []

        first = wait_all_first(n, t0, names)
        req_first, tally_first = api._requests.count - req0, Counter(api.tally) - tally0
        time.sleep(settle)
        req_settle = api._requests.count - req0 - req_first
        rss_peak = peak_rss_mib(proc.pid)
        recon = reconcile_stats(metrics_port)
    finally:
        stop(proc)
        client.close()
        emu.stop()
    return summary(n, t_created, first, rss_idle, rss_peak, recon, target="emulator", interval_s=interval,
                   crd_validation=validate, requests_until_all_first=req_first,
                   requests_per_job_all_clients=round(req_first / n, 2),
                   requests_by_kind={" ".join(map(str, k)): v for k, v in sorted(tally_first.items())},
                   settle_s=settle, requests_per_job_per_minute_settled=round(req_settle / n / (settle / 60), 2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", choices=["real", "emulator"], default="real")
    p.add_argument("--jobs", type=int, default=200)
    p.add_argument("--baseline-jobs", type=int, default=1)
    p.add_argument("--interval", type=float, default=10.0)
    p.add_argument("--settle", type=float, default=21.0)
    p.add_argument("--no-validate", action="store_true", help="emulator: no CRD validation of LIMRJob writes")
    p.add_argument("--keep-cluster", action="store_true", help="real: leave the benchmark's cluster running")
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="limr-bench-operator-"))
    if args.target == "real":
        cluster_script("up")
        try:
            results = [run_real(args.baseline_jobs, args.interval, args.settle, workdir),
                       run_real(args.jobs, args.interval, args.settle, workdir)]
        finally:
            if not args.keep_cluster:
                cluster_script("down")
    else:
        results = [run_emulator(n, args.interval, not args.no_validate, args.settle, workdir)
                   for n in (args.baseline_jobs, args.jobs)]
    print(json.dumps(results, indent=2))
    print(f"operator logs: {workdir}", file=sys.stderr)


if __name__ == "__main__":
    main()
