"""What the real KubeRay v1.5.0 makes of the operator's children, for every step of both examples
(manifests/examples) and of a job with every scheduling field set.

Each step's objects are built by the operator's own builders for a LIMRJob that exists (its uid is
the owner, so the garbage collector keeps them) and applied with server-side apply and strict field
validation: KubeRay's CRD must know every field. KubeRay then makes the RayCluster and its pods
(Pending: no kubelet). Asserted on those pods: the head has no GPUs, workers carry nvidia.com/gpu
limits and the role resources that KubeRay parsed without an error in its log, storage credentials
arrive through secretKeyRef only, image, nodeSelector and tolerations are applied; then, with the
Ray pods played Running and Ready, KubeRay's submitter pod carries the head's scheduling fields.
"""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from limr_api.loader import load_job, load_yaml
from limr_api.plan import steps
from limr_operator import builders
from operator_fixtures import EXAMPLES, built_jobs
from realoperator import S3_KEYS, SECRET

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PARSE_ERRORS = ("failed to unmarshal resources", "failed to add accelerator resources",
                "failed to get resources map")


def jobs() -> dict[str, dict]:
    out = {p.stem: load_yaml(p) for p in sorted(EXAMPLES.glob("*.yaml"))}
    every = copy.deepcopy(built_jobs()["paper"])  # head and rollout nodeSelectors, a toleration
    every["metadata"]["name"] = "scheduled"
    every["spec"]["cluster"].pop("queue")  # Kueue's part is tested with the operator (test_operator_kueue)
    every["spec"]["cluster"].update(serviceAccountName="limr-ray", priorityClassName="limr-test-high")
    every["spec"]["cluster"]["head"]["tolerations"] = [{"key": "dedicated", "value": "ray-head",
                                                        "effect": "NoSchedule"}]
    every["spec"]["storage"]["secretRef"] = {"name": SECRET}
    out["scheduled"] = every
    return out


JOBS = jobs()
assert {"tiny-local", "qwen-math-7b-limr"} <= set(JOBS), "both examples must be covered"


@pytest.fixture(scope="module")
def priority_class(real_cluster):
    real_cluster.apply({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                        "metadata": {"name": "limr-test-high"}, "value": 1000})
    yield "limr-test-high"
    real_cluster.kubectl("delete", "priorityclass", "limr-test-high", "--ignore-not-found")


def kuberay_log_offset(c) -> int:
    log = c.logs / "kuberay-operator.log" if c.logs else None
    return log.stat().st_size if log and log.exists() else 0


def kuberay_log_since(c, offset: int) -> str:
    if not c.logs:
        return ""
    with (c.logs / "kuberay-operator.log").open("rb") as fh:
        fh.seek(offset)
        return fh.read().decode(errors="replace")


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env") or []}


def check_credentials(container: dict, job) -> None:
    env = env_of(container)
    st = job.spec.storage
    if st.secretRef:
        for var, key in (("AWS_ACCESS_KEY_ID", st.secretRef.accessKeyIdKey),
                         ("AWS_SECRET_ACCESS_KEY", st.secretRef.secretAccessKeyKey)):
            assert env[var] == {"name": var, "valueFrom": {"secretKeyRef": {"name": st.secretRef.name, "key": key}}}
    literal = {k for k, e in env.items() if k.startswith("AWS_") and "value" in e}
    assert literal <= {"AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"}, literal
    assert not any(v in json.dumps(container) for v in S3_KEYS.values())


