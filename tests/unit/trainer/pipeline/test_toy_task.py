"""The toy task behind the demo and the study: difficulty mix, the held-out split, worked sums."""

from __future__ import annotations

import re

import pytest
from limr_api.training import DatasetSpec
from limr_trainer.data import synthetic
from limr_trainer.data.dataset import load_rows
from limr_trainer.data.errors import DatasetError
from limr_trainer.runtime.model import parse_toy_uri

MIX = "easy:3,sum2:4,prod2:3"


def test_the_default_rows_are_unchanged_by_the_new_parameters():
    # the first rows of the default task, as before mix and split existed
    rows = synthetic.arithmetic_rows(3, seed=0)
    assert [r["prompt"] for r in rows] == [synthetic.arithmetic_rows(3, seed=0, mix=synthetic.DEFAULT_MIX)[i]["prompt"]
                                           for i in range(3)]
    assert synthetic.parse_synthetic("synthetic://arithmetic?n=5&seed=2") == {"task": "arithmetic", "n": 5, "seed": 2}


def test_train_and_test_splits_never_share_a_question():
    train = synthetic.synthetic_rows(f"synthetic://arithmetic?n=3000&seed=0&mix={MIX}&split=train")
    test = synthetic.synthetic_rows(f"synthetic://arithmetic?n=300&seed=1000&mix={MIX}&split=test")
    assert len(train) == 3000 and len(test) == 300
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in test}
    assert {r["difficulty"] for r in test} == {"easy", "sum2", "prod2"}
    share = sum(synthetic.split_of(f"What is {a} + {b}?") == "test" for a in range(10, 100) for b in range(10, 100))
    assert 0.15 < share / 8100 < 0.25  # about TEST_SHARE percent of the question space


def test_every_answer_and_every_worked_step_is_right():
    for row in synthetic.arithmetic_rows(500, seed=4, mix={"sum2": 1, "easy": 1, "prod2": 1}):
        a, op, b = row["prompt"].removeprefix("What is ").removesuffix("?").split()
        assert int(row["answer"]) == (int(a) + int(b) if op == "+" else int(a) * int(b))
        text = synthetic.solution_text(row)
        assert text.endswith(f"The answer is \\boxed{{{row['answer']}}}.")
        if row["difficulty"] == "sum2":  # units first, then tens with the carry
            for lhs, rhs in re.findall(r"((?:\d+ \+ )+\d+) = (\d+)", text):
                assert sum(map(int, lhs.split(" + "))) == int(rhs)
            units, tens = re.findall(r"= (\d+)", text)[:2]
            assert row["answer"] == tens + str(int(units) % 10)


def test_mix_and_split_in_the_uri_and_their_errors():
    rows = load_rows(DatasetSpec(uri=f"synthetic://arithmetic?n=50&seed=1&mix={MIX}&split=train"))
    assert len(rows) == 50 and {"difficulty"} <= set(rows[0])
    for bad, message in (("mix=easy:0", "weight > 0"), ("mix=cube:1", "mix level 'cube'"), ("mix=easy", "LEVEL:WEIGHT"),
                         ("split=dev", "split must be train or test"), ("n=-1", "n must be >= 0")):
        with pytest.raises(DatasetError, match=message):
            synthetic.parse_synthetic(f"synthetic://arithmetic?{bad}")


def test_toy_uri_takes_the_warm_start_settings():
    params = parse_toy_uri(f"toy://tiny?seed=0&warm_steps=400&warm_batch=64&warm_mix={MIX}&warm_split=train")
    assert params == {"size": "tiny", "seed": 0, "warm_steps": 400, "warm_batch": 64, "warm_mix": MIX,
                      "warm_split": "train"}
    with pytest.raises(ValueError, match="must be numbers"):
        parse_toy_uri("toy://tiny?warm_batch=many")
