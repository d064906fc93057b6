"""Harness for the operator's end-to-end tests and benchmark: an emulated API server with the
LIMRJob and KubeRay CRDs, the real operator under kopf's KopfRunner, and a client to play KubeRay."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from paths import REPO

KUBERAY = REPO.parent / "shared" / "crds" / "kuberay"
LIMR_CRD = REPO / "manifests" / "crd" / "limr.io_limrjobs.yaml"

# kubernetes reads KUBECONFIG when first imported; kopf logs in through it.
KUBECONFIG = Path(tempfile.gettempdir()) / f"limr-operator-tests-{os.getpid()}.kubeconfig"
os.environ["KUBECONFIG"] = str(KUBECONFIG)
os.environ.setdefault("LIMR_RECONCILE_INTERVAL", "0.3")
os.environ.setdefault("LIMR_SUMMARY_RETRY", "0.3")
os.environ.setdefault("LIMR_METRICS_POLL", "0.3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO / "tests"))

from kube_emulator import EmulatorThread, KubeEmulator, kubeconfig

RAYJOB_FALLBACK = {"spec": {"group": "ray.io", "scope": "Namespaced", "names": {"plural": "rayjobs", "kind": "RayJob"},
                            "versions": [{"name": "v1", "subresources": {"status": {}}}]}}


@functools.cache
def _load_yaml(path: Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the KubeRay CRD is 1.4 MB
    return yaml.load(path.read_text(), Loader=loader)


def kuberay_crd() -> tuple[dict[str, Any], bool]:
    path = KUBERAY / "ray.io_rayjobs.yaml"
    if path.exists():
        return _load_yaml(path), True
    print(f"WARNING: KubeRay CRDs missing at {KUBERAY}: registering rayjobs by name only", file=sys.stderr)
    return RAYJOB_FALLBACK, False


def setup_api(validate: bool = True) -> Callable[[KubeEmulator], None]:
    def setup(api: KubeEmulator) -> None:
        crd = _load_yaml(LIMR_CRD)
        checker = None
        if validate:
            from crd_check import crd_errors

            checker = crd_errors
        api.register_crd(crd, checker)
        api.register_crd(kuberay_crd()[0])
        api.register("v1", "configmaps", "ConfigMap")
        api.register("v1", "secrets", "Secret")
        api.register("batch/v1", "jobs", "Job", status=True)
    return setup


class Cluster:
    """One emulated API server and clients on it."""

    def __init__(self, validate: bool = True) -> None:
        self.emu = EmulatorThread(setup_api(validate)).start()
        KUBECONFIG.write_text(yaml.safe_dump(kubeconfig(self.emu.url)))
        import kubernetes

        with contextlib.suppress(AttributeError):  # if kubernetes was imported before KUBECONFIG was set
            kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(KUBECONFIG)
        from limr_operator import kube

        kube.reset()
        self.client = kubernetes.config.new_client_from_config(config_file=str(KUBECONFIG))
        self.custom = kubernetes.client.CustomObjectsApi(self.client)
        self.core = kubernetes.client.CoreV1Api(self.client)
        self.batch = kubernetes.client.BatchV1Api(self.client)

    @property
    def api(self) -> KubeEmulator:
        assert self.emu.api is not None
        return self.emu.api

    def close(self) -> None:
        self.client.close()
        self.emu.stop()

    # ---- LIMRJobs
    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        ns = body["metadata"]["namespace"]
        return self.custom.create_namespaced_custom_object("limr.io", "v1alpha1", ns, "limrjobs", body)

    def job(self, ns: str, name: str) -> dict[str, Any] | None:
        return self.api.get_object("limr.io/v1alpha1", "limrjobs", ns, name)

    def rayjobs(self, ns: str) -> list[dict[str, Any]]:
        return self.api.list_objects("ray.io/v1", "rayjobs", ns)

    def jobs(self, ns: str) -> list[dict[str, Any]]:
        return self.api.list_objects("batch/v1", "jobs", ns)

    # ---- playing KubeRay and the Job controller
    def set_rayjob(self, ns: str, name: str, deployment: Any, status: Any, **extra: Any) -> None:
        body = {"status": {"jobDeploymentStatus": deployment, "jobStatus": status, **extra}}
        self.custom.patch_namespaced_custom_object_status("ray.io", "v1", ns, "rayjobs", name, body)

    def set_job(self, ns: str, name: str, condition: str) -> None:
        body = {"status": {"conditions": [{"type": condition, "status": "True", "reason": condition}]}}
        self.batch.patch_namespaced_job_status(name, ns, body)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def operator_args(extra: list[str] | None = None) -> list[str]:
    return ["run", "-A", "--standalone", "-m", "limr_operator.handlers"] + (extra or [])
