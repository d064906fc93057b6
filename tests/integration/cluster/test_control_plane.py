"""Smoke tests of the real control plane (scripts/cluster.sh, tests/realcluster.py): the platform
behaviours LIMR relies on work for real, not as emulated.

RBAC and service-account tokens, OwnerReferencesPermissionEnforcement, garbage collection, the
TTL-after-finished controller, the job controller, KubeRay turning a RayJob into a RayCluster and a
head Pod, and Kueue admitting RayJobs within a ClusterQueue's quota. No kubelet and no scheduler
run: Pods stay Pending (a nodeSelector no node matches keeps them so on a full cluster too) and a
test plays a pod's or a job's outcome through the status subresource.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from realcluster import RealCluster

pytestmark = pytest.mark.integration

NO_NODE = {"limr.io/no-such-node": "true"}  # no node carries it: pods stay unscheduled anywhere


def _uid() -> str:
    return uuid.uuid4().hex[:6]


@pytest.fixture
def namespace(real_cluster: RealCluster) -> str:
    name = real_cluster.create_namespace(f"limr-cp-{_uid()}")
    yield name
    real_cluster.delete_namespace(name)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- (a) RBAC with a ServiceAccount token ----------------------------------------------------------------
def test_service_account_token_is_bound_by_its_role(real_cluster: RealCluster, namespace: str) -> None:
    c = real_cluster
    c.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "reader", "namespace": namespace},
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "configmap-reader", "namespace": namespace},
                "rules": [
                    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "reader", "namespace": namespace},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "configmap-reader",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
            },
        ]
    )
    token = c.sa_token(namespace, "reader")

    # Allowed by the Role (the authorizer's cache may take a moment to see the new binding).
    c.wait_for(
        lambda: c.api("GET", f"/api/v1/namespaces/{namespace}/configmaps", token)[0] == 200,
        timeout=30,
        what="the Role to allow listing configmaps",
    )
    # Not allowed: another resource, and a verb the Role lacks.
    status, body = c.api("GET", f"/api/v1/namespaces/{namespace}/secrets", token)
    assert status == 403, body
    assert body["reason"] == "Forbidden"
    assert f"system:serviceaccount:{namespace}:reader" in body["message"]
    status, body = c.api(
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        token,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nope"}},
    )
    assert status == 403, body
    # Another namespace is out of reach too.
    assert c.api("GET", "/api/v1/namespaces/default/configmaps", token)[0] == 403

    # The same through kubectl with a token-only kubeconfig.
    kubeconfig = c.kubeconfig_for_token(token)
    who = c.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig)
    assert (
        json.loads(who.stdout)["status"]["userInfo"]["username"]
        == f"system:serviceaccount:{namespace}:reader"
    )
    assert c.kubectl("get", "configmaps", "-n", namespace, kubeconfig=kubeconfig).returncode == 0
    refused = c.kubectl("create", "configmap", "x", "-n", namespace, kubeconfig=kubeconfig, check=False)
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower(), refused.stderr


def test_block_owner_deletion_needs_update_on_owner_finalizers(
    real_cluster: RealCluster, namespace: str
) -> None:
    """OwnerReferencesPermissionEnforcement is on: an ownerReference with blockOwnerDeletion needs
    `update` on the owner's finalizers subresource, and plain `create` is not enough."""
    c = real_cluster
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "writer", "namespace": namespace},
        "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create", "delete"]}
        ],
    }
    c.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "writer", "namespace": namespace},
            },
            role,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "writer", "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "writer"},
                "subjects": [{"kind": "ServiceAccount", "name": "writer", "namespace": namespace}],
            },
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner", "namespace": namespace}},
        ]
    )
    owner_uid = c.get("configmap", "owner", namespace)["metadata"]["uid"]
    token = c.sa_token(namespace, "writer")
    path = f"/api/v1/namespaces/{namespace}/configmaps"

    def child(name: str, block: bool) -> dict:
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}
        if block:
            ref["blockOwnerDeletion"] = True
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "ownerReferences": [ref]}}

    c.wait_for(
        lambda: c.api("POST", path, token, child("plain", False))[0] == 201, 30, "create with the Role"
    )
    status, body = c.api("POST", path, token, child("blocking", True))
    assert status == 403, body
    assert "blockOwnerDeletion" in body["message"], body["message"]

    role["rules"].append({"apiGroups": [""], "resources": ["configmaps/finalizers"], "verbs": ["update"]})
    c.apply(role)
    c.wait_for(
        lambda: c.api("POST", path, token, child("blocking", True))[0] == 201,
        30,
        "create once finalizers are allowed",
    )


