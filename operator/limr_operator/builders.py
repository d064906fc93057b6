"""Pure builders of the child objects of a LIMRJob (no API calls), one set per phase attempt.

GPU phases (Baseline, Retrain and its comparison arms, Evaluation) are KubeRay `ray.io/v1` RayJobs
whose Ray cluster comes from `spec.cluster`. Every attempt also gets an immutable ConfigMap with
the resolved job (all defaults filled) mounted at /etc/limr, so a retry or a resumed attempt
runs exactly the spec it was started with.

Selection is a `batch/v1` Job, not a RayJob: LIM scoring reads the reward records and does
vectorised arithmetic on one CPU; a Ray cluster would add a head pod, a submitter pod, a GPU-free
worker group and a minute of start-up for nothing. A Job with the same trainer image and the same
entrypoint is simpler to schedule and to queue (Kueue suspends Jobs too) and to debug.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from limr_api.cluster import WorkerGroup
from limr_api.constants import API_VERSION, KIND
from limr_api.job import LIMRJob, LIMRJobSpec, to_manifest
from limr_api.plan import Step

from .naming import child_name

CONFIG_DIR = "/etc/limr"
JOB_FILE = "job.yaml"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
MANAGED_BY = "limr-operator"
LABEL_JOB = "limr.io/job"
LABEL_PHASE = "limr.io/phase"
LABEL_ARM = "limr.io/arm"
LABEL_ATTEMPT = "limr.io/attempt"
METRICS_PORT = 9400
SELECTION_RESOURCES = {"cpu": "2", "memory": "8Gi"}
# The K8sJobMode submitter only runs `ray job submit` and follows the logs: KubeRay's own default size.
SUBMITTER_RESOURCES = {"requests": {"cpu": "500m", "memory": "200Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


def owner_reference(job: LIMRJob, uid: str) -> dict[str, Any]:
    """The LIMRJob as controlling owner: deleting it garbage-collects the child."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": job.metadata.name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def labels(job: LIMRJob, step: Step, attempt: int) -> dict[str, str]:
    out = {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/name": "limr",
        LABEL_JOB: job.metadata.name,
        LABEL_PHASE: step.kind,
        LABEL_ATTEMPT: str(attempt),
    }
    if step.arm:
        out[LABEL_ARM] = step.arm
    return out


def entrypoint(step: Step, attempt: int) -> list[str]:
    """The phase runner command (the RayJob entrypoint, the Job's container command)."""
    return ["python", "-m", "limr_trainer", "phase", "--job", f"{CONFIG_DIR}/{JOB_FILE}", "--step", step.key,
            "--attempt", str(attempt)]


def _metadata(job: LIMRJob, uid: str, name: str, step: Step, attempt: int, workload: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "labels": labels(job, step, attempt),
        "ownerReferences": [owner_reference(job, uid)],
    }
    if job.metadata.namespace:
        meta["namespace"] = job.metadata.namespace
    if job.spec.cluster.queue and workload:
        meta["labels"][QUEUE_LABEL] = job.spec.cluster.queue
    return meta


def env(spec: LIMRJobSpec, job_name: str, step: Step) -> list[dict[str, Any]]:
    """Environment of every trainer container; credentials only as secretKeyRef, never values."""
    out: list[dict[str, Any]] = [
        {"name": "LIMR_JOB_NAME", "value": job_name},
        {"name": "LIMR_PHASE", "value": step.key},
        {"name": "LIMR_METRICS_PORT", "value": str(METRICS_PORT)},
    ]
    st = spec.storage
    if st.endpoint:
        out.append({"name": "AWS_ENDPOINT_URL", "value": st.endpoint})
    if st.region:
        out.append({"name": "AWS_DEFAULT_REGION", "value": st.region})
    if st.secretRef:
        for var, key in (("AWS_ACCESS_KEY_ID", st.secretRef.accessKeyIdKey),
                         ("AWS_SECRET_ACCESS_KEY", st.secretRef.secretAccessKeyKey)):
            out.append({"name": var, "valueFrom": {"secretKeyRef": {"name": st.secretRef.name, "key": key}}})
    return out


def _volume(config_name: str) -> dict[str, Any]:
    return {"name": "limr-job", "configMap": {"name": config_name}}