@pytest.mark.parametrize("key", sorted(JOBS))
def test_kuberay_takes_every_step(real_cluster, kube, namespace, priority_class, key):
    c, ns = real_cluster, namespace
    body = copy.deepcopy(JOBS[key])
    body["metadata"]["namespace"] = ns
    if body["spec"]["cluster"].get("serviceAccountName"):
        c.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "limr-ray", "namespace": ns}})
    stored = c.apply(body)  # no operator runs in this module: the test applies what it would create
    job, uid = load_job(body), stored["metadata"]["uid"]
    offset = kuberay_log_offset(c)
    spec = job.spec
    for step in steps(spec):
        objs = builders.children(job, uid, step, 1)
        c.apply(objs)  # server-side, --validate=strict: KubeRay's CRD knows every field
        name = objs[-1]["metadata"]["name"]
        if not step.gpu:
            pod = c.wait_for(lambda n=name: kube.pods(ns, f"batch.kubernetes.io/job-name={n}"), 60,
                             f"the job controller to create the pod of {name}")[0]
            assert pod["spec"].get("nodeSelector") == (spec.cluster.head.nodeSelector or None)
            assert pod["spec"]["containers"][0]["image"] == spec.cluster.image
            check_credentials(pod["spec"]["containers"][0], job)
            continue
        cluster = c.wait_for(lambda n=name: (kube.rayjob(ns, n).get("status") or {}).get("rayClusterName"), 60,
                             f"KubeRay to make the RayCluster of {name}")
        want = 1 + sum(g.replicas for g in spec.cluster.workerGroups)
        pods = c.wait_for(lambda cl=cluster, w=want: len(p := kube.pods(ns, f"ray.io/cluster={cl}")) == w and p, 60,
                          f"KubeRay to create the {want} pods of {cluster}")
        assert (kube.rayjob(ns, name).get("status") or {}).get("jobDeploymentStatus") != "ValidationFailed"
        for pod in pods:
            group = pod["metadata"]["labels"]["ray.io/group"]
            ray = pod["spec"]["containers"][0]
            limits = ray["resources"].get("limits") or {}
            start = env_of(ray)["KUBERAY_GEN_RAY_START_CMD"]["value"]
            assert ray["image"] == spec.cluster.image
            check_credentials(ray, job)
            tolerations = pod["spec"].get("tolerations") or []
            if group == "headgroup":
                assert "nvidia.com/gpu" not in limits and "nvidia.com/gpu" not in ray["resources"].get("requests", {})
                assert "--num-gpus=0" in start and "--num-cpus=0" in start
                assert pod["spec"].get("nodeSelector") == (spec.cluster.head.nodeSelector or None)
                for t in spec.cluster.head.tolerations:
                    assert t.model_dump(exclude_none=True) in tolerations
                continue
            g = next(w for w in spec.cluster.workerGroups if w.name == group)
            if g.gpus:
                assert int(limits["nvidia.com/gpu"]) == g.gpus and f"--num-gpus={g.gpus}" in start
            else:
                assert "nvidia.com/gpu" not in limits
            roles = ["rollout", "train"] if g.role == "any" else [g.role]
            amount = g.gpus or 1
            assert "--resources='" + json.dumps({r: amount for r in roles}, separators=(",", ":")) + "'" in start
            assert pod["spec"].get("nodeSelector") == (g.nodeSelector or None)
            for t in g.tolerations:
                assert t.model_dump(exclude_none=True) in tolerations
            if spec.cluster.serviceAccountName:
                assert pod["spec"]["serviceAccountName"] == spec.cluster.serviceAccountName
    log = kuberay_log_since(c, offset)
    bad = [line for line in log.splitlines() if any(e in line for e in PARSE_ERRORS)]
    assert bad == [], "KubeRay could not parse what the operator wrote:\n" + "\n".join(bad[:5])
    if c.logs is None:
        pytest.skip("SKIPPED LOUDLY: an existing cluster: KubeRay's log is not readable here (the rest passed)")


@pytest.mark.parametrize("key", ["scheduled", "qwen-math-7b-limr"])
def test_the_submitter_pod_carries_the_heads_scheduling_fields(real_cluster, kube, namespace, priority_class, key):
    """K8sJobMode: once the Ray pods are Running and Ready (played here), KubeRay submits through a
    Job of its own whose pod comes from the RayJob's submitterPodTemplate."""
    c, ns = real_cluster, namespace
    body = copy.deepcopy(JOBS[key])
    body["metadata"]["namespace"] = ns
    c.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "limr-ray", "namespace": ns}})
    stored = c.apply(body)
    job = load_job(body)
    step = steps(job.spec)[0]
    objs = builders.children(job, stored["metadata"]["uid"], step, 1)
    c.apply(objs)
    name = objs[-1]["metadata"]["name"]
    cluster = c.wait_for(lambda: (kube.rayjob(ns, name).get("status") or {}).get("rayClusterName"), 60,
                         "the RayCluster")
    want = 1 + sum(g.replicas for g in job.spec.cluster.workerGroups)
    c.wait_for(lambda: len(kube.pods(ns, f"ray.io/cluster={cluster}")) == want, 60, "the Ray pods")
    kube.make_pods_ready(ns, f"ray.io/cluster={cluster}")
    submitter = c.wait_for(lambda: kube.pods(ns, f"batch.kubernetes.io/job-name={name}"), 120,
                           "KubeRay's submitter Job and its pod")[0]
    head = job.spec.cluster.head
    pod = submitter["spec"]
    assert pod.get("nodeSelector") == (head.nodeSelector or None)
    for t in head.tolerations:
        assert t.model_dump(exclude_none=True) in (pod.get("tolerations") or [])
    if job.spec.cluster.serviceAccountName:
        assert pod["serviceAccountName"] == job.spec.cluster.serviceAccountName
        assert pod["priorityClassName"] == job.spec.cluster.priorityClassName
    assert submitter["metadata"]["labels"]["limr.io/job"] == job.metadata.name
    (container,) = pod["containers"]
    assert container["image"] == job.spec.cluster.image
    assert "ray job submit" in " ".join(container.get("args") or container.get("command") or [])
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert yaml.safe_dump(container).count("AWS_SECRET_ACCESS_KEY") == 0  # it only submits
