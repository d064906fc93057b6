"""kopf handlers: thin adapters around the pure reconcile (`reconcile.py`) and builders.

Every handler (create, update, resume, the periodic timer) runs the same level-triggered
reconcile under a per-object lock: read the spec and the owned children (from kopf indexes fed by
watches, no extra API reads), compute actions and status, apply them, post Events, update metrics.
The timer makes it level-triggered: a missed watch event or an operator restart at any point is
repaired on the next tick, and deterministic child names make repeats harmless.

Settings come from the environment so `kopf run -m limr_operator.handlers` and `limr operator`
behave the same: LIMR_RECONCILE_INTERVAL (s, default 10), LIMR_PEERING_NAME (default
limr-operator), LIMR_OPERATOR_METRICS_PORT (serve /metrics when set), LIMR_SUMMARY_RETRY (s, 60),
LIMR_METRICS_POLL (s between reads of the running phase's metrics.jsonl tail, 60),
LIMR_DEADLINE_GRACE_SECONDS (s added to phaseDeadlineSeconds before the operator's own backstop
deletes a child that KubeRay's deadline did not stop, 120), LIMR_OPERATOR_AMBIENT_STORAGE_CREDENTIALS
(see storage.py).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

import kopf
from limr_api.constants import GROUP, PLURAL, VERSION
from limr_api.errors import JobError
from limr_api.loader import load_job

from . import builders, kube, metrics
from .reconcile import (
    DEADLINE_GRACE_SECONDS,
    Refusal,
    invalid_spec_status,
    metrics_step,
    needs_summary,
    reconcile,
    status_patch,
    vanished_steps,
)
from .storage import (
    Access,
    SummaryUnavailable,
    done_uri,
    exists,
    metrics_uri,
    read_last_jsonl,
    read_summary,
    summary_uri,
)

FINALIZER = "limr.io/finalizer"
PREFIX = "limr.io"


def env_seconds(name: str, default: float, low: float = 0.1, high: float = 86400.0) -> float:
    """A duration from the environment; anything not a finite number in [low, high] is refused."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        raise SystemExit(f"limr operator: {name}={text!r} must be a number of seconds in [{low:g}, {high:g}]")
    return value


INTERVAL = env_seconds("LIMR_RECONCILE_INTERVAL", 10.0)
SUMMARY_RETRY = env_seconds("LIMR_SUMMARY_RETRY", 60.0)
METRICS_POLL = env_seconds("LIMR_METRICS_POLL", 60.0)
DEADLINE_GRACE = env_seconds("LIMR_DEADLINE_GRACE_SECONDS", DEADLINE_GRACE_SECONDS, low=0.0)
MAX_PASSES = 5  # reconcile passes per tick while creates are refused (each refused attempt is failed)
CHILD_FILTER = {"app.kubernetes.io/managed-by": builders.MANAGED_BY}

log = logging.getLogger("limr_operator")
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration")
    settings.peering.name = os.environ.get("LIMR_PEERING_NAME", "limr-operator")
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.execution.max_workers = int(os.environ.get("LIMR_WORKERS", "8"))
    # Off with exact namespace names (`limr operator -n NAME`): kopf then watches those namespaces
    # without listing namespaces (which the chart does not grant in that mode) and serves the
    # resources it finds at start-up (KubeRay's CRDs must be installed before the operator starts).
    settings.scanning.disabled = os.environ.get("LIMR_OPERATOR_SCANNING") == "off"
    port = os.environ.get("LIMR_OPERATOR_METRICS_PORT")
    if port:
        metrics.serve(int(port))


@kopf.on.probe(id="jobs")
async def jobs_probe(**_: Any) -> int:
    """Liveness detail: how many LIMRJobs this operator tracks."""
    return metrics.tracked_jobs()


def _owner_key(body: Any, namespace: str | None) -> tuple[str | None, str] | None:
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == "LIMRJob" and ref.get("controller"):
            return (namespace, ref.get("uid"))
    return None


def _snapshot(body: Any) -> dict[str, Any]:
    meta = body.get("metadata", {})
    return {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
            "metadata": {"name": meta.get("name"), "uid": meta.get("uid"),
                         "creationTimestamp": meta.get("creationTimestamp")},
            "spec": {"suspend": (body.get("spec") or {}).get("suspend")},
            "status": dict(body.get("status") or {})}


