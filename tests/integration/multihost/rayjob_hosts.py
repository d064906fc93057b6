"""The Ray cluster of one of our RayJobs, with each pod a host of `multihost_support.Network`.

`RayJobHosts.start(...)` builds the RayJob with the operator's own builder, makes one host per pod
(the head and one per worker-group replica), runs on each the `ray start` line and environment
KubeRay would give that pod (`kuberay_pods`), and waits until every node has joined. The trainer
"image" is this checkout's venv, shared read-only by every host as an image's layers are, with a
copy of DeepSpeed's prebuilt ops in each host's HOME where the image has them; what a pod has for
itself (/tmp, /dev/shm, HOME, its address) each host has for itself.

It also answers the questions a test asks the cluster: its nodes, actors and jobs (Ray's state
API on the head's dashboard, as `ray list` would), and it copies each host's Ray logs out when
asked (they live in the host's private /tmp).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kuberay_pods
from multihost_support import Host, Network
from paths import REPO

JOB_FILE = "/tmp/limr/job.yaml"  # where the head finds the ConfigMap's job.yaml (KubeRay mounts /etc/limr)


IMAGE_TORCH_EXTENSIONS = "/home/ray/.cache/torch_extensions"  # the trainer image's TORCH_EXTENSIONS_DIR


def image_env() -> dict[str, str]:
    """What the trainer image's ENV lines give every container (Dockerfile), for this checkout's venv."""
    venv_bin = str(Path(sys.executable).parent)
    code = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}  # the code we import
    return {
        **code,
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PYTHONUNBUFFERED": "1",
        "TORCH_EXTENSIONS_DIR": IMAGE_TORCH_EXTENSIONS,
        "HF_HUB_OFFLINE": "1",  # nothing is downloaded from the hub on these machines
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def prebuilt_ops() -> Path:
    """DeepSpeed's ops as `make venv` prebuilt them (the image prebuilds them at IMAGE_TORCH_EXTENSIONS)."""
    return Path(os.environ.get("TORCH_EXTENSIONS_DIR") or REPO / ".cache" / "torch_extensions")


def install_prebuilt_ops(host: Host) -> None:
    """Each host its own copy of the prebuilt ops, as each pod has the image's: a build or a stale
    `lock` in the shared folder (other runs use it) can then never make a host wait."""
    source = prebuilt_ops()
    if source.is_dir():
        host.run(["sh", "-c", 'mkdir -p "$2" && cp -a "$1/." "$2" && find "$2" -name lock -delete',
                  "-", str(source), IMAGE_TORCH_EXTENSIONS])


