"""Phase planning, markers, toy model URIs, arm subsets and console summaries (no Ray, no model)."""

import numpy as np
import pytest
from limr_trainer import phases, pipeline, selection_phase
from limr_trainer.spec import load_job
from limr_trainer.storage import open_storage


def _job(**spec):
    base = {"model": {"name": "toy://tiny?seed=1&warm_steps=5"}, "dataset": {"uri": "synthetic://arithmetic?n=8"},
            "storage": {"uri": "/tmp/unused"}}
    base.update(spec)
    return load_job({"apiVersion": "limr.io/v1alpha1", "kind": "LIMRJob", "metadata": {"name": "j"}, "spec": base})


def test_plan_follows_design_order_with_arms_in_table_order():
    job = _job(retrain={"comparisons": ["full", "random", "linear"]})
    assert phases.plan(job) == [("baseline", None), ("selection", None), ("retrain", "lim"), ("retrain", "random"),
                                ("retrain", "linear"), ("retrain", "full"), ("evaluation", None)]
    assert [phases.step_phase(*s) for s in phases.plan(job)][2:6] == [
        "retrain", "retrain-random", "retrain-linear", "retrain-full"]


def test_disabled_phases_are_left_out():
    job = _job(baseline={"enabled": False, "recordsUri": "/tmp/records"}, retrain={"enabled": False},
               evaluation={"enabled": False})
    assert phases.plan(job) == [("selection", None)]


def test_full_arm_reuses_the_baseline_only_when_it_is_the_same_run():
    assert phases.full_arm_reuses_baseline(_job(baseline={"epochs": 3}, retrain={"epochs": 3}))
    assert not phases.full_arm_reuses_baseline(_job(baseline={"epochs": 3}, retrain={"epochs": 4}))


def test_toy_uri_parameters():
    assert phases.parse_toy_uri("toy://small?seed=3&warm_steps=10&warm_lr=0.01") == {
        "size": "small", "seed": 3, "warm_steps": 10, "warm_lr": 0.01}
    with pytest.raises(ValueError, match="unknown parameters"):
        phases.parse_toy_uri("toy://tiny?steps=3")


def test_done_markers_round_trip_and_skip(tmp_path):
    storage = open_storage(str(tmp_path))
    ctx = phases.Context(job=_job(), storage=storage)
    assert phases.done_summary(storage, "j", "baseline") is None
    phases.mark_done(storage, "j", "baseline", {"steps": 4})
    assert (tmp_path / "j/baseline/_DONE.json").exists()
    assert phases.run_baseline(ctx) == {"steps": 4, "skipped": True}  # no PPO started


def test_top_by_score_keeps_input_order_and_breaks_ties_by_first_seen():
    keys = ["a", "b", "c", "d"]
    assert selection_phase.top_by_score(keys, np.array([0.1, 0.9, 0.5, 0.9]), 2) == ["b", "d"]
    assert selection_phase.top_by_score(keys, np.array([0.5, 0.5, 0.5, 0.5]), 3) == ["a", "b", "c"]


def test_summary_line_shows_what_a_phase_reported():
    line = pipeline.summary_line("baseline", {"steps": 4, "reward_first": -0.5, "reward_last": 0.25,
                                              "seconds": 12.4})
    assert line == "baseline: 4 steps, reward -0.500, -> 0.250, 12 s"
    assert pipeline.summary_line("x", {"skipped": True}) == "x: done earlier, skipped"


def test_new_shm_files_only_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "SHM", tmp_path)
    (tmp_path / "psm_old").write_bytes(b"")
    before = pipeline._shm_files()
    (tmp_path / "psm_new").write_bytes(b"")
    (tmp_path / "other").write_bytes(b"")
    assert pipeline.remove_new_shm(before) == ["psm_new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "psm_old"]


def test_phase_command_rejects_bad_input_with_exit_2(tmp_path, capsys):
    from limr_trainer.commands import phase

    job = tmp_path / "job.yaml"
    job.write_text("apiVersion: limr.io/v1alpha1\nkind: LIMRJob\nmetadata: {name: j}\nspec:\n"
                   "  model: {name: m}\n  dataset: {uri: 'synthetic://arithmetic?n=8'}\n"
                   f"  storage: {{uri: {tmp_path}/runs}}\n  retrain: {{comparisons: [random]}}\n")
    assert phase.main(["--job", str(job), "--phase", "selection", "--arm", "random"]) == 2
    assert phase.main(["--job", str(job), "--phase", "retrain", "--arm", "linear"]) == 2
    assert "not in spec.retrain.comparisons" in capsys.readouterr().err
    assert phase.main(["--job", str(tmp_path / "missing.yaml"), "--phase", "baseline"]) == 2


def test_phase_command_runs_a_finished_phase_as_a_no_op(tmp_path, capsys):
    from limr_trainer.commands import phase

    job = tmp_path / "job.yaml"
    job.write_text("apiVersion: limr.io/v1alpha1\nkind: LIMRJob\nmetadata: {name: j}\nspec:\n"
                   "  model: {name: m}\n  dataset: {uri: 'synthetic://arithmetic?n=8'}\n"
                   f"  storage: {{uri: {tmp_path}/runs}}\n")
    phases.mark_done(open_storage(str(tmp_path / "runs")), "j", "selection", {"selected": 3})
    assert phase.main(["--job", str(job), "--phase", "selection", "--attempt", "2"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert '"attempt": 2' in last and '"skipped": true' in last


def test_summary_line_of_a_selection_reads_as_a_fraction():
    line = pipeline.summary_line("selection", {"questions": 33, "selected": 33, "total": 96, "dropped": 0,
                                               "threshold": 0.6, "seconds": 1.2})
    assert line == "selection: selected 33/96, 0 dropped, threshold 0.6, 1 s"
