"""Reading LIMR's OpenRLHF dumps: field skipping, prompt keys, epochs from step numbers, errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from limr_trainer.selection.lim import TrajectoryAccumulator
from limr_trainer.selection.readers import InputError, decode_openrlhf, openrlhf_steps, read_openrlhf

TRICKY = [
    {
        "prompt": '  Find $x$ if "x" = \\frac{1}{2}.\n',
        "response": '"reward": 1.0, "prompt": "fake" ] } \\boxed{1}',
        "reward": -0.5,
        "response_length": 9.0,
    },
    {
        "prompt": "Ünïcödé ∑ prompt",
        "response": "",
        "reward": 1.0,
        "response_length": 0.0,
        "extra": [1, {"a": 2}],
    },
    {
        "prompt": 'Find $x$ if "x" = \\frac{1}{2}.',
        "response": "x" * 10000,
        "reward": 1,
        "response_length": 3072.0,
    },
]


@pytest.mark.parametrize("indent", [None, 4])
@pytest.mark.parametrize("ascii_only", [True, False])
def test_decode_takes_prompt_and_reward_whatever_the_response_holds(indent, ascii_only):
    data = json.dumps(TRICKY, indent=indent, ensure_ascii=ascii_only).encode()
    prompts, rewards = decode_openrlhf(data)
    assert prompts == [r["prompt"] for r in TRICKY]  # as written; keys are stripped by the accumulator
    np.testing.assert_array_equal(rewards, [-0.5, 1.0, 1.0])


@pytest.mark.parametrize(
    "bad",
    [
        b'[{"prompt": "p"}]',
        b'[{"prompt": 3, "reward": 1}]',
        b'{"prompt": "p", "reward": 1}',
        b'[{"prompt": "p", "reward": 1}',
        b"",
    ],
)
def test_decode_rejects_what_is_not_a_dump(bad):
    with pytest.raises(InputError, match="step_7.json"):
        decode_openrlhf(bad, where="step_7.json")


def _write(tmp_path, steps: int) -> None:
    for n in range(1, steps + 1):
        rows = [
            {
                "prompt": f" p{(n + i) % 5} ",
                "response": "r",
                "reward": 1.0 if i % 2 else -0.5,
                "response_length": 1.0,
            }
            for i in range(6)
        ]
        (tmp_path / f"step_{n}.json").write_text(json.dumps(rows, indent=4))
    (tmp_path / "step_x.json").write_text("ignored")
    (tmp_path / "notes.txt").write_text("ignored")


def test_steps_are_numbered_from_one_and_grouped_into_epochs(tmp_path):
    _write(tmp_path, 10)
    assert [s for s, _ in openrlhf_steps(str(tmp_path), 4, None)] == list(range(1, 11))
    assert [s for s, _ in openrlhf_steps(str(tmp_path), 4, 2)] == list(range(1, 9))  # epochs 0 and 1 only
    acc = TrajectoryAccumulator()
    stats = read_openrlhf(str(tmp_path), acc, steps_per_epoch=4, max_epochs=2)
    assert (stats.files, stats.rollouts) == (8, 48)
    assert acc.epochs == [0, 1] and sorted(acc.keys) == [f"p{i}" for i in range(5)]  # stripped


@pytest.fixture(params=["fork", "in-process"])
def reader_kind(request, monkeypatch):
    """Both ways shares are read: forked readers (single-threaded caller) and, where forking is
    unsafe (other threads), the same reads in this process."""
    from limr_trainer.runtime import procpool

    if request.param == "fork" and not hasattr(os, "fork"):
        pytest.skip("no os.fork on this platform: only in-process reads can run here")
    monkeypatch.setattr(procpool, "can_fork", lambda: request.param == "fork")
    return request.param


def test_reader_processes_give_the_same_counts(tmp_path, reader_kind):
    _write(tmp_path, 16)
    one, two = TrajectoryAccumulator(), TrajectoryAccumulator()
    read_openrlhf(str(tmp_path), one, 4, None, workers=1)
    read_openrlhf(str(tmp_path), two, 4, None, workers=2)
    a, b = one.trajectories(), two.trajectories()
    order = [b.keys.index(k) for k in a.keys]
    assert a.epochs == b.epochs and one.rollouts == two.rollouts == 96
    np.testing.assert_array_equal(a.values, b.values[order])


@pytest.mark.parametrize("bad_step", [5, 6])  # read here / read by a reader process
def test_reader_process_errors_name_the_file(tmp_path, reader_kind, bad_step):
    _write(tmp_path, 16)
    (tmp_path / f"step_{bad_step}.json").write_text('[{"prompt": "p", "reward": "high"}]')
    with pytest.raises(InputError, match=f"step_{bad_step}.json"):
        read_openrlhf(str(tmp_path), TrajectoryAccumulator(), 4, None, workers=2)
    with pytest.raises(InputError, match="no step_N.json"):
        read_openrlhf(str(tmp_path / "step_x.json"), TrajectoryAccumulator(), 4, None)
