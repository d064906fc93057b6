"""`limr render` and `limr operator` argument handling; metric names; the summary reader."""

from __future__ import annotations

import json

import pytest
import yaml
from limr_operator import metrics
from limr_operator.commands import operator as operator_cmd
from limr_operator.commands import render
from limr_operator.storage import SummaryUnavailable, read_summary
from operator_fixtures import built_jobs, example_jobs


@pytest.fixture
def job_file(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(built_jobs()["paper"]))
    return path


def test_render_prints_every_phase(job_file, capsys):
    assert render.main([str(job_file)]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert ("Job", "qwen-math-7b-limr-paper-replica-4ac40c-select-1") in kinds
    # baseline, retrain + random and linear arms (the full arm is the baseline run itself), evaluation
    assert sum(k == "RayJob" for k, _ in kinds) == 5
    assert sum(k == "ConfigMap" for k, _ in kinds) == 6
    assert not [n for _, n in kinds if "retrain-full" in n]
    from limr_api.loader import load_job

    resolved = load_job(yaml.safe_load(docs[0]["data"]["job.yaml"]))  # the block-style ConfigMap round-trips
    assert resolved.metadata.name == "qwen-math-7b-limr-paper-replication-h100"


def test_render_one_phase_and_attempt(job_file, capsys):
    assert render.main([str(job_file), "--step", "baseline", "--attempt", "3"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["kind"] for d in docs] == ["ConfigMap", "RayJob"]
    assert docs[1]["spec"]["entrypoint"].endswith("--step baseline --attempt 3")


@pytest.mark.parametrize("name", sorted(example_jobs()))
def test_render_examples(name, tmp_path, capsys):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(example_jobs()[name]))
    assert render.main([str(path)]) == 0
    assert "kind: RayJob" in capsys.readouterr().out or name == "records"


def test_render_bad_input_exits_2(tmp_path, capsys):
    bad = built_jobs()["defaults"]
    bad["spec"]["backoffLimit"] = -1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    assert render.main([str(path)]) == 2
    assert "backoffLimit" in capsys.readouterr().err
    assert render.main([str(tmp_path / "missing.yaml")]) == 2
    assert render.main([str(path), "--step", "nope"]) == 2
    off = built_jobs()["records"]
    path.write_text(yaml.safe_dump(off))
    assert render.main([str(path), "--step", "baseline"]) == 2
    assert "not part of the plan" in capsys.readouterr().err


def test_operator_flags():
    args = operator_cmd.parse(["-n", "ml", "-n", "team-*", "--metrics-port", "9100", "--standalone"])
    assert args.namespace == ["ml", "team-*"] and args.metrics_port == 9100 and args.standalone
    assert operator_cmd.parse([]).namespace == [] and operator_cmd.parse(["-A"]).all_namespaces
    assert operator_cmd.main(["-n", "x", "-A"]) == 2  # mutually exclusive
    assert operator_cmd.main(["--interval", "0"]) == 2


def test_metric_names_match_the_contract():
    from prometheus_client import REGISTRY

    names = {m.name for m in REGISTRY.collect()}
    for name in ("limr_operator_jobs", "limr_operator_phase_transitions", "limr_operator_reconcile_duration_seconds",
                 "limr_operator_reconcile_errors", "limr_operator_rayjob_retries", "limr_operator_samples_selected",
                 "limr_operator_samples_total", "limr_operator_phase_duration_seconds"):
        assert name in names, name
    metrics.set_job_phase("ns", "a", "Baseline")
    metrics.set_job_phase("ns", "b", "Baseline")
    metrics.set_job_phase("ns", "b", "Selection")
    assert REGISTRY.get_sample_value("limr_operator_jobs", {"phase": "Baseline"}) == 1
    metrics.forget_job("ns", "a")
    assert REGISTRY.get_sample_value("limr_operator_jobs", {"phase": "Baseline"}) == 0


def test_summary_reader_local(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"selected": 3, "total": 9}))
    assert read_summary(str(tmp_path / "summary.json"))["selected"] == 3
    assert read_summary(f"file://{tmp_path}/summary.json")["total"] == 9
    with pytest.raises(SummaryUnavailable):
        read_summary(str(tmp_path / "absent.json"))
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(SummaryUnavailable):
        read_summary(str(tmp_path / "bad.json"))


def test_last_jsonl_line_from_the_tail(tmp_path):
    from limr_operator.storage import read_last_jsonl

    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": i, "reward_mean": i / 10, "pad": "x" * 100}) + "\n" for i in range(500)))
    assert read_last_jsonl(str(path), tail=1000)["step"] == 499  # first line of the tail is cut: skipped
    path.write_text("")
    with pytest.raises(SummaryUnavailable):
        read_last_jsonl(str(path))
