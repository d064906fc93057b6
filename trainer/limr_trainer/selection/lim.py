"""Sample selection from reward trajectories: LIM (the paper's Learning Impact Measurement), LINEAR, RANDOM.

Definitions (docs/ARCHITECTURE.md, "LIMR facts"):
- r_i^k: share of sample i's rollouts in data epoch k whose reward is exactly +1.
- Missing epochs: one left-to-right pass in which a missing epoch takes the *next* epoch's value
  when that one was observed (so two missing epochs in a row leave the first missing); samples
  still missing an epoch are dropped. r_avg^k is the mean over the kept samples.
- LIM: s_i = 1 - sum_k (r_i^k - r_avg^k)^2 / sum_k (1 - r_avg^k)^2, selected when s_i >= theta.
  An epoch where r_avg^k = 1 adds 0 to both sums (every kept sample then has r = 1 there). When
  r_avg^k = 1 in *every* epoch the ratio is 0/0; we define s_i = 1 (each trajectory is the mean).
- LINEAR: least-squares line through (k, r_i^k); score R^2 when the slope is > 0, else 0
  (a constant trajectory has slope 0 and scores 0).
- RANDOM: a seeded uniform sample, without replacement, of all samples seen in the records
  (dropped ones included), of a given size (default: the number LIM selects).

`TrajectoryAccumulator` streams (key, epoch, reward) batches into per-(sample, epoch) counters, so
memory grows with samples x epochs, never with the number or length of responses. Scoring
functions are pure numpy.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

STRATEGIES = ("lim", "linear", "random")
DEFAULT_THRESHOLD = {"lim": 0.6, "linear": 0.7}


class TrajectoryAccumulator:
    """Counts, per sample and data epoch, the rollouts and those with reward exactly +1."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._alias: dict[Callable[[str], str], dict[str, int]] = {}  # normalize -> raw key -> code
        self._keys: list[str] = []
        self._epoch_col: dict[int, int] = {}
        self._total = np.zeros((0, 0), dtype=np.int64)
        self._ones = np.zeros((0, 0), dtype=np.int64)
        self.rollouts = 0

    @property
    def keys(self) -> list[str]:
        return list(self._keys)

    @property
    def epochs(self) -> list[int]:
        return sorted(self._epoch_col)

    def add(
        self,
        keys: Sequence[str],
        epochs: int | np.ndarray,
        rewards: np.ndarray,
        normalize: Callable[[str], str] | None = None,
    ) -> None:
        """Add one batch: `keys[j]` got `rewards[j]` in data epoch `epochs[j]` (or one epoch for all).

        `normalize` (e.g. str.strip) maps raw keys to sample keys; it runs once per distinct raw key.
        Lookups go through C-level `map`, so a batch costs ~100 ns per row.
        """
        lookup = self._index if normalize is None else self._alias.setdefault(normalize, {})
        keys, runs = _runs(keys)
        codes = np.fromiter(map(lookup.get, keys, itertools.repeat(-1)), dtype=np.int64, count=len(keys))
        missing = np.flatnonzero(codes < 0)
        if len(missing):
            index = self._index
            for j in missing.tolist():
                raw = keys[j]
                code = lookup.get(raw)
                if code is None:
                    key = raw if normalize is None else normalize(raw)
                    code = lookup[raw] = index.setdefault(key, len(index))
                codes[j] = code
            if len(index) > len(self._keys):
                self._keys.extend(itertools.islice(index, len(self._keys), None))
        if runs is not None:
            codes = np.repeat(codes, runs)
        self._add_codes(codes, epochs, np.asarray(rewards))

    def add_coded(
        self, dictionary: Sequence[str], codes: np.ndarray, epochs: int | np.ndarray, rewards: np.ndarray
    ) -> None:
        """Like `add`, with keys given as `dictionary[codes[j]]` (e.g. a dictionary-encoded Arrow column)."""
        index = self._index
        remap = np.fromiter(
            (index.setdefault(k, len(index)) for k in dictionary), dtype=np.int64, count=len(dictionary)
        )
        if len(index) > len(self._keys):
            self._keys.extend(itertools.islice(index, len(self._keys), None))
        self._add_codes(remap[np.asarray(codes, dtype=np.int64)], epochs, np.asarray(rewards))

    def _add_codes(self, codes: np.ndarray, epochs: int | np.ndarray, rewards: np.ndarray) -> None:
        n = len(codes)
        if len(rewards) != n:
            raise ValueError(f"{n} keys but {len(rewards)} rewards")
        if n == 0:
            return
        if np.isscalar(epochs) or np.ndim(epochs) == 0:
            cols = np.full(n, self._column(int(epochs)), dtype=np.int64)
        else:
            epochs = np.asarray(epochs, dtype=np.int64)
            if len(epochs) != n:
                raise ValueError(f"{n} keys but {len(epochs)} epochs")
            uniq, inverse = np.unique(epochs, return_inverse=True)
            cols = np.array([self._column(int(e)) for e in uniq], dtype=np.int64)[inverse]
        self._grow(len(self._keys), len(self._epoch_col))
        ones = rewards == 1.0
        if cols.min() == cols.max():  # the common case: one file, one epoch
            col, rows = int(cols[0]), self._total.shape[0]
            self._total[:, col] += np.bincount(codes, minlength=rows)
            self._ones[:, col] += np.bincount(codes[ones], minlength=rows)
        else:
            width, size = self._total.shape[1], self._total.size
            flat = codes * width + cols
            self._total += np.bincount(flat, minlength=size).reshape(self._total.shape)
            self._ones += np.bincount(flat[ones], minlength=size).reshape(self._ones.shape)
        self.rollouts += n

    def _column(self, epoch: int) -> int:
        if epoch < 0:
            raise ValueError(f"negative epoch {epoch}")
        return self._epoch_col.setdefault(epoch, len(self._epoch_col))

    def _grow(self, rows: int, cols: int) -> None:
        r0, c0 = self._total.shape
        if rows <= r0 and cols <= c0:
            return
        r1 = r0 if rows <= r0 else max(rows, 2 * r0, 64)
        c1 = c0 if cols <= c0 else max(cols, c0 + 8)
        for name in ("_total", "_ones"):
            old = getattr(self, name)
            new = np.zeros((r1, c1), dtype=np.int64)
            new[:r0, :c0] = old
            setattr(self, name, new)

    def state(self) -> tuple[list[str], list[int], np.ndarray, np.ndarray, int]:
        """(keys, epochs, totals, ones, rollouts): everything needed to merge into another accumulator."""
        order = sorted(self._epoch_col.items())
        cols = [c for _, c in order]
        n = len(self._keys)
        return (
            list(self._keys),
            [e for e, _ in order],
            self._total[:n, cols].copy(),
            self._ones[:n, cols].copy(),
            self.rollouts,
        )

    def merge(self, state: tuple[list[str], list[int], np.ndarray, np.ndarray, int]) -> None:
        """Add the counts of another accumulator's `state()` (e.g. from a reader process)."""
        keys, epochs, total, ones, rollouts = state
        index = self._index
        rows = np.fromiter((index.setdefault(k, len(index)) for k in keys), dtype=np.int64, count=len(keys))
        if len(index) > len(self._keys):
            self._keys.extend(itertools.islice(index, len(self._keys), None))
        cols = np.array([self._column(int(e)) for e in epochs], dtype=np.int64)
        self._grow(len(self._keys), len(self._epoch_col))
        if len(rows) and len(cols):
            self._total[np.ix_(rows, cols)] += total
            self._ones[np.ix_(rows, cols)] += ones
        self.rollouts += rollouts

    def trajectories(self, max_epochs: int | None = None) -> Trajectories:
        """Per-sample shares of +1 rewards for the first `max_epochs` epochs (NaN where unobserved)."""
        order = sorted(self._epoch_col.items())
        if max_epochs is not None:
            order = order[:max_epochs]
        cols = [c for _, c in order]
        n = len(self._keys)
        total = self._total[:n, cols].astype(np.float64)
        ones = self._ones[:n, cols].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(total > 0, ones / np.where(total > 0, total, 1), np.nan)
        return Trajectories(list(self._keys), [e for e, _ in order], values)


