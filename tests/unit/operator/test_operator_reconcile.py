"""Reconcile, table-driven: one row per transition (spec, status, observed children) -> outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from limr_operator.reconcile import (
    Refusal,
    invalid_spec_status,
    needs_summary,
    reconcile,
    status_patch,
    vanished_steps,
)
from operator_fixtures import job_dict, load

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
T0 = "2026-11-25T11:00:00Z"


def rj(name, ds="Running", js="RUNNING", suspend=False, created=T0, startTime=T0, uid=None, **status):
    meta = {"name": name, "creationTimestamp": created, "uid": uid or f"uid-of-{name}"}
    return {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": meta,
            "spec": {"suspend": suspend},
            "status": {"jobDeploymentStatus": ds, "jobStatus": js, "startTime": startTime, **status}}


def bj(name, cond=None, reason=None):
    status = {"conditions": [{"type": cond, "status": "True", "reason": reason}]} if cond else {}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "creationTimestamp": T0},
            "spec": {}, "status": status}


def running(**phases):
    """A status in the middle of a run: phases given as key=(state, attempts)."""
    out = {"phase": "Pending", "phases": {}}
    for key, (state, attempts) in phases.items():
        out["phases"][key.replace("_", "-")] = {"state": state, "attempts": attempts}
    return out


def stage(status, phase):
    return {**status, "phase": phase}


OK = ("Complete", "SUCCEEDED")
ALL_DONE = {"baseline": ("Succeeded", 1), "selection": ("Succeeded", 1)}

# id, spec overrides, status, observed, expected phase, expected (verb, kind, name) actions, expected event reasons
CASES = [
    ("pending-starts-baseline", {}, {}, [], "Baseline",
     [("create", "ConfigMap", "demo-baseline-1"), ("create", "RayJob", "demo-baseline-1")], {"PhaseChanged"}),
    ("baseline-running-waits", {}, stage(running(baseline=("Running", 1)), "Baseline"),
     [rj("demo-baseline-1")], "Baseline", [], set()),
    ("baseline-not-seen-yet-is-recreated-idempotently", {}, stage(running(baseline=("Running", 1)), "Baseline"),
     [], "Baseline", [("create", "ConfigMap", "demo-baseline-1"), ("create", "RayJob", "demo-baseline-1")], set()),
    ("baseline-new-deployment-status-waits", {}, stage(running(baseline=("Running", 1)), "Baseline"),
     [rj("demo-baseline-1", "", "")], "Baseline", [], set()),
    ("baseline-succeeds-selection-job-starts", {}, stage(running(baseline=("Running", 1)), "Baseline"),
     [rj("demo-baseline-1", *OK)], "Selection",
     [("create", "ConfigMap", "demo-select-1"), ("create", "Job", "demo-select-1")], {"PhaseSucceeded", "PhaseChanged"}),
    ("deployment-complete-alone-is-not-success", {}, stage(running(baseline=("Running", 1)), "Baseline"),
     [rj("demo-baseline-1", "Running", "SUCCEEDED")], "Baseline", [], set()),
    ("selection-succeeds-retrain-and-arms-start", {"retrain": {"comparisons": ["random"]}},
     stage(running(baseline=("Succeeded", 1), selection=("Running", 1)), "Selection"),
     [bj("demo-select-1", "Complete")], "Retrain",
     [("create", "ConfigMap", "demo-retrain-1"), ("create", "RayJob", "demo-retrain-1"),
      ("create", "ConfigMap", "demo-retrain-random-1"), ("create", "RayJob", "demo-retrain-random-1")],
     {"PhaseSucceeded", "PhaseChanged"}),
    ("retrain-waits-for-every-arm", {"retrain": {"comparisons": ["random"]}},
     stage(running(**ALL_DONE, retrain=("Running", 1), retrain_random=("Running", 1)), "Retrain"),
     [rj("demo-retrain-1", *OK), rj("demo-retrain-random-1")], "Retrain", [], {"PhaseSucceeded"}),
    ("retrain-done-evaluation-starts", {},
     stage(running(**ALL_DONE, retrain=("Running", 1)), "Retrain"),
     [rj("demo-retrain-1", *OK)], "Evaluation",
     [("create", "ConfigMap", "demo-eval-1"), ("create", "RayJob", "demo-eval-1")], {"PhaseSucceeded", "PhaseChanged"}),
    ("evaluation-done-job-succeeds", {},
     stage(running(**ALL_DONE, retrain=("Succeeded", 1), evaluation=("Running", 2)), "Evaluation"),
     [rj("demo-eval-2", *OK)], "Succeeded", [], {"PhaseSucceeded", "PhaseChanged"}),
    ("rayjob-failed-is-retried", {}, stage(running(baseline=("Running", 1)), "Baseline"),
     [rj("demo-baseline-1", "Failed", "FAILED", message="OOM")], "Baseline",
     [("create", "ConfigMap", "demo-baseline-2"), ("create", "RayJob", "demo-baseline-2")],
     {"RayJobFailed", "AttemptStarted"}),
    ("rayjob-stopped-is-retried", {}, stage(running(baseline=("Running", 2)), "Baseline"),
     [rj("demo-baseline-2", "Running", "STOPPED")], "Baseline",
     [("create", "ConfigMap", "demo-baseline-3"), ("create", "RayJob", "demo-baseline-3")],
     {"RayJobStopped", "AttemptStarted"}),
    ("deployment-failed-deadline-is-retried", {}, stage(running(baseline=("Running", 1)), "Baseline"),
     [rj("demo-baseline-1", "Failed", "", reason="DeadlineExceeded")], "Baseline",
     [("create", "ConfigMap", "demo-baseline-2"), ("create", "RayJob", "demo-baseline-2")],
     {"DeadlineExceeded", "AttemptStarted"}),
    ("complete-but-failed-is-retried", {}, stage(running(baseline=("Running", 1)), "Baseline"),
     [rj("demo-baseline-1", "Complete", "FAILED")], "Baseline",
     [("create", "ConfigMap", "demo-baseline-2"), ("create", "RayJob", "demo-baseline-2")],
     {"RayJobFailed", "AttemptStarted"}),
    ("backoff-limit-exhausted-job-fails", {}, stage(running(baseline=("Running", 4)), "Baseline"),
     [rj("demo-baseline-4", "Failed", "FAILED")], "Failed", [], {"RayJobFailed", "BackoffLimitExceeded"}),
    ("failed-arm-stops-running-siblings", {"backoffLimit": 0, "retrain": {"comparisons": ["random", "full"]}},
     stage(running(**ALL_DONE, retrain=("Running", 1), retrain_random=("Running", 1), retrain_full=("Succeeded", 1)),
           "Retrain"),
     [rj("demo-retrain-1"), rj("demo-retrain-random-1", "Failed", "FAILED")], "Failed",
     [("delete", "RayJob", "demo-retrain-1")], {"RayJobFailed", "BackoffLimitExceeded"}),
    ("backoff-limit-zero-fails-at-once", {"backoffLimit": 0}, stage(running(baseline=("Running", 1)), "Baseline"),
     [rj("demo-baseline-1", "Failed", "FAILED")], "Failed", [], {"RayJobFailed", "BackoffLimitExceeded"}),
    ("selection-job-failed-is-retried", {},
     stage(running(baseline=("Succeeded", 1), selection=("Running", 1)), "Selection"),
     [bj("demo-select-1", "Failed", "DeadlineExceeded")], "Selection",
     [("create", "ConfigMap", "demo-select-2"), ("create", "Job", "demo-select-2")],
     {"DeadlineExceeded", "AttemptStarted"}),
    ("unknown-status-is-a-condition-not-a-crash", {}, stage(running(baseline=("Running", 1)), "Baseline"),
     [rj("demo-baseline-1", "Exploded", "WEIRD")], "Baseline", [], set()),
    ("non-string-status-is-unknown", {}, stage(running(baseline=("Running", 1)), "Baseline"),
     [rj("demo-baseline-1", 42, ["x"])], "Baseline", [], set()),
    ("suspend-running-rayjob", {"suspend": True}, stage(running(baseline=("Running", 1)), "Baseline"),
     [rj("demo-baseline-1")], "Suspended", [("suspend", "RayJob", "demo-baseline-1")], {"PhaseChanged"}),
    ("suspended-stays-suspended", {"suspend": True}, stage(running(baseline=("Running", 1)), "Suspended"),
     [rj("demo-baseline-1", "Suspended", "", suspend=True)], "Suspended", [], set()),
    ("resume-unsuspends", {}, stage(running(baseline=("Running", 1)), "Suspended"),
     [rj("demo-baseline-1", "Suspended", "", suspend=True)], "Baseline",
     [("suspend", "RayJob", "demo-baseline-1")], {"PhaseChanged"}),
    ("resume-leaves-queued-rayjob-to-kueue", {"cluster": {"queue": "q"}},
     stage(running(baseline=("Running", 1)), "Baseline"),
     [rj("demo-baseline-1", "Suspended", "", suspend=True)], "Baseline", [], set()),
    ("suspend-before-start-creates-nothing", {"suspend": True}, {}, [], "Suspended", [], {"PhaseChanged"}),
    ("suspended-and-stopped-is-not-a-failure", {"suspend": True},
     stage(running(baseline=("Running", 1)), "Suspended"),
     [rj("demo-baseline-1", "Suspended", "STOPPED", suspend=True)], "Suspended", [], set()),
    ("suspend-does-not-start-retries", {"suspend": True}, stage(running(baseline=("Running", 1)), "Suspended"),
     [rj("demo-baseline-1", "Failed", "FAILED")], "Suspended", [], {"RayJobFailed"}),
    ("operator-deadline-deletes-and-retries", {"phaseDeadlineSeconds": 600},
     stage(running(baseline=("Running", 1)), "Baseline"), [rj("demo-baseline-1")], "Baseline",
     [("delete", "RayJob", "demo-baseline-1"), ("create", "ConfigMap", "demo-baseline-2"),
      ("create", "RayJob", "demo-baseline-2")], {"DeadlineExceeded", "AttemptStarted"}),
    ("within-deadline-waits", {"phaseDeadlineSeconds": 7200},
     stage(running(baseline=("Running", 1)), "Baseline"), [rj("demo-baseline-1")], "Baseline", [], set()),
    # Created an hour ago but queued (or suspended) until 5 minutes ago: the deadline counts from
    # status.startTime, which KubeRay sets when it starts the cluster and resets on every resume.
    ("time-queued-does-not-count-towards-the-deadline", {"phaseDeadlineSeconds": 600},
     stage(running(baseline=("Running", 1)), "Baseline"),
     [rj("demo-baseline-1", "Initializing", "", startTime="2026-11-25T11:55:00Z")], "Baseline", [], set()),
    ("not-started-yet-has-no-deadline", {"phaseDeadlineSeconds": 600},
     stage(running(baseline=("Running", 1)), "Baseline"), [rj("demo-baseline-1", "", "", startTime=None)],
     "Baseline", [], set()),
    ("start-from-records-skips-baseline",
     {"baseline": {"enabled": False, "recordsUri": "s3://old/baseline/"}}, {}, [], "Selection",
     [("create", "ConfigMap", "demo-select-1"), ("create", "Job", "demo-select-1")], {"PhaseChanged"}),
    ("disabled-retrain-goes-to-evaluation", {"retrain": {"enabled": False}},
     stage(running(baseline=("Succeeded", 1), selection=("Running", 1)), "Selection"),
     [bj("demo-select-1", "Complete")], "Evaluation",
     [("create", "ConfigMap", "demo-eval-1"), ("create", "RayJob", "demo-eval-1")], {"PhaseChanged"}),
    ("succeeded-is-terminal", {}, {"phase": "Succeeded", "phases": {"baseline": {"state": "Succeeded"}}},
     [rj("demo-baseline-1", "Failed", "FAILED")], "Succeeded", [], set()),
    ("failed-is-terminal", {}, {"phase": "Failed"}, [], "Failed", [], set()),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_transition(case):
    _, spec, status, observed, phase, actions, reasons = case
    job = load(job_dict(**spec))
    res = reconcile(job, "uid-1", 3, status, {o["metadata"]["name"]: o for o in observed}, NOW)
    assert res.status["phase"] == phase
    assert [(a.verb, a.kind, a.name) for a in res.actions] == actions
    assert reasons <= {e.reason for e in res.events}
    assert res.status["observedGeneration"] == 3
    old = status.get("phase", "Pending")
    assert res.transitions == ([] if old == phase else [(old, phase)])
    assert (old != phase) == any(e.reason in ("PhaseChanged", "BackoffLimitExceeded") for e in res.events)
    conds = {c["type"]: c for c in res.status["conditions"]}
    assert set(conds) >= {"Ready", "Progressing", "Failed", "Suspended", "Degraded"}
    for c in conds.values():
        assert set(c) == {"type", "status", "reason", "message", "observedGeneration", "lastTransitionTime"}
        assert c["status"] in ("True", "False", "Unknown") and c["reason"][0].isupper()
    assert conds["Ready"]["status"] == ("True" if phase == "Succeeded" else "False")
    assert conds["Failed"]["status"] == ("True" if phase == "Failed" else "False")
    assert conds["Suspended"]["status"] == ("True" if phase == "Suspended" else "False")
    assert conds["Progressing"]["status"] == ("True" if phase in ("Baseline", "Selection", "Retrain",
                                                                 "Evaluation") else "False")
    for a in res.actions:
        if a.verb == "suspend":
            assert a.suspend is job.spec.suspend
        if a.verb == "create":
            assert a.body["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    # Idempotent: the same inputs again give the same actions and the same status.
    again = reconcile(job, "uid-1", 3, status, {o["metadata"]["name"]: o for o in observed}, NOW)
    assert again.actions == res.actions and again.status == res.status


def test_unknown_status_sets_degraded_and_known_status_clears_it():
    job = load(job_dict())
    status = stage(running(baseline=("Running", 1)), "Baseline")
    res = reconcile(job, "u", 1, status, {"demo-baseline-1": rj("demo-baseline-1", "Exploded", "WEIRD")}, NOW)
    deg = next(c for c in res.status["conditions"] if c["type"] == "Degraded")
    assert deg["status"] == "True" and deg["reason"] == "UnknownRayJobStatus"
    assert "'Exploded'" in deg["message"] and "'WEIRD'" in deg["message"]
    later = NOW + timedelta(minutes=1)
    res2 = reconcile(job, "u", 1, res.status, {"demo-baseline-1": rj("demo-baseline-1")}, later)
    deg2 = next(c for c in res2.status["conditions"] if c["type"] == "Degraded")
    assert deg2["status"] == "False" and deg2["lastTransitionTime"] == "2026-11-25T12:01:00Z"


def test_failure_reason_and_attempt_bookkeeping():
    job = load(job_dict(backoffLimit=1))
    status = stage(running(baseline=("Running", 1)), "Baseline")
    res = reconcile(job, "u", 1, status, {"demo-baseline-1": rj("demo-baseline-1", "Failed", "FAILED", message="OOM")},
                    NOW)
    ps = res.status["phases"]["baseline"]
    assert ps["attempts"] == 2 and ps["rayJobName"] == "demo-baseline-2" and "OOM" in ps["message"]
    assert res.retries == ["baseline"]
    res2 = reconcile(job, "u", 1, res.status, {"demo-baseline-2": rj("demo-baseline-2", "Failed", "FAILED")}, NOW)
    assert res2.status["phase"] == "Failed" and res2.retries == []
    failed = next(c for c in res2.status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded" and "baseline failed 2 time(s)" in failed["message"]
    assert res2.status["phases"]["baseline"]["state"] == "Failed"
    assert res2.status["completionTime"] == "2026-11-25T12:00:00Z"
    # Terminal: a later reconcile keeps the reason and does nothing.
    res3 = reconcile(job, "u", 1, res2.status, {}, NOW + timedelta(hours=1))
    assert res3.actions == [] and res3.status["conditions"] == res2.status["conditions"]


def test_conditions_keep_transition_time_without_a_real_transition():
    job = load(job_dict())
    first = reconcile(job, "u", 1, {}, {}, NOW)
    later = NOW + timedelta(minutes=5)
    second = reconcile(job, "u", 1, first.status, {"demo-baseline-1": rj("demo-baseline-1")}, later)
    assert second.status["conditions"] == first.status["conditions"]
    # The first sight of the child records its uid; nothing else changes.
    assert status_patch(first.status, second.status) == {"phases": {"baseline": {"childUid": "uid-of-demo-baseline-1"}}}
    third = reconcile(job, "u", 1, second.status, {"demo-baseline-1": rj("demo-baseline-1")}, later)
    assert status_patch(second.status, third.status) == {}
    done = reconcile(job, "u", 1, second.status, {"demo-baseline-1": rj("demo-baseline-1", *OK)}, later)
    ready = {c["type"]: c for c in done.status["conditions"]}
    assert ready["Progressing"]["lastTransitionTime"] == "2026-11-25T12:00:00Z"  # still True
    assert ready["Progressing"]["reason"] == "SelectionRunning"
    assert set(status_patch(second.status, done.status)) >= {"phase", "phases", "conditions", "artifacts", "message"}


def test_selection_summary_fills_sample_counts():
    job = load(job_dict())
    status = stage(running(baseline=("Succeeded", 1), selection=("Running", 1)), "Selection")
    res = reconcile(job, "u", 1, status, {"demo-select-1": bj("demo-select-1", "Complete")}, NOW)
    assert needs_summary(res.status) and res.status.get("samples") is None
    summary = {"strategy": "lim", "threshold": 0.6, "scored": 8523, "selected": 1389, "dropped": 0, "total": 8523}
    res2 = reconcile(job, "u", 1, res.status, {}, NOW, summary=summary)
    assert res2.status["samples"] == {"total": 8523, "selected": 1389, "dropped": 0}
    assert res2.status["selectedOfTotal"] == "1389/8523"
    assert not needs_summary(res2.status)
    assert res2.status["artifacts"]["selectionSummary"] == "s3://limr-artifacts/runs/demo/selection/summary.json"
    assert "SelectionSummary" in {e.reason for e in res2.events}


def test_full_run_with_a_fake_kuberay():
    """Drive a job end to end, playing KubeRay: every created child succeeds on the next round."""
    job = load(job_dict(retrain={"comparisons": ["random", "linear"]}))
    status, observed, created, phases_seen = {}, {}, [], []
    for _ in range(20):
        res = reconcile(job, "u", 1, status, observed, NOW)
        status = res.status
        phases_seen.append(status["phase"])
        for a in res.actions:
            assert a.verb == "create"
            created.append((a.kind, a.name))
            if a.kind == "RayJob":
                observed[a.name] = rj(a.name, *OK)
            elif a.kind == "Job":
                observed[a.name] = bj(a.name, "Complete")
        if status["phase"] == "Succeeded":
            break
    assert phases_seen[-1] == "Succeeded"
    assert [p for i, p in enumerate(phases_seen) if i == 0 or phases_seen[i - 1] != p] == [
        "Baseline", "Selection", "Retrain", "Evaluation", "Succeeded"]
    assert len(created) == len(set(created)) == 12  # 6 workloads + their ConfigMaps, none twice
    assert all(s["state"] == "Succeeded" for s in status["phases"].values())


def test_invalid_spec_status_is_a_clear_condition():
    st = invalid_spec_status({}, [("spec.ppo", "trainBatchSize must be a multiple of microBatchSize")], 2, NOW)
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "InvalidSpec" and "spec.ppo: trainBatchSize" in ready["message"]
    assert st["phase"] == "Pending" and st["observedGeneration"] == 2


def test_latest_trainer_metrics_go_to_status():
    from limr_operator.reconcile import metrics_step

    job = load(job_dict())
    status = stage(running(baseline=("Running", 1)), "Baseline")
    assert metrics_step(status) == "baseline"
    assert metrics_step(stage(running(**ALL_DONE, retrain_random=("Running", 1)), "Retrain")) == "retrain-random"
    assert metrics_step(stage(running(baseline=("Succeeded", 1), selection=("Running", 1)), "Selection")) is None
    row = {"step": 17, "reward_mean": -0.25, "accuracy": 0.375, "kl": 0.001, "entropy": float("nan")}
    res = reconcile(job, "u", 1, status, {"demo-baseline-1": rj("demo-baseline-1")}, NOW,
                    latest_metrics=("baseline", row))
    assert res.status["metrics"] == {"phase": "baseline", "step": 17, "rewardMean": -0.25, "accuracy": 0.375}
    bad = reconcile(job, "u", 1, status, {}, NOW, latest_metrics=("baseline", {"step": True, "accuracy": float("inf")}))
    assert bad.status["metrics"] == {"phase": "baseline"}


def seen(status, key, uid="uid-seen"):
    status["phases"][key]["childUid"] = uid
    return status


def test_a_seen_child_that_vanished_is_never_created_again():
    """The Selection Job finished and TTL-after-finished (0 s by default) deleted it before a reconcile
    saw it finish: its name is never reused; the step's _DONE.json decides."""
    job = load(job_dict())
    status = seen(stage(running(baseline=("Succeeded", 1), selection=("Running", 1)), "Selection"), "selection")
    assert vanished_steps(job, status, {}) == ["selection"]
    assert vanished_steps(job, status, {"demo-select-1": bj("demo-select-1")}) == []
    done = reconcile(job, "u", 1, status, {}, NOW, done={"selection": True})
    assert done.status["phases"]["selection"]["state"] == "Succeeded"
    assert done.status["phase"] == "Retrain"
    assert ("create", "Job", "demo-select-1") not in [(a.verb, a.kind, a.name) for a in done.actions]
    assert "PhaseSucceeded" in {e.reason for e in done.events}
    for marker, why in ((False, "is not in storage"), (None, "cannot be read")):
        lost = reconcile(job, "u", 1, status, {}, NOW, done={"selection": marker})
        ps = lost.status["phases"]["selection"]
        assert ps["attempts"] == 2 and ps["state"] == "Running" and "childUid" not in ps
        assert why in ps["message"] and "demo/selection/_DONE.json" in ps["message"]
        assert [(a.verb, a.name) for a in lost.actions] == [("create", "demo-select-2")] * 2
        assert "ChildVanished" in {e.reason for e in lost.events}


