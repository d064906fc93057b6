"""`limr select --format verl`: verl's `<step>.jsonl` rollout dumps as reward trajectories.

The dumps are written here exactly as verl's `RayPPOTrainer._dump_generations` writes them (the body
of that method, verl 0.6-0.8: `json.dumps(..., ensure_ascii=False)` per line, lines joined with
"\n" plus a final "\n", extra reward fields after `step`), from a table of known outcomes, with the
rollouts of each prompt scattered as verl's `balance_batch` leaves them. The same outcomes written
as our own Parquet records must give the same trajectories and the same selection.
"""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
from limr_trainer.selection.lim import TrajectoryAccumulator
from limr_trainer.selection.readers import InputError
from limr_trainer.selection.verl import decode_verl, read_verl, verl_steps

CHAT = "system\nPlease reason step by step, and put your final answer within \\boxed{{}}.\nuser\n{q}\nassistant\n"


def dump_generations(dump_path, global_steps, inputs, outputs, gts, scores, reward_extra_infos_dict):
    """verl's `_dump_generations` (ray_trainer.py), verbatim but for `self`."""
    os.makedirs(dump_path, exist_ok=True)
    filename = os.path.join(dump_path, f"{global_steps}.jsonl")
    n = len(inputs)
    base_data = {"input": inputs, "output": outputs, "gts": gts, "score": scores, "step": [global_steps] * n}
    if gts is None:  # verl 0.4 / 0.5 dumps had no gts
        del base_data["gts"]
    for k, v in reward_extra_infos_dict.items():
        if len(v) == n:
            base_data[k] = v
    lines = [json.dumps({k: v[i] for k, v in base_data.items()}, ensure_ascii=False) for i in range(n)]
    with open(filename, "w") as f:
        f.write("\n".join(lines) + "\n")


def outcomes(prompts=6, epochs=3, steps_per_epoch=2, n=4, seed=0):
    """{(epoch, question): [correct per rollout]}: question q's chance of success rises with q."""
    rng = random.Random(seed)
    questions = [f"What is {i} + {i}? Ünïcödé ∑" for i in range(prompts)]
    table = {}
    for epoch in range(epochs):
        for q, question in enumerate(questions):
            p = min(1.0, q / prompts + 0.15 * epoch)
            table[epoch, question] = [rng.random() < p for _ in range(n)]
    return questions, table


def write_dumps(folder, questions, table, epochs, steps_per_epoch, style="dapo", gts=True, seed=1):
    """One file per step; each step carries len(questions) / steps_per_epoch prompts x n rollouts,
    shuffled across prompts (balance_batch). style: dapo (score +-1, acc bool, pred), loop (acc =
    score, 1.0 / 0.0: verl's reward loop for float rewards), none (score only, +1 / 0)."""
    rng = random.Random(seed)
    per_step = len(questions) // steps_per_epoch
    for epoch in range(epochs):
        order = questions[:]
        rng.shuffle(order)
        for i in range(steps_per_epoch):
            step = epoch * steps_per_epoch + i + 1
            lines = [(q, ok) for q in order[i * per_step:(i + 1) * per_step] for ok in table[epoch, q]]
            rng.shuffle(lines)
            inputs = [CHAT.format(q=q) for q, _ in lines]
            outputs = [f"... \\boxed{{{int(ok)}}}" for _, ok in lines]
            answers = ["1"] * len(lines) if gts else None
            if style == "dapo":
                scores = [1.0 if ok else -1.0 for _, ok in lines]
                extra = {"score": scores, "acc": [ok for _, ok in lines], "pred": ["1" if ok else "0" for _, ok in lines]}
            elif style == "loop":
                scores = [1.0 if ok else 0.0 for _, ok in lines]
                extra = {"acc": scores}
            else:
                scores = [1.0 if ok else 0.0 for _, ok in lines]
                extra = {}
            dump_generations(str(folder), step, inputs, outputs, answers, scores, extra)


def expected_values(questions, table, epochs):
    return {CHAT.format(q=q).strip(): [sum(table[e, q]) / len(table[e, q]) for e in range(epochs)] for q in questions}


def trajectories(acc):
    t = acc.trajectories()
    return {k: list(map(float, t.values[i])) for i, k in enumerate(t.keys)}


