"""Helpers shared by the chart, dashboard and Prometheus tests (unit and integration).

Pure functions over the chart's files: where helm is, the dashboard's PromQL queries, the metric
names a query reads, and the metric names an exposition (/metrics text) offers.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from typing import Any

from paths import REPO
from prometheus_client.parser import text_string_to_metric_families

CHART = REPO / "charts" / "limr-operator"
DASHBOARD = CHART / "dashboards" / "limr-dashboard.json"
DASHBOARD_COPY = REPO / "manifests" / "grafana" / "limr-dashboard.json"
INSTALL_MANIFEST = REPO / "manifests" / "install" / "limr-operator.yaml"

# Grafana's variables, replaced by what "All" and a short range mean when a query is sent to
# Prometheus directly.
GRAFANA_SUBSTITUTIONS = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$namespace": ".*",
    "$job": ".*",
    "$phase": ".*",
}

_PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
    "and", "or", "unless", "inf", "nan",
}


def helm_binary() -> str | None:
    """The helm that scripts/install-tools.sh extracts, else one on PATH."""
    local = REPO / ".cache" / "bin" / "helm"
    return str(local) if local.exists() else shutil.which("helm")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target, rows' nested panels included."""
    out: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                out.append((panel["title"], target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    return out


def variable_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(variable name, query) of the query variables, e.g. label_values(metric, label)."""
    out = []
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            out.append((var["name"], query))
    return out


def concrete(expr: str) -> str:
    """A dashboard query with Grafana's variables replaced, ready for Prometheus's HTTP API."""
    for name in sorted(GRAFANA_SUBSTITUTIONS, key=len, reverse=True):
        expr = expr.replace(name, GRAFANA_SUBSTITUTIONS[name])
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression (or a Grafana label_values query) reads.

    Strips strings, label matchers, ranges and by/without label lists, then keeps identifiers that
    are not function calls, keywords or numbers.
    """
    label_values = re.fullmatch(r"\s*label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*\w+\s*\)\s*", expr)
    if label_values:
        return {label_values.group(1)}
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^{}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][\w:]*", text):
        word = match.group(0)
        rest = text[match.end():].lstrip()
        if rest.startswith("(") or word.lower() in _PROMQL_WORDS:
            continue
        names.add(word)
    return names


def exported_names(exposition: str) -> set[str]:
    """Every sample name a /metrics text offers, including families declared without samples yet
    (a labelled metric shows only its HELP/TYPE until its first child exists)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        if family.type == "counter":
            names |= {family.name + "_total", family.name + "_created"}
        elif family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count", "_created")}
        elif family.type == "summary":
            names |= {family.name, family.name + "_sum", family.name + "_count", family.name + "_created"}
        else:
            names.add(family.name)
        names |= {sample.name for sample in family.samples}
    return names
