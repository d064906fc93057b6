"""Pure reconcile: (job, status, observed children, selection summary, now) -> actions + status.

Level-triggered and idempotent: the same inputs always give the same actions, and every action
is safe to repeat. A phase attempt's child name carries the attempt number, so re-creating an
attempt that exists answers 409 (already there) and can never start a second RayJob for it.
Retries are new attempts (new names) that the trainer resumes from the checkpoints in storage.

What the real controllers do to children, and how reconcile takes it:
- a child that was seen (its uid is in status) and is gone was deleted by a TTL (the Selection
  Job's ttlSecondsAfterFinished, or KubeRay deleting a finished RayJob) or by someone: it is never
  created again; the step's `_DONE.json` in storage decides whether the attempt succeeded;
- a create the API server refused (`refused`, from applying the last actions): 400/422 (invalid,
  e.g. an admission policy) and a 409 for a name another owner holds fail the attempt; 403 (RBAC,
  quota, a webhook) is a Degraded condition and one Warning, and the create is tried again;
- the deadline backstop counts from the child's `status.startTime` (KubeRay and the job
  controller reset it on every resume), so time queued in Kueue or suspended does not count;
- with a Kueue queue, spec.suspend deactivates the child's Workload (`spec.active: false`)
  instead of editing the child's spec.suspend, which Kueue owns while it admits the Workload.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from limr_api.job import LIMRJob
from limr_api.plan import STAGES, TERMINAL_PHASES, Step, enabled_stages, parse_step, stage_steps
from limr_api.status import Condition, LatestMetrics, LIMRJobStatus, PhaseStatus, SampleCounts, clip

from . import builders
from .childstatus import Outcome, classify, is_suspended
from .conditions import set_condition
from .naming import child_name
from .storage import artifacts, done_uri, log_uri

TERMINAL = TERMINAL_PHASES
DEADLINE_GRACE_SECONDS = 120  # after KubeRay's own activeDeadlineSeconds should have fired


@dataclass(frozen=True)
class Action:
    """One API call: create an object, delete a child, patch a child's spec.suspend, or set
    `spec.active` of the Kueue Workloads a child owns ("activate")."""

    verb: str  # "create" | "delete" | "suspend" | "activate"
    api_version: str
    kind: str
    name: str
    namespace: str | None
    body: dict[str, Any] | None = None
    suspend: bool | None = None
    active: bool | None = None


@dataclass(frozen=True)
class Refusal:
    """The API server refused to create one of an attempt's objects (`kind` named `name`)."""

    code: int  # 400, 403, 409 (the name is taken by an object this job does not own), 422, ...
    kind: str
    message: str
    deleting: bool = False  # 409: that object is being deleted (its name frees up soon)


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Result:
    actions: list[Action] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)  # the new LIMRJobStatus, in its JSON form
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


def read_status(status: dict[str, Any] | LIMRJobStatus | None) -> LIMRJobStatus:
    """The stored status as the typed model (unknown fields ignored; unreadable parts start over)."""
    if isinstance(status, LIMRJobStatus):
        return status.model_copy(deep=True)
    try:
        return LIMRJobStatus.model_validate(status or {})
    except ValueError:
        return LIMRJobStatus()


def dump_status(status: LIMRJobStatus) -> dict[str, Any]:
    """The status as JSON, without unset fields and empty sections."""
    return {k: v for k, v in status.model_dump(mode="json", exclude_none=True).items() if v not in ({}, [])}


def metrics_step(status: dict[str, Any] | LIMRJobStatus) -> str | None:
    """The running PPO step (`baseline`, `retrain`, `retrain-<arm>`) whose metrics.jsonl to follow."""
    for key, ps in read_status(status).phases.items():
        try:
            trains = parse_step(key).trains
        except ValueError:
            continue
        if ps.state == "Running" and trains:
            return key
    return None


def needs_summary(status: dict[str, Any] | LIMRJobStatus) -> bool:
    """Whether the handler should read selection/summary.json before the next reconcile."""
    st = read_status(status)
    sel = st.phases.get("selection")
    return sel is not None and sel.state == "Succeeded" and st.samples.total is None


def vanished_steps(job: LIMRJob, status: dict[str, Any] | LIMRJobStatus,
                   observed: dict[str, dict[str, Any]]) -> list[str]:
    """Running steps whose current child was seen (uid recorded) and is not observed any more: the
    handler reads their `_DONE.json` before reconciling (`done`)."""
    out = []
    for key, ps in read_status(status).phases.items():
        if ps.state != "Running" or not ps.childUid or ps.attempts < 1:
            continue
        try:
            name = child_name(job.metadata.name, parse_step(key), ps.attempts)
        except ValueError:
            continue
        if name not in observed:
            out.append(key)
    return out