# Indexers are async so they run on the event loop, never queued behind reconciles in the thread pool.
@kopf.index("ray.io", "v1", "rayjobs", labels=CHILD_FILTER)
async def limr_rayjobs(body: Any, namespace: str, **_: Any):
    key = _owner_key(body, namespace)
    return {key: _snapshot(body)} if key else None


@kopf.index("batch", "v1", "jobs", labels=CHILD_FILTER)
async def limr_jobs(body: Any, namespace: str, **_: Any):
    key = _owner_key(body, namespace)
    return {key: _snapshot(body)} if key else None


def _lock(uid: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(uid, threading.Lock())


def _access(job: Any, namespace: str) -> Access:
    """The job's own storage credentials (its Secret), or none: never the operator's identity."""
    st = job.spec.storage
    if not st.secretRef:
        return Access(st.endpoint, st.region)
    keys = [st.secretRef.accessKeyIdKey, st.secretRef.secretAccessKeyKey]
    creds = kube.read_secret_keys(namespace, st.secretRef.name, keys)
    return Access(st.endpoint, st.region, creds.get(keys[0]), creds.get(keys[1]))


def _read_storage(what: str, reader: Any, uri: str, job: Any, namespace: str, memo: Any, logger: Any,
                  every: float) -> Any:
    """Read one stored object with the job's own credentials (anonymous without a Secret), at most
    once per `every` seconds (every time with `every` 0)."""
    now = time.monotonic()
    if every and now - memo.get(f"{what}_tried", -1e9) < every:
        return None
    memo[f"{what}_tried"] = now
    try:
        return reader(uri, _access(job, namespace))
    except SummaryUnavailable as exc:
        logger.debug(f"{what} not readable yet: {exc}")
    except Exception as exc:  # noqa: BLE001  (Secret missing or unreadable: status still progresses)
        logger.warning(f"{what}: cannot read the storage credentials Secret: {type(exc).__name__}")
    return None


def _update_metrics(namespace: str, name: str, status: dict[str, Any], transitions, retries, now: datetime) -> None:
    metrics.set_job_phase(namespace, name, status.get("phase", "Pending"))
    for old, new in transitions:
        metrics.TRANSITIONS.labels(from_phase=old, to_phase=new).inc()
    for key in retries:
        metrics.RETRIES.labels(namespace=namespace, limr_job=name, phase=key).inc()
    samples = status.get("samples") or {}
    if isinstance(samples.get("selected"), int):
        metrics.SAMPLES_SELECTED.labels(namespace=namespace, limr_job=name).set(samples["selected"])
    if isinstance(samples.get("total"), int):
        metrics.SAMPLES_TOTAL.labels(namespace=namespace, limr_job=name).set(samples["total"])
    for key, ps in (status.get("phases") or {}).items():
        start, end = ps.get("startTime"), ps.get("completionTime")
        if not start:
            continue
        t0 = datetime.fromisoformat(start)
        t1 = datetime.fromisoformat(end) if end else now
        metrics.PHASE_DURATION.labels(namespace=namespace, limr_job=name, phase=key).set((t1 - t0).total_seconds())


def run_reconcile(body: Any, uid: str, name: str, namespace: str, memo: Any, logger: Any,
                  limr_rayjobs: Any, limr_jobs: Any) -> None:
    """The one reconcile path of every handler."""
    with _lock(uid), metrics.RECONCILE_DURATION.time():
        try:
            _reconcile_locked(body, uid, name, namespace, memo, logger, limr_rayjobs, limr_jobs)
        except Exception:
            metrics.RECONCILE_ERRORS.inc()
            raise


def _reconcile_locked(body, uid, name, namespace, memo, logger, limr_rayjobs, limr_jobs) -> None:
    now = datetime.now(UTC)
    # Status this process wrote last is authoritative over a body the watch has not refreshed yet.
    status = memo.get("status") or dict(body.get("status") or {})
    generation = body.get("metadata", {}).get("generation")
    raw = {k: body.get(k) for k in ("apiVersion", "kind", "spec")}
    raw["metadata"] = {"name": name, "namespace": namespace}
    try:
        job = load_job(raw)
    except JobError as err:
        new = invalid_spec_status(status, err.errors, generation, now)
        if new != status:
            kopf.warn(body, reason="InvalidSpec", message=new["message"][:1024])
            if kube.patch_status(namespace, name, status_patch(status, new)):
                memo["status"] = new
        return
    observed = {}
    for index in (limr_rayjobs, limr_jobs):
        for snap in index.get((namespace, uid), []):
            observed[snap["metadata"]["name"]] = snap
    summary = None
    if needs_summary(status):
        summary = _read_storage("summary", read_summary, summary_uri(job.spec, name), job, namespace, memo,
                                logger, SUMMARY_RETRY)
    latest = None
    if (step_key := metrics_step(status)) is not None:
        row = _read_storage("metrics", read_last_jsonl, metrics_uri(job.spec, name, step_key), job, namespace,
                            memo, logger, METRICS_POLL)
        latest = (step_key, row) if row else None
    # A child seen before and gone now (a TTL deleted it): its step's _DONE.json decides the attempt.
    done = {key: _read_storage(f"done-{key}", exists, done_uri(job.spec, name, key), job, namespace, memo,
                               logger, 0) for key in vanished_steps(job, status, observed)}
    # Creates the API server refuses are answered by another pass from the status the last pass left
    # (a 400/422 fails that attempt and starts the next one; a 403 is a condition, tried again), until
    # the refusals a pass assumed are the ones it got, at most MAX_PASSES. The 403s carry over to the
    # next tick, so a standing refusal neither flaps the condition nor repeats its Warning.
    current, assumed = status, memo.get("refused", {})
    events, transitions, retries = [], [], []
    for _ in range(MAX_PASSES):
        result = reconcile(job, uid, generation, current, observed, now, summary, latest, assumed, done,
                           DEADLINE_GRACE)
        events += result.events
        transitions += result.transitions
        retries += result.retries
        got = _apply_all(result.actions, logger)
        current, summary = result.status, None
        settled = _kinds(got) == _kinds(assumed)
        assumed = got
        if settled:
            break
    memo["refused"] = assumed
    patch = status_patch(status, current)
    if patch:
        if not kube.patch_status(namespace, name, patch):
            return
        memo["status"] = current
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message[:1024])
    _update_metrics(namespace, name, current, transitions, retries, now)