# --- (b) garbage collection ----------------------------------------------------------------------------------
def test_garbage_collector_deletes_dependents(real_cluster: RealCluster, namespace: str) -> None:
    c = real_cluster
    owner = c.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner", "namespace": namespace}}
    )
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    c.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"dependent-{i}", "namespace": namespace, "ownerReferences": [ref]},
            }
            for i in range(2)
        ]
    )
    c.kubectl("delete", "configmap", "owner", "-n", namespace, "--wait=false")
    c.wait_for(
        lambda: all(c.get("configmap", f"dependent-{i}", namespace) is None for i in range(2)),
        timeout=60,
        what="the garbage collector to delete the dependents",
    )


# --- (c) the job controller and TTL-after-finished ----------------------------------------------------------
def _job(name: str, namespace: str, **spec) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "ttlSecondsAfterFinished": 0,
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": NO_NODE,
                    "containers": [{"name": "main", "image": "busybox:1.36", "command": ["true"]}],
                }
            },
            **spec,
        },
    }


def test_job_controller_completes_job_and_ttl_deletes_it(real_cluster: RealCluster, namespace: str) -> None:
    """The job controller creates the Pod; playing the kubelet, the test marks the Pod Succeeded
    through pods/status; the job controller then completes the Job and TTL-after-finished (0 s)
    deletes it."""
    c = real_cluster
    c.apply(_job("counted", namespace))
    pods = c.wait_for(
        lambda: c.kubectl_json("get", "pods", "-n", namespace, "-l", "batch.kubernetes.io/job-name=counted")[
            "items"
        ],
        timeout=60,
        what="the job controller to create the Pod",
    )
    pod = pods[0]["metadata"]["name"]
    now = _now()
    status = {
        "status": {
            "phase": "Succeeded",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now}],
            "containerStatuses": [
                {
                    "name": "main",
                    "image": "busybox:1.36",
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "startedAt": now,
                            "finishedAt": now,
                        }
                    },
                }
            ],
        }
    }
    c.kubectl(
        "patch",
        "pod",
        pod,
        "-n",
        namespace,
        "--subresource",
        "status",
        "--type",
        "merge",
        "-p",
        json.dumps(status),
    )
    c.wait_for(lambda: c.get("job", "counted", namespace) is None, 60, "TTL-after-finished to delete the Job")
    # Foreground deletion by the TTL controller takes the Pod along.
    c.wait_for(lambda: c.get("pod", pod, namespace) is None, 60, "the Job's Pod to be deleted with it")


def test_job_marked_complete_through_status_is_deleted_by_ttl(
    real_cluster: RealCluster, namespace: str
) -> None:
    """A Job another controller owns (spec.managedBy) is finished through the status subresource.
    Kubernetes 1.37 accepts Complete=True only together with SuccessCriteriaMet=True, startTime and
    completionTime (and active == 0); TTL-after-finished then deletes it."""
    c = real_cluster
    c.apply(_job("external", namespace, managedBy="limr.io/test-controller"))
    job = c.get("job", "external", namespace)
    assert not job.get("status", {}).get("active"), "the job controller must leave a managedBy Job alone"

    def mark(conditions: list[dict], check: bool = True):
        now = _now()
        status = {
            "status": {
                "startTime": now,
                "completionTime": now,
                "succeeded": 1,
                "conditions": [
                    {"type": t, "status": "True", "lastTransitionTime": now, "lastProbeTime": now}
                    for t in conditions
                ],
            }
        }
        return c.kubectl(
            "patch", "job", "external", "-n", namespace, "--subresource", "status", "--type", "merge",
            "-p", json.dumps(status), check=check,
        )  # fmt: skip

    refused = mark(["Complete"], check=False)
    assert refused.returncode != 0
    assert "without the SuccessCriteriaMet=true condition" in refused.stderr, refused.stderr
    assert c.get("job", "external", namespace) is not None

    mark(["SuccessCriteriaMet", "Complete"])
    c.wait_for(
        lambda: c.get("job", "external", namespace) is None, 60, "TTL-after-finished to delete the Job"
    )