_MOUNT = {"name": "limr-job", "mountPath": CONFIG_DIR, "readOnly": True}


def _tolerations(items: list[Any]) -> list[dict[str, Any]]:
    return [t.model_dump(exclude_none=True) for t in items]


def _pod_spec(spec: LIMRJobSpec, container: dict[str, Any], config_name: str,
              node_selector: dict[str, str], tolerations: list[Any]) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": [container], "volumes": [_volume(config_name)]}
    if node_selector:
        pod["nodeSelector"] = dict(node_selector)
    if tolerations:
        pod["tolerations"] = _tolerations(tolerations)
    if spec.cluster.serviceAccountName:
        pod["serviceAccountName"] = spec.cluster.serviceAccountName
    if spec.cluster.priorityClassName:
        pod["priorityClassName"] = spec.cluster.priorityClassName
    return pod


def _container(spec: LIMRJobSpec, name: str, job_name: str, step: Step, cpu: str, memory: str,
               gpus: int = 0) -> dict[str, Any]:
    limits: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if gpus:
        limits["nvidia.com/gpu"] = gpus
    return {
        "name": name,
        "image": spec.cluster.image,
        "imagePullPolicy": spec.cluster.imagePullPolicy,
        "env": env(spec, job_name, step),
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": limits},
        "volumeMounts": [dict(_MOUNT)],
    }


def role_resources(group: WorkerGroup) -> str:
    """`rayStartParams.resources`: Ray custom resources named after the group's role.

    In the form KubeRay writes itself (`'{"rollout":4}'`: compact JSON in single quotes): KubeRay
    pastes the value into the pod's `bash -c "ray start ... --resources=<value>"`, where the quotes
    keep the JSON whole, and parses it itself (trimming the quotes) to add accelerator resources;
    a backslash-escaped string would reach Ray intact but make KubeRay log a parse error for every
    pod. The amount is the pod's GPUs (one slot per GPU), or 1 on CPU pods. A group of role `any`
    offers both `rollout` and `train` slots.
    """
    amount = group.gpus if group.gpus else 1
    roles = ["rollout", "train"] if group.role == "any" else [group.role]
    return "'" + json.dumps({role: amount for role in sorted(roles)}, separators=(",", ":")) + "'"


def submitter_template(job: LIMRJob, step: Step, attempt: int) -> dict[str, Any]:
    """The K8sJobMode submitter pod (`ray job submit`, then it follows the logs) with the head's
    scheduling fields: KubeRay's default template copies nothing from the head (no nodeSelector,
    tolerations, service account or priority class), so it would land anywhere, or nowhere on a
    cluster of tainted GPU nodes. KubeRay fills in the command and its own env variables."""
    spec = job.spec
    head = spec.cluster.head
    container = {"name": "ray-job-submitter", "image": spec.cluster.image,
                 "imagePullPolicy": spec.cluster.imagePullPolicy, "resources": json.loads(json.dumps(SUBMITTER_RESOURCES))}
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if head.nodeSelector:
        pod["nodeSelector"] = dict(head.nodeSelector)
    if head.tolerations:
        pod["tolerations"] = _tolerations(head.tolerations)
    if spec.cluster.serviceAccountName:
        pod["serviceAccountName"] = spec.cluster.serviceAccountName
    if spec.cluster.priorityClassName:
        pod["priorityClassName"] = spec.cluster.priorityClassName
    return {"metadata": {"labels": labels(job, step, attempt)}, "spec": pod}


def config_map(job: LIMRJob, uid: str, step: Step, attempt: int) -> dict[str, Any]:
    """The resolved job (every default filled in) as /etc/limr/job.yaml; immutable per attempt."""
    name = child_name(job.metadata.name, step, attempt)
    manifest = to_manifest(job)
    manifest["metadata"] = {k: v for k, v in manifest["metadata"].items() if k in ("name", "namespace")}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(job, uid, name, step, attempt, workload=False),
        "immutable": True,
        "data": {JOB_FILE: yaml.safe_dump(manifest, sort_keys=False)},
    }