def _runs(keys: Sequence[str]) -> tuple[Sequence[str], np.ndarray | None]:
    """(first key of each run of equal neighbours, run lengths), or (keys, None) when no key repeats
    its neighbour. OpenRLHF writes a prompt's rollouts next to each other, so hashing (the costly
    part of a lookup, ~100 ns for a 200-character prompt) then runs once per prompt, not per rollout;
    comparing neighbours is a C-level memcmp."""
    n = len(keys)
    if n < 2:
        return keys, None
    same = np.fromiter(map(operator.eq, itertools.islice(keys, 1, None), keys), dtype=bool, count=n - 1)
    if not same.any():
        return keys, None
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    heads = [keys[i] for i in starts.tolist()]
    return heads, np.diff(np.append(starts, n))


@dataclass
class Trajectories:
    """keys[i]'s share of +1 rewards in epochs[k] is values[i, k] (NaN: not observed)."""

    keys: list[str]
    epochs: list[int]
    values: np.ndarray


def fill_missing(values: np.ndarray) -> np.ndarray:
    """One left-to-right pass: a missing (NaN) epoch takes the next epoch's observed value."""
    out = np.array(values, dtype=np.float64, copy=True)
    if out.shape[1] > 1:
        take = np.isnan(values[:, :-1]) & ~np.isnan(values[:, 1:])
        out[:, :-1][take] = values[:, 1:][take]
    return out


