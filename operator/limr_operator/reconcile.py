"""Pure reconcile: (job, status, observed children, selection summary, now) -> actions + status.

Level-triggered and idempotent: the same inputs always give the same actions, and every action
is safe to repeat. A phase attempt's child name carries the attempt number, so re-creating an
attempt that exists answers 409 (already there) and can never start a second RayJob for it.
Retries are new attempts (new names) that the trainer resumes from the checkpoints in storage.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from limr_trainer.spec import LIMRJob

from . import builders, layout
from .childstatus import Outcome, classify, is_suspended
from .conditions import set_condition
from .naming import child_name
from .phases import STAGES, Step, enabled_stages, steps_of

TERMINAL = ("Succeeded", "Failed")
DEADLINE_GRACE_SECONDS = 120  # after KubeRay's own activeDeadlineSeconds should have fired


@dataclass(frozen=True)
class Action:
    """One API call: create an object, delete a child, or patch a child's spec.suspend."""

    verb: str  # "create" | "delete" | "suspend"
    api_version: str
    kind: str
    name: str
    namespace: str | None
    body: dict[str, Any] | None = None
    suspend: bool | None = None


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Result:
    actions: list[Action] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    transitions: list[tuple[str, str]] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)  # step keys that got a new attempt


def rfc3339(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


TRAINING_STEPS = ("baseline", "retrain")


def metrics_step(status: dict[str, Any]) -> str | None:
    """The running PPO step (`baseline`, `retrain`, `retrain-<arm>`) whose metrics.jsonl to follow."""
    for key, ps in (status.get("phases") or {}).items():
        if ps.get("state") == "Running" and key.split("-")[0] in TRAINING_STEPS:
            return key
    return None


def needs_summary(status: dict[str, Any]) -> bool:
    """Whether the handler should read selection/summary.json before the next reconcile."""
    sel = (status.get("phases") or {}).get("selection") or {}
    return sel.get("state") == "Succeeded" and (status.get("samples") or {}).get("total") is None


class _Reconciler:
    def __init__(self, job: LIMRJob, uid: str, generation: int | None, status: dict[str, Any],
                 observed: dict[str, dict[str, Any]], summary: dict[str, Any] | None, now: datetime,
                 latest: tuple[str, dict[str, Any]] | None = None):
        self.job, self.spec, self.uid, self.gen = job, job.spec, uid, generation
        self.name, self.ns = job.metadata.name, job.metadata.namespace
        self.old = status or {}
        self.st = copy.deepcopy(self.old)
        self.observed, self.summary, self.now = observed, summary, rfc3339(now)
        self.latest = latest
        self.now_dt = now
        self.res = Result()
        self.failure: tuple[str, str] | None = None
        self.degraded: Outcome | None = None

    # ------------------------------------------------------------------ helpers
    def phase_status(self, key: str) -> dict[str, Any]:
        phases = self.st.setdefault("phases", {})
        return phases.setdefault(key, {"state": "Pending", "attempts": 0})

    def event(self, type_: str, reason: str, message: str) -> None:
        self.res.events.append(Event(type_, reason, message))

    def create_attempt(self, step: Step, attempt: int) -> None:
        for obj in builders.children(self.job, self.uid, step, attempt):
            self.res.actions.append(Action("create", obj["apiVersion"], obj["kind"], obj["metadata"]["name"],
                                           self.ns, body=obj))

    # ------------------------------------------------------------------ steps
    def start(self, step: Step, ps: dict[str, Any], attempt: int, why: str) -> None:
        ps.update(state="Running", attempts=attempt, rayJobName=child_name(self.name, step.phase, attempt, step.arm))
        ps.setdefault("startTime", self.now)
        if self.spec.suspend:
            return  # the attempt is recorded; its child is created on resume
        self.create_attempt(step, attempt)
        kind = "RayJob" if step.gpu else "Job"
        self.event("Normal", "AttemptStarted", f"{step.key}: attempt {attempt}: {kind} {ps['rayJobName']}{why}")

    def fail_attempt(self, step: Step, ps: dict[str, Any], outcome: Outcome) -> None:
        attempt = ps["attempts"]
        ps["message"] = f"attempt {attempt}: {outcome.message}"
        self.event("Warning", outcome.reason or "AttemptFailed", f"{step.key}: attempt {attempt} failed: {outcome.message}")
        if attempt <= self.spec.backoffLimit:
            self.res.retries.append(step.key)
            self.start(step, ps, attempt + 1, f" (retry {attempt} of {self.spec.backoffLimit})")
            return
        ps.update(state="Failed", completionTime=self.now)
        message = (f"{step.key} failed {attempt} time(s) (backoffLimit {self.spec.backoffLimit}); "
                   f"last: {outcome.message}")
        self.failure = ("BackoffLimitExceeded", message)

    def step(self, step: Step) -> str:
        """Advance one step; returns its state."""
        ps = self.phase_status(step.key)
        if ps["state"] in ("Succeeded", "Failed", "Skipped"):
            return ps["state"]
        if ps.get("attempts", 0) < 1 or ps["state"] == "Pending":
            self.start(step, ps, max(1, ps.get("attempts", 0)), "")
            return ps["state"]
        attempt = ps["attempts"]
        name = child_name(self.name, step.phase, attempt, step.arm)
        ps["rayJobName"] = name
        obj = self.observed.get(name)
        if obj is None:
            if not self.spec.suspend:  # not created yet, not seen yet, or deleted by someone: (re)create
                self.create_attempt(step, attempt)
            return ps["state"]
        outcome = classify(obj)
        if outcome.state == "running" and self.deadline_exceeded(obj):
            self.res.actions.append(Action("delete", obj.get("apiVersion", ""), obj.get("kind", ""), name, self.ns))
            outcome = Outcome("failed", "DeadlineExceeded",
                              f"{obj.get('kind')} {name} ran past phaseDeadlineSeconds={self.spec.phaseDeadlineSeconds}")
        if outcome.state == "succeeded":
            ps.update(state="Succeeded", completionTime=self.now, message=None)
            self.st.setdefault("artifacts", {}).update(layout.artifacts(self.spec, self.name, step.key))
            self.event("Normal", "PhaseSucceeded", f"{step.key}: attempt {attempt} succeeded ({obj.get('kind')} {name})")
        elif outcome.state == "failed":
            self.fail_attempt(step, ps, outcome)
        elif outcome.state == "unknown":
            self.degraded = outcome
        else:
            self.suspend_child(obj, name)
        return ps["state"]

    def deadline_exceeded(self, obj: dict[str, Any]) -> bool:
        limit = self.spec.phaseDeadlineSeconds
        created = _parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
        if not limit or created is None or is_suspended(obj):
            return False
        return (self.now_dt - created).total_seconds() > limit + DEADLINE_GRACE_SECONDS

    def suspend_child(self, obj: dict[str, Any], name: str) -> None:
        """spec.suspend true suspends the running child; false resumes it (Kueue resumes queued ones)."""
        want = self.spec.suspend
        if want and not is_suspended(obj):
            self.res.actions.append(Action("suspend", obj.get("apiVersion", ""), obj.get("kind", ""), name,
                                           self.ns, suspend=True))
        elif not want and is_suspended(obj) and not self.spec.cluster.queue:
            self.res.actions.append(Action("suspend", obj.get("apiVersion", ""), obj.get("kind", ""), name,
                                           self.ns, suspend=False))

    # ------------------------------------------------------------------ whole job
    def run(self) -> Result:
        old_phase = self.old.get("phase") or "Pending"
        if old_phase in TERMINAL:
            return self.finish(old_phase, reconcile_children=False)
        self.st.setdefault("startTime", self.now)
        for stage in STAGES:
            if stage not in enabled_stages(self.spec):
                for step in steps_of(self.spec, stage):
                    self.phase_status(step.key).update(state="Skipped", attempts=0)
        if not self.spec.baseline.enabled and self.spec.baseline.recordsUri:
            self.st.setdefault("artifacts", {})["baselineRecords"] = self.spec.baseline.recordsUri
        self.apply_summary()
        self.apply_metrics()
        current = None
        for stage in enabled_stages(self.spec):
            states = [self.step(step) for step in steps_of(self.spec, stage)]
            self.apply_summary()
            if self.failure:
                self.stop_siblings(stage)
                return self.finish("Failed")
            if not all(s == "Succeeded" for s in states):
                current = stage
                break
        if current is None:
            return self.finish("Succeeded")
        return self.finish("Suspended" if self.spec.suspend else current)

    def stop_siblings(self, stage: str) -> None:
        """The job failed: delete the still-running workloads of its stage (comparison arms) to free GPUs."""
        for step in steps_of(self.spec, stage):
            ps = self.phase_status(step.key)
            if ps["state"] != "Running":
                continue
            name = child_name(self.name, step.phase, ps["attempts"], step.arm)
            obj = self.observed.get(name)
            if obj is not None:
                self.res.actions.append(Action("delete", obj.get("apiVersion", ""), obj.get("kind", ""), name, self.ns))
            ps.update(state="Failed", completionTime=self.now, message="stopped: another step of the job failed")

    def apply_summary(self) -> None:
        s = self.summary
        if not s or not needs_summary(self.st):
            return
        total = s.get("total", s.get("scored"))
        samples = {k: v for k, v in (("total", total), ("selected", s.get("selected")),
                                     ("dropped", s.get("dropped"))) if isinstance(v, int)}
        if not samples:
            return
        self.st["samples"] = samples
        if "selected" in samples and "total" in samples:
            self.st["selectedOfTotal"] = f"{samples['selected']}/{samples['total']}"
        self.event("Normal", "SelectionSummary",
                   f"selected {samples.get('selected')} of {samples.get('total')} samples "
                   f"({s.get('strategy', self.spec.selection.strategy)}, threshold {s.get('threshold')})")

    def apply_metrics(self) -> None:
        """status.metrics from the last metrics.jsonl row of a training step (trainer keys)."""
        if not self.latest:
            return
        key, row = self.latest
        ok: dict[str, Any] = {"phase": key}
        for name, value in (("step", row.get("step")), ("rewardMean", row.get("reward_mean")),
                            ("accuracy", row.get("accuracy"))):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                ok[name] = int(value) if name == "step" else float(value)
        self.st["metrics"] = ok

    def finish(self, phase: str, reconcile_children: bool = True) -> Result:
        old_phase = self.old.get("phase") or "Pending"
        st = self.st
        st["phase"] = phase
        st["observedGeneration"] = self.gen
        if phase in TERMINAL:
            st.setdefault("completionTime", self.now)
        if phase != old_phase:
            self.res.transitions.append((old_phase, phase))
            level = "Warning" if phase == "Failed" else "Normal"
            msg = f"{old_phase} -> {phase}" + (f": {self.failure[1]}" if self.failure else "")
            self.event(level, "PhaseChanged" if phase != "Failed" else self.failure[0] if self.failure else "Failed", msg)
        st["message"] = self.summary_message(phase)
        self.conditions(phase)
        self.res.status = st
        return self.res

    def summary_message(self, phase: str) -> str:
        if self.failure:
            return self.failure[1]
        if phase in TERMINAL:
            return self.old.get("message") if phase == "Failed" and self.old.get("message") else f"job {phase.lower()}"
        if phase == "Suspended":
            return "suspended (spec.suspend is true)"
        running = [f"{k} attempt {v.get('attempts')} ({v.get('rayJobName')})"
                   for k, v in (self.st.get("phases") or {}).items() if v.get("state") == "Running"]
        return f"{phase}: " + ", ".join(running) if running else phase

    def conditions(self, phase: str) -> None:
        conds = list(self.st.get("conditions") or [])
        g, now, msg = self.gen, self.now, self.st["message"]
        old_failed = next((c for c in conds if c.get("type") == "Failed" and c.get("status") == "True"), None)
        if self.failure:
            fail_reason, fail_msg = self.failure
        elif old_failed:
            fail_reason, fail_msg = old_failed.get("reason", "Failed"), old_failed.get("message", "")
        else:
            fail_reason, fail_msg = "Failed", msg
        if phase == "Succeeded":
            conds = set_condition(conds, "Ready", "True", "Succeeded", "all phases succeeded", g, now)
            conds = set_condition(conds, "Progressing", "False", "Completed", "all phases succeeded", g, now)
        elif phase == "Failed":
            conds = set_condition(conds, "Ready", "False", fail_reason, fail_msg, g, now)
            conds = set_condition(conds, "Progressing", "False", fail_reason, fail_msg, g, now)
        elif phase == "Suspended":
            conds = set_condition(conds, "Ready", "False", "Suspended", msg, g, now)
            conds = set_condition(conds, "Progressing", "False", "Suspended", msg, g, now)
        else:
            conds = set_condition(conds, "Ready", "False", f"{phase}Running", msg, g, now)
            conds = set_condition(conds, "Progressing", "True", f"{phase}Running", msg, g, now)
        if phase == "Failed":
            conds = set_condition(conds, "Failed", "True", fail_reason, fail_msg, g, now)
        else:
            conds = set_condition(conds, "Failed", "False", "NoFailure", "", g, now)
        conds = set_condition(conds, "Suspended", "True" if phase == "Suspended" else "False",
                              "SuspendRequested" if phase == "Suspended" else "NotSuspended", "", g, now)
        if self.degraded:
            conds = set_condition(conds, "Degraded", "True", self.degraded.reason, self.degraded.message, g, now)
        else:
            conds = set_condition(conds, "Degraded", "False", "ChildStatusKnown", "", g, now)
        self.st["conditions"] = conds


def reconcile(job: LIMRJob, uid: str, generation: int | None, status: dict[str, Any] | None,
              observed: dict[str, dict[str, Any]], now: datetime,
              summary: dict[str, Any] | None = None,
              latest_metrics: tuple[str, dict[str, Any]] | None = None) -> Result:
    """Desired actions and the new status of one LIMRJob.

    `observed` maps child names to the RayJobs / Jobs the operator sees (owned by this job);
    `summary` is selection/summary.json once the handler could read it; `latest_metrics` is
    (step key, last metrics.jsonl row) of the running PPO step, when read.
    """
    return _Reconciler(job, uid, generation, status or {}, observed, summary, now, latest_metrics).run()


def status_patch(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Only the top-level status fields that changed (a merge patch of .status)."""
    old = old or {}
    return {k: v for k, v in new.items() if old.get(k) != v}


def invalid_spec_status(status: dict[str, Any] | None, errors: list[tuple[str, str]], generation: int | None,
                        now: datetime) -> dict[str, Any]:
    """Status for an object the CRD would have rejected: no children, a clear condition."""
    st = copy.deepcopy(status or {})
    msg = "; ".join(f"{p}: {m}" if p else m for p, m in errors)[:1000]
    t = rfc3339(now)
    conds = set_condition(list(st.get("conditions") or []), "Ready", "False", "InvalidSpec", msg, generation, t)
    conds = set_condition(conds, "Progressing", "False", "InvalidSpec", msg, generation, t)
    st.update(conditions=conds, observedGeneration=generation, message=f"invalid spec: {msg}")
    st.setdefault("phase", "Pending")
    return st