@dataclass
class RayJobHosts:
    net: Network
    ray_job: dict[str, Any]
    config_map: dict[str, Any]
    secrets: dict[str, dict[str, str]]
    logs: Path
    hosts: dict[str, Host] = field(default_factory=dict)  # pod name -> host
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    ray_start: dict[str, Any] = field(default_factory=dict)  # pod name -> its running `ray start --block`

    @classmethod
    def start(cls, net: Network, ray_job: dict[str, Any], config_map: dict[str, Any],
              secrets: dict[str, dict[str, str]], logs: Path, timeout: float = 180) -> RayJobHosts:
        cluster = cls(net, ray_job, config_map, secrets, logs)
        head = net.add_host("head")
        install_prebuilt_ops(head)
        cluster.hosts["head"] = head
        groups = kuberay_pods.pods(ray_job, head.ip)
        cluster.pods["head"] = groups.pop("head")
        for group, pod in groups.items():
            for i in range(pod["replicas"]):
                name = group if pod["replicas"] == 1 else f"{group}-{i}"
                cluster.hosts[name] = net.add_host(name)
                install_prebuilt_ops(cluster.hosts[name])
                cluster.pods[name] = {**pod, "group": group}
        cluster.pods["head"]["group"] = "headgroup"
        cluster.start_node("head")
        cluster.wait_nodes(1, timeout)
        for name in cluster.hosts:
            if name != "head":
                cluster.start_node(name)
        cluster.wait_nodes(len(cluster.hosts), timeout)
        return cluster

    # ------------------------------------------------------------------------------ pods
    def env(self, name: str) -> dict[str, str]:
        """The container environment of pod `name`: the image's, the builder's, KubeRay's."""
        pod = self.pods[name]
        return self.hosts[name].env({**image_env(), **kuberay_pods.pod_env(
            pod["node_type"], pod["container"], self.secrets, self.hosts["head"].ip,
            self.ray_job["metadata"]["name"], pod["group"])})

    def start_node(self, name: str):
        """The Ray container's command on pod `name` (`ray start ... --block`: it runs until killed)."""
        host = self.hosts[name]
        proc = host.popen(["bash", "-c", self.pods[name]["command"]], env=self.env(name),
                          log=self.logs / f"{name}.ray-start.log")
        self.ray_start[name] = proc
        return proc

    def run_entrypoint(self, attempt: int, log: Path):
        """The RayJob's entrypoint on the head, reading the ConfigMap's job.yaml (the same every attempt)."""
        from limr_operator import builders

        head = self.hosts["head"]
        head.write_file(JOB_FILE, self.config_map["data"][builders.JOB_FILE])
        argv = self.ray_job["spec"]["entrypoint"].split()
        argv[argv.index("--job") + 1] = JOB_FILE
        argv[argv.index("--attempt") + 1] = str(attempt)
        return head.popen(argv, env=self.env("head"), log=log)

    # ------------------------------------------------------------------------ state API
    @property
    def dashboard(self) -> str:
        return f"http://{self.hosts['head'].ip}:{kuberay_pods.DASHBOARD_PORT}"

    def nodes(self, alive_only: bool = True) -> list[dict[str, Any]]:
        from ray.util.state import list_nodes

        nodes = [_plain(n) for n in list_nodes(address=self.dashboard, limit=1000, detail=True,
                                               raise_on_missing_output=False)]
        return [n for n in nodes if n["state"] == "ALIVE"] if alive_only else nodes

    def actors(self) -> list[dict[str, Any]]:
        from ray.util.state import list_actors

        return [_plain(a) for a in list_actors(address=self.dashboard, limit=10000, detail=True,
                                                raise_on_missing_output=False)]

    def jobs(self) -> list[dict[str, Any]]:
        from ray.util.state import list_jobs

        return [_plain(j) for j in list_jobs(address=self.dashboard, raise_on_missing_output=False)]

    def wait_nodes(self, alive: int, timeout: float = 180) -> list[dict[str, Any]]:
        """Block until `alive` nodes are alive (the dashboard answering included)."""
        from ray.util.state.exception import RayStateApiException

        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            ended = {name: p.returncode for name, p in self.ray_start.items() if p.poll() is not None}
            if ended:
                raise RuntimeError(f"ray start ended on {ended}:\n{self.tail_logs()}")
            try:
                nodes = self.nodes()
                if len(nodes) == alive:
                    return nodes
                last = [(n["node_ip"], n["state"]) for n in nodes]
            except (OSError, RayStateApiException) as exc:  # the dashboard is still starting
                last = exc
            time.sleep(1)
        raise TimeoutError(f"{alive} Ray nodes not alive within {timeout:.0f} s (last: {last}); "
                           f"logs in {self.logs}:\n{self.tail_logs()}")

    def node_ips(self) -> dict[str, str]:
        """{node id: node ip} of every node the cluster ever had (dead ones included)."""
        return {n["node_id"]: n["node_ip"] for n in self.nodes(alive_only=False)}

    # --------------------------------------------------------------------------- logs
    def tail_logs(self, lines: int = 15) -> str:
        """The last lines of every host's Ray error logs (they live in the host's private /tmp)."""
        out = []
        for name, host in self.hosts.items():
            logs = "/tmp/ray/session_latest/logs"
            done = host.run(["sh", "-c", f"tail -n {lines} {logs}/*.err {logs}/raylet.out 2>/dev/null"], check=False)
            out.append(f"===== {name} ({host.ip})\n{done.stdout[-6000:]}")
        for path in sorted(self.logs.glob("*.log")):
            out.append(f"===== {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(out)

    def copy_ray_logs(self) -> None:
        """Each host's Ray session logs as `logs/<host>-ray-logs.tgz` (for a look after a failure)."""
        for name, host in self.hosts.items():
            archive = self.logs / f"{name}-ray-logs.tgz"
            archive.unlink(missing_ok=True)
            host.popen(["sh", "-c", "tar -C /tmp/ray -czf - --exclude=sockets . 2>/dev/null"], log=archive).wait(60)


def _plain(state: Any) -> dict[str, Any]:
    """A state API record as a dict (dataclass or pydantic, depending on the kind)."""
    if hasattr(state, "model_dump"):
        return state.model_dump()
    return dataclasses.asdict(state)
