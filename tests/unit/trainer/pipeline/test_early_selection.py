"""Early selection: the stop rule (pure), and the hook on real reward records, across a restart."""

from __future__ import annotations

import io
import random

import pyarrow.parquet as pq
import pytest
from limr_api import layout
from limr_api.loader import load_job
from limr_trainer.data import records
from limr_trainer.pipeline import local
from limr_trainer.pipeline.context import Context
from limr_trainer.pipeline.early_selection import (
    EarlySelection,
    EpochSelection,
    early_stop_text,
    jaccard,
    overlaps,
    select_from_epochs,
    stop_epoch,
)
from limr_trainer.pipeline.steps import hooks_for
from limr_trainer.storage import open_storage


def sel(epoch, *ids):
    return EpochSelection(epoch, tuple(ids), 10)


def test_jaccard():
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)
    assert jaccard([], []) == 1.0 and jaccard(["a"], []) == 0.0


def test_stop_after_stable_epochs_once_min_epochs_ran():
    history = [sel(0, "a"), sel(1, "a", "b"), sel(2, "a", "b"), sel(3, "a", "b"), sel(4, "a", "b")]
    assert overlaps(history) == [None, 0.5, 1.0, 1.0, 1.0]
    assert stop_epoch(history, min_epochs=1, stable_epochs=1, min_jaccard=0.9) == 2
    assert stop_epoch(history, min_epochs=1, stable_epochs=2, min_jaccard=0.9) == 3
    assert stop_epoch(history, min_epochs=5, stable_epochs=1, min_jaccard=0.9) == 4
    assert stop_epoch(history, min_epochs=1, stable_epochs=1, min_jaccard=0.5) == 1
    assert stop_epoch(history, min_epochs=1, stable_epochs=4, min_jaccard=0.9) is None
    assert stop_epoch(history[:1], 1, 1, 0.0) is None  # one epoch has nothing to be stable against


def test_an_unstable_epoch_restarts_the_count():
    history = [sel(0, "a", "b"), sel(1, "a", "b"), sel(2, "c"), sel(3, "c"), sel(4, "c")]
    assert stop_epoch(history, 1, 2, 0.9) == 4


N, BATCH, EPOCHS = 12, 6, 6  # 2 PPO steps per data epoch


def _job(tmp_path, **early):
    return load_job({"apiVersion": "limr.io/v1alpha1", "kind": "LIMRJob", "metadata": {"name": "j"}, "spec": {
        "model": {"name": "toy://tiny?seed=1&warm_steps=5"}, "dataset": {"uri": f"synthetic://arithmetic?n={N}"},
        "storage": {"uri": str(tmp_path)}, "ppo": {"rolloutBatchSize": BATCH, "samplesPerPrompt": 4,
                                                   "trainBatchSize": 24, "microBatchSize": 4},
        "baseline": {"epochs": EPOCHS}, "selection": {"earlyStop": early},
        "evaluation": {"benchmarks": [{"name": "h", "uri": "synthetic://arithmetic?n=20&seed=5&split=test",
                                       "promptField": "prompt"}]}}})


def _write_epoch(storage, epoch, rng=None):
    """One data epoch of baseline records (2 PPO steps): a third of the questions learn (successes
    rise by one of 4 rollouts per epoch), a third are always solved, a third never; `rng` flips
    a few outcomes."""
    ids = [f"arith-0-{i:06d}" for i in range(N)]
    for part in range(2):
        step = epoch * 2 + part
        rows = []
        for pid in ids[part * BATCH:(part + 1) * BATCH]:
            kind = int(pid[-2:]) % 3
            wins = min(4, epoch + 1) if kind == 0 else (4 if kind == 1 else 0)
            hits = [k < wins for k in range(4)]
            if rng is not None:
                hits = [ok != (rng.random() < 0.3) for ok in hits]
            rows += [{"epoch": epoch, "step": step, "prompt_id": pid, "sample": k, "reward": 1.0 if ok else -0.5,
                      "correct": ok, "format_error": None, "response_length": 3, "truncated": False}
                     for k, ok in enumerate(hits)]
        buf = io.BytesIO()
        pq.write_table(records.table_from_rows(rows), buf)
        storage.put_bytes(layout.rewards_key("j", "baseline", epoch, step), buf.getvalue())


class _Plan:
    epochs, total_steps, steps_per_epoch = EPOCHS, EPOCHS * 2, 2


class _Trainer:
    plan = _Plan()