def test_observing_the_child_records_its_uid_and_the_log():
    job = load(job_dict())
    res = reconcile(job, "u", 1, stage(running(baseline=("Running", 1)), "Baseline"),
                    {"demo-baseline-1": rj("demo-baseline-1", uid="abc")}, NOW)
    ps = res.status["phases"]["baseline"]
    assert ps["childUid"] == "abc"
    assert ps["log"] == "s3://limr-artifacts/runs/demo/baseline/logs/attempt-1.log"
    first = reconcile(job, "u", 1, {}, {}, NOW)
    assert first.status["phases"]["baseline"]["log"].endswith("/demo/baseline/logs/attempt-1.log")


@pytest.mark.parametrize("code", [400, 422])
def test_an_invalid_create_is_a_failed_attempt(code):
    job = load(job_dict(backoffLimit=1))
    status = stage(running(baseline=("Running", 1)), "Baseline")
    why = 'admission policy "gpu-limit" denied the request: at most 8 GPUs'
    res = reconcile(job, "u", 1, status, {}, NOW, refused={"demo-baseline-1": Refusal(code, "RayJob", why)})
    ps = res.status["phases"]["baseline"]
    assert ps["attempts"] == 2 and f"refused ({code})" in ps["message"] and "gpu-limit" in ps["message"]
    assert ("create", "RayJob", "demo-baseline-2") in [(a.verb, a.kind, a.name) for a in res.actions]
    assert "CreateRefused" in {e.reason for e in res.events}
    last = reconcile(job, "u", 1, res.status, {}, NOW, refused={"demo-baseline-2": Refusal(code, "RayJob", why)})
    failed = next(c for c in last.status["conditions"] if c["type"] == "Failed")
    assert last.status["phase"] == "Failed" and failed["reason"] == "BackoffLimitExceeded"
    assert "gpu-limit" in failed["message"]


