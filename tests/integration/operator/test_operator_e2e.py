"""End to end: the real operator (kopf's KopfRunner) against an emulated Kubernetes API over HTTP,
with the LIMRJob CRD (validated like the API server does) and KubeRay's RayJob CRD installed. The
test plays KubeRay and the Job controller by patching child status."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from operator_harness import Cluster, free_port, operator_args, wait_for

kopf_testing = pytest.importorskip("kopf.testing", reason="KOPF MISSING: pip install kopf (make venv)")
from prometheus_client import REGISTRY

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
OK = ("Complete", "SUCCEEDED")


def limr_job(name: str, ns: str, **spec) -> dict:
    body = {
        "apiVersion": "limr.io/v1alpha1", "kind": "LIMRJob", "metadata": {"name": name, "namespace": ns},
        "spec": {"model": {"name": "Qwen/Qwen2.5-Math-7B"}, "dataset": {"uri": "s3://limr-data/math.json"},
                 "storage": {"uri": "s3://limr-artifacts/runs"}},
    }
    body["spec"].update(spec)
    return body


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.close()


def runner(extra=None):
    return kopf_testing.KopfRunner(operator_args(extra), timeout=60)


def phase(cluster, ns, name):
    return (cluster.job(ns, name) or {}).get("status", {}).get("phase")


def condition(cluster, ns, name, type_):
    for c in (cluster.job(ns, name) or {}).get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return c
    return None


def child(cluster, ns, name, kind="RayJob"):
    items = cluster.rayjobs(ns) if kind == "RayJob" else cluster.jobs(ns)
    return next((o for o in items if o["metadata"]["name"] == name), None)


def events(cluster, ns, name):
    return [e for e in cluster.api.list_objects("v1", "events", ns) if e.get("involvedObject", {}).get("name") == name]


def test_pending_to_succeeded_through_all_phases(cluster, s3_server, s3_bucket, s3_client):
    ns, name = "e2e-ok", "happy"
    root = f"s3://{s3_bucket}/runs"
    summary = {"strategy": "lim", "threshold": 0.6, "scored": 8523, "selected": 1389, "dropped": 0, "total": 8523}
    s3_client.put_object(Bucket=s3_bucket, Key=f"runs/{name}/selection/summary.json", Body=json.dumps(summary))
    cluster.core.create_namespaced_secret(ns, {"metadata": {"name": "s3-creds"}, "data": {
        "AWS_ACCESS_KEY_ID": "dGVzdGluZw==", "AWS_SECRET_ACCESS_KEY": "dGVzdGluZw=="}})
    body = limr_job(name, ns, retrain={"comparisons": ["random"]},
                    storage={"uri": root, "endpoint": s3_server, "region": "us-east-1", "secretRef": {"name": "s3-creds"}})
    with runner() as r:
        uid = cluster.create_job(body)["metadata"]["uid"]
        steps = [("happy-baseline-1", "RayJob"), ("happy-select-1", "Job"), ("happy-retrain-1", "RayJob"),
                 ("happy-retrain-random-1", "RayJob"), ("happy-eval-1", "RayJob")]
        for child_name, kind in steps:
            obj = wait_for(lambda n=child_name, k=kind: child(cluster, ns, n, k), what=f"{kind} {child_name}")
            assert obj["metadata"]["ownerReferences"][0]["uid"] == uid
            if child_name == "happy-baseline-1":  # the trainer streams step metrics; status follows them
                rows = [{"step": s, "reward_mean": -0.5 + s / 100, "accuracy": s / 100} for s in range(1, 9)]
                s3_client.put_object(Bucket=s3_bucket, Key=f"runs/{name}/baseline/metrics.jsonl",
                                     Body="".join(json.dumps(r) + "\n" for r in rows))
                latest = wait_for(lambda: cluster.job(ns, name).get("status", {}).get("metrics", {}).get("step"),
                                  what="latest metrics in status")
                assert latest == 8
                assert cluster.job(ns, name)["status"]["metrics"] == {"phase": "baseline", "step": 8,
                                                                      "rewardMean": -0.42, "accuracy": 0.08}
            if kind == "RayJob":
                cluster.set_rayjob(ns, child_name, "Running", "RUNNING")
                cluster.set_rayjob(ns, child_name, *OK)
            else:
                cluster.set_job(ns, child_name, "Complete")
        wait_for(lambda: phase(cluster, ns, name) == "Succeeded", what="phase Succeeded")
        wait_for(lambda: [e["reason"] for e in events(cluster, ns, name)].count("PhaseChanged") >= 5,
                 what="an Event per transition")
        status = wait_for(lambda: (cluster.job(ns, name) or {}).get("status", {}).get("samples", {}).get("total")
                          and cluster.job(ns, name)["status"], what="sample counts from summary.json")
        wait_for(lambda: "SelectionSummary" in [e["reason"] for e in events(cluster, ns, name)], what="summary Event")
        wait_for(lambda: REGISTRY.get_sample_value("limr_operator_samples_selected", {"namespace": ns, "limr_job": name}),
                 what="samples metric")
    assert r.exception is None, r.output
    assert status["selectedOfTotal"] == "1389/8523"
    assert status["samples"] == {"total": 8523, "selected": 1389, "dropped": 0}
    assert status["artifacts"]["selectionSummary"] == f"{root}/{name}/selection/summary.json"
    assert all(p["state"] == "Succeeded" and p["attempts"] == 1 for p in status["phases"].values())
    ready = condition(cluster, ns, name, "Ready")
    assert ready["status"] == "True" and ready["observedGeneration"] == 1
    assert cluster.api.tally[("created", "rayjobs")] == 4 and cluster.api.tally[("created", "jobs")] == 1
    reasons = [e["reason"] for e in events(cluster, ns, name)]
    assert reasons.count("PhaseChanged") >= 5 and "SelectionSummary" in reasons
    assert "dGVzdGluZw" not in json.dumps(status) + json.dumps(cluster.rayjobs(ns))
    assert REGISTRY.get_sample_value("limr_operator_phase_transitions_total",
                                     {"from_phase": "Evaluation", "to_phase": "Succeeded"}) >= 1
    assert REGISTRY.get_sample_value("limr_operator_samples_selected", {"namespace": ns, "limr_job": name}) == 1389


def test_failed_rayjob_is_retried_then_the_job_fails(cluster):
    ns, name = "e2e-fail", "flaky"
    before = REGISTRY.get_sample_value("limr_operator_rayjob_retries_total",
                                       {"namespace": ns, "limr_job": name, "phase": "baseline"}) or 0
    with runner() as r:
        cluster.create_job(limr_job(name, ns, backoffLimit=1))
        wait_for(lambda: child(cluster, ns, "flaky-baseline-1"), what="attempt 1")
        cluster.set_rayjob(ns, "flaky-baseline-1", "Failed", "FAILED", message="CUDA OOM")
        wait_for(lambda: child(cluster, ns, "flaky-baseline-2"), what="attempt 2")
        wait_for(lambda: cluster.job(ns, name)["status"]["phases"]["baseline"]["attempts"] == 2, what="attempts 2")
        cluster.set_rayjob(ns, "flaky-baseline-2", "Running", "STOPPED")
        wait_for(lambda: phase(cluster, ns, name) == "Failed", what="phase Failed")
        wait_for(lambda: REGISTRY.get_sample_value("limr_operator_rayjob_retries_total",
                                                   {"namespace": ns, "limr_job": name, "phase": "baseline"}),
                 what="retry metric")
        wait_for(lambda: {"RayJobFailed", "RayJobStopped", "BackoffLimitExceeded"}
                 <= {e["reason"] for e in events(cluster, ns, name) if e["type"] == "Warning"}, what="Warnings")
    assert r.exception is None, r.output
    failed = condition(cluster, ns, name, "Failed")
    assert failed["status"] == "True" and failed["reason"] == "BackoffLimitExceeded"
    assert "baseline failed 2 time(s)" in failed["message"]
    assert [o["metadata"]["name"] for o in cluster.rayjobs(ns)] == ["flaky-baseline-1", "flaky-baseline-2"]
    warnings = {e["reason"] for e in events(cluster, ns, name) if e["type"] == "Warning"}
    assert {"RayJobFailed", "RayJobStopped", "BackoffLimitExceeded"} <= warnings
    after = REGISTRY.get_sample_value("limr_operator_rayjob_retries_total",
                                      {"namespace": ns, "limr_job": name, "phase": "baseline"})
    assert after - before == 1


def test_restart_mid_phase_creates_no_duplicates(cluster):
    ns, name = "e2e-restart", "resilient"
    with runner() as r1:
        cluster.create_job(limr_job(name, ns))
        wait_for(lambda: child(cluster, ns, "resilient-baseline-1"), what="baseline attempt 1")
        wait_for(lambda: phase(cluster, ns, name) == "Baseline", what="phase Baseline")
    assert r1.exception is None, r1.output
    # While the operator is down, KubeRay finishes the baseline.
    cluster.set_rayjob(ns, "resilient-baseline-1", *OK)
    with runner() as r2:
        wait_for(lambda: child(cluster, ns, "resilient-select-1", "Job"), what="selection after restart")
        wait_for(lambda: phase(cluster, ns, name) == "Selection", what="phase Selection")
    with runner() as r3:  # and once more in the middle of a phase: nothing new appears
        time.sleep(2.0)  # start-up plus several reconcile ticks
    for r in (r2, r3):
        assert r.exception is None, r.output
    assert cluster.api.tally[("created", "rayjobs")] == 1
    assert cluster.api.tally[("created", "jobs")] == 1
    assert cluster.api.tally[("created", "configmaps")] == 2
    assert [o["metadata"]["name"] for o in cluster.rayjobs(ns)] == ["resilient-baseline-1"]
    assert phase(cluster, ns, name) == "Selection"


def test_suspend_and_resume(cluster):
    ns, name = "e2e-suspend", "pausable"
    with runner() as r:
        cluster.create_job(limr_job(name, ns))
        wait_for(lambda: child(cluster, ns, "pausable-baseline-1"), what="RayJob")
        cluster.set_rayjob(ns, "pausable-baseline-1", "Running", "RUNNING")
        cluster.custom.patch_namespaced_custom_object("limr.io", "v1alpha1", ns, "limrjobs", name,
                                                      {"spec": {"suspend": True}})
        wait_for(lambda: child(cluster, ns, "pausable-baseline-1")["spec"].get("suspend") is True, what="suspended")
        wait_for(lambda: phase(cluster, ns, name) == "Suspended", what="phase Suspended")
        assert condition(cluster, ns, name, "Suspended")["status"] == "True"
        cluster.set_rayjob(ns, "pausable-baseline-1", "Suspended", "STOPPED")  # KubeRay deletes the cluster
        cluster.custom.patch_namespaced_custom_object("limr.io", "v1alpha1", ns, "limrjobs", name,
                                                      {"spec": {"suspend": False}})
        wait_for(lambda: child(cluster, ns, "pausable-baseline-1")["spec"].get("suspend") is False, what="resumed")
        wait_for(lambda: phase(cluster, ns, name) == "Baseline", what="phase Baseline again")
        cluster.set_rayjob(ns, "pausable-baseline-1", *OK)
        wait_for(lambda: phase(cluster, ns, name) == "Selection", what="continues after resume")
    assert r.exception is None, r.output
    assert cluster.job(ns, name)["status"]["observedGeneration"] == 3
    assert condition(cluster, ns, name, "Suspended")["status"] == "False"


def test_delete_removes_the_finalizer_and_children_are_owned(cluster):
    ns, name = "e2e-delete", "doomed"
    with runner() as r:
        uid = cluster.create_job(limr_job(name, ns))["metadata"]["uid"]
        wait_for(lambda: child(cluster, ns, "doomed-baseline-1"), what="RayJob")
        assert "limr.io/finalizer" in cluster.job(ns, name)["metadata"]["finalizers"]
        wait_for(lambda: any(k.startswith("limr.io/") for k in cluster.job(ns, name)["metadata"].get("annotations", {})),
                 what="kopf progress kept in limr.io/ annotations")
        cluster.custom.delete_namespaced_custom_object("limr.io", "v1alpha1", ns, "limrjobs", name)
        wait_for(lambda: cluster.job(ns, name) is None, what="LIMRJob gone")
        wait_for(lambda: any(e["reason"] == "Deleted" for e in events(cluster, ns, name)), what="Deleted event")
    assert r.exception is None, r.output
    children = cluster.rayjobs(ns) + cluster.api.list_objects("v1", "configmaps", ns)
    assert children
    for obj in children:  # what the garbage collector follows (the emulator has none)
        (ref,) = obj["metadata"]["ownerReferences"]
        assert ref["uid"] == uid and ref["controller"] is True and ref["blockOwnerDeletion"] is True


def test_objects_the_crd_rejects_never_reach_reconcile(cluster):
    ns = "e2e-invalid"
    import kubernetes

    bad = limr_job("bad", ns, ppo={"trainBatchSize": 256, "microBatchSize": 3})
    with runner() as r:
        with pytest.raises(kubernetes.client.exceptions.ApiException) as err:
            cluster.create_job(bad)
        assert err.value.status == 422 and "microBatchSize" in err.value.body
        # An object stored before a stricter CRD (bypassing validation) gets a clear condition instead.
        legacy = limr_job("legacy", ns, backoffLimit=-5)
        cluster.api.validators.clear()
        cluster.create_job(legacy)
        wait_for(lambda: (condition(cluster, ns, "legacy", "Ready") or {}).get("reason") == "InvalidSpec",
                 what="InvalidSpec condition")
        time.sleep(0.8)
    assert r.exception is None, r.output
    assert cluster.job(ns, "bad") is None
    assert cluster.rayjobs(ns) == [] and cluster.jobs(ns) == []
    assert "backoffLimit" in condition(cluster, ns, "legacy", "Ready")["message"]


def test_unexpected_rayjob_status_is_a_condition_not_a_crash(cluster):
    ns, name = "e2e-weird", "odd"
    port = free_port()
    with runner([f"--liveness=http://127.0.0.1:{port}/healthz"]) as r:
        cluster.create_job(limr_job(name, ns))
        wait_for(lambda: child(cluster, ns, "odd-baseline-1"), what="RayJob")
        cluster.set_rayjob(ns, "odd-baseline-1", "Exploding", "SIDEWAYS")
        deg = wait_for(lambda: (c := condition(cluster, ns, name, "Degraded")) and c["status"] == "True" and c,
                       what="Degraded condition")
        assert deg["reason"] == "UnknownRayJobStatus" and "'Exploding'" in deg["message"]
        assert phase(cluster, ns, name) == "Baseline"
        health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read())
        assert "jobs" in health
        cluster.set_rayjob(ns, "odd-baseline-1", *OK)
        wait_for(lambda: phase(cluster, ns, name) == "Selection", what="recovers on a known status")
        assert condition(cluster, ns, name, "Degraded")["status"] == "False"
    assert r.exception is None, r.output
