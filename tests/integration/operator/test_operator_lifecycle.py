"""A LIMRJob's life on the real control plane, driven by the real operator running as the chart's
ServiceAccount (cluster-wide release): every step, retries up to backoffLimit, SIGKILL and restart,
suspend and resume, delete with real garbage collection, and the TTL that deletes a finished child.

KubeRay runs too (it makes a RayCluster and pods for every RayJob; they stay Pending). The test plays
each Ray job's outcome through rayjobs/status, and the Selection Job's pod through pods/status (the
real job controller then completes the Job and the real TTL-after-finished controller deletes it).
"""

from __future__ import annotations

import json
import time

import pytest
from realoperator import S3_KEYS, limr_job, s3_storage, write_done

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def wait(c, predicate, what, timeout=60):
    return c.wait_for(predicate, timeout=timeout, what=what, interval=0.2)


def reasons(kube, ns, name, type_=None):
    return {e["reason"] for e in kube.events(ns, name) if type_ in (None, e["type"])}


def test_a_job_through_every_step(real_cluster, kube, operator, namespace, s3_server, s3_bucket, s3_client):
    c, ns, name = real_cluster, namespace, "happy"
    root = f"s3://{s3_bucket}/runs"
    body = limr_job(name, ns, s3_storage(s3_server, s3_bucket), retrain={"comparisons": ["random"]})
    uid = kube.create_job(body)["metadata"]["uid"]

    rows = [{"step": s, "reward_mean": -0.5 + s / 100, "accuracy": s / 100} for s in range(1, 9)]
    for child, kind in [("happy-baseline-1", "RayJob"), ("happy-select-1", "Job"), ("happy-retrain-1", "RayJob"),
                        ("happy-retrain-random-1", "RayJob"), ("happy-eval-1", "RayJob")]:
        get = kube.rayjob if kind == "RayJob" else kube.batch_job
        obj = wait(c, lambda g=get, n=child: g(ns, n), f"the operator to create {kind} {child}")
        (ref,) = obj["metadata"]["ownerReferences"]
        assert (ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (uid, True, True)
        assert kube.configmaps(ns, f"limr.io/job={name}")  # the attempt's job file
        if child == "happy-baseline-1":  # the trainer streams step metrics; status follows them
            s3_client.put_object(Bucket=s3_bucket, Key=f"runs/{name}/baseline/metrics.jsonl",
                                 Body="".join(json.dumps(r) + "\n" for r in rows))
            wait(c, lambda: kube.status(ns, name).get("metrics", {}).get("step") == 8, "latest metrics in status")
            assert kube.status(ns, name)["metrics"] == {"phase": "baseline", "step": 8, "rewardMean": -0.42,
                                                        "accuracy": 0.08}
            # KubeRay took the RayJob: it made a RayCluster and the pods (Pending: no kubelet).
            wait(c, lambda: kube.pods(ns, "ray.io/node-type=head"), "KubeRay to create the Ray pods")
        if kind == "RayJob":
            kube.finish_rayjob(ns, child)
        else:  # the trainer's Selection writes its outputs, summary.json last, then _DONE.json
            summary = {"strategy": "lim", "threshold": 0.6, "total": 8523, "selected": 1389, "dropped": 0}
            s3_client.put_object(Bucket=s3_bucket, Key=f"runs/{name}/selection/summary.json", Body=json.dumps(summary))
            write_done(s3_client, s3_bucket, name, "selection")
            kube.finish_job_pods(ns, child)
    wait(c, lambda: kube.phase(ns, name) == "Succeeded", "phase Succeeded")
    wait(c, lambda: {"PhaseChanged", "SelectionSummary"} <= reasons(kube, ns, name), "the Events")
    status = kube.status(ns, name)
    assert status["selectedOfTotal"] == "1389/8523"
    assert status["samples"] == {"total": 8523, "selected": 1389, "dropped": 0}
    assert status["artifacts"]["selectionSummary"] == f"{root}/{name}/selection/summary.json"
    assert all(p["state"] == "Succeeded" and p["attempts"] == 1 for p in status["phases"].values())
    assert status["phases"]["baseline"]["log"] == f"{root}/{name}/baseline/logs/attempt-1.log"
    ready = kube.condition(ns, name, "Ready")
    assert ready["status"] == "True" and ready["observedGeneration"] == 1
    # The Selection Job was deleted by TTL-after-finished (ttlSecondsAfterFinished defaults to 0) and
    # never created again: its _DONE.json decided the step.
    wait(c, lambda: kube.batch_job(ns, "happy-select-1") is None, "TTL-after-finished to delete the Job")
    assert [j["metadata"]["name"] for j in kube.batch_jobs(ns)] == []
    assert sorted(r["metadata"]["name"] for r in kube.rayjobs(ns)) == [
        "happy-baseline-1", "happy-eval-1", "happy-retrain-1", "happy-retrain-random-1"]
    for rj in kube.rayjobs(ns):
        assert rj["spec"]["ttlSecondsAfterFinished"] == 0
    secrets = json.dumps(status) + json.dumps(kube.rayjobs(ns)) + json.dumps(kube.configmaps(ns))
    assert not any(v in secrets for v in S3_KEYS.values())
    assert operator.metric("limr_operator_samples_selected", {"namespace": ns, "limr_job": name}) == 1389
    assert operator.forbidden_lines() == []


def test_retries_up_to_the_backoff_limit_then_failed_with_the_reason(real_cluster, kube, operator, namespace,
                                                                      s3_server, s3_bucket):
    c, ns, name = real_cluster, namespace, "flaky"
    kube.create_job(limr_job(name, ns, s3_storage(s3_server, s3_bucket), backoffLimit=1))
    wait(c, lambda: kube.rayjob(ns, "flaky-baseline-1"), "attempt 1")
    kube.finish_rayjob(ns, "flaky-baseline-1", ok=False, message="CUDA out of memory")
    wait(c, lambda: kube.rayjob(ns, "flaky-baseline-2"), "attempt 2")
    wait(c, lambda: kube.status(ns, name)["phases"]["baseline"].get("log", "").endswith(
        "/flaky/baseline/logs/attempt-2.log"), "the status to name attempt 2's log")
    kube.finish_rayjob(ns, "flaky-baseline-2", ok=False, message="NCCL timeout")
    wait(c, lambda: kube.phase(ns, name) == "Failed", "phase Failed")
    failed = kube.condition(ns, name, "Failed")
    assert failed["status"] == "True" and failed["reason"] == "BackoffLimitExceeded"
    assert "baseline failed 2 time(s) (backoffLimit 1)" in failed["message"] and "NCCL timeout" in failed["message"]
    assert sorted(r["metadata"]["name"] for r in kube.rayjobs(ns)) == ["flaky-baseline-1", "flaky-baseline-2"]
    wait(c, lambda: {"AppFailed", "BackoffLimitExceeded"} <= reasons(kube, ns, name, "Warning"), "Warnings")
    assert operator.metric("limr_operator_rayjob_retries_total",
                           {"namespace": ns, "limr_job": name, "phase": "baseline"}) == 1


def test_sigkill_in_the_middle_of_a_phase_creates_no_duplicate(real_cluster, kube, operator, namespace,
                                                                s3_server, s3_bucket, s3_client):
    c, ns, name = real_cluster, namespace, "resilient"
    kube.create_job(limr_job(name, ns, s3_storage(s3_server, s3_bucket)))
    first = wait(c, lambda: kube.rayjob(ns, "resilient-baseline-1"), "baseline attempt 1")
    operator.kill()
    try:
        kube.finish_rayjob(ns, "resilient-baseline-1")  # while the operator is down, KubeRay finishes it
        operator.start()
        wait(c, lambda: kube.batch_job(ns, "resilient-select-1"), "the Selection after the restart")
        operator.kill()  # and again, in the middle of the Selection
        operator.start()
        time.sleep(4)  # start-up and several reconcile ticks
    finally:
        if operator.proc.poll() is not None:
            operator.start()
    assert [r["metadata"]["uid"] for r in kube.rayjobs(ns)] == [first["metadata"]["uid"]]
    assert [j["metadata"]["name"] for j in kube.batch_jobs(ns)] == ["resilient-select-1"]
    assert sorted(m["metadata"]["name"] for m in kube.configmaps(ns)) == ["resilient-baseline-1", "resilient-select-1"]
    assert kube.phase(ns, name) == "Selection"
    assert kube.status(ns, name)["phases"]["selection"]["attempts"] == 1


def test_suspend_and_resume(real_cluster, kube, operator, namespace, s3_server, s3_bucket):
    c, ns, name = real_cluster, namespace, "pausable"
    kube.create_job(limr_job(name, ns, s3_storage(s3_server, s3_bucket)))
    wait(c, lambda: kube.rayjob(ns, "pausable-baseline-1"), "the RayJob")
    wait(c, lambda: (kube.rayjob(ns, "pausable-baseline-1").get("status") or {}).get("rayClusterName"),
         "KubeRay to start a RayCluster")
    kube.patch_job(ns, name, {"spec": {"suspend": True}})
    wait(c, lambda: kube.rayjob(ns, "pausable-baseline-1")["spec"].get("suspend") is True, "the RayJob suspended")
    wait(c, lambda: kube.phase(ns, name) == "Suspended", "phase Suspended")
    assert kube.condition(ns, name, "Suspended")["status"] == "True"
    # Real KubeRay suspends: it deletes the RayCluster and reports Suspended.
    wait(c, lambda: (kube.rayjob(ns, "pausable-baseline-1").get("status") or {}).get("jobDeploymentStatus")
         == "Suspended", "KubeRay to suspend the RayJob")
    assert not kube.custom.list_namespaced_custom_object("ray.io", "v1", ns, "rayclusters")["items"] or wait(
        c, lambda: not kube.custom.list_namespaced_custom_object("ray.io", "v1", ns, "rayclusters")["items"],
        "KubeRay to delete the RayCluster")
    kube.patch_job(ns, name, {"spec": {"suspend": False}})
    wait(c, lambda: not kube.rayjob(ns, "pausable-baseline-1")["spec"].get("suspend"), "the RayJob resumed")
    wait(c, lambda: kube.phase(ns, name) == "Baseline", "phase Baseline again")
    wait(c, lambda: (kube.rayjob(ns, "pausable-baseline-1").get("status") or {}).get("rayClusterName"),
         "KubeRay to start a new RayCluster")
    kube.finish_rayjob(ns, "pausable-baseline-1")
    wait(c, lambda: kube.phase(ns, name) == "Selection", "the job continues after the resume")
    assert kube.status(ns, name)["observedGeneration"] == 3
    assert kube.condition(ns, name, "Suspended")["status"] == "False"


def test_delete_collects_the_children_and_keeps_the_artifacts(real_cluster, kube, operator, namespace,
                                                              s3_server, s3_bucket, s3_client):
    c, ns, name = real_cluster, namespace, "doomed"
    kube.create_job(limr_job(name, ns, s3_storage(s3_server, s3_bucket)))
    wait(c, lambda: kube.rayjob(ns, "doomed-baseline-1"), "the RayJob")
    s3_client.put_object(Bucket=s3_bucket, Key=f"runs/{name}/baseline/metrics.jsonl", Body=b'{"step": 1}\n')
    assert "limr.io/finalizer" in kube.job(ns, name)["metadata"]["finalizers"]
    wait(c, lambda: kube.custom.list_namespaced_custom_object("ray.io", "v1", ns, "rayclusters")["items"],
         "KubeRay's RayCluster (a grandchild)")
    kube.delete_job(ns, name)
    wait(c, lambda: kube.job(ns, name) is None, "the LIMRJob to go (the operator releases its finalizer)")
    wait(c, lambda: not kube.rayjobs(ns) and not kube.configmaps(ns), "the garbage collector to delete the children")
    wait(c, lambda: not kube.custom.list_namespaced_custom_object("ray.io", "v1", ns, "rayclusters")["items"],
         "the garbage collector to delete KubeRay's RayCluster")
    wait(c, lambda: "Deleted" in reasons(kube, ns, name), "the Deleted event")
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert f"runs/{name}/baseline/metrics.jsonl" in keys


def test_a_finished_job_deleted_by_its_ttl_is_never_created_again(real_cluster, kube, operator, namespace,
                                                                   s3_server, s3_bucket, s3_client):
    """The Selection Job finishes and TTL-after-finished deletes it while the operator is down: the
    operator must not create `<job>-select-1` again (the old code did, and ran the step again);
    `_DONE.json` in storage says the step is done. Without it the attempt counts as failed."""
    c, ns = real_cluster, namespace
    for name, done in (("ttl-done", True), ("ttl-lost", False)):
        kube.create_job(limr_job(name, ns, s3_storage(s3_server, s3_bucket)))
        wait(c, lambda n=name: kube.rayjob(ns, f"{n}-baseline-1"), "the baseline")
        kube.finish_rayjob(ns, f"{name}-baseline-1")
        first = wait(c, lambda n=name: kube.batch_job(ns, f"{n}-select-1"), "the Selection Job")
        wait(c, lambda n=name: kube.status(ns, n).get("phases", {}).get("selection", {}).get("childUid"),
             "the operator to see it")  # its status lands after the child's create
        operator.kill()
        try:
            if done:
                write_done(s3_client, s3_bucket, name, "selection")
            kube.finish_job_pods(ns, f"{name}-select-1", ok=True)
            wait(c, lambda n=name: kube.batch_job(ns, f"{n}-select-1") is None, "TTL-after-finished to delete it")
        finally:
            operator.start()
        if done:
            wait(c, lambda n=name: kube.phase(ns, n) == "Retrain", "the step decided by its _DONE.json")
            assert kube.status(ns, name)["phases"]["selection"]["attempts"] == 1
        else:
            wait(c, lambda n=name: kube.batch_job(ns, f"{n}-select-2"), "a new attempt (a new name)")
            msg = wait(c, lambda n=name: kube.status(ns, n)["phases"]["selection"].get("message"), "the reason")
            assert "was deleted before its outcome was seen" in msg and "_DONE.json is not in storage" in msg
        time.sleep(3)
        again = kube.batch_job(ns, f"{name}-select-1")
        assert again is None, f"{name}-select-1 was created again (uid {again['metadata']['uid']}, " \
                              f"first {first['metadata']['uid']})"