def test_a_forbidden_create_is_a_condition_and_is_retried():
    job = load(job_dict())
    status = stage(running(baseline=("Running", 1)), "Baseline")
    why = 'rayjobs.ray.io "demo-baseline-1" is forbidden: exceeded quota: no-gpus'
    res = reconcile(job, "u", 1, status, {}, NOW, refused={"demo-baseline-1": Refusal(403, "RayJob", why)})
    deg = next(c for c in res.status["conditions"] if c["type"] == "Degraded")
    assert deg["status"] == "True" and deg["reason"] == "CreateForbidden" and "exceeded quota" in deg["message"]
    assert res.status["phases"]["baseline"]["attempts"] == 1
    assert [(a.verb, a.name) for a in res.actions] == [("create", "demo-baseline-1")] * 2  # tried again
    assert [e.reason for e in res.events if e.type == "Warning"] == ["CreateForbidden"]
    again = reconcile(job, "u", 1, res.status, {}, NOW, refused={"demo-baseline-1": Refusal(403, "RayJob", why)})
    assert [e for e in again.events if e.type == "Warning"] == []  # one Warning per distinct refusal
    assert again.status == res.status  # a standing refusal changes nothing


def test_a_name_another_owner_holds_fails_the_attempt_unless_it_is_going_away():
    job = load(job_dict())
    status = stage(running(baseline=("Running", 1)), "Baseline")
    taken = Refusal(409, "ConfigMap", "ConfigMap demo-baseline-1 exists and is not owned by this LIMRJob")
    res = reconcile(job, "u", 1, status, {}, NOW, refused={"demo-baseline-1": taken})
    assert res.status["phases"]["baseline"]["attempts"] == 2 and "NameTaken" in {e.reason for e in res.events}
    going = Refusal(409, "RayJob", "RayJob demo-baseline-1 of an earlier LIMRJob is being deleted", deleting=True)
    wait = reconcile(job, "u", 1, status, {}, NOW, refused={"demo-baseline-1": going})
    assert wait.status["phases"]["baseline"]["attempts"] == 1
    assert next(c for c in wait.status["conditions"] if c["type"] == "Degraded")["reason"] == "NameTaken"


