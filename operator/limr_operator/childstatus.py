"""Classify an observed child (KubeRay RayJob or batch/v1 Job) into running / succeeded / failed.

Unknown status values (a newer KubeRay, a typo'd manual patch) are reported as `unknown` with the
values seen, so reconcile can raise a clear condition instead of guessing or crashing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from limr_api.status import clip

DETAIL_MAX = 512  # of a child's own message (a RayJob's status.message can be a whole traceback)

# KubeRay v1 JobDeploymentStatus and Ray JobStatus values.
DEPLOYMENT_STATUSES = {"", "New", "Initializing", "Running", "Complete", "Failed", "Suspending", "Suspended",
                       "Retrying", "Waiting", "ValidationFailed"}
JOB_STATUSES = {"", "PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"}


@dataclass(frozen=True)
class Outcome:
    state: Literal["running", "succeeded", "failed", "unknown"]
    reason: str = ""
    message: str = ""


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def classify_rayjob(obj: dict[str, Any]) -> Outcome:
    name = obj.get("metadata", {}).get("name", "?")
    status = obj.get("status") or {}
    ds, js = status.get("jobDeploymentStatus", ""), status.get("jobStatus", "")
    if _str(ds) is None or _str(js) is None or ds not in DEPLOYMENT_STATUSES or js not in JOB_STATUSES:
        return Outcome("unknown", "UnknownRayJobStatus",
                       f"RayJob {name} reports jobDeploymentStatus={ds!r}, jobStatus={js!r}, which this "
                       "operator does not know; waiting for a known status")
    detail = status.get("message") or ""
    detail = clip(detail, DETAIL_MAX) if isinstance(detail, str) else repr(detail)[:DETAIL_MAX]
    if ds in ("Suspending", "Suspended"):  # KubeRay stops the Ray job when suspending: not a failure
        return Outcome("running", "RayJobSuspended", f"RayJob {name}: {ds}")
    if ds == "Complete" and js == "SUCCEEDED":
        return Outcome("succeeded", "RayJobSucceeded", f"RayJob {name} succeeded")
    if js in ("FAILED", "STOPPED") or ds in ("Failed", "ValidationFailed") or ds == "Complete":
        given = status.get("reason") if isinstance(status.get("reason"), str) and status.get("reason") else None
        reason = given or ("RayJob" + (js.capitalize() if js in ("FAILED", "STOPPED") else ds or "Failed"))
        msg = f"RayJob {name}: jobDeploymentStatus={ds or '-'}, jobStatus={js or '-'}"
        msg += f", reason={given[:64]}" if given else ""
        return Outcome("failed", reason, msg + (f": {detail}" if detail else ""))
    return Outcome("running", "RayJobRunning", f"RayJob {name}: {ds or 'New'}/{js or 'PENDING'}")


def classify_job(obj: dict[str, Any]) -> Outcome:
    name = obj.get("metadata", {}).get("name", "?")
    status = obj.get("status") or {}
    for cond in status.get("conditions") or []:
        if not isinstance(cond, dict) or cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return Outcome("succeeded", "JobSucceeded", f"Job {name} succeeded")
        if cond.get("type") == "Failed":
            reason = cond.get("reason") or "JobFailed"
            detail = cond.get("message") or reason
            detail = clip(detail, DETAIL_MAX) if isinstance(detail, str) else repr(detail)[:DETAIL_MAX]
            return Outcome("failed", reason, f"Job {name} failed: {detail}")
    failed = status.get("failed")
    if isinstance(failed, int) and failed > 0:
        return Outcome("failed", "JobFailed", f"Job {name}: {failed} pod(s) failed")
    if failed is not None and not isinstance(failed, int):
        return Outcome("unknown", "UnknownJobStatus", f"Job {name} reports failed={failed!r}; waiting")
    return Outcome("running", "JobRunning", f"Job {name} running")


def classify(obj: dict[str, Any]) -> Outcome:
    return classify_rayjob(obj) if obj.get("kind") == "RayJob" else classify_job(obj)


def is_suspended(obj: dict[str, Any]) -> bool:
    return bool((obj.get("spec") or {}).get("suspend"))
