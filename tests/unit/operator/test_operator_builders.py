"""Builders: every child validates against KubeRay's real RayJob schema (strict: unknown fields are
errors, as the API server's strict field validation makes them) or Kubernetes' own schemas."""

from __future__ import annotations

import copy
import json

import jsonschema
import kubernetes_validate
import pytest
import yaml
from limr_api import plan
from limr_api.plan import steps as all_steps
from limr_operator import builders
from limr_operator.naming import MAX_NAME, child_name, is_dns1035
from operator_fixtures import built_jobs, example_jobs, job_dict, load
from paths import SHARED

KUBERAY = SHARED / "crds" / "kuberay"
K8S_VERSION = "1.33"


def _strict(schema):
    """Copy of an openAPIV3Schema where undeclared properties are errors (like strict field validation)."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
                node.setdefault("additionalProperties", False)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


@pytest.fixture(scope="module")
def rayjob_validator():
    path = KUBERAY / "ray.io_rayjobs.yaml"
    if not path.exists():
        pytest.skip(f"KubeRay CRDs not found at {KUBERAY}: cannot validate RayJobs against KubeRay's schema")
    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # 1.4 MB
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return jsonschema.Draft7Validator(_strict(version["schema"]["openAPIV3Schema"]))


def _children(job_dict_):
    job = load(job_dict_)
    for step in all_steps(job.spec):
        for attempt in (1, 7):
            yield step, attempt, builders.children(job, "0b5e-uid", step, attempt)


@pytest.mark.parametrize("name", sorted(example_jobs()))
def test_every_child_validates(name, rayjob_validator):
    seen = set()
    for step, attempt, objs in _children(example_jobs()[name]):
        for obj in objs:
            seen.add(obj["kind"])
            if obj["kind"] == "RayJob":
                errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                          for e in rayjob_validator.iter_errors(obj)]
                assert not errors, errors
            else:
                kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    assert "ConfigMap" in seen and ("RayJob" in seen or "Job" in seen)


def test_strict_schema_catches_a_misspelled_field(rayjob_validator):
    job = load(job_dict())
    obj = builders.ray_job(job, "u", plan.BASELINE, 1)
    obj["spec"]["shutdownAfterJobFinish"] = True  # missing "es"
    assert list(rayjob_validator.iter_errors(obj))
    obj = builders.ray_job(job, "u", plan.BASELINE, 1)
    obj["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] = "two"
    assert list(rayjob_validator.iter_errors(obj))


def test_rayjob_shape_follows_cluster_spec():
    job = load(built_jobs()["paper"])
    obj = builders.ray_job(job, "uid-1", plan.BASELINE, 2)
    spec = obj["spec"]
    assert spec["entrypoint"] == "python -m limr_trainer phase --job /etc/limr/job.yaml --step baseline --attempt 2"
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] == 0
    assert spec["activeDeadlineSeconds"] == 86400
    assert spec["suspend"] is True  # queued: Kueue admits it
    assert obj["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    rc = spec["rayClusterSpec"]
    assert rc["rayVersion"] == "2.60.0"
    head = rc["headGroupSpec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in head["containers"][0]["resources"]["limits"]
    assert rc["headGroupSpec"]["rayStartParams"]["num-gpus"] == "0"
    assert head["nodeSelector"] == {"pool": "cpu"}
    groups = {g["groupName"]: g for g in rc["workerGroupSpecs"]}
    assert set(groups) == {"rollout", "train"}
    rollout = groups["rollout"]
    assert rollout["replicas"] == rollout["minReplicas"] == rollout["maxReplicas"] == 1
    # The form KubeRay writes itself: compact JSON in single quotes (it trims the quotes to parse it).
    assert rollout["rayStartParams"]["resources"] == "'{\"rollout\":4}'"
    assert json.loads(groups["train"]["rayStartParams"]["resources"].strip("'")) == {"train": 4}
    pod = rollout["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 4
    assert pod["nodeSelector"] == {"gpu": "h100"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["containers"][0]["image"] == job.spec.cluster.image
    assert pod["volumes"] == [{"name": "limr-job", "configMap": {"name": obj["metadata"]["name"]}}]
    # The submitter pod gets the head's scheduling fields, the job's labels and a small size.
    sub = spec["submitterPodTemplate"]
    assert sub["spec"]["nodeSelector"] == {"pool": "cpu"} and sub["spec"]["restartPolicy"] == "Never"
    assert sub["metadata"]["labels"]["limr.io/job"] == job.metadata.name
    (container,) = sub["spec"]["containers"]
    assert container["image"] == job.spec.cluster.image and "command" not in container and "env" not in container
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}


def test_any_role_offers_both_slots_and_unqueued_jobs_are_not_suspended():
    job = load(job_dict())
    obj = builders.ray_job(job, "u", plan.EVALUATION, 1)
    group = obj["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    assert group["rayStartParams"]["resources"] == "'{\"rollout\":8,\"train\":8}'"
    assert "suspend" not in obj["spec"] and "activeDeadlineSeconds" not in obj["spec"]
    assert "kueue.x-k8s.io/queue-name" not in obj["metadata"]["labels"]


def test_credentials_only_by_reference():
    job = load(job_dict())
    for _, _, objs in _children(job_dict()):
        text = yaml.safe_dump(objs)
        for obj in objs:
            if obj["kind"] == "ConfigMap":
                continue
            pods = ([obj["spec"]["template"]["spec"]] if obj["kind"] == "Job" else
                    [obj["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]]
                    + [g["template"]["spec"] for g in obj["spec"]["rayClusterSpec"]["workerGroupSpecs"]])
            for pod in pods:
                env = {e["name"]: e for e in pod["containers"][0]["env"]}
                assert env["AWS_ACCESS_KEY_ID"] == {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {
                    "secretKeyRef": {"name": "s3-creds", "key": "AWS_ACCESS_KEY_ID"}}}
                assert "value" not in env["AWS_SECRET_ACCESS_KEY"]
                assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio:9000"
        assert "secretKeyRef" in text
    assert job.spec.storage.secretRef.name == "s3-creds"


def test_owner_references_and_labels_on_every_child():
    for step, attempt, objs in _children(built_jobs()["paper"]):
        for obj in objs:
            (ref,) = obj["metadata"]["ownerReferences"]
            assert ref == {"apiVersion": "limr.io/v1alpha1", "kind": "LIMRJob",
                           "name": "qwen-math-7b-limr-paper-replication-h100", "uid": "0b5e-uid",
                           "controller": True, "blockOwnerDeletion": True}
            assert obj["metadata"]["namespace"] == "ml"
            assert obj["metadata"]["labels"]["limr.io/attempt"] == str(attempt)
            assert obj["metadata"]["labels"]["limr.io/phase"] == step.kind


def test_config_map_holds_the_resolved_job():
    job = load(job_dict(retrain={"comparisons": ["random"]}))
    cm = builders.config_map(job, "u", plan.retrain("random"), 3)
    assert cm["immutable"] is True
    resolved = load(yaml.safe_load(cm["data"]["job.yaml"]))
    assert resolved.spec == job.spec
    assert resolved.spec.ppo.klCoef == 0.01  # defaults are filled in, not left implicit
    assert "ppo" in yaml.safe_load(cm["data"]["job.yaml"])["spec"]


def test_selection_is_a_cpu_batch_job():
    job = load(built_jobs()["paper"])
    obj = builders.workload(job, "u", plan.SELECTION, 1)
    assert obj["apiVersion"] == "batch/v1" and obj["kind"] == "Job"
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "limr_trainer", "phase", "--job", "/etc/limr/job.yaml",
                                    "--step", "selection", "--attempt", "1"]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert obj["spec"]["backoffLimit"] == 0 and obj["spec"]["suspend"] is True
    assert obj["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_comparison_arm_entrypoint():
    job = load(job_dict(retrain={"comparisons": ["linear"]}))
    obj = builders.ray_job(job, "u", plan.retrain("linear"), 1)
    assert obj["spec"]["entrypoint"].endswith("--step retrain-linear --attempt 1")
    assert obj["metadata"]["name"] == "demo-retrain-linear-1"


@pytest.mark.parametrize("job", ["a", "demo", "x" * 40, "qwen-math-7b-limr-paper-replication-h100", "a-" * 19 + "bc"])
@pytest.mark.parametrize("phase,arm", [("baseline", None), ("selection", None), ("retrain", "random"),
                                       ("evaluation", None)])
@pytest.mark.parametrize("attempt", [1, 42, 101])
def test_names_are_dns1035_short_and_distinct(job, phase, arm, attempt):
    step = plan.parse_step(f"{phase}-{arm}" if arm else phase)
    name = child_name(job, step, attempt)
    assert is_dns1035(name, MAX_NAME), name
    assert name.endswith(f"-{attempt}")
    assert name == child_name(job, step, attempt)  # deterministic
    assert name != child_name(job, step, attempt + 1)
    assert name != child_name(job + "z" if len(job) < 40 else job[:-1] + "z", step, attempt)
