"""PNG plots of a selection: trajectories against the mean curve (the paper's Figure 2b) and the
score histogram with the threshold. Matplotlib's Agg canvas, no global pyplot state; returns bytes
so callers can put them in any storage. `BackgroundPlots` renders them in a forked process that
imports matplotlib (~0.3 s) while the caller is still reading and scoring.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from limr_trainer.runtime.procpool import ForkedCall

LEVELS = (0.9, 0.6, 0.3, 0.0, -1.0)


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    # fixed margins that fit the labels: one draw, where bbox_inches="tight" needs two
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.12, top=0.92)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def pick_examples(scores: np.ndarray, levels: Sequence[float] = LEVELS) -> list[int]:
    """Index of the sample whose score is closest to each level (distinct, in level order)."""
    picked: list[int] = []
    for level in levels:
        if len(scores) == 0:
            break
        order = np.argsort(np.abs(scores - level), kind="stable")
        for i in order:
            if int(i) not in picked:
                picked.append(int(i))
                break
    return picked


def trajectories_png(
    values: np.ndarray, scores: np.ndarray, mean_curve: np.ndarray, epochs: Sequence[int], title: str = ""
) -> bytes:
    """Mean learning curve (bold) and sample trajectories at several score levels."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    x = np.arange(1, len(epochs) + 1)
    for i in pick_examples(scores):
        ax.plot(x, values[i], marker="o", ms=3, lw=1.2, alpha=0.85, label=f"score {scores[i]:.2f}")
    if len(mean_curve):
        ax.plot(x, mean_curve, color="black", lw=3, label="mean of kept samples")
    ax.set_xlabel("data epoch")
    ax.set_ylabel("share of rollouts with reward +1")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(title or "Reward trajectories vs the average learning curve")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


def histogram_png(scores: np.ndarray, threshold: float | None, selected: int, title: str = "") -> bytes:
    """Histogram of scores with the threshold as a vertical line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    if len(scores):
        ax.hist(scores, bins=60, color="#4c72b0", alpha=0.85)
    if threshold is not None:
        ax.axvline(
            threshold, color="#c44e52", lw=2, ls="--", label=f"threshold {threshold:g} ({selected} selected)"
        )
        ax.legend(fontsize=8)
    ax.set_xlabel("score")
    ax.set_ylabel("samples")
    ax.set_title(title or f"Score distribution ({len(scores)} scored)")
    ax.grid(alpha=0.3)
    return _png(fig)


def render(jobs: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, bytes]:
    """{name: (renderer, kwargs)} -> {name: png}; renderer is "trajectories" or "histogram"."""
    renderers = {"trajectories": trajectories_png, "histogram": histogram_png}
    return {name: renderers[fn](**kwargs) for name, (fn, kwargs) in jobs.items()}


def _import_matplotlib() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401


class BackgroundPlots:
    """Context manager: a forked child imports matplotlib at once, then renders what `render` sends
    (`runtime.procpool.ForkedCall`; in this process where forking is unsafe or disabled)."""

    def __init__(self, enabled: bool = True) -> None:
        self._call = ForkedCall(render, warm=_import_matplotlib) if enabled else None

    def render(self, jobs: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, bytes]:
        if self._call is None:
            return render(jobs)
        call, self._call = self._call, None
        return call.send(jobs).result()

    def close(self) -> None:
        if self._call is not None:
            self._call.close()
            self._call = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
