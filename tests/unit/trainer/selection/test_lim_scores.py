"""LIM / linear / random on hand-computed trajectories, and the streaming accumulator."""

from __future__ import annotations

import numpy as np
import pytest
from limr_trainer.selection import lim

NAN = np.nan


def test_fill_is_one_left_to_right_pass_from_the_next_epoch():
    values = np.array(
        [
            [NAN, 0.5, 1.0],  # first epoch missing: takes epoch 2's value
            [0.25, NAN, 0.75],  # middle missing: takes epoch 3's value
            [NAN, NAN, 1.0],  # two in a row: only the second is filled -> dropped
            [0.5, 0.5, NAN],  # last epoch missing: nothing to take -> dropped
        ]
    )
    filled = lim.fill_missing(values)
    np.testing.assert_array_equal(filled[0], [0.5, 0.5, 1.0])
    np.testing.assert_array_equal(filled[1], [0.25, 0.75, 0.75])
    assert np.isnan(filled[2, 0]) and filled[2, 1] == 1.0
    assert np.isnan(filled[3, 2])
    assert np.isnan(values[0, 0])  # input untouched


def test_lim_score_hand_computed_with_drops():
    traj = lim.Trajectories(
        keys=["a", "b", "c", "d"],
        epochs=[0, 1],
        values=np.array([[0.0, 0.5], [0.5, 1.0], [NAN, NAN], [1.0, NAN]]),
    )
    r = lim.select(traj, "lim", threshold=0.6)
    assert r.keys == ["a", "b"] and r.dropped == ["c", "d"]
    # mean = [0.25, 0.75]; denominator = 0.75^2 + 0.25^2 = 0.625
    np.testing.assert_allclose(r.mean_curve, [0.25, 0.75])
    # a: (0.25^2 + 0.25^2) / 0.625 = 0.2 -> 0.8 ; b: same distances -> 0.8
    np.testing.assert_allclose(r.scores, [0.8, 0.8])
    assert r.selected == ["a", "b"]


def test_threshold_boundary_is_inclusive():
    assert lim.threshold_select(["x", "y", "z"], [0.6, 0.5999999, 0.61], 0.6) == ["x", "z"]
    # a score computed to exactly theta is selected
    values = np.array([[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]])  # mean 0.5: denominator 0.5
    scores, _ = lim.lim_scores(values)
    np.testing.assert_allclose(scores, [0.0, 0.0, 1.0])
    assert lim.threshold_select(["lo", "hi", "mid"], scores, 0.0) == ["lo", "hi", "mid"]


def test_all_equal_curves_score_one():
    values = np.tile([0.1, 0.4, 0.9], (5, 1))
    scores, mean = lim.lim_scores(values)
    np.testing.assert_allclose(scores, 1.0)
    np.testing.assert_allclose(mean, [0.1, 0.4, 0.9])


def test_an_epoch_with_mean_one_adds_nothing():
    values = np.array([[0.0, 1.0], [0.5, 1.0]])  # epoch 2: everyone solved everything
    scores, _ = lim.lim_scores(values)
    # mean [0.25, 1]; denominator 0.75^2 = 0.5625; numerators 0.0625 each
    np.testing.assert_allclose(scores, 1 - 0.0625 / 0.5625)


