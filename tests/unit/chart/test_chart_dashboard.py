"""The Grafana dashboard: one source, well-formed, covers the required views, and every metric its
queries read is one the operator or the trainer really exports.

The exported names come from the metric objects of `limr_operator.metrics` and
`limr_trainer.metrics` rendered to the exposition format (what their /metrics endpoints serve);
tests/integration/test_prometheus_dashboard.py checks the same over HTTP through a real Prometheus.
"""

from __future__ import annotations

import pytest
from chart_support import (
    DASHBOARD,
    DASHBOARD_COPY,
    exported_names,
    load_dashboard,
    metric_names,
    panel_queries,
    variable_queries,
)

# What the dashboard must show (issue 7): a metric per view.
REQUIRED_VIEWS = {
    "jobs by phase": "limr_operator_jobs",
    "phase durations": "limr_operator_phase_duration_seconds",
    "reward": "limr_trainer_reward_mean",
    "accuracy": "limr_trainer_accuracy",
    "KL": "limr_trainer_kl",
    "response length": "limr_trainer_response_length",
    "tokens/s": "limr_trainer_tokens_per_second",
    "selected samples": "limr_operator_samples_selected",
    "total samples": "limr_operator_samples_total",
    "reconcile errors": "limr_operator_reconcile_errors_total",
    "retries": "limr_operator_rayjob_retries_total",
}


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Every sample name the operator's and the trainer's registries expose."""
    import limr_operator.metrics  # noqa: F401  (registers the operator's metrics)
    from limr_trainer.ppo.metrics import Prometheus
    from prometheus_client import REGISTRY, generate_latest

    Prometheus(job="names", phase="baseline", port=None)  # registers the trainer's metrics, no server
    return exported_names(generate_latest(REGISTRY).decode())


def test_every_dashboard_metric_is_exported(exported: set[str]) -> None:
    queries = panel_queries(load_dashboard()) + variable_queries(load_dashboard())
    unknown = {(title, name) for title, expr in queries for name in metric_names(expr)
               if name not in exported}
    assert unknown == set()


def test_every_query_reads_a_limr_metric() -> None:
    for title, expr in panel_queries(load_dashboard()):
        names = metric_names(expr)
        assert names and all(n.startswith("limr_") for n in names), (title, expr)


def test_dashboard_covers_the_required_views() -> None:
    used = {n for _, expr in panel_queries(load_dashboard()) for n in metric_names(expr)}
    missing = {view for view, metric in REQUIRED_VIEWS.items() if metric not in used}
    assert missing == set()


def test_trainer_panels_are_per_job_and_phase() -> None:
    for title, expr in panel_queries(load_dashboard()):
        if any(n.startswith("limr_trainer_") for n in metric_names(expr)):
            assert 'limr_job=~"$job"' in expr and 'phase=~"$phase"' in expr, title


def test_dashboard_is_well_formed() -> None:
    dash = load_dashboard()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert dash["uid"] and dash["title"]
    for panel in dash["panels"]:
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    names = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "namespace", "job", "phase"} <= names


def test_manifests_copy_is_the_chart_source() -> None:
    """charts/limr-operator/dashboards/ is the one source; manifests/grafana/ is its copy
    (scripts/render-install.sh writes it)."""
    assert DASHBOARD_COPY.read_bytes() == DASHBOARD.read_bytes(), "run scripts/render-install.sh"


@pytest.mark.parametrize("expr, names", [
    ('sum by (phase) (limr_operator_jobs)', {"limr_operator_jobs"}),
    ('histogram_quantile(0.9, sum by (le) (rate(a_bucket{x="y"}[5m])))', {"a_bucket"}),
    ('a{job=~"$job"} / on (job) group_left b', {"a", "b"}),
    ('label_values(limr_trainer_step, job)', {"limr_trainer_step"}),
    ('rate(c_total{stage!="sum(x)"}[$__rate_interval]) * 60', {"c_total"}),
])
def test_metric_name_extraction(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