def test_suspend_with_a_queue_deactivates_the_workload_instead_of_fighting_kueue():
    job = load(job_dict(suspend=True, cluster={"queue": "gpu"}))
    status = stage(running(baseline=("Running", 1)), "Baseline")
    res = reconcile(job, "u", 1, status, {"demo-baseline-1": rj("demo-baseline-1", uid="rj-1")}, NOW)
    assert [(a.verb, a.name, a.active) for a in res.actions] == [("activate", "demo-baseline-1", False)]
    assert res.actions[0].body == {"uid": "rj-1"}
    assert res.status["phase"] == "Suspended"
    resumed = load(job_dict(cluster={"queue": "gpu"}))
    res2 = reconcile(resumed, "u", 1, res.status, {"demo-baseline-1": rj("demo-baseline-1", suspend=True)}, NOW)
    assert [(a.verb, a.active) for a in res2.actions] == [("activate", True)]
    assert res2.status["phase"] == "Baseline"
    res3 = reconcile(resumed, "u", 1, res2.status, {"demo-baseline-1": rj("demo-baseline-1", suspend=True)}, NOW)
    assert res3.actions == []  # queued and suspended by Kueue: nothing to do


def test_a_huge_child_message_leaves_a_small_status():
    """Issue 14.9: a RayJob failing with a 200 KB message copied into phase, job message and conditions."""
    import json

    job = load(job_dict(backoffLimit=0))
    status = stage(running(baseline=("Running", 1)), "Baseline")
    message = "Traceback (most recent call last):\n" + "x" * 200_000
    res = reconcile(job, "u", 1, status, {"demo-baseline-1": rj("demo-baseline-1", "Failed", "FAILED", message=message)},
                    NOW)
    assert res.status["phase"] == "Failed"
    assert len(json.dumps(res.status)) < 8_000
    assert all(len(c["message"]) <= 1024 for c in res.status["conditions"])
    assert "more characters cut" in res.status["phases"]["baseline"]["message"]
    assert all(len(e.message) <= 2048 for e in res.events)
