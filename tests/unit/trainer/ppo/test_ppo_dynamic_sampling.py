"""DAPO-style dynamic sampling (filterUniformGroups): which groups train, and how an experience is cut."""

import torch
from limr_trainer.ppo.trainer import Experience, dynamic_sample_choice, uniform_groups
from limr_trainer.reward import RewardResult


def test_groups_whose_samples_all_agree_carry_no_signal():
    assert uniform_groups([[1, 1, 1], [1, -0.5, 1], [-1, -1, -1], [-0.5]]) == [True, False, True, True]


def test_informative_groups_first_then_uniform_fillers_keep_the_update_size():
    assert dynamic_sample_choice([True, False, False, True, False], want=2) == ([1, 2], 0)
    assert dynamic_sample_choice([True, False, True, True], want=3) == ([1, 0, 2], 2)


def _exp() -> Experience:
    rows = [{"id": "a"}, {"id": "b"}]
    groups = [["a0", "a1"], ["b0", "b1", "b2"]]
    flat = [(rows[0], 0, "a0"), (rows[0], 1, "a1"), (rows[1], 0, "b0"), (rows[1], 1, "b1"), (rows[1], 2, "b2")]
    res = [RewardResult(r, r == 1.0, "x") for r in (1.0, 1.0, 1.0, -0.5, -1.0)]
    return Experience(3, 0, rows, groups, flat, res, torch.tensor([1.0, 1.0, 1.0, -0.5, -1.0]))


def test_take_and_extend_keep_rows_samples_and_scores_aligned():
    exp = _exp()
    assert exp.group_rewards() == [[1.0, 1.0], [1.0, -0.5, -1.0]]
    only_b = exp.take([1])
    assert only_b.rows == [{"id": "b"}] and [c for _, _, c in only_b.flat] == ["b0", "b1", "b2"]
    assert only_b.scores.tolist() == [1.0, -0.5, -1.0]
    both = only_b.extend(exp.take([0]))
    assert [r["id"] for r in both.rows] == ["b", "a"] and both.scores.tolist() == [1.0, -0.5, -1.0, 1.0, 1.0]
