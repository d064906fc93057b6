"""A real Kubernetes control plane for tests: the session fixture `real_cluster`.

The control plane is `scripts/cluster.sh` (see cluster/README.md): etcd, kube-apiserver (RBAC,
OwnerReferencesPermissionEnforcement, TokenRequest), kube-controller-manager (garbage collector,
TTL-after-finished, job, namespace, service-account controllers), the KubeRay operator and Kueue
with its webhooks, all real processes on loopback. There is no kubelet and no scheduler: Pods stay
Pending; a test plays a pod's or a job's outcome through the status subresource.

Use it from tests/conftest.py (tests/ is on sys.path there, as for `chart_support`)::

    pytest_plugins = ["realcluster"]   # ("tests.realcluster" where the repository root is the import root)

or import the fixture into one folder's conftest.py, as tests/integration/cluster/conftest.py does
(`from realcluster import real_cluster  # noqa: F401`). Either way one cluster serves the session:
`scripts/cluster.sh up` is a no-op when it is already up.

Where the cluster comes from:
  * `LIMR_TEST_EXISTING_CLUSTER=1` with `KUBECONFIG` set: that cluster, used as is, never stopped
    (`LIMR_CLUSTER_LOGS` may name its components' log folder);
  * otherwise `scripts/cluster.sh up` (a no-op when it is already up, e.g. after `make cluster`).
    The session stops it at the end only if this session started it, and `LIMR_KEEP_CLUSTER=1`
    keeps it running for the next session (a warm `up` then costs well under a second).
  * If it cannot start: with `CI` set the fixture fails loudly (every test using it errors);
    elsewhere those tests skip, with the reason and the tail of the script's output.
  A cold build of the binaries takes 10-20 minutes on 2 cores: CI should run `make cluster` (or
  `scripts/cluster.sh build`) before pytest, so no test's timeout has to cover the build.

The yielded `RealCluster` has `kubeconfig` (Path), `kubectl_path` (Path), `server` (URL),
`started_here` (bool), `logs` (the components' log folder, None for an existing cluster) and the
methods `kubectl(*args, input=None, check=True)`,
`kubectl_json(*args)`, `get(resource, name=None, namespace=None)`, `apply(manifest)`,
`create_namespace(name)`, `delete_namespace(name)`, `sa_token(namespace, sa_name)`,
`kubeconfig_for_token(token)`, `api(method, path, token, body=None)` and
`wait_for(predicate, timeout, what)`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SCRIPT = REPO / "scripts" / "cluster.sh"
UP_TIMEOUT_S = float(os.environ.get("LIMR_CLUSTER_UP_TIMEOUT", "3600"))  # a cold build included

T = TypeVar("T")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


class KubectlError(RuntimeError):
    """A kubectl command failed; the message holds its stderr (and `.result` the whole run)."""

    def __init__(self, args: list[str], result: subprocess.CompletedProcess):
        self.result = result
        super().__init__(
            f"kubectl {' '.join(args)} exited with {result.returncode}:\n{(result.stderr or '').strip()}"
        )


class ClusterUnavailable(RuntimeError):
    pass


@dataclass
class RealCluster:
    kubeconfig: Path
    kubectl_path: Path
    server: str
    started_here: bool = False
    logs: Path | None = None  # the components' logs (logs/<process>.log); None for an existing cluster
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="limr-realcluster-")))
    _cluster: dict | None = field(default=None, repr=False)
    _ssl: ssl.SSLContext | None = field(default=None, repr=False)

    # --- kubectl -----------------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """Environment for a subprocess that should talk to this cluster as admin."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(
        self,
        *args: str,
        input: str | bytes | None = None,
        check: bool = True,
        timeout: float = 120,
        kubeconfig: str | os.PathLike | None = None,
    ) -> subprocess.CompletedProcess:
        """Run kubectl against this cluster (as admin, or with `kubeconfig`); text in and out."""
        argv = [str(self.kubectl_path), "--kubeconfig", str(kubeconfig or self.kubeconfig), *map(str, args)]
        if isinstance(input, bytes):
            input = input.decode()
        result = subprocess.run(
            argv, check=False, input=input, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise KubectlError(list(map(str, args)), result)
        return result

    def kubectl_json(self, *args: str, **kwargs: Any) -> Any:
        """kubectl ... -o json, parsed."""
        return json.loads(self.kubectl(*args, "-o", "json", **kwargs).stdout)

    def get(self, resource: str, name: str | None = None, namespace: str | None = None) -> dict | None:
        """The object as a dict (None when it does not exist); without a name, the List."""
        args = ["get", resource] + ([name] if name else [])
        if namespace:
            args += ["-n", namespace]
        result = self.kubectl(*args, "-o", "json", check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise KubectlError(args, result)
        return json.loads(result.stdout)

    def apply(self, manifest: dict | list | str, namespace: str | None = None) -> Any:
        """`kubectl apply --server-side` of a dict, a list of dicts or YAML text; returns what the
        server stored (a dict, or a list for several objects). Field validation is Strict."""
        if isinstance(manifest, dict):
            text = yaml.safe_dump(manifest)
        elif isinstance(manifest, list):
            text = yaml.safe_dump_all(manifest)
        else:
            text = manifest
        args = ["apply", "--server-side", "--field-manager", "limr-tests", "--validate=strict", "-f", "-"]
        if namespace:
            args += ["-n", namespace]
        out = self.kubectl_json(*args, input=text)
        if out.get("kind") == "List":
            return out["items"]
        return out

    def create_namespace(self, name: str) -> str:
        """Create a namespace (fine if it exists) and return its name."""
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        return name

    def delete_namespace(self, name: str, wait: bool = False) -> None:
        self.kubectl("delete", "namespace", name, "--ignore-not-found", f"--wait={str(wait).lower()}")

    # --- service-account tokens -----------------------------------------------------------------------
    def sa_token(
        self, namespace: str, sa_name: str, duration: str = "1h", audience: str | None = None
    ) -> str:
        """A bound token for the ServiceAccount through the TokenRequest API (`kubectl create token`)."""
        args = ["create", "token", sa_name, "-n", namespace, "--duration", duration]
        if audience:
            args += ["--audience", audience]
        return self.kubectl(*args).stdout.strip()

    def _cluster_entry(self) -> dict:
        """The kubeconfig's cluster entry (server, CA), read once."""
        if self._cluster is None:
            view = self.kubectl_json("config", "view", "--minify", "--raw")
            self._cluster = view["clusters"][0]["cluster"]
        return self._cluster

    def kubeconfig_for_token(self, token: str, name: str = "token-user") -> Path:
        """A kubeconfig file that authenticates with `token` only (no client certificate)."""
        cluster = dict(self._cluster_entry())
        if "certificate-authority" in cluster and "certificate-authority-data" not in cluster:
            ca = Path(cluster.pop("certificate-authority")).read_bytes()
            cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "cluster", "cluster": cluster}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": "cluster", "user": name}}],
            "current-context": name,
        }
        fd, path = tempfile.mkstemp(prefix=f"{name}-", suffix=".kubeconfig", dir=self.workdir)
        with os.fdopen(fd, "w") as out:
            yaml.safe_dump(config, out)
        return Path(path)

    # --- raw HTTP ----------------------------------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is not None:
            return self._ssl
        self._ssl = self._make_ssl_context()
        return self._ssl

    def _make_ssl_context(self) -> ssl.SSLContext:
        cluster = self._cluster_entry()
        if cluster.get("insecure-skip-tls-verify"):
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        if "certificate-authority-data" in cluster:
            return ssl.create_default_context(
                cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
            )
        if "certificate-authority" in cluster:
            return ssl.create_default_context(cafile=cluster["certificate-authority"])
        return ssl.create_default_context()

    def api(
        self,
        method: str,
        path: str,
        token: str,
        body: dict | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, dict]:
        """One HTTP request to the API server with a bearer token: (status code, JSON body)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server.rstrip("/") + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, context=self._ssl_context(), timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                return err.code, json.loads(raw)
            except ValueError:
                return err.code, {"raw": raw.decode(errors="replace")}

    # --- waiting -----------------------------------------------------------------------------------------
    @staticmethod
    def wait_for(
        predicate: Callable[[], T], timeout: float = 60, what: str = "condition", interval: float = 0.25
    ) -> T:
        """Poll `predicate` until it returns something truthy (returned); AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            last = predicate()
            if last:
                return last
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what} (last value: {last!r})")
            time.sleep(interval)


