"""The LIMR operator on the real control plane (tests/realcluster.py), as a user runs it.

* The chart is installed with the real helm (`.cache/bin/helm`) into the cluster: CRD, ServiceAccount,
  (Cluster)Roles and bindings, Deployment (its pod stays Pending: there is no kubelet).
* The operator runs as a local process (`limr operator`) that authenticates with a token of the
  chart's ServiceAccount from the TokenRequest API, so every call it makes is checked by the chart's
  own RBAC, with OwnerReferencesPermissionEnforcement on.
* KubeRay, Kueue, the garbage collector, the job and TTL controllers are the real ones. A test plays
  only what needs a kubelet or a Ray cluster: a pod's outcome (pods/status) and a Ray job's outcome
  (rayjobs/status), and writes what the trainer would write to storage (moto S3).

`Kube` is a fast admin client (kubernetes' Python client; kubectl per poll would cost 0.2 s each).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chart_support import CHART, free_port, helm_binary
from paths import REPO
from realcluster import RealCluster

# The chart and CRD under test; LIMR_TEST_CHART / LIMR_TEST_CRD point the tests at others (e.g. an
# older commit's, to show that a test fails there).
CHART = Path(os.environ.get("LIMR_TEST_CHART") or CHART)
CRD_FILE = Path(os.environ.get("LIMR_TEST_CRD") or REPO / "manifests" / "crd" / "limr.io_limrjobs.yaml")
GROUP, VERSION, PLURAL = "limr.io", "v1alpha1", "limrjobs"
SECRET = "limr-s3-credentials"  # the chart's default rbac.secretNames
S3_KEYS = {"AWS_ACCESS_KEY_ID": "limr-job-key", "AWS_SECRET_ACCESS_KEY": "limr-job-secret"}
# The operator's own (fake) cloud identity: it must never reach an endpoint a job names (issue 14.1).
AMBIENT = {"AWS_ACCESS_KEY_ID": "AKIAOPERATORAMBIENT", "AWS_SECRET_ACCESS_KEY": "operator-secret",
           "AWS_SESSION_TOKEN": "operator-session-token"}
NO_NODE = {"limr.io/no-such-node": "true"}


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def short_id() -> str:
    return uuid.uuid4().hex[:6]


class Kube:
    """Admin clients of the real API server (the cluster's admin kubeconfig)."""

    def __init__(self, cluster: RealCluster):
        import kubernetes

        self.cluster = cluster
        self.client = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
        self.core = kubernetes.client.CoreV1Api(self.client)
        self.batch = kubernetes.client.BatchV1Api(self.client)
        self.custom = kubernetes.client.CustomObjectsApi(self.client)
        self.ApiException = kubernetes.client.exceptions.ApiException

    def _missing(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except self.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def plain(self, obj: Any) -> Any:
        return self.client.sanitize_for_serialization(obj)

    # ---- LIMRJobs
    def job(self, ns: str, name: str) -> dict | None:
        return self._missing(lambda: self.custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name))

    def status(self, ns: str, name: str) -> dict:
        return (self.job(ns, name) or {}).get("status") or {}

    def phase(self, ns: str, name: str) -> str | None:
        return self.status(ns, name).get("phase")

    def condition(self, ns: str, name: str, kind: str) -> dict | None:
        return next((c for c in self.status(ns, name).get("conditions", []) if c["type"] == kind), None)

    def create_job(self, body: dict) -> dict:
        ns = body["metadata"]["namespace"]
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)

    def patch_job(self, ns: str, name: str, patch: dict) -> dict:
        return self.custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name, patch)

    def delete_job(self, ns: str, name: str) -> None:
        self._missing(lambda: self.custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name))

    # ---- children
    def rayjob(self, ns: str, name: str) -> dict | None:
        return self._missing(lambda: self.custom.get_namespaced_custom_object("ray.io", "v1", ns, "rayjobs", name))

    def rayjobs(self, ns: str) -> list[dict]:
        return self.custom.list_namespaced_custom_object("ray.io", "v1", ns, "rayjobs")["items"]

    def batch_job(self, ns: str, name: str) -> dict | None:
        return self._missing(lambda: self.plain(self.batch.read_namespaced_job(name, ns)))

    def batch_jobs(self, ns: str) -> list[dict]:
        return self.plain(self.batch.list_namespaced_job(ns))["items"]

    def configmaps(self, ns: str, selector: str = "app.kubernetes.io/managed-by=limr-operator") -> list[dict]:
        return self.plain(self.core.list_namespaced_config_map(ns, label_selector=selector))["items"]

    def pods(self, ns: str, selector: str) -> list[dict]:
        return self.plain(self.core.list_namespaced_pod(ns, label_selector=selector))["items"]

    def events(self, ns: str, name: str) -> list[dict]:
        items = self.plain(self.core.list_namespaced_event(ns))["items"]
        return [e for e in items if (e.get("involvedObject") or {}).get("name") == name]

    def workloads(self, ns: str) -> list[dict]:
        return self.custom.list_namespaced_custom_object("kueue.x-k8s.io", "v1beta2", ns, "workloads")["items"]

    def workload_of(self, ns: str, child: str) -> dict | None:
        for wl in self.workloads(ns):
            if any(r.get("name") == child for r in wl["metadata"].get("ownerReferences") or []):
                return wl
        return None

    # ---- playing KubeRay's Ray job and the kubelet
    def finish_rayjob(self, ns: str, name: str, ok: bool = True, message: str = "", reason: str = "") -> None:
        """The Ray job's outcome as KubeRay would record it (status subresource)."""
        t = now()
        status = {"jobDeploymentStatus": "Complete" if ok else "Failed",
                  "jobStatus": "SUCCEEDED" if ok else "FAILED", "startTime": t, "endTime": t}
        if message:
            status["message"] = message
        if reason or not ok:
            status["reason"] = reason or "AppFailed"
        self.custom.patch_namespaced_custom_object_status("ray.io", "v1", ns, "rayjobs", name, {"status": status})

    def finish_job_pods(self, ns: str, job: str, ok: bool = True) -> None:
        """Play the kubelet: the Job's pod ran to its end (the job controller does the rest)."""
        pods = self.cluster.wait_for(lambda: self.pods(ns, f"batch.kubernetes.io/job-name={job}"), 60,
                                     f"the job controller to create the pod of Job {job}")
        for pod in pods:
            t = now()
            self.core.patch_namespaced_pod_status(pod["metadata"]["name"], ns, {"status": {
                "phase": "Succeeded" if ok else "Failed",
                "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": t}],
                "containerStatuses": [{
                    "name": c["name"], "image": c["image"], "imageID": "", "ready": False, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0 if ok else 1, "reason": "Completed" if ok else "Error",
                                             "startedAt": t, "finishedAt": t}}}
                    for c in pod["spec"]["containers"]]}})

    def make_pods_ready(self, ns: str, selector: str) -> list[dict]:
        """Play the kubelet: every pod matching `selector` is Running and Ready."""
        pods = self.pods(ns, selector)
        for i, pod in enumerate(pods):
            t = now()
            self.core.patch_namespaced_pod_status(pod["metadata"]["name"], ns, {"status": {
                "phase": "Running", "podIP": f"10.1.0.{10 + i}", "hostIP": "10.2.0.1",
                "conditions": [{"type": t_, "status": "True", "lastTransitionTime": t}
                               for t_ in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
                "containerStatuses": [{
                    "name": c["name"], "image": c["image"], "imageID": "", "ready": True, "restartCount": 0,
                    "started": True, "state": {"running": {"startedAt": t}}} for c in pod["spec"]["containers"]],
                "initContainerStatuses": [{
                    "name": c["name"], "image": c["image"], "imageID": "", "ready": True, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": t, "finishedAt": t}}}
                    for c in pod["spec"].get("initContainers") or []]}})
        return pods


# ---------------------------------------------------------------------------------------- the chart
def install_crd(cluster: RealCluster) -> None:
    """The CRD as the upgrade doc says: a server-side apply of manifests/crd/ (Helm never upgrades crds/)."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager", "limr-tests", "-f",
                    str(CRD_FILE))
    cluster.kubectl("wait", "--for", "condition=Established", "--timeout", "60s", "crd/limrjobs.limr.io")


@dataclass
class Release:
    """One helm release of charts/limr-operator."""

    cluster: RealCluster
    name: str
    namespace: str
    values: list[str] = field(default_factory=list)

    @property
    def service_account(self) -> str:
        return self.name if "limr-operator" in self.name else f"{self.name}-limr-operator"

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        helm = helm_binary()
        assert helm, "helm is missing: bash scripts/install-tools.sh"
        proc = subprocess.run([helm, "--kubeconfig", str(self.cluster.kubeconfig), *args], capture_output=True,
                              text=True, timeout=180, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def install(self) -> Release:
        sets = [a for v in self.values for a in ("--set", v)]
        if os.environ.get("LIMR_TEST_CHART"):  # another chart's RBAC, with the CRD under test (install_crd)
            sets.append("--skip-crds")
        self.helm("install", self.name, str(CHART), "--namespace", self.namespace, "--create-namespace", *sets)
        return self

    def uninstall(self) -> None:
        self.helm("uninstall", self.name, "--namespace", self.namespace, "--ignore-not-found", check=False)

    def kubeconfig(self) -> Path:
        """A kubeconfig with a bound token of the chart's ServiceAccount and nothing else."""
        token = self.cluster.sa_token(self.namespace, self.service_account, duration="3h")
        return self.cluster.kubeconfig_for_token(token, name=self.service_account)


# ------------------------------------------------------------------------------------- the operator
class Operator:
    """`limr operator` as a local process with a ServiceAccount token (restartable, killable)."""

    def __init__(self, kubeconfig: Path, args: list[str], log_dir: Path, env: dict[str, str] | None = None):
        self.kubeconfig, self.args, self.log_dir = kubeconfig, args, log_dir
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.health_port = free_port()
        self.metrics_port = free_port()

    @property
    def log(self) -> Path:
        return self.log_dir / f"operator-{self.runs}.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KUBERNETES_"))}
        env.update({
            "KUBECONFIG": str(self.kubeconfig),
            "LIMR_RECONCILE_INTERVAL": "1", "LIMR_SUMMARY_RETRY": "0.5", "LIMR_METRICS_POLL": "0.5",
            # The operator's own identity, as an IAM role or env credentials would give it.
            **AMBIENT, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1",
        })
        env.update(self.extra_env)
        return env

    def start(self) -> Operator:
        self.runs += 1
        limr = Path(sys.executable).with_name("limr")
        argv = [str(limr), "operator", "--standalone", "--verbose", "--health-port", str(self.health_port),
                "--metrics-port", str(self.metrics_port), "--interval", "1", *self.args]
        out = self.log.open("wb")
        self.proc = subprocess.Popen(argv, env=self.env(), stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        out.close()
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"the operator exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1)
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"the operator did not answer /healthz in 60 s:\n{self.output()[-3000:]}")
                time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no clean-up, no last status patch (a crashed or evicted pod)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("operator-*.log")))

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        from prometheus_client.parser import text_string_to_metric_families

        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and (labels or {}).items() <= sample.labels.items():
                    return sample.value
        return None

    def forbidden_lines(self) -> list[str]:
        """Lines where the API server refused the operator (RBAC): none is expected."""
        return [line for line in self.output().splitlines() if "403" in line and "orbidden" in line]

    @contextlib.contextmanager
    def running(self) -> Iterator[Operator]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