def test_mean_one_in_every_epoch_is_defined_as_score_one():
    scores, mean = lim.lim_scores(np.ones((3, 4)))
    np.testing.assert_array_equal(scores, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(mean, np.ones(4))


def test_no_kept_samples():
    r = lim.select(lim.Trajectories(["a"], [0, 1], np.array([[0.5, NAN]])), "lim")
    assert r.keys == [] and r.dropped == ["a"] and r.selected == []


def test_linear_scores():
    x = np.arange(5.0)
    values = np.array([x / 4, x[::-1] / 4, np.full(5, 0.3), [0.0, 0.5, 0.25, 0.75, 1.0]])
    s = lim.linear_scores(values)
    assert s[0] == pytest.approx(1.0)  # perfect rise
    assert s[1] == 0.0 and s[2] == 0.0  # falling, constant
    y = values[3]
    slope, intercept = np.polyfit(x, y, 1)
    r2 = 1 - np.sum((y - (slope * x + intercept)) ** 2) / np.sum((y - y.mean()) ** 2)
    assert s[3] == pytest.approx(r2)
    traj = lim.Trajectories(list("abcd"), list(range(5)), values)
    assert lim.select(traj, "linear").selected == ["a", "d"]  # default theta 0.7; r2(d) = 0.8


def test_random_is_seeded_uniform_and_defaults_to_lim_size():
    rng = np.random.default_rng(0)
    values = rng.random((200, 6))
    traj = lim.Trajectories([f"k{i}" for i in range(200)], list(range(6)), values)
    n_lim = len(lim.select(traj, "lim").selected)
    r1 = lim.select(traj, "random", seed=5)
    r2 = lim.select(traj, "random", seed=5)
    r3 = lim.select(traj, "random", seed=6)
    assert len(r1.selected) == n_lim and r1.selected == r2.selected != r3.selected
    assert len(set(r1.selected)) == n_lim
    assert len(lim.select(traj, "random", size=17, seed=1).selected) == 17
    with pytest.raises(ValueError):
        lim.select(traj, "random", size=201)
    with pytest.raises(ValueError):
        lim.select(traj, "magic")


def test_accumulator_counts_exactly_plus_one_and_streams():
    acc = lim.TrajectoryAccumulator()
    acc.add(["a", "a", "b", "b"], 0, np.array([1.0, -0.5, 1.0, 1.0]))
    acc.add(["a", "b"], np.array([1, 1]), np.array([-1.0, 0.9999]))  # 0.9999 is not +1
    acc.add(["c"], 1, np.array([1.0]))
    t = acc.trajectories()
    assert t.keys == ["a", "b", "c"] and t.epochs == [0, 1]
    np.testing.assert_array_equal(t.values[:2], [[0.5, 0.0], [1.0, 0.0]])
    assert np.isnan(t.values[2, 0]) and t.values[2, 1] == 1.0
    assert acc.rollouts == 7


def test_accumulator_batches_equal_one_shot_and_coded_path():
    rng = np.random.default_rng(1)
    keys = [f"p{int(i)}" for i in rng.integers(0, 300, 5000)]
    epochs = rng.integers(0, 30, 5000)  # more epochs and samples than the first allocation
    rewards = rng.choice([1.0, -0.5, -1.0], 5000)
    one = lim.TrajectoryAccumulator()
    one.add(keys, epochs, rewards)
    many = lim.TrajectoryAccumulator()
    for s in range(0, 5000, 333):
        many.add(keys[s : s + 333], epochs[s : s + 333], rewards[s : s + 333])
    coded = lim.TrajectoryAccumulator()
    for s in range(0, 5000, 1000):
        d, codes = np.unique(np.array(keys[s : s + 1000]), return_inverse=True)
        coded.add_coded(d.tolist(), codes, epochs[s : s + 1000], rewards[s : s + 1000])
    a, b, c = one.trajectories(), many.trajectories(), coded.trajectories()
    assert a.keys == b.keys and a.epochs == b.epochs == list(range(30))
    np.testing.assert_array_equal(a.values, b.values)
    order = [c.keys.index(k) for k in a.keys]
    np.testing.assert_array_equal(a.values, c.values[order])
    assert len(one.trajectories(max_epochs=21).epochs) == 21


def test_accumulator_memory_is_samples_by_epochs():
    acc = lim.TrajectoryAccumulator()
    for step in range(50):
        acc.add(["only"] * 1000, step % 5, np.ones(1000))
    assert acc._total.size <= 64 * 8


def test_accumulator_runs_of_equal_keys_count_like_scattered_keys():
    """Rollouts written next to each other (one lookup per run) count exactly as shuffled ones."""
    rng = np.random.default_rng(3)
    keys = [f"  p{i % 7} " for i in range(40) for _ in range(rng.integers(1, 5))]  # runs of 1..4
    keys += ["x", "x", "y"]  # a new key inside a batch, then a run ending the batch
    rewards = rng.choice([1.0, 0.0, -1.0, 0.5], size=len(keys))
    grouped, shuffled = lim.TrajectoryAccumulator(), lim.TrajectoryAccumulator()
    grouped.add(keys, 0, rewards, normalize=str.strip)
    order = rng.permutation(len(keys))
    shuffled.add([keys[i] for i in order], 0, rewards[order], normalize=str.strip)
    a, b = grouped.trajectories(), shuffled.trajectories()
    assert sorted(a.keys) == sorted(b.keys) == sorted({k.strip() for k in keys})
    np.testing.assert_array_equal(a.values[[a.keys.index(k) for k in b.keys]], b.values)
    assert grouped.rollouts == shuffled.rollouts == len(keys)
