"""What the real API server refuses or reports, and how the operator shows it (issue 10 point 4,
issue 14.9): a create refused by an admission policy (422) or a quota (403), a child name another
owner holds (409), a RayJob failing with a huge message, an object stored before a stricter CRD, a
RayJob status this operator does not know."""

from __future__ import annotations

import copy
import json
import time

import pytest
import yaml
from realoperator import CRD_FILE, install_crd, limr_job, s3_storage, short_id

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def wait(c, predicate, what, timeout=60):
    return c.wait_for(predicate, timeout=timeout, what=what, interval=0.2)


def warnings(kube, ns, name):
    return {e["reason"]: e["message"] for e in kube.events(ns, name) if e["type"] == "Warning"}


@pytest.fixture
def no_baselines_policy(real_cluster, namespace):
    """A ValidatingAdmissionPolicy of the cluster admin: no baseline RayJobs in this namespace (422)."""
    c, name = real_cluster, f"limr-test-no-baselines-{short_id()}"
    c.apply([
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": name},
         "spec": {"failurePolicy": "Fail",
                  "matchConstraints": {"resourceRules": [{"apiGroups": ["ray.io"], "apiVersions": ["v1"],
                                                          "operations": ["CREATE"], "resources": ["rayjobs"]}]},
                  "validations": [{"expression": "object.metadata.labels['limr.io/phase'] != 'baseline'",
                                   "message": "policy gpu-budget: no baseline runs in this namespace",
                                   "reason": "Invalid"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": name},
         "spec": {"policyName": name, "validationActions": ["Deny"],
                  "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}}},
    ])
    probe = {"apiVersion": "ray.io/v1", "kind": "RayJob",
             "metadata": {"name": "probe", "namespace": namespace, "labels": {"limr.io/phase": "baseline"}},
             "spec": {"entrypoint": "x"}}
    wait(c, lambda: c.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(probe),
                              check=False).returncode != 0, "the admission policy to take effect")
    yield
    c.kubectl("delete", "validatingadmissionpolicybinding", name, "--ignore-not-found")
    c.kubectl("delete", "validatingadmissionpolicy", name, "--ignore-not-found")


def test_a_create_refused_as_invalid_is_a_failed_attempt(real_cluster, kube, operator, namespace, s3_server,
                                                         s3_bucket, no_baselines_policy):
    c, ns, name = real_cluster, namespace, "refused"
    kube.create_job(limr_job(name, ns, s3_storage(s3_server, s3_bucket), backoffLimit=1))
    wait(c, lambda: kube.phase(ns, name) == "Failed", "the job to fail after backoffLimit refused attempts")
    failed = kube.condition(ns, name, "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert "refused (422)" in failed["message"] and "policy gpu-budget" in failed["message"]
    assert kube.status(ns, name)["phases"]["baseline"]["attempts"] == 2
    wait(c, lambda: "CreateRefused" in warnings(kube, ns, name), "a CreateRefused Warning")
    assert kube.rayjobs(ns) == []


def test_a_forbidden_create_is_a_condition_until_it_is_allowed(real_cluster, kube, operator, namespace, s3_server,
                                                               s3_bucket):
    """A ResourceQuota that allows no RayJobs: 403 (exceeded quota). Shown, retried, never counted."""
    c, ns, name = real_cluster, namespace, "quota"
    c.apply({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-rayjobs", "namespace": ns},
             "spec": {"hard": {"count/rayjobs.ray.io": "0"}}})
    wait(c, lambda: (c.get("resourcequota", "no-rayjobs", ns).get("status") or {}).get("hard"),
         "the quota controller to fill in the quota's status")
    kube.create_job(limr_job(name, ns, s3_storage(s3_server, s3_bucket)))
    deg = wait(c, lambda: (d := kube.condition(ns, name, "Degraded")) and d["status"] == "True" and d,
               "a Degraded condition")
    assert deg["reason"] == "CreateForbidden" and "exceeded quota" in deg["message"]
    wait(c, lambda: "CreateForbidden" in warnings(kube, ns, name), "a CreateForbidden Warning")
    time.sleep(3)  # several ticks: retried, one Warning, the attempt not counted
    assert kube.status(ns, name)["phases"]["baseline"]["attempts"] == 1
    assert sum(e.get("count", 1) for e in kube.events(ns, name) if e["reason"] == "CreateForbidden") == 1
    c.kubectl("delete", "resourcequota", "no-rayjobs", "-n", ns)
    wait(c, lambda: kube.rayjob(ns, "quota-baseline-1"), "the RayJob once the quota is gone")
    wait(c, lambda: kube.condition(ns, name, "Degraded")["status"] == "False", "Degraded cleared")


def test_a_name_another_owner_holds_is_not_taken_for_ours(real_cluster, kube, operator, namespace, s3_server,
                                                          s3_bucket):
    """A ConfigMap `<job>-baseline-1` that is not this LIMRJob's (a user's, or an earlier job's): the
    old operator took the 409 as its own and waited forever (or would have mounted a stranger's
    job.yaml); now that attempt fails with NameTaken and the next one has a name of its own."""
    c, ns, name = real_cluster, namespace, "taken"
    c.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "taken-baseline-1", "namespace": ns},
             "data": {"job.yaml": "someone else's"}})
    uid = kube.create_job(limr_job(name, ns, s3_storage(s3_server, s3_bucket)))["metadata"]["uid"]
    second = wait(c, lambda: kube.rayjob(ns, "taken-baseline-2"), "attempt 2 under a name of its own")
    assert second["metadata"]["ownerReferences"][0]["uid"] == uid
    msg = wait(c, lambda: kube.status(ns, name).get("phases", {}).get("baseline", {}).get("message"),
               "the status to say why attempt 1 failed")  # children are created before the status patch
    assert "refused (409)" in msg and "not controlled by any owner" in msg
    assert "NameTaken" in warnings(kube, ns, name)
    assert kube.rayjob(ns, "taken-baseline-1") is None
    assert c.get("configmap", "taken-baseline-1", ns)["data"] == {"job.yaml": "someone else's"}


def test_a_huge_failure_message_leaves_a_small_status(real_cluster, kube, operator, namespace, s3_server,
                                                      s3_bucket):
    """Issue 14.9: a RayJob failing with a 200 KB message; the old operator copied it about five
    times into the LIMRJob's status (about 1 MB, near etcd's object limit)."""
    c, ns, name = real_cluster, namespace, "verbose"
    kube.create_job(limr_job(name, ns, s3_storage(s3_server, s3_bucket), backoffLimit=0))
    wait(c, lambda: kube.rayjob(ns, "verbose-baseline-1"), "the RayJob")
    trace = "Traceback (most recent call last):\n" + "  File \"x.py\", line 1, in <module>\n" * 6000
    assert len(trace) > 200_000
    kube.finish_rayjob(ns, "verbose-baseline-1", ok=False, message=trace)
    wait(c, lambda: kube.phase(ns, name) == "Failed", "phase Failed")
    status = kube.status(ns, name)
    assert len(json.dumps(status)) < 10_000, len(json.dumps(status))
    assert all(len(cond["message"]) <= 1024 for cond in status["conditions"])
    assert "more characters cut" in status["phases"]["baseline"]["message"]
    assert all(len(e["message"]) <= 1024 for e in kube.events(ns, name))


def test_an_object_stored_before_a_stricter_crd_gets_a_condition_not_a_child(real_cluster, kube, operator,
                                                                             namespace, s3_server, s3_bucket):
    """Objects are not re-validated when the CRD gets stricter: the operator checks every job with
    its own models and marks one the current API refuses (here a nodeSelector key with a space)."""
    c, ns, name = real_cluster, namespace, "legacy"
    crd = yaml.safe_load(CRD_FILE.read_text().split("---\n", 1)[1])
    relaxed = copy.deepcopy(crd)
    head = relaxed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "cluster"]["properties"]["head"]
    head.pop("x-kubernetes-validations")
    c.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager", "limr-tests", "-f", "-",
              input=json.dumps(relaxed))
    try:
        body = limr_job(name, ns, s3_storage(s3_server, s3_bucket))
        body["spec"]["cluster"]["head"]["nodeSelector"] = {"GPU Type": "h100"}
        wait(c, lambda: c.kubectl("create", "-f", "-", input=json.dumps(body), check=False).returncode == 0,
             "the relaxed CRD to accept the object")
    finally:
        install_crd(real_cluster)
    ready = wait(c, lambda: (r := kube.condition(ns, name, "Ready")) and r["reason"] == "InvalidSpec" and r,
                 "an InvalidSpec condition")
    assert "spec.cluster.head.nodeSelector: nodeSelector keys are label keys" in ready["message"]
    time.sleep(2)
    assert kube.rayjobs(ns) == [] and kube.configmaps(ns) == []
    wait(c, lambda: "InvalidSpec" in warnings(kube, ns, name), "an InvalidSpec Warning")


def test_a_rayjob_status_the_operator_does_not_know_is_a_condition(real_cluster, kube, operator, namespace,
                                                                   s3_server, s3_bucket):
    c, ns, name = real_cluster, namespace, "odd"
    kube.create_job(limr_job(name, ns, s3_storage(s3_server, s3_bucket)))
    wait(c, lambda: kube.rayjob(ns, "odd-baseline-1"), "the RayJob")
    kube.custom.patch_namespaced_custom_object_status("ray.io", "v1", ns, "rayjobs", "odd-baseline-1", {
        "status": {"jobDeploymentStatus": "Exploding", "jobStatus": "SIDEWAYS"}})
    deg = wait(c, lambda: (d := kube.condition(ns, name, "Degraded")) and d["status"] == "True" and d,
               "a Degraded condition")
    assert deg["reason"] == "UnknownRayJobStatus" and "'Exploding'" in deg["message"]
    assert kube.phase(ns, name) == "Baseline"
    kube.finish_rayjob(ns, "odd-baseline-1")
    wait(c, lambda: kube.phase(ns, name) == "Selection", "recovery on a known status")
    assert kube.condition(ns, name, "Degraded")["status"] == "False"