# --- (d) KubeRay ------------------------------------------------------------------------------------------
def _rayjob(
    name: str, namespace: str, gpus: int = 0, queue: str | None = None, suspend: bool = False
) -> dict:
    def container(cname: str, cpu: str, memory: str, gpu: int) -> dict:
        resources = {"cpu": cpu, "memory": memory}
        if gpu:
            resources["nvidia.com/gpu"] = str(gpu)
        return {
            "name": cname,
            "image": "rayproject/ray:2.60.0",
            "resources": {"requests": resources, "limits": resources},
        }

    spec: dict = {
        "entrypoint": "python -c 'print(1)'",
        "submissionMode": "K8sJobMode",
        "shutdownAfterJobFinishes": True,
        "rayClusterSpec": {
            "headGroupSpec": {
                "rayStartParams": {},
                "template": {
                    "spec": {"nodeSelector": NO_NODE, "containers": [container("ray-head", "1", "2Gi", 0)]}
                },
            },
            "workerGroupSpecs": [
                {
                    "groupName": "rollout",
                    "replicas": 1,
                    "minReplicas": 1,
                    "maxReplicas": 1,
                    "rayStartParams": {},
                    "template": {
                        "spec": {
                            "nodeSelector": NO_NODE,
                            "containers": [container("ray-worker", "1", "2Gi", gpus)],
                        }
                    },
                }
            ],
        },
    }
    if suspend:
        spec["suspend"] = True
    metadata: dict = {"name": name, "namespace": namespace}
    if queue:
        metadata["labels"] = {"kueue.x-k8s.io/queue-name": queue}
    return {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": metadata, "spec": spec}


def _head_pods(c: RealCluster, namespace: str, raycluster: str) -> list[dict]:
    return c.kubectl_json(
        "get", "pods", "-n", namespace, "-l", f"ray.io/cluster={raycluster},ray.io/node-type=head"
    )["items"]


def test_kuberay_turns_rayjob_into_raycluster_and_head_pod(real_cluster: RealCluster, namespace: str) -> None:
    c = real_cluster
    c.apply(_rayjob("smoke", namespace))
    raycluster = c.wait_for(
        lambda: (c.get("rayjob", "smoke", namespace).get("status") or {}).get("rayClusterName"),
        timeout=60,
        what="KubeRay to name the RayJob's RayCluster",
    )
    cluster = c.wait_for(lambda: c.get("raycluster", raycluster, namespace), 60, "the RayCluster")
    owners = cluster["metadata"].get("ownerReferences", [])
    assert [(o["kind"], o["name"]) for o in owners] == [("RayJob", "smoke")]
    head = c.wait_for(lambda: _head_pods(c, namespace, raycluster), 60, "KubeRay to create the head Pod")[0]
    # No scheduler: the head Pod waits, and so does the RayJob (no submitter Job before the head is ready).
    assert head["status"]["phase"] == "Pending"
    volumes = {v["name"]: v for v in head["spec"].get("volumes", [])}
    assert any(v.get("emptyDir", {}).get("medium") == "Memory" for v in volumes.values()), volumes  # /dev/shm
    assert c.get("rayjob", "smoke", namespace)["status"].get("jobDeploymentStatus") in ("Initializing", "")


# --- (e) Kueue ---------------------------------------------------------------------------------------------
@pytest.fixture
def kueue_queue(real_cluster: RealCluster, namespace: str):
    """A ResourceFlavor, a ClusterQueue with 8 CPUs, 32Gi and one nvidia.com/gpu, and a LocalQueue."""
    c = real_cluster
    suffix = _uid()
    flavor, cq = f"limr-smoke-{suffix}", f"limr-smoke-{suffix}"
    c.apply(
        [
            {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": flavor}},
            {
                "apiVersion": "kueue.x-k8s.io/v1beta2",
                "kind": "ClusterQueue",
                "metadata": {"name": cq},
                "spec": {
                    "namespaceSelector": {},
                    "resourceGroups": [
                        {
                            "coveredResources": ["cpu", "memory", "nvidia.com/gpu"],
                            "flavors": [
                                {
                                    "name": flavor,
                                    "resources": [
                                        {"name": "cpu", "nominalQuota": "8"},
                                        {"name": "memory", "nominalQuota": "32Gi"},
                                        {"name": "nvidia.com/gpu", "nominalQuota": "1"},
                                    ],
                                }
                            ],
                        }
                    ],
                },
            },
            {
                "apiVersion": "kueue.x-k8s.io/v1beta2",
                "kind": "LocalQueue",
                "metadata": {"name": "rollouts", "namespace": namespace},
                "spec": {"clusterQueue": cq},
            },
        ]
    )
    c.kubectl("wait", "--for", "condition=Active", "--timeout", "60s", f"clusterqueue/{cq}")
    c.kubectl("wait", "--for", "condition=Active", "--timeout", "60s", "localqueue/rollouts", "-n", namespace)
    yield "rollouts"
    c.kubectl("delete", "rayjobs", "--all", "-n", namespace, "--wait=true", "--timeout=60s", check=False)
    c.kubectl(
        "delete", "localqueue", "rollouts", "-n", namespace, "--ignore-not-found", "--wait=false", check=False
    )
    c.kubectl("delete", "clusterqueue", cq, "--ignore-not-found", "--wait=false", check=False)
    c.kubectl("delete", "resourceflavor", flavor, "--ignore-not-found", "--wait=false", check=False)


def _workload_of(c: RealCluster, namespace: str, rayjob: str) -> dict | None:
    for wl in c.kubectl_json("get", "workloads.kueue.x-k8s.io", "-n", namespace)["items"]:
        if any(
            o["kind"] == "RayJob" and o["name"] == rayjob for o in wl["metadata"].get("ownerReferences", [])
        ):
            return wl
    return None


def _condition(obj: dict, kind: str) -> str | None:
    for cond in (obj.get("status") or {}).get("conditions", []):
        if cond["type"] == kind:
            return cond["status"]
    return None


def test_kueue_admits_rayjobs_within_quota(
    real_cluster: RealCluster, namespace: str, kueue_queue: str
) -> None:
    c = real_cluster
    c.apply(_rayjob("first", namespace, gpus=1, queue=kueue_queue, suspend=True))
    first = c.wait_for(
        lambda: (wl := _workload_of(c, namespace, "first")) and _condition(wl, "Admitted") == "True" and wl,
        timeout=60,
        what="Kueue to admit the first RayJob's Workload",
    )
    podsets = {ps["name"]: ps["count"] for ps in first["spec"]["podSets"]}
    assert podsets.get("head") == 1 and podsets.get("rollout") == 1, podsets
    c.wait_for(
        lambda: not c.get("rayjob", "first", namespace)["spec"].get("suspend"),  # false is left out
        timeout=60,
        what="Kueue to unsuspend the admitted RayJob",
    )
    raycluster = c.wait_for(
        lambda: (c.get("rayjob", "first", namespace).get("status") or {}).get("rayClusterName"),
        timeout=60,
        what="KubeRay to start the admitted RayJob's RayCluster",
    )
    c.wait_for(lambda: _head_pods(c, namespace, raycluster), 60, "the admitted RayJob's head Pod")

    # One GPU of quota is taken: the second RayJob's Workload waits and the RayJob stays suspended.
    c.apply(_rayjob("second", namespace, gpus=1, queue=kueue_queue, suspend=True))
    second = c.wait_for(
        lambda: (
            (wl := _workload_of(c, namespace, "second")) and _condition(wl, "QuotaReserved") == "False" and wl
        ),
        timeout=60,
        what="Kueue to find no quota for the second RayJob",
    )
    assert _condition(second, "Admitted") != "True"
    rayjob = c.get("rayjob", "second", namespace)
    assert rayjob["spec"]["suspend"] is True
    assert not (rayjob.get("status") or {}).get("rayClusterName")
    cq_name = c.get("localqueue", kueue_queue, namespace)["spec"]["clusterQueue"]

    def counts() -> tuple[int, int]:
        status = c.get("clusterqueue", cq_name).get("status") or {}
        return status.get("admittedWorkloads"), status.get("pendingWorkloads")

    c.wait_for(lambda: counts() == (1, 1), 30, "the ClusterQueue to count 1 admitted and 1 pending Workload")
    # Still waiting a little later: nothing unsuspends it behind Kueue's back.
    assert c.get("rayjob", "second", namespace)["spec"]["suspend"] is True


# --- (f) KubeRay and Kueue under their own RBAC -----------------------------------------------------------
@pytest.mark.parametrize("sa, role, allowed", [
    ("kuberay-system:kuberay-operator", "kuberay-operator", "pods"),
    ("kueue-system:kueue-controller-manager", "kueue-manager-role", "workloads.kueue.x-k8s.io"),
])
def test_kuberay_and_kueue_run_as_service_accounts_with_their_modules_roles(real_cluster: RealCluster, sa, role,
                                                                            allowed):
    """Their ClusterRoles come from their own modules (config/rbac): a rule they lack shows as a
    403 in their logs, which must have none (this test runs after the others of this file)."""
    c = real_cluster
    ns, name = sa.split(":")
    binding = c.get("clusterrolebinding", role)
    assert binding["roleRef"]["name"] == role
    assert {"kind": "ServiceAccount", "name": name, "namespace": ns} in binding["subjects"]
    user = f"system:serviceaccount:{sa}"
    assert c.kubectl("auth", "can-i", "create", allowed, "--as", user, "-n", "default").stdout.strip() == "yes"
    assert c.kubectl("auth", "can-i", "create", "secrets", "--as", user, "-n", "default",
                     check=False).stdout.strip() == "no"
    if c.logs is None:
        pytest.skip("SKIPPED LOUDLY: an existing cluster: its components' logs are not readable here")
    log = (c.logs / ("kuberay-operator.log" if "kuberay" in sa else "kueue.log")).read_text(errors="replace")
    refused = [line[:300] for line in log.splitlines() if f'User \\"{user}\\"' in line or f'User "{user}"' in line]
    assert refused == [], "\n".join(refused[:5])