# ---------------------------------------------------------------------------------------- test jobs
def limr_job(name: str, ns: str, storage: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """A LIMRJob with a small Ray cluster (1 head, 1 worker with 1 GPU) whose pods no node can take."""
    body = {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "LIMRJob", "metadata": {"name": name, "namespace": ns},
        "spec": {
            "model": {"name": "Qwen/Qwen2.5-Math-7B"}, "dataset": {"uri": "s3://limr-data/math.json"},
            "storage": storage,
            "cluster": {"head": {"cpu": "1", "memory": "1Gi", "nodeSelector": NO_NODE},
                        "workerGroups": [{"name": "workers", "role": "any", "replicas": 1, "gpus": 1, "cpu": "1",
                                          "memory": "1Gi", "nodeSelector": NO_NODE}]},
        },
    }
    for key, value in spec.items():
        if key == "cluster":
            body["spec"]["cluster"].update(value)
        else:
            body["spec"][key] = value
    return body


def s3_storage(endpoint: str, bucket: str, secret: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"uri": f"s3://{bucket}/runs", "endpoint": endpoint, "region": "us-east-1"}
    if secret:
        out["secretRef"] = {"name": SECRET}
    return out


def create_secret(kube: Kube, ns: str) -> None:
    import base64

    data = {k: base64.b64encode(v.encode()).decode() for k, v in S3_KEYS.items()}
    kube.core.create_namespaced_secret(ns, {"metadata": {"name": SECRET}, "data": data})


def write_done(s3: Any, bucket: str, job: str, step: str, extra: dict[str, Any] | None = None) -> None:
    """What the trainer writes last when a step completes (limr_api.layout.done_key)."""
    from limr_api import layout

    s3.put_object(Bucket=bucket, Key=f"runs/{layout.done_key(job, step)}", Body=json.dumps({"step": step, **(extra or {})}))
