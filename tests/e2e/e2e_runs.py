"""Running `limr run` as a user does, for the e2e tests: in its own process group, output to a log,
interrupted with Ctrl-C (SIGINT to the group) at a chosen point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from paths import REPO

LIMR = [sys.executable, "-m", "limr_trainer", "run"]


def env_for(tmp: Path) -> dict:
    env = dict(os.environ)
    env["LIMR_CACHE"] = str(tmp / "cache")
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions"))
    return env


def start(job_file: Path, tmp: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([*LIMR, str(job_file)], cwd=REPO, env=env_for(tmp), stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def interrupt_when(proc: subprocess.Popen, ready, log: Path, limit: float = 240) -> int:
    """Ctrl-C the run's process group once `ready()` holds; returns the exit code."""
    deadline = time.time() + limit
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"run ended (rc {proc.returncode}) before the interruption point:\n{log.read_text()[-3000:]}")
        if time.time() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"interruption point not reached in {limit:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"run did not stop within 90 s of Ctrl-C:\n{log.read_text()[-3000:]}")


def no_process_left(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def run_to_end(job_file: Path, tmp: Path, log: Path, limit: float = 420) -> str:
    proc = start(job_file, tmp, log)
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"run did not finish in {limit:.0f} s:\n{log.read_text()[-3000:]}")
    out = log.read_text()
    assert proc.returncode == 0, out[-3000:]
    return out
