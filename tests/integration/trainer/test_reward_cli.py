"""`limr reward` end to end (real checker processes), and the batch API inside a Ray task."""

from __future__ import annotations

import json
import shutil
import tempfile

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