@pytest.mark.parametrize("style", ["dapo", "loop", "none"])
@pytest.mark.parametrize("gts", [True, False])
def test_trajectories_from_verl_dumps_match_the_outcomes(tmp_path, style, gts):
    questions, table = outcomes()
    write_dumps(tmp_path, questions, table, 3, 2, style=style, gts=gts)
    acc = TrajectoryAccumulator()
    stats = read_verl(str(tmp_path), acc, steps_per_epoch=2)
    assert stats.files == 6 and stats.rollouts == 6 * 3 * 4
    assert trajectories(acc) == expected_values(questions, table, 3)


def test_acc_decides_over_the_score_and_null_acc_falls_back_to_it():
    line = {"input": "q", "output": "o", "gts": "1", "step": 1}
    rows = [
        {**line, "score": 1.0, "acc": False},  # acc says wrong: wrong
        {**line, "score": -1.0, "acc": True},  # acc says right: right
        {**line, "score": 0.0, "acc": 1},  # a number >= 1 is right
        {**line, "score": 0.0, "acc": 0.5},  # below 1: wrong
        {**line, "score": 1.0, "acc": None},  # no acc: score >= 1.0
        {**line, "score": 0.9},  # no acc: below the threshold
    ]
    data = ("\n".join(json.dumps(r) for r in rows) + "\n").encode()
    from limr_trainer.selection.verl import successes

    decoded = decode_verl(data, 1, "1.jsonl")
    assert successes(decoded, 1.0).tolist() == [0, 1, 1, 0, 1, 0]
    assert successes(decoded, 0.5).tolist() == [0, 1, 1, 0, 1, 1]


def test_success_threshold_for_dumps_without_acc(tmp_path):
    questions, table = outcomes(prompts=4, epochs=2)
    write_dumps(tmp_path, questions, table, 2, 2, style="none")
    for path in tmp_path.glob("*.jsonl"):  # rewards of 0.8 / 0.1 instead of 1 / 0
        rows = [json.loads(s) for s in path.read_text().splitlines()]
        for r in rows:
            r["score"] = 0.8 if r["score"] == 1.0 else 0.1
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    strict, loose = TrajectoryAccumulator(), TrajectoryAccumulator()
    read_verl(str(tmp_path), strict, 2)
    read_verl(str(tmp_path), loose, 2, success_threshold=0.5)
    assert all(v == [0.0, 0.0] for v in trajectories(strict).values())
    assert trajectories(loose) == expected_values(questions, table, 2)


def test_same_selection_as_our_own_records_of_the_same_outcomes(tmp_path):
    import pyarrow.parquet as pq
    from limr_trainer.data import records
    from limr_trainer.selection.core import SelectionConfig, build_outputs

    questions, table = outcomes(prompts=12, epochs=4, steps_per_epoch=3)
    write_dumps(tmp_path / "verl", questions, table, 4, 3)
    ours = tmp_path / "limr"
    ids = {q: f"q{i}" for i, q in enumerate(questions)}
    for epoch in range(4):
        rows = [{"epoch": epoch, "step": epoch, "prompt_id": ids[q], "sample": k, "reward": 1.0 if ok else -0.5,
                 "correct": ok, "format_error": None, "response_length": 3, "truncated": False}
                for q in questions for k, ok in enumerate(table[epoch, q])]
        path = ours / f"epoch={epoch:04d}" / f"step={epoch:06d}.parquet"
        path.parent.mkdir(parents=True)
        pq.write_table(records.table_from_rows(rows), path)
    prompts = [{"id": ids[q], "prompt": CHAT.format(q=q)} for q in questions]
    verl = build_outputs(SelectionConfig(input=str(tmp_path / "verl"), format="verl", steps_per_epoch=3,
                                         no_plots=True, workers=1), prompts)
    limr = build_outputs(SelectionConfig(input=str(ours), format="limr", no_plots=True),
                         [{**p, "prompt": p["id"]} for p in prompts])
    pick = lambda files: sorted(r["id"] for r in json.loads(files["selected.json"]))
    assert pick(verl) == pick(limr) and 0 < len(pick(verl)) < 12
    summary = json.loads(verl["summary.json"])
    assert summary["format"] == "verl" and summary["epochs"] == 4 and summary["total"] == 12


def test_steps_files_epochs_and_max_epochs(tmp_path):
    questions, table = outcomes(prompts=4, epochs=3)
    write_dumps(tmp_path, questions, table, 3, 2)
    (tmp_path / "notes.txt").write_text("not a dump")
    assert [s for s, _ in verl_steps(str(tmp_path), 2, None)] == [1, 2, 3, 4, 5, 6]
    assert [s for s, _ in verl_steps(str(tmp_path), 2, 2)] == [1, 2, 3, 4]
    acc = TrajectoryAccumulator()
    read_verl(str(tmp_path), acc, 2, max_epochs=2)
    assert acc.epochs == [0, 1]


