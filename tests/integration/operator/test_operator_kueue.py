"""LIMRJobs with a Kueue queue, on the real Kueue v0.17.0 (its webhooks and its RayJob integration)
and the real KubeRay, driven by the operator as the chart's ServiceAccount.

* A queued job's RayJob is created suspended; Kueue admits it within the ClusterQueue's quota and
  unsuspends it, and KubeRay starts its RayCluster; a second job over quota waits, suspended.
* spec.suspend on a queued job does not fight Kueue: the operator deactivates the Workload
  (`spec.active: false`), Kueue evicts it and suspends the RayJob itself, and it stays suspended
  (the old operator patched the RayJob's spec.suspend, which Kueue reverted while admitted).
* Time spent queued does not count towards phaseDeadlineSeconds: the operator's backstop counts
  from the RayJob's status.startTime (the old one counted from creation, so a job admitted after a
  long wait was deleted at once); KubeRay's own activeDeadlineSeconds then ends the attempt.
"""

from __future__ import annotations

import os
import time

import pytest
from realoperator import limr_job, s3_storage, short_id

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

# How long the deadline test keeps a job queued: past phaseDeadlineSeconds (60) plus the old
# operator's fixed 120 s grace, so the old operator, counting from creation, deletes the RayJob as
# soon as it is admitted (a shorter wait, e.g. LIMR_TEST_QUEUED_SECONDS=70, checks the new code only).
QUEUED_SECONDS = float(os.environ.get("LIMR_TEST_QUEUED_SECONDS", "185"))


def wait(c, predicate, what, timeout=60):
    return c.wait_for(predicate, timeout=timeout, what=what, interval=0.25)


@pytest.fixture
def queue(real_cluster, namespace):
    """A ClusterQueue with room for one of the test jobs (one GPU) and a LocalQueue `gpus`."""
    c, tag = real_cluster, short_id()
    flavor = cq = f"limr-test-{tag}"
    c.apply([
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": flavor}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": cq},
         "spec": {"namespaceSelector": {}, "resourceGroups": [{
             "coveredResources": ["cpu", "memory", "nvidia.com/gpu"],
             "flavors": [{"name": flavor, "resources": [{"name": "cpu", "nominalQuota": "16"},
                                                        {"name": "memory", "nominalQuota": "64Gi"},
                                                        {"name": "nvidia.com/gpu", "nominalQuota": "1"}]}]}]}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue", "metadata": {"name": "gpus", "namespace": namespace},
         "spec": {"clusterQueue": cq}},
    ])
    c.kubectl("wait", "--for", "condition=Active", "--timeout", "60s", f"clusterqueue/{cq}")
    c.kubectl("wait", "--for", "condition=Active", "--timeout", "60s", "localqueue/gpus", "-n", namespace)
    yield "gpus"
    c.kubectl("delete", "localqueue", "gpus", "-n", namespace, "--ignore-not-found", "--wait=false", check=False)
    c.kubectl("delete", "clusterqueue", cq, "--ignore-not-found", "--wait=false", check=False)
    c.kubectl("delete", "resourceflavor", flavor, "--ignore-not-found", "--wait=false", check=False)


def condition(obj, kind):
    return next((x["status"] for x in (obj or {}).get("status", {}).get("conditions", []) if x["type"] == kind), None)


def admitted(kube, ns, child):
    return condition(kube.workload_of(ns, child), "Admitted") == "True"


def started(kube, ns, child):
    rj = kube.rayjob(ns, child) or {}
    return not rj.get("spec", {}).get("suspend") and (rj.get("status") or {}).get("rayClusterName")


def queued_job(name, ns, store, q, **spec):
    return limr_job(name, ns, store, cluster={"queue": q}, **spec)


