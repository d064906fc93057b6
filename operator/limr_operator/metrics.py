"""Prometheus metrics of the operator (names fixed by the team contract; the dashboard uses them)."""

from __future__ import annotations

import threading
from collections import Counter as _Tally

from limr_api.plan import PHASES
from prometheus_client import Counter, Gauge, Histogram, start_http_server

JOBS = Gauge("limr_operator_jobs", "LIMRJobs by phase", ["phase"])
TRANSITIONS = Counter("limr_operator_phase_transitions_total", "Phase transitions", ["from_phase", "to_phase"])
RECONCILE_DURATION = Histogram("limr_operator_reconcile_duration_seconds", "Duration of one reconcile",
                               buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
RECONCILE_ERRORS = Counter("limr_operator_reconcile_errors_total", "Reconciles that raised or hit API errors")
RETRIES = Counter("limr_operator_rayjob_retries_total", "Failed phase attempts retried",
                  ["namespace", "limr_job", "phase"])
SAMPLES_SELECTED = Gauge("limr_operator_samples_selected", "Samples selected by the Selection", ["namespace", "limr_job"])
SAMPLES_TOTAL = Gauge("limr_operator_samples_total", "Samples scored by the Selection", ["namespace", "limr_job"])
PHASE_DURATION = Gauge("limr_operator_phase_duration_seconds", "Seconds a phase ran (so far)",
                       ["namespace", "limr_job", "phase"])

_lock = threading.Lock()
_phase_of: dict[tuple[str, str], str] = {}


def set_job_phase(namespace: str, name: str, phase: str) -> None:
    with _lock:
        _phase_of[(namespace, name)] = phase
        _publish()


def tracked_jobs() -> int:
    with _lock:
        return len(_phase_of)


def forget_job(namespace: str, name: str) -> None:
    with _lock:
        _phase_of.pop((namespace, name), None)
        _publish()
    for gauge in (SAMPLES_SELECTED, SAMPLES_TOTAL):
        try:
            gauge.remove(namespace, name)
        except KeyError:
            pass


def _publish() -> None:
    tally = _Tally(_phase_of.values())
    for phase in PHASES:
        JOBS.labels(phase=phase).set(tally.get(phase, 0))


_served: set[int] = set()


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Serve /metrics on its own port (a daemon thread); once per process and port."""
    if port in _served:
        return
    start_http_server(port, addr=addr)
    _served.add(port)
