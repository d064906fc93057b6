"""`limr reward` end to end (real checker processes), and the batch API inside a Ray task."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from limr_trainer.commands import reward as reward_cmd
from paths import REPO

ROWS = [
    {"response": "so $\\boxed{\\frac{\\sqrt{3}}{2}}$", "answer": "\\frac{\\sqrt{3}}{2}"},
    {"response": "so $\\boxed{7}$", "answer": "8"},
    {"response": "I think it is 7", "answer": "7"},
    {"response": "so $\\boxed{7}$", "answer": "7", "truncated": True},
    {"response": "so $\\boxed{9^{9^{9^{9}}}}$", "answer": "1"},
    {"response": "\\boxed{1} \\boxed{2} \\boxed{3} \\boxed{4} \\boxed{5}", "answer": "5", "id": 99},
]


def test_reward_cli_scores_with_reasons(tmp_path, capsys):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    assert (
        reward_cmd.main(["--input", str(src), "--output", str(dst), "--timeout", "2", "--workers", "2"]) == 0
    )
    out = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [(r["reward"], r["reason"]) for r in out] == [
        (1.0, "correct"),
        (-0.5, "wrong_answer"),
        (-1.0, "no_boxed"),
        (-1.0, "truncated"),
        (-1.0, "checker_timeout"),
        (-1.0, "too_many_boxed"),
    ]
    assert out[5]["id"] == 99 and out[0]["extracted"] == "\\frac{\\sqrt{3}}{2}"  # input fields kept


@pytest.mark.parametrize(
    "bad,message",
    [
        ("{not json}", ":2: invalid JSON"),
        ('{"response": 3, "answer": "1"}', ":2: 'response' must be a string"),
        ('{"response": "a"}', ":2: 'answer' must be a string"),
        ('{"response": "a", "answer": "1", "truncated": "yes"}', ":2: 'truncated' must be true or false"),
        ("[1, 2]", ":2: expected a JSON object"),
    ],
)
def test_malformed_line_exits_2_with_its_number_and_writes_nothing(tmp_path, capsys, bad, message):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps(ROWS[0]) + "\n" + bad + "\n" + json.dumps(ROWS[1]) + "\n")
    assert reward_cmd.main(["--input", str(src), "--output", str(dst)]) == 2
    assert message in capsys.readouterr().err
    assert not dst.exists() and list(tmp_path.iterdir()) == [src]


def test_score_batch_inside_a_ray_task():
    ray = pytest.importorskip("ray", reason="Ray is part of the stack: install the venv (make venv)")
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False)
    try:

        @ray.remote(num_cpus=1)
        def score_in_ray():
            from limr_trainer.reward import score_batch

            items = [
                {"response": "\\boxed{0.5}", "answer": "\\frac12"},
                {"response": "\\boxed{9^{9^{9^{9}}}}", "answer": "1"},
            ]
            return [(r.reward, r.reason) for r in score_batch(items, workers=2, timeout=1.0)]

        assert ray.get(score_in_ray.remote(), timeout=180) == [(1.0, "correct"), (-1.0, "checker_timeout")]
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def test_every_math500_gold_scores_plus_one():
    """The full MATH500 gold set, through the batch API and through math-verify alone (no short cut)."""

    from limr_trainer import reward as R

    data = (
        REPO.parent
        / "shared"
        / "data"
        / "limr"
        / "eval"
        / "data"
        / "math500.jsonl"
    )
    if not data.exists():
        pytest.skip(f"LIMR data not found at {data}: the gold check needs ../shared/data/limr")
    golds = [json.loads(line)["answer"] for line in data.open()]
    results = R.score_batch([{"response": f"Thus $\\boxed{{{g}}}$.", "answer": g} for g in golds], workers=2)
    assert [g for g, r in zip(golds, results) if r.reward != 1.0] == []
    missed = [g for g in golds if not R.equivalent(g, g, shortcut=False)]
    assert len(missed) <= len(golds) // 1000, missed


# ---- hostile and careless input (issue 14 points 2, 3, 7, 11) --------------------------------------

HANG_ROW = {"response": "\\boxed{9^{9^{9^{9}}}}", "answer": "1"}  # math-verify never finishes it


def _limr(*args: str) -> list[str]:
    return [sys.executable, "-m", "limr_trainer", *args]


def _children(pid: int) -> list[int]:
    """Pids whose parent is `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _start_busy_reward(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    """`limr reward` scoring answers that never finish, once its two workers are up and busy."""
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(HANG_ROW) + "\n" for _ in range(4)))
    proc = subprocess.Popen(_limr("reward", "--input", str(src), "--output", str(tmp_path / "out.jsonl"),
                                  "--workers", "2", "--timeout", "600"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = _children(proc.pid)
    assert len(workers) == 2, f"no checker workers after 120 s: {proc.poll()}"
    time.sleep(8)  # they import math-verify, then take the never-ending answers
    return proc, workers


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


@pytest.fixture
def busy_reward(tmp_path):
    """A busy `limr reward` and its workers; whatever a failing test leaves running is killed."""
    proc, workers = _start_busy_reward(tmp_path)
    yield proc, workers
    for pid in [proc.pid, *workers]:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_stop_the_workers_with_the_command(tmp_path, busy_reward, signum):
    proc, workers = busy_reward
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)  # the workers are killed, not waited for
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted; no output written" in err
    assert _wait_gone(workers, 2) == []
    assert not (tmp_path / "out.jsonl").exists()


def test_workers_die_with_a_killed_command(busy_reward):
    proc, workers = busy_reward
    proc.kill()
    proc.wait(timeout=30)
    assert _wait_gone(workers, 10) == [], "checker workers outlived a SIGKILLed `limr reward`"


def test_one_lone_surrogate_does_not_lose_the_batch(tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('{"response": "\\\\boxed{1} \\ud83d", "answer": "1"}\n' + json.dumps(ROWS[1]) + "\n")
    assert reward_cmd.main(["--input", str(src), "--output", str(dst), "--workers", "1"]) == 0
    out = [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]
    assert out[0]["response"] == "\\boxed{1} \ud83d" and out[0]["reason"] == "correct"
    assert out[1]["reason"] == "wrong_answer"


def test_output_to_s3_lands_in_s3(tmp_path, s3_server, s3_bucket, s3_client, s3_credentials, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_credentials["access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_credentials["secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_credentials["region"])
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(ROWS[0]) + "\n")
    assert reward_cmd.main(["--input", str(src), "--output", f"s3://{s3_bucket}/scored/out.jsonl",
                            "--workers", "1"]) == 0
    body = s3_client.get_object(Bucket=s3_bucket, Key="scored/out.jsonl")["Body"].read()
    assert json.loads(body)["reason"] == "correct"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]  # no local ./s3:/... folder


@pytest.mark.parametrize(
    "content,message",
    [
        (b'{"response": "\\\\boxed{1}", "answer": "1"}\n{"response": "\xff", "answer": "1"}\n', ":2: not UTF-8"),
        (b"[" * 200_000 + b"]" * 200_000 + b"\n", ":1: JSON nested too deeply"),
    ],
)
def test_bad_bytes_and_deep_nesting_name_the_line(tmp_path, capsys, content, message):
    src = tmp_path / "in.jsonl"
    src.write_bytes(content)
    assert reward_cmd.main(["--input", str(src), "--output", str(tmp_path / "out.jsonl")]) == 2
    err = capsys.readouterr().err
    assert message in err and "position" not in err


def test_a_directory_as_output_or_input_is_a_clear_error(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(ROWS[0]) + "\n")
    assert reward_cmd.main(["--input", str(src), "--output", str(tmp_path), "--workers", "1"]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert reward_cmd.main(["--input", str(tmp_path), "--output", str(tmp_path / "o.jsonl")]) == 2
    assert "is a directory" in capsys.readouterr().err
