"""The protocol's statistics (bench/pipeline/PROTOCOL.md): mean, standard error, 95% t interval.

SE = s / sqrt(n) with the sample standard deviation (n - 1); the interval is mean +- t(0.975, n - 1) x SE
(t(0.975, 4) = 2.776 for the 5 seeds). Comparisons are paired by seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# two-sided 95% quantiles t(0.975, dof) for small samples
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def summary(values: Sequence[float]) -> dict[str, float]:
    """{"mean", "sd", "se", "ci95", "n"} of per-seed values (ci95: half-width of the interval)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n == 1:
        return {"n": 1, "mean": round(mean, 3), "sd": 0.0, "se": 0.0, "ci95": float("nan")}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    se = sd / math.sqrt(n)
    return {"n": n, "mean": round(mean, 3), "sd": round(sd, 3), "se": round(se, 3),
            "ci95": round(T975.get(n - 1, 1.96) * se, 3)}


def paired(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """The statistics of the per-seed differences a - b."""
    if len(a) != len(b):
        raise ValueError(f"{len(a)} values against {len(b)}")
    return summary([x - y for x, y in zip(a, b)])


def ratio(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """The statistics of the per-seed ratios a / b."""
    if len(a) != len(b):
        raise ValueError(f"{len(a)} values against {len(b)}")
    return summary([x / y for x, y in zip(a, b)])


def interval(stats: dict[str, float], digits: int = 1) -> str:
    """`mean ± half-width` for a table cell."""
    if stats["n"] < 2:
        return f"{stats['mean']:.{digits}f}"
    return f"{stats['mean']:.{digits}f} ± {stats['ci95']:.{digits}f}"