@pytest.mark.parametrize("bad, message", [
    (b'{"input": "q", "score": 1.0, "step": 1}\n{"input": "q", "score": 1.0, "step": 1\n', r"1\.jsonl:2: not a JSON"),
    (b'{"input": "q", "score": 1.0}\n\n{"input": "q", "score": NaN, "step": 1}\n', r"1\.jsonl:3: score nan is not a finite"),
    (b'{"input": "q", "score": 1.0, "step": 2}\n', r"1\.jsonl:1: step 2 in the file of step 1"),
    (b'{"output": "o", "score": 1.0, "step": 1}\n', r"1\.jsonl:1: not a verl rollout line"),
    (b'{"input": "q", "score": "high", "step": 1}\n', r"1\.jsonl:1: not a verl rollout line"),
    (b'{"input": "q", "score": 1.0, "acc": "yes"}\n', r"1\.jsonl:1: not a verl rollout line"),
])
def test_bad_lines_are_named_by_file_and_line(bad, message):
    with pytest.raises(InputError, match=message):
        decode_verl(bad, 1, "dumps/1.jsonl")


@pytest.fixture(params=["fork", "in-process"])
def reader_kind(request, monkeypatch):
    from limr_trainer.runtime import procpool

    if request.param == "fork" and not hasattr(os, "fork"):
        pytest.skip("SKIPPED LOUDLY: no os.fork on this platform: only in-process reads can run here")
    monkeypatch.setattr(procpool, "can_fork", lambda: request.param == "fork")
    return request.param


def test_reader_processes_give_the_same_counts_and_name_bad_files(tmp_path, reader_kind):
    questions, table = outcomes(prompts=8, epochs=4, steps_per_epoch=2)
    write_dumps(tmp_path, questions, table, 4, 2)
    one, two = TrajectoryAccumulator(), TrajectoryAccumulator()
    read_verl(str(tmp_path), one, 2, workers=1)
    read_verl(str(tmp_path), two, 2, workers=2)
    assert one.rollouts == two.rollouts == 8 * 4 * 4
    a, b = one.trajectories(), two.trajectories()
    np.testing.assert_array_equal(a.values, b.values[[b.keys.index(k) for k in a.keys]])
    (tmp_path / "6.jsonl").write_text('{"input": "q", "score": 1.0, "step": 7}\n')
    with pytest.raises(InputError, match=r"6\.jsonl:1: step 7"):
        read_verl(str(tmp_path), TrajectoryAccumulator(), 2, workers=2)


def test_files_that_are_not_a_run_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"no <step>\.jsonl files"):
        read_verl(str(tmp_path), TrajectoryAccumulator(), 2)
    (tmp_path / "1.jsonl").write_text('{"input": "q", "score": 1.0}\n')
    (tmp_path / "01.jsonl").write_text('{"input": "q", "score": 1.0}\n')
    with pytest.raises(InputError, match="two files for step 1"):
        read_verl(str(tmp_path), TrajectoryAccumulator(), 2)
    (tmp_path / "01.jsonl").unlink()
    (tmp_path / "0.jsonl").write_text('{"input": "q", "score": 1.0}\n')  # a validation dump
    with pytest.raises(InputError, match="numbered from 1"):
        read_verl(str(tmp_path), TrajectoryAccumulator(), 2)


def test_cli_selects_from_verl_dumps(tmp_path, capsys):
    from limr_trainer.commands.select import main

    questions, table = outcomes(prompts=10, epochs=3, steps_per_epoch=2)
    write_dumps(tmp_path / "dumps", questions, table, 3, 2, style="loop")
    out = tmp_path / "out"
    assert main(["--input", str(tmp_path / "dumps"), "--format", "verl", "--steps-per-epoch", "2",
                 "--output", str(out), "--no-plots"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["format"] == "verl" and summary["scored"] == 10 and summary["epochs"] == 3
    scores = [json.loads(s) for s in (out / "scores.jsonl").read_text().splitlines()]
    assert {s["prompt"] for s in scores} == set(expected_values(questions, table, 3))
    assert "of 10 scored" in capsys.readouterr().out
    assert main(["--input", str(tmp_path / "dumps"), "--format", "verl", "--success-threshold", "nan",
                 "--output", str(out)]) == 2