class _Reconciler:
    def __init__(self, job: LIMRJob, uid: str, generation: int | None, status: dict[str, Any],
                 observed: dict[str, dict[str, Any]], summary: dict[str, Any] | None, now: datetime,
                 latest: tuple[str, dict[str, Any]] | None = None, refused: dict[str, Refusal] | None = None,
                 done: dict[str, bool | None] | None = None, deadline_grace: float = DEADLINE_GRACE_SECONDS):
        self.job, self.spec, self.uid, self.gen = job, job.spec, uid, generation
        self.name, self.ns = job.metadata.name, job.metadata.namespace
        self.old = read_status(status)
        self.st = self.old.model_copy(deep=True)
        self.observed, self.summary, self.now = observed, summary, rfc3339(now)
        self.latest = latest
        self.refused, self.done, self.grace = refused or {}, done or {}, deadline_grace
        self.now_dt = now
        self.res = Result()
        self.failure: tuple[str, str] | None = None
        self.degraded: Outcome | None = None

    # ------------------------------------------------------------------ helpers
    def phase_status(self, key: str) -> PhaseStatus:
        return self.st.phases.setdefault(key, PhaseStatus())

    def event(self, type_: str, reason: str, message: str) -> None:
        self.res.events.append(Event(type_, reason, message))

    def create_attempt(self, step: Step, attempt: int) -> None:
        for obj in builders.children(self.job, self.uid, step, attempt):
            self.res.actions.append(Action("create", obj["apiVersion"], obj["kind"], obj["metadata"]["name"],
                                           self.ns, body=obj))

    # ------------------------------------------------------------------ steps
    def start(self, step: Step, ps: PhaseStatus, attempt: int, why: str) -> None:
        ps.state, ps.attempts, ps.rayJobName = "Running", attempt, child_name(self.name, step, attempt)
        ps.childUid, ps.log = None, log_uri(self.spec, self.name, step.key, attempt)
        ps.startTime = ps.startTime or self.now
        if self.spec.suspend:
            return  # the attempt is recorded; its child is created on resume
        self.create_attempt(step, attempt)
        kind = "RayJob" if step.gpu else "Job"
        self.event("Normal", "AttemptStarted", f"{step.key}: attempt {attempt}: {kind} {ps.rayJobName}{why}")

    def fail_attempt(self, step: Step, ps: PhaseStatus, outcome: Outcome) -> None:
        attempt = ps.attempts
        ps.message = f"attempt {attempt}: {outcome.message}"
        self.event("Warning", outcome.reason or "AttemptFailed", f"{step.key}: attempt {attempt} failed: {outcome.message}")
        if attempt <= self.spec.backoffLimit:
            self.res.retries.append(step.key)
            self.start(step, ps, attempt + 1, f" (retry {attempt} of {self.spec.backoffLimit})")
            return
        ps.state, ps.completionTime = "Failed", self.now
        message = (f"{step.key} failed {attempt} time(s) (backoffLimit {self.spec.backoffLimit}); "
                   f"last: {outcome.message}")
        self.failure = ("BackoffLimitExceeded", message)

    def step(self, step: Step) -> str:
        """Advance one step; returns its state."""
        ps = self.phase_status(step.key)
        if ps.state in ("Succeeded", "Failed", "Skipped"):
            return ps.state
        if ps.attempts < 1 or ps.state == "Pending":
            self.start(step, ps, max(1, ps.attempts), "")
            return ps.state
        attempt = ps.attempts
        name = child_name(self.name, step, attempt)
        ps.rayJobName, ps.log = name, log_uri(self.spec, self.name, step.key, attempt)
        obj = self.observed.get(name)
        if obj is None:
            return self.missing_child(step, ps, name)
        ps.childUid = (obj.get("metadata") or {}).get("uid") or ps.childUid
        outcome = classify(obj)
        if outcome.state == "running" and self.deadline_exceeded(obj):
            self.res.actions.append(Action("delete", obj.get("apiVersion", ""), obj.get("kind", ""), name, self.ns))
            outcome = Outcome("failed", "DeadlineExceeded",
                              f"{obj.get('kind')} {name} ran past phaseDeadlineSeconds={self.spec.phaseDeadlineSeconds} "
                              "(counted from its status.startTime)")
        if outcome.state == "succeeded":
            self.succeed(step, ps, f"{step.key}: attempt {attempt} succeeded ({obj.get('kind')} {name})")
        elif outcome.state == "failed":
            self.fail_attempt(step, ps, outcome)
        elif outcome.state == "unknown":
            self.degraded = outcome
        else:
            self.suspend_child(obj, name)
        return ps.state

    def succeed(self, step: Step, ps: PhaseStatus, message: str) -> None:
        ps.state, ps.completionTime, ps.message = "Succeeded", self.now, None
        self.st.artifacts.update(artifacts(self.spec, self.name, step.key))
        self.event("Normal", "PhaseSucceeded", message)

    def missing_child(self, step: Step, ps: PhaseStatus, name: str) -> str:
        """The current attempt's child is not observed: not created yet, refused, or gone."""
        kind = "RayJob" if step.gpu else "Job"
        if ps.childUid:  # seen before and gone now: never create it again under this name
            marker = done_uri(self.spec, self.name, step.key)
            done = self.done.get(step.key)
            if done:
                self.succeed(step, ps, f"{step.key}: attempt {ps.attempts} succeeded ({kind} {name} is gone, "
                             f"deleted after it finished; {marker} marks the step done)")
            else:
                why = "is not in storage" if done is False else "cannot be read (check the storage secretRef)"
                self.fail_attempt(step, ps, Outcome(
                    "failed", "ChildVanished",
                    f"{kind} {name} was deleted before its outcome was seen, and {marker} {why}"))
            return ps.state
        refusal = self.refused.get(name)
        if refusal is not None:
            self.refused_create(step, ps, name, refusal)
            return ps.state
        if not self.spec.suspend:  # not created yet, or not seen yet (a repeated create answers 409)
            self.create_attempt(step, ps.attempts)
        return ps.state

    def refused_create(self, step: Step, ps: PhaseStatus, name: str, refusal: Refusal) -> None:
        what = f"creating {refusal.kind} {name} was refused ({refusal.code}): {refusal.message}"
        if refusal.code in (400, 422) or (refusal.code == 409 and not refusal.deleting):
            # It would be refused the same way again: a failed attempt (the next has a new name).
            reason = "NameTaken" if refusal.code == 409 else "CreateRefused"
            self.fail_attempt(step, ps, Outcome("failed", reason, what))
            return
        # 403 (RBAC, a quota, an admission webhook) or a name an object being deleted still holds:
        # it may pass later; retried on every tick, shown as a condition and a Warning.
        reason = "NameTaken" if refusal.code == 409 else "CreateForbidden"
        self.degraded = Outcome("unknown", reason, f"{step.key}: {what}")
        old = next((c for c in self.old.conditions if c.type == "Degraded"), None)
        if old is None or old.status != "True" or old.message != clip(self.degraded.message):
            self.event("Warning", reason, self.degraded.message)  # once per distinct refusal
        if not self.spec.suspend:
            self.create_attempt(step, ps.attempts)  # and try again

    def deadline_exceeded(self, obj: dict[str, Any]) -> bool:
        """The backstop of KubeRay's (and the job controller's) own activeDeadlineSeconds, counted
        like theirs from the child's status.startTime, which they reset on every resume."""
        limit = self.spec.phaseDeadlineSeconds
        started = _parse_time((obj.get("status") or {}).get("startTime"))
        if not limit or started is None or is_suspended(obj):
            return False
        return (self.now_dt - started).total_seconds() > limit + self.grace

    def suspend_child(self, obj: dict[str, Any], name: str) -> None:
        """spec.suspend true suspends the running child; false resumes it.

        With a Kueue queue, Kueue owns the child's spec.suspend (it unsuspends whatever its admitted
        Workload covers): the operator deactivates the Workload instead (`spec.active: false`:
        Kueue evicts it and suspends the child itself) and activates it again on resume.
        """
        want = self.spec.suspend
        api, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        if self.spec.cluster.queue:
            if want or self.old.phase == "Suspended":
                self.res.actions.append(Action("activate", api, kind, name, self.ns, active=not want,
                                               body={"uid": (obj.get("metadata") or {}).get("uid")}))
            return
        if want and not is_suspended(obj):
            self.res.actions.append(Action("suspend", obj.get("apiVersion", ""), obj.get("kind", ""), name,
                                           self.ns, suspend=True))
        elif not want and is_suspended(obj):
            self.res.actions.append(Action("suspend", obj.get("apiVersion", ""), obj.get("kind", ""), name,
                                           self.ns, suspend=False))

    # ------------------------------------------------------------------ whole job
    def run(self) -> Result:
        old_phase = self.old.phase
        if old_phase in TERMINAL:
            return self.finish(old_phase, reconcile_children=False)
        self.st.startTime = self.st.startTime or self.now
        for stage in STAGES:
            if stage not in enabled_stages(self.spec):
                for step in stage_steps(self.spec, stage):
                    ps = self.phase_status(step.key)
                    ps.state, ps.attempts = "Skipped", 0
        if not self.spec.baseline.enabled and self.spec.baseline.recordsUri:
            self.st.artifacts["baselineRecords"] = self.spec.baseline.recordsUri
        self.apply_summary()
        self.apply_metrics()
        current = None
        for stage in enabled_stages(self.spec):
            states = [self.step(step) for step in stage_steps(self.spec, stage)]
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
        for step in stage_steps(self.spec, stage):
            ps = self.phase_status(step.key)
            if ps.state != "Running":
                continue
            name = child_name(self.name, step, ps.attempts)
            obj = self.observed.get(name)
            if obj is not None:
                self.res.actions.append(Action("delete", obj.get("apiVersion", ""), obj.get("kind", ""), name, self.ns))
            ps.state, ps.completionTime, ps.message = "Failed", self.now, "stopped: another step of the job failed"

    def apply_summary(self) -> None:
        s = self.summary
        if not s or not needs_summary(self.st):
            return
        counts = {k: s.get(k) for k in ("total", "selected", "dropped")}
        counts = {k: v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool) and v >= 0}
        if not counts:
            return
        self.st.samples = SampleCounts(**counts)
        if "selected" in counts and "total" in counts:
            self.st.selectedOfTotal = f"{counts['selected']}/{counts['total']}"
        self.event("Normal", "SelectionSummary",
                   f"selected {counts.get('selected')} of {counts.get('total')} samples "
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
        self.st.metrics = LatestMetrics(**ok)

    def finish(self, phase: str, reconcile_children: bool = True) -> Result:
        old_phase = self.old.phase
        st = self.st
        st.phase = phase
        st.observedGeneration = self.gen
        if phase in TERMINAL:
            st.completionTime = st.completionTime or self.now
        if phase != old_phase:
            self.res.transitions.append((old_phase, phase))
            level = "Warning" if phase == "Failed" else "Normal"
            msg = f"{old_phase} -> {phase}" + (f": {self.failure[1]}" if self.failure else "")
            self.event(level, "PhaseChanged" if phase != "Failed" else self.failure[0] if self.failure else "Failed", msg)
        st.message = self.summary_message(phase)
        self.conditions(phase)
        self.res.status = dump_status(st)
        return self.res

    def summary_message(self, phase: str) -> str:
        if self.failure:
            return self.failure[1]
        if phase in TERMINAL:
            return self.old.message if phase == "Failed" and self.old.message else f"job {phase.lower()}"
        if phase == "Suspended":
            return "suspended (spec.suspend is true)"
        running = [f"{k} attempt {v.attempts} ({v.rayJobName})" for k, v in self.st.phases.items()
                   if v.state == "Running"]
        return f"{phase}: " + ", ".join(running) if running else phase

    def conditions(self, phase: str) -> None:
        conds = [c.model_dump(mode="json") for c in self.st.conditions]
        g, now, msg = self.gen, self.now, self.st.message or ""
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
        self.st.conditions = [Condition.model_validate(c) for c in conds]


def reconcile(job: LIMRJob, uid: str, generation: int | None, status: dict[str, Any] | None,
              observed: dict[str, dict[str, Any]], now: datetime,
              summary: dict[str, Any] | None = None,
              latest_metrics: tuple[str, dict[str, Any]] | None = None,
              refused: dict[str, Refusal] | None = None,
              done: dict[str, bool | None] | None = None,
              deadline_grace: float = DEADLINE_GRACE_SECONDS) -> Result:
    """Desired actions and the new status of one LIMRJob.

    `observed` maps child names to the RayJobs / Jobs the operator sees (owned by this job);
    `summary` is selection/summary.json once the handler could read it; `latest_metrics` is
    (step key, last metrics.jsonl row) of the running PPO step, when read; `refused` maps child
    names to the API server's refusal of their create (from applying the previous actions);
    `done` maps the step keys of `vanished_steps` to whether their `_DONE.json` exists (None:
    unreadable); `deadline_grace` is added to phaseDeadlineSeconds for the backstop.
    """
    return _Reconciler(job, uid, generation, status or {}, observed, summary, now, latest_metrics,
                       refused, done, deadline_grace).run()


def status_patch(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch of .status that turns `old` into `new`: changed fields, nested mappings
    merged, and fields `new` no longer has sent as null (so the server removes them)."""
    return _merge_patch(old or {}, new)


def _merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        out[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            sub = _merge_patch(before, value)
            if sub:
                out[key] = sub
        elif before != value:
            out[key] = value
    return out


def invalid_spec_status(status: dict[str, Any] | None, errors: list[tuple[str, str]], generation: int | None,
                        now: datetime) -> dict[str, Any]:
    """Status for an object the CRD would have rejected: no children, a clear condition."""
    st = read_status(status)
    msg = "; ".join(f"{p}: {m}" if p else m for p, m in errors)[:1000]
    t = rfc3339(now)
    conds = [c.model_dump(mode="json") for c in st.conditions]
    conds = set_condition(conds, "Ready", "False", "InvalidSpec", msg, generation, t)
    conds = set_condition(conds, "Progressing", "False", "InvalidSpec", msg, generation, t)
    st.conditions = [Condition.model_validate(c) for c in conds]
    st.observedGeneration, st.message = generation, f"invalid spec: {msg}"
    return dump_status(st)