def test_hook_stores_each_epoch_stops_when_stable_and_resumes_from_the_records(tmp_path):
    storage = open_storage(str(tmp_path))
    job = _job(tmp_path, minEpochs=4, stableEpochs=3, minJaccard=1.0)
    ctx = Context(job=job, storage=storage)
    hooks = hooks_for(ctx, job_step("baseline"), None)
    assert [type(h).__name__ for h in hooks] == ["EarlySelection"]
    hook = hooks[0]
    for epoch in range(3):
        _write_epoch(storage, epoch)
        assert hook.after_epoch(_Trainer(), epoch) is False  # fewer than minEpochs epochs ran
    stored = [storage.get_json(layout.early_selection_key("j", "baseline", e)) for e in range(3)]
    assert [s["epochs"] for s in stored] == [1, 2, 3]
    assert stored[2]["selected"] == list(select_from_epochs(ctx, "baseline", 3).selected)
    assert len(stored[0]["selected"]) == 4  # the questions that learn

    # a restart: a new hook with nothing in memory, and one stored selection lost; stopping after
    # epoch 4 needs the three overlaps of epochs 2-4, so it must see the epochs of the first attempt
    storage.delete(layout.early_selection_key("j", "baseline", 1))
    again = EarlySelection(ctx, "baseline", job.spec.selection.earlyStop, EPOCHS, 2)
    _write_epoch(storage, 3)
    assert again.after_epoch(_Trainer(), 3) is True
    assert [list(s.selected) for s in again.history[:3]] == [s["selected"] for s in stored]
    assert storage.exists(layout.early_selection_key("j", "baseline", 1))  # recomputed and stored again
    summary = again.summary()["early_stop"]
    assert summary["stable_after_epoch"] == 4 and summary["stopped_after_epoch"] == 4
    assert (summary["steps_planned"], summary["steps_run"], summary["steps_saved"]) == (12, 8, 4)
    assert [p["epoch"] for p in summary["per_epoch"]] == [1, 2, 3, 4]
    assert [p["jaccard_previous"] for p in summary["per_epoch"]] == [None, 1.0, 1.0, 1.0]


def test_noisy_selections_do_not_count_as_stable(tmp_path):
    storage = open_storage(str(tmp_path))
    job = _job(tmp_path, minEpochs=2, stableEpochs=2, minJaccard=1.0)
    hook = EarlySelection(Context(job=job, storage=storage), "baseline", job.spec.selection.earlyStop, EPOCHS, 2)
    rng = random.Random(0)
    decisions = []
    for epoch in range(EPOCHS - 1):
        _write_epoch(storage, epoch, rng)
        decisions.append(hook.after_epoch(_Trainer(), epoch))
    jac = overlaps(hook.history)
    expected = stop_epoch(hook.history, 2, 2, 1.0)
    assert any(j is not None and j < 1.0 for j in jac)  # the noise changes some selection
    assert decisions == [expected is not None and k >= expected for k in range(EPOCHS - 1)][:len(decisions)]


def test_observe_only_records_but_never_stops(tmp_path):
    storage = open_storage(str(tmp_path))
    job = _job(tmp_path, minEpochs=1, stableEpochs=1, minJaccard=0.0, observeOnly=True)
    ctx = Context(job=job, storage=storage)
    hook = EarlySelection(ctx, "baseline", job.spec.selection.earlyStop, EPOCHS, 2)
    rng = random.Random(1)
    for epoch in range(EPOCHS - 1):
        _write_epoch(storage, epoch, rng)
        assert hook.after_epoch(_Trainer(), epoch) is False
    summary = hook.summary()["early_stop"]
    assert summary["stable_after_epoch"] == 2 and summary["stopped_after_epoch"] is None
    assert summary["steps_run"] == EPOCHS * 2 and summary["steps_needed"] == 4
    text = early_stop_text(summary)
    assert "observe only" in text and "save 8 of 12 baseline steps" in text


def test_summary_line_says_where_the_baseline_stopped_and_what_it_saved():
    early = {"stopped_after_epoch": 3, "epochs_planned": 8, "steps_planned": 64, "steps_saved": 40,
             "saved_share": 0.625, "steps_needed": 24, "stable_after_epoch": 3}
    line = local.summary_line("baseline", {"steps": 24, "early_stop": early})
    assert "stopped after epoch 3 of 8 (selection stable): 40 of 64 baseline steps saved (62%)" in line


def test_no_hook_without_early_stop_or_curve(tmp_path):
    job = _job(tmp_path)
    ctx = Context(job=job, storage=open_storage(str(tmp_path)))
    assert hooks_for(ctx, job_step("retrain"), ["arith-0-000000"]) == []
    plain = load_job({**job.model_dump(by_alias=True, exclude_none=True), "spec": {
        **job.spec.model_dump(by_alias=True, exclude_none=True), "selection": {}}})
    assert hooks_for(Context(job=plain, storage=ctx.storage), job_step("baseline"), None) == []


def job_step(key):
    from limr_api import plan

    return plan.parse_step(key)