def ray_job(job: LIMRJob, uid: str, step: Step, attempt: int) -> dict[str, Any]:
    """The RayJob of a GPU phase attempt; its Ray cluster shuts down after the entrypoint ends."""
    spec = job.spec
    jname = job.metadata.name
    name = child_name(jname, step, attempt)
    head = spec.cluster.head
    head_container = _container(spec, "ray-head", jname, step, head.cpu, head.memory)
    head_container["ports"] = [
        {"containerPort": 6379, "name": "gcs"},
        {"containerPort": 8265, "name": "dashboard"},
        {"containerPort": 10001, "name": "client"},
        {"containerPort": METRICS_PORT, "name": "limr-metrics"},
    ]
    workers = []
    for g in spec.cluster.workerGroups:
        container = _container(spec, "ray-worker", jname, step, g.cpu, g.memory, g.gpus)
        params = {"resources": role_resources(g)}
        if g.gpus:
            params["num-gpus"] = str(g.gpus)
        workers.append({
            "groupName": g.name,
            "replicas": g.replicas,
            "minReplicas": g.replicas,
            "maxReplicas": g.replicas,
            "rayStartParams": params,
            "template": {
                "metadata": {"labels": labels(job, step, attempt)},
                "spec": _pod_spec(spec, container, name, g.nodeSelector, g.tolerations),
            },
        })
    body: dict[str, Any] = {
        "entrypoint": " ".join(entrypoint(step, attempt)),
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": spec.ttlSecondsAfterFinished,
        "backoffLimit": 0,  # the operator retries with a new attempt (and a new name)
        "submissionMode": "K8sJobMode",
        "submitterPodTemplate": submitter_template(job, step, attempt),
        "rayClusterSpec": {
            "rayVersion": spec.cluster.rayVersion,
            "headGroupSpec": {
                # The head runs the driver only: no GPUs, and no Ray tasks scheduled on it.
                "rayStartParams": {"dashboard-host": "0.0.0.0", "num-gpus": "0", "num-cpus": "0"},
                "template": {
                    "metadata": {"labels": labels(job, step, attempt)},
                    "spec": _pod_spec(spec, head_container, name, head.nodeSelector, head.tolerations),
                },
            },
            "workerGroupSpecs": workers,
        },
    }
    if spec.phaseDeadlineSeconds:
        body["activeDeadlineSeconds"] = spec.phaseDeadlineSeconds
    if spec.cluster.queue:
        body["suspend"] = True  # Kueue admits it by setting suspend: false
    return {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": _metadata(job, uid, name, step, attempt),
            "spec": body}


def selection_job(job: LIMRJob, uid: str, step: Step, attempt: int) -> dict[str, Any]:
    """The CPU-only Selection as a batch/v1 Job (see the module docstring for why not a RayJob)."""
    spec = job.spec
    jname = job.metadata.name
    name = child_name(jname, step, attempt)
    head = spec.cluster.head
    container = _container(spec, "selection", jname, step, SELECTION_RESOURCES["cpu"], SELECTION_RESOURCES["memory"])
    container["command"] = entrypoint(step, attempt)
    pod = _pod_spec(spec, container, name, head.nodeSelector, head.tolerations)
    pod["restartPolicy"] = "Never"
    body: dict[str, Any] = {
        "backoffLimit": 0,  # the operator retries with a new attempt
        "ttlSecondsAfterFinished": spec.ttlSecondsAfterFinished,
        "template": {"metadata": {"labels": labels(job, step, attempt)}, "spec": pod},
    }
    if spec.phaseDeadlineSeconds:
        body["activeDeadlineSeconds"] = spec.phaseDeadlineSeconds
    if spec.cluster.queue:
        body["suspend"] = True
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _metadata(job, uid, name, step, attempt),
            "spec": body}


def workload(job: LIMRJob, uid: str, step: Step, attempt: int) -> dict[str, Any]:
    return ray_job(job, uid, step, attempt) if step.gpu else selection_job(job, uid, step, attempt)


def children(job: LIMRJob, uid: str, step: Step, attempt: int) -> list[dict[str, Any]]:
    """Everything one attempt needs, in creation order (the ConfigMap before its consumer)."""
    return [config_map(job, uid, step, attempt), workload(job, uid, step, attempt)]