def lim_scores(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LIM scores of complete trajectories (rows) and the mean curve they are measured against."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[0] == 0:
        return np.zeros(0), np.zeros(values.shape[1])
    mean = values.mean(axis=0)
    denom = float(np.sum((1.0 - mean) ** 2))
    num = np.sum((values - mean) ** 2, axis=1)
    if denom == 0.0:  # the mean is 1 in every epoch: every kept trajectory equals it
        return np.ones(values.shape[0]), mean
    return 1.0 - num / denom, mean


def linear_scores(values: np.ndarray) -> np.ndarray:
    """R^2 of a least-squares line through each trajectory when its slope is positive, else 0."""
    values = np.asarray(values, dtype=np.float64)
    n_epochs = values.shape[1]
    x = np.arange(n_epochs, dtype=np.float64)
    xc = x - x.mean()
    sxx = float(np.sum(xc**2))
    if values.shape[0] == 0 or sxx == 0.0:
        return np.zeros(values.shape[0])
    yc = values - values.mean(axis=1, keepdims=True)
    sxy = yc @ xc
    syy = np.sum(yc**2, axis=1)
    slope = sxy / sxx
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(syy > 0, sxy**2 / (sxx * np.where(syy > 0, syy, 1.0)), 0.0)
    return np.where(slope > 0, r2, 0.0)


def threshold_select(keys: Sequence[str], scores: Sequence[float] | np.ndarray, theta: float) -> list[str]:
    """Keys whose score is >= theta (inclusive), in input order."""
    return [k for k, s in zip(keys, np.asarray(scores, dtype=np.float64).tolist()) if s >= theta]


def random_choice(pool: Sequence[str], size: int, seed: int) -> list[str]:
    """`size` distinct keys drawn uniformly from the sorted pool with numpy's default_rng(seed)."""
    ordered = sorted(pool)
    if size < 0 or size > len(ordered):
        raise ValueError(f"random size {size} is outside 0..{len(ordered)} (samples available)")
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(ordered), size=size, replace=False)
    return [ordered[i] for i in sorted(picked.tolist())]


@dataclass
class SelectionResult:
    strategy: str
    threshold: float | None
    keys: list[str]  # kept (scored) samples, in first-seen order
    scores: np.ndarray  # the strategy's score (LIM's for random), aligned with keys
    values: np.ndarray  # filled trajectories of the kept samples
    mean_curve: np.ndarray
    epochs: list[int]
    dropped: list[str]
    selected: list[str]
    lim_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    size: int | None = None
    seed: int | None = None


def select(
    traj: Trajectories,
    strategy: str = "lim",
    threshold: float | None = None,
    size: int | None = None,
    seed: int = 0,
) -> SelectionResult:
    """Fill, drop, score and select per `strategy`."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    filled = fill_missing(traj.values)
    keep = ~np.isnan(filled).any(axis=1) if filled.shape[1] else np.zeros(len(traj.keys), bool)
    kept_keys = [k for k, m in zip(traj.keys, keep) if m]
    dropped = [k for k, m in zip(traj.keys, keep) if not m]
    values = filled[keep]
    lim, mean = lim_scores(values)
    if strategy == "random":
        theta = None
        n = size if size is not None else int(np.sum(lim >= DEFAULT_THRESHOLD["lim"]))
        selected = random_choice(traj.keys, n, seed)
        return SelectionResult(
            strategy, None, kept_keys, lim, values, mean, traj.epochs, dropped, selected, lim, n, seed
        )
    theta = DEFAULT_THRESHOLD[strategy] if threshold is None else float(threshold)
    scores = lim if strategy == "lim" else linear_scores(values)
    selected = threshold_select(kept_keys, scores, theta)
    return SelectionResult(
        strategy, theta, kept_keys, scores, values, mean, traj.epochs, dropped, selected, lim
    )
