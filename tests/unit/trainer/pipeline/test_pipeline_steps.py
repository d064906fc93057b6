"""Done markers, console summaries and the `limr phase` entrypoint (no Ray, no model)."""

from limr_api import plan
from limr_api.loader import load_job
from limr_trainer.pipeline import local
from limr_trainer.pipeline.context import Context
from limr_trainer.pipeline.steps import run_step
from limr_trainer.storage import open_storage


def _job(**spec):
    base = {"model": {"name": "toy://tiny?seed=1&warm_steps=5"}, "dataset": {"uri": "synthetic://arithmetic?n=8"},
            "storage": {"uri": "/tmp/unused"}}
    base.update(spec)
    return load_job({"apiVersion": "limr.io/v1alpha1", "kind": "LIMRJob", "metadata": {"name": "j"}, "spec": base})


def test_done_markers_round_trip_and_skip(tmp_path):
    storage = open_storage(str(tmp_path))
    ctx = Context(job=_job(), storage=storage)
    assert ctx.done_summary("baseline") is None
    assert ctx.once("baseline", lambda: {"steps": 4})["steps"] == 4
    assert (tmp_path / "j/baseline/_DONE.json").exists()
    assert run_step(ctx, plan.BASELINE) == {"steps": 4, "phase": "baseline", "seconds": 0.0, "skipped": True}


def test_summary_line_shows_what_a_phase_reported():
    line = local.summary_line("baseline", {"steps": 4, "reward_first": -0.5, "reward_last": 0.25, "seconds": 12.4})
    assert line == "baseline: 4 steps, reward -0.500, -> 0.250, 12 s"
    assert local.summary_line("x", {"skipped": True}) == "x: done earlier, skipped"


def test_summary_line_of_a_selection_reads_as_a_fraction():
    line = local.summary_line("selection", {"questions": 33, "selected": 33, "total": 96, "dropped": 0,
                                            "threshold": 0.6, "seconds": 1.2})
    assert line == "selection: selected 33/96, 0 dropped, threshold 0.6, 1 s"


def _job_file(tmp_path, extra: str = "") -> str:
    job = tmp_path / "job.yaml"
    job.write_text("apiVersion: limr.io/v1alpha1\nkind: LIMRJob\nmetadata: {name: j}\nspec:\n"
                   "  model: {name: m}\n  dataset: {uri: 'synthetic://arithmetic?n=8'}\n"
                   f"  storage: {{uri: {tmp_path}/runs}}\n" + extra)
    return str(job)


def test_phase_command_rejects_bad_input_with_exit_2(tmp_path, capsys):
    from limr_trainer.commands import phase

    job = _job_file(tmp_path, "  retrain: {comparisons: [random]}\n")
    assert phase.main(["--job", job, "--step", "selection-random"]) == 2
    assert phase.main(["--job", job, "--step", "retrain-linear"]) == 2
    assert "not part of this job's plan" in capsys.readouterr().err
    assert phase.main(["--job", str(tmp_path / "missing.yaml"), "--step", "baseline"]) == 2
    assert phase.main(["--job", job, "--step", "baseline", "--attempt", "0"]) == 2


def test_phase_command_runs_a_finished_phase_as_a_no_op(tmp_path, capsys):
    from limr_trainer.commands import phase

    job = _job_file(tmp_path)
    open_storage(str(tmp_path / "runs")).put_json("j/selection/_DONE.json", {"selected": 3})
    assert phase.main(["--job", job, "--step", "selection", "--attempt", "2"]) == 0
    log = (tmp_path / "runs/j/selection/logs/attempt-2.log").read_text()  # what the driver printed
    assert log.startswith("limr phase selection")
    last = log.strip().splitlines()[-1]
    assert '"attempt": 2' in last and '"skipped": true' in last
