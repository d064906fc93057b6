"""The KubeRay emulation the multi-host test starts its hosts with agrees with KubeRay's own tests and
with what Ray parses (pure functions; no root, no cluster)."""

from __future__ import annotations

import json
import shlex
import subprocess

import kuberay_pods as kp


def test_command_matches_kuberays_own_expectation():
    # pod_test.go: `ray start --head  --num-gpus=1  --resources='{"neuron_cores":4}' `
    params = {"num-gpus": "1", "resources": '\'{"neuron_cores":4}\''}
    assert kp.ray_start_command("head", params) == "ulimit -n 65536; ray start --head  --num-gpus=1  --resources='{\"neuron_cores\":4}' "


def test_missing_params_are_filled_as_kuberay_does():
    container = {"resources": {"limits": {"cpu": "1500m", "memory": "4Gi", "nvidia.com/gpu": 2}}}
    worker = kp.ray_start_params("worker", {"resources": "'{\"train\":2}'"}, container, "10.0.0.1")
    assert worker == {"resources": "'{\"train\":2}'", "address": "10.0.0.1:6379", "metrics-export-port": "8080",
                      "block": "true", "dashboard-agent-listen-port": "52365", "num-cpus": "2",
                      "memory": str(4 * 2**30), "num-gpus": "2"}
    head = kp.ray_start_params("head", {"num-cpus": "0"}, {"resources": {"requests": {"cpu": "4"}}})
    assert head["dashboard-host"] == "0.0.0.0" and head["num-cpus"] == "0" and "memory" not in head
    # a resources string KubeRay cannot parse: it logs an error and derives no num-gpus
    broken = kp.ray_start_params("worker", {"resources": '"{\\"train\\": 2}"'}, container, "10.0.0.1")
    assert "num-gpus" not in broken


def test_what_bash_hands_ray_is_the_builders_json():
    from limr_api.cluster import WorkerGroup
    from limr_operator.builders import role_resources

    value = role_resources(WorkerGroup(name="train", role="train", gpus=4))
    assert kp.parsed_resources(value) == {"train": 4}
    command = kp.ray_start_command("worker", {"resources": value, "block": "true"})
    argv = subprocess.run(["bash", "-c", f"printf '%s\\n' {command.split('ray start', 1)[1]}"],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    flag = next(a for a in argv if a.startswith("--resources="))
    assert json.loads(flag.removeprefix("--resources=")) == {"train": 4}, shlex.join(argv)