def _kinds(refused: dict[str, Refusal]) -> dict[str, tuple[int, str]]:
    return {name: (r.code, r.kind) for name, r in refused.items()}


def _apply_all(actions: list[Any], logger: Any) -> dict[str, Refusal]:
    """Apply the actions in order; the refusals of creates by child name (an attempt's later objects
    are not created once one of them is refused)."""
    refused: dict[str, Refusal] = {}
    for action in actions:
        if action.verb == "create" and action.name in refused:
            continue
        outcome = kube.apply(action)
        if isinstance(outcome, Refusal):
            refused[action.name] = outcome
            logger.warning(f"create {action.kind} {action.name} refused ({outcome.code}): {outcome.message[:300]}")
        else:
            logger.debug(f"{action.verb} {action.kind} {action.name}: {outcome}")
    return refused


_KW = {"group": GROUP, "version": VERSION, "plural": PLURAL}


@kopf.on.create(**_KW)
@kopf.on.resume(**_KW)
@kopf.on.update(**_KW, field="spec")
def on_change(body, uid, name, namespace, memo, logger, limr_rayjobs, limr_jobs, **_: Any) -> None:
    run_reconcile(body, uid, name, namespace, memo, logger, limr_rayjobs, limr_jobs)


@kopf.timer(**_KW, interval=INTERVAL, initial_delay=INTERVAL)
def on_timer(body, uid, name, namespace, memo, logger, limr_rayjobs, limr_jobs, **_: Any) -> None:
    run_reconcile(body, uid, name, namespace, memo, logger, limr_rayjobs, limr_jobs)


@kopf.on.delete(**_KW)
def on_delete(body, uid, name, namespace, memo, **_: Any) -> None:
    """Children go with their owner (ownerReferences, garbage collection); artifacts stay in storage."""
    metrics.forget_job(namespace, name)
    with _locks_guard:
        _locks.pop(uid, None)
    uri = (body.get("spec") or {}).get("storage", {}).get("uri", "?")
    kopf.info(body, reason="Deleted", message=f"children are garbage-collected; artifacts kept under {uri}/{name}/")