def _run_script(command: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), command],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def _script_env() -> dict[str, str]:
    out = _run_script("env", 60).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export ") :].split("=", 1)
            env[key] = value
    return env


def _existing_cluster() -> RealCluster:
    kubeconfig = Path(os.environ["KUBECONFIG"].split(os.pathsep)[0])
    built = sorted((REPO / ".cache" / "cluster" / "bin").glob("kubectl-v*"))
    candidates = [p for p in built if not p.name.endswith(".stamp")]
    kubectl = (
        candidates[-1]
        if candidates
        else next(
            (
                Path(p)
                for p in (REPO / ".cache" / "bin" / "kubectl", shutil.which("kubectl"))
                if p and Path(p).exists()
            ),
            None,
        )
    )
    if kubectl is None:
        raise ClusterUnavailable(
            "LIMR_TEST_EXISTING_CLUSTER=1 but no kubectl found (make cluster builds one)"
        )
    logs = Path(os.environ["LIMR_CLUSTER_LOGS"]) if os.environ.get("LIMR_CLUSTER_LOGS") else None
    cluster = RealCluster(kubeconfig=kubeconfig, kubectl_path=kubectl, server="", started_here=False, logs=logs)
    cluster.server = cluster._cluster_entry()["server"]
    cluster.kubectl("get", "--raw", "/readyz")
    return cluster


