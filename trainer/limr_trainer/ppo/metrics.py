"""Trainer step metrics: `metrics.jsonl` in storage and Prometheus gauges (names in TEAM contract).

The jsonl file is rewritten whole at every step from the rows kept in memory, so it is always
complete and, after a resume, holds exactly the steps up to the checkpoint plus the replayed ones.
Prometheus: a `prometheus_client` HTTP server in the driver when LIMR_METRICS_PORT is set.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from limr_api import layout

from limr_trainer.storage import ObjectNotFound, Storage

GAUGES = {
    "reward_mean": "limr_trainer_reward_mean",
    "accuracy": "limr_trainer_accuracy",
    "format_error_rate": "limr_trainer_format_error_rate",
    "kl": "limr_trainer_kl",
    "entropy": "limr_trainer_entropy",
    "response_length": "limr_trainer_response_length",
    "tokens_per_second": "limr_trainer_tokens_per_second",
    "step": "limr_trainer_step",
}
STAGES = ("generate", "reward", "forward", "train", "sync", "total")


class MetricsLog:
    """metrics.jsonl of one phase: one row per global step, in step order."""

    def __init__(self, storage: Storage, job: str, phase: str, resume_step: int | None = None):
        self.storage, self.key = storage, layout.metrics_key(job, phase)
        self.rows: list[dict[str, Any]] = []
        if resume_step is not None:
            try:
                self.rows = [r for r in storage.iter_jsonl(self.key) if r["step"] <= resume_step]
            except ObjectNotFound:
                self.rows = []

    def append(self, row: dict[str, Any]) -> None:
        self.rows = [r for r in self.rows if r["step"] < row["step"]] + [row]
        self.storage.put_jsonl(self.key, self.rows)


class Prometheus:
    """The trainer's gauges for one (job, phase); a no-op registry-wise when already created."""

    _metrics: ClassVar[dict[str, Any]] = {}
    _server_started: ClassVar[bool] = False

    def __init__(self, job: str, phase: str, port: int | None = None):
        from prometheus_client import Counter, Gauge, start_http_server

        cls = type(self)
        if not cls._metrics:
            for key, name in GAUGES.items():
                cls._metrics[key] = Gauge(name, f"trainer {key.replace('_', ' ')}", ["limr_job", "phase"])
            cls._metrics["stage"] = Gauge("limr_trainer_step_duration_seconds", "seconds per PPO stage",
                                          ["limr_job", "phase", "stage"])
            cls._metrics["steps"] = Counter("limr_trainer_steps", "PPO steps done", ["limr_job", "phase"])
        port = port if port is not None else int(os.environ["LIMR_METRICS_PORT"]) if os.environ.get("LIMR_METRICS_PORT") else None
        if port is not None and not cls._server_started:
            start_http_server(port)
            cls._server_started = True
        self.labels = {"limr_job": job, "phase": phase}

    def observe(self, row: dict[str, Any]) -> None:
        m = type(self)._metrics
        for key in GAUGES:
            if row.get(key) is not None:
                m[key].labels(**self.labels).set(row[key])
        for stage in STAGES:
            if (value := row.get("seconds", {}).get(stage)) is not None:
                m["stage"].labels(**self.labels, stage=stage).set(value)
        m["steps"].labels(**self.labels).inc()
