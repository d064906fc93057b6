"""A trainer killed with SIGKILL in the middle of an epoch resumes from its latest checkpoint, and the
reward records end with exactly one row per (epoch, step, prompt, sample): steps after the
checkpoint are replayed (same seeds, same rows) and overwrite their deterministic keys."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from limr_api import layout
from limr_trainer.runtime import toy_model as toy
from paths import REPO

CACHE = Path(os.environ.get("LIMR_CACHE") or REPO / ".cache") / "toy-models"
RUNNER = """
import json, sys
from limr_api.loader import load_job
from limr_trainer.ppo import run_ppo_step

if __name__ == "__main__":
    summary = run_ppo_step(load_job(sys.argv[1]), "baseline")
    print("SUMMARY " + json.dumps(summary), flush=True)
"""

pytestmark = pytest.mark.timeout(900)


def session_pids(sid: int) -> list[int]:
    """Processes of the session the trainer subprocess started (its Ray processes included)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid:
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


def start(tmp_path: Path, job_file: Path, log: str) -> subprocess.Popen:
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": os.environ.get(
        "TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions"))}
    return subprocess.Popen([sys.executable, str(tmp_path / "runner.py"), str(job_file)], env=env,
                            stdout=open(tmp_path / log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def test_sigkill_mid_epoch_then_resume(tmp_path):
    for module in ("vllm", "deepspeed", "ray"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"SKIPPED LOUDLY: {module} is not installed (needed for the kill-and-resume test)")
    from limr_trainer.storage import open_storage

    model = toy.ensure_toy_model(CACHE, warm_steps=toy.TOY_WARM_STEPS)
    store_dir = tmp_path / "store"
    # 48 prompts / 16 per step = 3 steps per epoch, 3 epochs; checkpoint after steps 1, 3, 5, 7, 8
    job = toy.toy_job(str(model), str(store_dir), name="resume", n=48, epochs=3, ppo={"checkpointEverySteps": 2})
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(job))  # JSON is YAML
    (tmp_path / "runner.py").write_text(RUNNER)
    store = open_storage(str(store_dir))
    latest = layout.checkpoints_prefix("resume", "baseline") + "latest.json"
    step4 = layout.rewards_key("resume", "baseline", 1, 4)  # second step of epoch 1

    proc = start(tmp_path, job_file, "first.log")
    deadline = time.time() + 600
    try:
        while time.time() < deadline and proc.poll() is None:
            if store.exists(step4) and store.exists(latest) and store.get_json(latest)["step"] >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert store.exists(step4), "the trainer never reached step 4"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: driver and its local Ray
        proc.wait()
        for pid in session_pids(proc.pid):  # anything of that session that left the group
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    killed_at = store.get_json(latest)["step"]
    # killed after checkpoint 3 with step 4's records written: mid-epoch, work after the checkpoint lost
    assert killed_at == 3, f"killed too late (latest checkpoint {killed_at})"
    before = store.read_parquet(step4).to_pylist()

    proc = start(tmp_path, job_file, "second.log")
    assert proc.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()[-3000:]
    summary = json.loads((tmp_path / "second.log").read_text().split("SUMMARY ", 1)[1].splitlines()[0])
    assert summary["resumed_from"] == killed_at and summary["steps"] == 9

    keys = store.list(layout.rewards_prefix("resume", "baseline"))
    assert [layout.parse_rewards_key(k) for k in keys] == [(s // 3, s) for s in range(9)]
    seen = []
    for key in keys:
        seen += [(r["epoch"], r["step"], r["prompt_id"], r["sample"]) for r in store.read_parquet(key).to_pylist()]
    assert len(seen) == len(set(seen)) == 9 * 16 * 4  # no duplicate, no missing row
    for step in range(9):
        prompts = {p for e, s, p, _ in seen if s == step}
        assert len(prompts) == 16
    epoch_prompts = [{p for e, _, p, _ in seen if e == epoch} for epoch in range(3)]
    assert all(len(p) == 48 for p in epoch_prompts)  # each epoch covers the dataset once
    assert store.read_parquet(step4).to_pylist() == before  # step 4 replayed: same seeds, same records
    metrics = [r["step"] for r in store.iter_jsonl(layout.metrics_key("resume", "baseline"))]
    assert metrics == list(range(9))
