"""`limr select` end to end on both input formats, local folders and S3 (moto_server)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from limr_trainer.commands import select as select_cmd
from limr_trainer.data.records import table_from_rows

PROMPTS = 60
EPOCHS, STEPS_PER_EPOCH, PER_STEP, ROLLOUTS = 5, 2, 25, 4  # 50 of 60 prompts per epoch: some miss epochs


def make_rollouts(tmp: Path) -> tuple[Path, Path, Path, list[dict]]:
    """The same rollouts as LIMR dumps (step_N.json) and as our Parquet records, plus the prompts file."""
    rng = np.random.default_rng(11)
    prompts = [
        {"id": f"id-{i:03d}", "prompt": f"Problem {i}: compute {i} + {i * 7}.", "answer": str(8 * i)}
        for i in range(PROMPTS)
    ]
    skill = rng.normal(-0.5, 1.0, PROMPTS)
    dumps, records = tmp / "dumps", tmp / "records"
    dumps.mkdir()
    step = 0
    for epoch in range(EPOCHS):
        order = rng.permutation(PROMPTS)
        for s in range(STEPS_PER_EPOCH):
            step += 1
            rows, recs = [], []
            for j in order[s * PER_STEP : (s + 1) * PER_STEP]:
                p = 1 / (1 + np.exp(-(skill[j] + 0.6 * epoch)))
                for k in range(ROLLOUTS):
                    reward = 1.0 if rng.random() < p else float(rng.choice([-0.5, -1.0]))
                    # LIMR keys prompts by stripped text: pad some to check that
                    text = prompts[j]["prompt"] + ("\n " if k % 2 else "")
                    rows.append(
                        {
                            "prompt": text,
                            "response": "x " * int(rng.integers(5, 400)) + "\\boxed{1}",
                            "reward": reward,
                            "response_length": 12.0,
                        }
                    )
                    recs.append(
                        {
                            "epoch": epoch,
                            "step": step,
                            "prompt_id": prompts[j]["id"],
                            "sample": k,
                            "reward": reward,
                            "correct": reward == 1.0,
                            "format_error": "no_boxed" if reward == -1.0 else None,
                            "response_length": 12,
                            "truncated": False,
                        }
                    )
            (dumps / f"step_{step}.json").write_text(json.dumps(rows, indent=4))
            out = records / f"epoch={epoch:04d}" / f"step={step:06d}.parquet"
            out.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table_from_rows(recs), out)
    (dumps / "test").mkdir()  # LIMR's eval dumps sit in a subfolder: must be ignored
    (dumps / "test" / "step_1.json").write_text("[not json")
    prompts_file = tmp / "prompts.json"
    prompts_file.write_text(json.dumps(prompts))
    return dumps, records, prompts_file, prompts


def reference_lim(dumps: Path, steps_per_epoch: int, max_epochs: int) -> dict[str, float]:
    """The definition, written out plainly (all records in memory, dicts of lists)."""
    per_epoch: list[dict[str, list[float]]] = [{} for _ in range(max_epochs)]
    for step in range(1, steps_per_epoch * max_epochs + 1):
        for row in json.loads((dumps / f"step_{step}.json").read_text()):
            per_epoch[(step - 1) // steps_per_epoch].setdefault(row["prompt"].strip(), []).append(
                row["reward"]
            )
    keys = {k for e in per_epoch for k in e}
    seqs = {}
    for k in keys:
        seq = [sum(r == 1 for r in e[k]) / len(e[k]) if k in e else None for e in per_epoch]
        orig = list(seq)
        for i in range(len(seq) - 1):
            if orig[i] is None and orig[i + 1] is not None:
                seq[i] = orig[i + 1]
        if None not in seq:
            seqs[k] = seq
    mean = [sum(s[i] for s in seqs.values()) / len(seqs) for i in range(max_epochs)]
    denom = sum((1 - m) ** 2 for m in mean)
    return {k: 1 - sum((a - m) ** 2 for a, m in zip(s, mean)) / denom for k, s in seqs.items()}


def read_scores(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]


def test_both_formats_give_identical_scores_and_match_the_definition(tmp_path, capsys):
    dumps, records, prompts_file, _ = make_rollouts(tmp_path)
    o1, o2 = tmp_path / "o1", tmp_path / "o2"
    assert (
        select_cmd.main(
            [
                "--input",
                str(dumps),
                "--format",
                "openrlhf",
                "--steps-per-epoch",
                "2",
                "--max-epochs",
                "5",
                "--prompts",
                str(prompts_file),
                "--output",
                str(o1),
            ]
        )
        == 0
    )
    assert (
        select_cmd.main(["--input", str(records), "--prompts", str(prompts_file), "--output", str(o2)]) == 0
    )
    s1 = {r["id"]: r["score"] for r in read_scores(o1)}
    s2 = {r["id"]: r["score"] for r in read_scores(o2)}
    assert s1 == s2 and 20 < len(s1) < PROMPTS  # some were dropped
    ref = reference_lim(dumps, 2, 5)
    by_prompt = {r["prompt"]: r["score"] for r in read_scores(o1)}
    assert by_prompt.keys() == ref.keys()
    for k, v in ref.items():
        assert by_prompt[k] == pytest.approx(v, abs=1e-12)
    summary = json.loads((o1 / "summary.json").read_text())
    assert summary["strategy"] == "lim" and summary["threshold"] == 0.6
    assert summary["scored"] == len(s1) and summary["dropped"] == PROMPTS - len(s1) and summary["epochs"] == 5
    selected = json.loads((o1 / "selected.json").read_text())
    assert sorted(r["id"] for r in selected) == sorted(i for i, s in s1.items() if s >= 0.6)
    assert all(set(r) == {"id", "prompt", "answer"} for r in selected)
    assert summary["selected"] == len(selected) == json.loads((o2 / "summary.json").read_text())["selected"]
    for png in ("trajectories.png", "score_histogram.png"):
        assert (o1 / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_linear_and_random_strategies(tmp_path):
    _, records, prompts_file, _ = make_rollouts(tmp_path)
    lin, rnd = tmp_path / "lin", tmp_path / "rnd"
    assert (
        select_cmd.main(["--input", str(records), "--strategy", "linear", "--output", str(lin), "--no-plots"])
        == 0
    )
    assert json.loads((lin / "summary.json").read_text())["threshold"] == 0.7
    assert (
        select_cmd.main(
            [
                "--input",
                str(records),
                "--strategy",
                "random",
                "--size",
                "7",
                "--seed",
                "3",
                "--prompts",
                str(prompts_file),
                "--output",
                str(rnd),
                "--no-plots",
            ]
        )
        == 0
    )
    assert len(json.loads((rnd / "selected.json").read_text())) == 7
    assert json.loads((rnd / "summary.json").read_text())["seed"] == 3


def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    dumps, _, _, _ = make_rollouts(tmp_path)
    (dumps / "step_3.json").write_text('[{"prompt": "p", "reward": "high"}]')
    out = tmp_path / "out"
    assert (
        select_cmd.main(
            ["--input", str(dumps), "--format", "openrlhf", "--steps-per-epoch", "2", "--output", str(out)]
        )
        == 2
    )
    assert "step_3.json" in capsys.readouterr().err
    assert not out.exists()
    assert select_cmd.main(["--input", str(tmp_path / "nothing"), "--output", str(out)]) == 2
    assert not out.exists()


def test_records_on_s3(tmp_path, s3_server, s3_bucket, s3_credentials, monkeypatch):
    from limr_trainer.storage import open_storage

    _, records, _, _ = make_rollouts(tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_credentials["access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_credentials["secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_credentials["region"])
    store = open_storage(f"s3://{s3_bucket}/job/baseline/rewards")
    for path in records.rglob("*.parquet"):
        store.put_bytes(str(path.relative_to(records)), path.read_bytes())
    local = tmp_path / "local"
    assert select_cmd.main(["--input", str(records), "--output", str(local), "--no-plots"]) == 0
    uri = f"s3://{s3_bucket}/job/selection"
    assert (
        select_cmd.main(["--input", f"s3://{s3_bucket}/job/baseline/rewards", "--output", uri, "--no-plots"])
        == 0
    )
    remote = open_storage(uri)
    assert remote.get_bytes("scores.jsonl") == (local / "scores.jsonl").read_bytes()


# ---- a full disk (issue 14 point 6) -------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A real tmpfs (so ENOSPC comes from the kernel), resizable with `resize(bytes)`; root only."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("SKIPPED LOUDLY: the full-disk test mounts a tmpfs and needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if made.returncode != 0:  # root without CAP_SYS_ADMIN (a locked-down container)
        pytest.skip(f"SKIPPED LOUDLY: cannot mount a tmpfs for the full-disk test: {made.stderr.strip()} "
                    "(tests/unit/trainer/selection/test_selection_core.py covers the commit with a failing write)")

    def resize(size: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True)

    try:
        yield mount, resize
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _records_and_prompts(root: Path, prompts: int, seed: int) -> tuple[Path, Path]:
    """Records of `prompts` prompts over 3 epochs, and a prompts file with long records."""
    rng = np.random.default_rng(seed)
    records = root / "records"
    for epoch in range(3):
        rows = [{"epoch": epoch, "step": epoch + 1, "prompt_id": f"id-{p}", "sample": s,
                 "reward": 1.0 if ok else -0.5, "correct": bool(ok), "format_error": None,
                 "response_length": 9, "truncated": False}
                for p in range(prompts) for s in range(4) for ok in [rng.random() < 0.2 + 0.25 * epoch]]
        out = records / f"epoch={epoch:04d}" / f"step={epoch + 1:06d}.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table_from_rows(rows), out)
    prompts_file = root / "prompts.json"
    prompts_file.write_text(json.dumps([{"id": f"id-{p}", "prompt": f"question {p} " + "x" * 600, "answer": "1"}
                                        for p in range(prompts)]))
    return records, prompts_file


def _select(records: Path, prompts: Path, out: Path) -> int:
    return select_cmd.main(["--input", str(records), "--prompts", str(prompts), "--output", str(out),
                            "--no-plots", "--threshold", "-1"])  # threshold -1: (nearly) all selected


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _one_run(state: dict[str, bytes], runs: list[dict[str, bytes]]) -> bool:
    """Whether `state` is a set a reader may take: no summary.json at all, or every file of one run."""
    if "summary.json" not in state:
        return True
    for run in runs:
        same_counts = {k: v for k, v in json.loads(state["summary.json"]).items() if k != "seconds"} == \
                      {k: v for k, v in json.loads(run["summary.json"]).items() if k != "seconds"}
        if same_counts and all(state.get(name) == data for name, data in run.items() if name != "summary.json"):
            return True
    return False


def test_a_full_disk_never_leaves_a_mix_of_two_selections(tmp_path, capsys, small_disk):
    disk, resize = small_disk
    small, small_prompts = _records_and_prompts(tmp_path / "small", prompts=5, seed=1)
    large, large_prompts = _records_and_prompts(tmp_path / "large", prompts=1500, seed=2)
    ref_small, ref_large = tmp_path / "ref-small", tmp_path / "ref-large"  # what each run writes, on a roomy disk
    assert _select(small, small_prompts, ref_small) == 0 and _select(large, large_prompts, ref_large) == 0
    runs = [_outputs(ref_small), _outputs(ref_large)]
    scores, selected = len(runs[1]["scores.jsonl"]), len(runs[1]["selected.json"])
    assert selected > 4 * 65536  # so the disk below fills up while selected.json is written

    out = disk / "selection"
    assert _select(small, small_prompts, out) == 0
    used = os.statvfs(disk).f_bsize * (os.statvfs(disk).f_blocks - os.statvfs(disk).f_bfree)
    resize(used + scores + 2 * 65536)  # room for the new scores.jsonl (beside the old one), not for selected.json
    capsys.readouterr()
    assert _select(large, large_prompts, out) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    state = _outputs(out)
    assert _one_run(state, runs), f"a reader would mix two selections: {sorted(state)}"
    assert not [p for p in out.iterdir() if p.name.startswith(".limr-tmp-")]  # no temp file left behind