def _local_cluster() -> RealCluster:
    if shutil.which("go") is None and not (REPO / ".cache" / "cluster" / "bin").is_dir():
        raise ClusterUnavailable(
            "Go is not installed, and scripts/cluster.sh builds the control plane with it"
        )
    was_up = _run_script("status", 60).returncode == 0
    try:
        result = _run_script("up", UP_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise ClusterUnavailable(f"scripts/cluster.sh up did not finish within {UP_TIMEOUT_S:.0f} s") from exc
    log_dir = REPO / ".cache" / "cluster" / "logs"
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-40:])
        raise ClusterUnavailable(
            f"scripts/cluster.sh up exited with {result.returncode} (logs in {log_dir}):\n{tail}"
        )
    env = _script_env()
    return RealCluster(
        kubeconfig=Path(env["KUBECONFIG"]),
        kubectl_path=Path(env["LIMR_CLUSTER_KUBECTL"]),
        server=env["LIMR_CLUSTER_SERVER"],
        started_here=not was_up,
        logs=Path(env["LIMR_CLUSTER_LOGS"]) if env.get("LIMR_CLUSTER_LOGS") else None,
    )


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[RealCluster]:
    """The session's real control plane (see the module docstring)."""
    existing = os.environ.get("LIMR_TEST_EXISTING_CLUSTER") == "1" and bool(os.environ.get("KUBECONFIG"))
    try:
        cluster = _existing_cluster() if existing else _local_cluster()
    except (ClusterUnavailable, KubectlError, subprocess.SubprocessError, OSError) as exc:
        message = f"REAL CLUSTER UNAVAILABLE: {exc}"
        if _in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    try:
        yield cluster
    finally:
        shutil.rmtree(cluster.workdir, ignore_errors=True)
        if cluster.started_here and os.environ.get("LIMR_KEEP_CLUSTER") != "1":
            result = _run_script("down", 120)
            if result.returncode != 0:
                raise RuntimeError(f"scripts/cluster.sh down failed:\n{result.stdout}{result.stderr}")
