"""What KubeRay v1.5.0 makes of our RayJob's pods, as pure functions: the `ray start` line and the env.

The multi-host test starts each host the way KubeRay would start the pod of the operator's RayJob
(`limr_operator.builders.ray_job`), so what the builder writes (`rayStartParams`, container limits,
env) is what Ray really receives. Read from KubeRay's source (`controllers/ray/common/pod.go`,
see /tmp/research/kuberay.md):
- `setMissingRayStartParams`: workers get `address=<head>:6379`; the head `dashboard-host=0.0.0.0`;
  both `metrics-export-port=8080`, `dashboard-agent-listen-port=52365` when absent, and always `block`;
- `generateRayStartCommand`: `num-cpus` from limits.cpu (else requests.cpu), rounded up; `memory`
  from limits.memory in bytes; `num-gpus` from a limit whose key ends in `gpu`, each when absent,
  the last only when KubeRay can parse `resources` (`getResourcesMap`: trim quotes, then JSON);
- `convertParamMap`: keys sorted, "true" -> a bare flag, "false" -> omitted, anything else
  ` --key=value` pasted verbatim into `/bin/bash -c "ulimit -n 65536; ray start ..."`, so bash's
  quoting decides what Ray parses (the reason to run it through bash, not to split it ourselves);
- env: the container's own (secretKeyRef values resolved from the given Secret), then `RAY_PORT`,
  `RAY_ADDRESS` (127.0.0.1:6379 on the head, <head>:6379 on workers), `RAY_CLUSTER_NAME`,
  `RAY_NODE_TYPE_NAME`, `RAY_USAGE_STATS_KUBERAY_IN_USE`.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

GCS_PORT = 6379
DASHBOARD_PORT = 8265
_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
             "m": Decimal("0.001")}


def quantity(text: str) -> Decimal:
    """A Kubernetes quantity ("500m", "2", "4Gi") as a number."""
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    if not m or (m.group(2) and m.group(2) not in _SUFFIXES):
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    return Decimal(m.group(1)) * Decimal(_SUFFIXES.get(m.group(2), 1))


def ray_start_params(node_type: str, params: dict[str, str], container: dict[str, Any],
                     head_address: str | None = None) -> dict[str, str]:
    """rayStartParams after KubeRay filled in what is missing (node_type: "head" or "worker")."""
    out = dict(params)
    if node_type == "worker":
        out.setdefault("address", f"{head_address}:{GCS_PORT}")
    else:
        out.setdefault("dashboard-host", "0.0.0.0")
    out.setdefault("metrics-export-port", "8080")
    out["block"] = "true"
    out.setdefault("dashboard-agent-listen-port", "52365")
    resources = container.get("resources", {})
    limits, requests = resources.get("limits", {}), resources.get("requests", {})
    cpu = limits.get("cpu", requests.get("cpu"))
    if "num-cpus" not in out and cpu is not None:
        out["num-cpus"] = str(math.ceil(quantity(cpu)))
    if "memory" not in out and "memory" in limits:
        out["memory"] = str(int(quantity(limits["memory"])))
    gpus = [v for k, v in limits.items() if k.endswith("gpu")]
    if limits and parsed_resources(out.get("resources")) is not None and "num-gpus" not in out and gpus:
        out["num-gpus"] = str(int(quantity(gpus[0])))
    return out


def parsed_resources(value: str | None) -> dict[str, float] | None:
    """KubeRay's own reading of `rayStartParams.resources` (None where it logs a parse error)."""
    if value is None:
        return {}
    try:
        parsed = json.loads(value.strip("'\"` "))
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def ray_start_command(node_type: str, params: dict[str, str]) -> str:
    """The bash command line KubeRay runs in the Ray container (after `ray_start_params`)."""
    flags = ""
    for key in sorted(params):
        value = params[key]
        if value.lower() == "true":
            flags += f" --{key} "
        elif value.lower() != "false":
            flags += f" --{key}={value} "
    return f"ulimit -n 65536; ray start{' --head ' if node_type == 'head' else ' '}{flags}"


def pod_env(node_type: str, container: dict[str, Any], secrets: dict[str, dict[str, str]],
            head_address: str | None, cluster_name: str, group: str) -> dict[str, str]:
    """The Ray container's environment as the pod would have it."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[ref["name"]][ref["key"]]
    env.setdefault("RAY_PORT", str(GCS_PORT))
    env.setdefault("RAY_ADDRESS", f"127.0.0.1:{GCS_PORT}" if node_type == "head" else f"{head_address}:{GCS_PORT}")
    env.update(RAY_CLUSTER_NAME=cluster_name, RAY_NODE_TYPE_NAME=group, RAY_USAGE_STATS_KUBERAY_IN_USE="1")
    return env


def pods(ray_job: dict[str, Any], head_address: str) -> dict[str, dict[str, Any]]:
    """{group name ("head" for the head): {node_type, command, env_container, replicas}} of a RayJob."""
    cluster = ray_job["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]
    out = {"head": {"node_type": "head", "replicas": 1, "params": head["rayStartParams"],
                    "container": head["template"]["spec"]["containers"][0]}}
    for group in cluster["workerGroupSpecs"]:
        out[group["groupName"]] = {"node_type": "worker", "replicas": group["replicas"],
                                   "params": group["rayStartParams"],
                                   "container": group["template"]["spec"]["containers"][0]}
    for pod in out.values():
        full = ray_start_params(pod["node_type"], pod["params"], pod["container"], head_address)
        pod["command"] = ray_start_command(pod["node_type"], full)
    return out