def test_queued_jobs_are_admitted_by_quota_and_the_second_one_waits(real_cluster, kube, operator, namespace,
                                                                    queue, s3_server, s3_bucket):
    c, ns, store = real_cluster, namespace, s3_storage(s3_server, s3_bucket)
    kube.create_job(queued_job("first", ns, store, queue))
    created = wait(c, lambda: kube.rayjob(ns, "first-baseline-1"), "the first RayJob")
    assert created["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == queue
    wait(c, lambda: admitted(kube, ns, "first-baseline-1"), "Kueue to admit the first Workload")
    wait(c, lambda: started(kube, ns, "first-baseline-1"), "Kueue to unsuspend it and KubeRay to start it")
    pod_sets = {p["name"]: p["count"] for p in kube.workload_of(ns, "first-baseline-1")["spec"]["podSets"]}
    assert pod_sets == {"head": 1, "workers": 1, "submitter": 1}

    kube.create_job(queued_job("second", ns, store, queue))
    wait(c, lambda: condition(kube.workload_of(ns, "second-baseline-1"), "QuotaReserved") == "False",
         "Kueue to find no quota for the second")
    time.sleep(3)
    second = kube.rayjob(ns, "second-baseline-1")
    assert second["spec"]["suspend"] is True and not (second.get("status") or {}).get("rayClusterName")
    assert kube.phase(ns, "second") == "Baseline"

    kube.finish_rayjob(ns, "first-baseline-1")  # the first finishes: Kueue frees its quota
    wait(c, lambda: admitted(kube, ns, "second-baseline-1"), "Kueue to admit the second", timeout=90)
    wait(c, lambda: started(kube, ns, "second-baseline-1"), "the second to start")
    assert kube.status(ns, "second")["phases"]["baseline"]["attempts"] == 1


def test_suspend_of_a_queued_job_goes_through_kueue(real_cluster, kube, operator, namespace, queue, s3_server,
                                                     s3_bucket):
    c, ns, name, child = real_cluster, namespace, "paused", "paused-baseline-1"
    kube.create_job(queued_job(name, ns, s3_storage(s3_server, s3_bucket), queue))
    wait(c, lambda: started(kube, ns, child), "the queued job to be admitted and started")
    kube.patch_job(ns, name, {"spec": {"suspend": True}})
    wait(c, lambda: kube.workload_of(ns, child)["spec"].get("active") is False, "the Workload deactivated")
    wait(c, lambda: kube.rayjob(ns, child)["spec"].get("suspend") is True, "Kueue to suspend the RayJob")
    wait(c, lambda: kube.phase(ns, name) == "Suspended", "phase Suspended")
    for _ in range(24):  # 6 s: nobody reverts it (Kueue did revert the old operator's patch)
        assert kube.rayjob(ns, child)["spec"].get("suspend") is True
        assert condition(kube.workload_of(ns, child), "Admitted") != "True"
        time.sleep(0.25)
    wait(c, lambda: (kube.rayjob(ns, child).get("status") or {}).get("jobDeploymentStatus") == "Suspended",
         "KubeRay to suspend it (its RayCluster deleted)")
    kube.patch_job(ns, name, {"spec": {"suspend": False}})
    wait(c, lambda: kube.workload_of(ns, child)["spec"].get("active") is not False, "the Workload active again")
    wait(c, lambda: started(kube, ns, child), "Kueue to admit and unsuspend it again", timeout=90)
    wait(c, lambda: kube.phase(ns, name) == "Baseline", "phase Baseline")
    assert kube.status(ns, name)["phases"]["baseline"]["attempts"] == 1


def test_time_spent_queued_does_not_count_towards_the_deadline(real_cluster, kube, operator, namespace, queue,
                                                               s3_server, s3_bucket):
    c, ns, store = real_cluster, namespace, s3_storage(s3_server, s3_bucket)
    kube.create_job(queued_job("blocker", ns, store, queue))
    wait(c, lambda: started(kube, ns, "blocker-baseline-1"), "the blocker to take the GPU")
    kube.create_job(queued_job("late", ns, store, queue, phaseDeadlineSeconds=60, backoffLimit=0))
    wait(c, lambda: kube.rayjob(ns, "late-baseline-1"), "the late job's RayJob")
    t0 = time.monotonic()
    time.sleep(QUEUED_SECONDS)  # queued, suspended by Kueue, past its phaseDeadlineSeconds
    assert kube.rayjob(ns, "late-baseline-1")["spec"]["suspend"] is True
    kube.finish_rayjob(ns, "blocker-baseline-1")
    wait(c, lambda: started(kube, ns, "late-baseline-1"), "the late job to be admitted and started", timeout=90)
    queued_for = time.monotonic() - t0
    for _ in range(40):  # 10 s after its start: still there, still the first attempt
        rj = kube.rayjob(ns, "late-baseline-1")
        assert rj is not None, f"the operator deleted the RayJob right after {queued_for:.0f} s in the queue"
        assert kube.phase(ns, "late") == "Baseline"
        time.sleep(0.25)
    # KubeRay's own deadline (from the status.startTime it set at the start) ends the attempt.
    wait(c, lambda: kube.phase(ns, "late") == "Failed", "KubeRay's activeDeadlineSeconds to end it", timeout=120)
    assert "DeadlineExceeded" in kube.condition(ns, "late", "Failed")["message"]
