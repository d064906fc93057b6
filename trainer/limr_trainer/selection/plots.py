"""PNG plots of a selection: trajectories against the mean curve (the paper's Figure 2b) and the
score histogram with the threshold. Matplotlib's Agg canvas, no global pyplot state; returns bytes
so callers can put them in any storage. `BackgroundPlots` renders them in a forked process that
imports matplotlib (~0.3 s) while the caller is still reading and scoring.
"""

from __future__ import annotations

import io
import os
import pickle
import threading
from collections.abc import Sequence
from typing import Any, Self

import numpy as np

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


class BackgroundPlots:
    """Context manager: a forked child imports matplotlib at once, then renders what `render` sends.

    Only forks when the caller has a single thread (a lock held by another thread would stay held
    in the child); otherwise, or if the child fails, `render` draws in this process.
    """

    def __init__(self, enabled: bool = True) -> None:
        self._pid = 0
        self._fds: list[int] = []
        if enabled and hasattr(os, "fork") and threading.active_count() == 1:
            self._start()

    def _start(self) -> None:
        req_r, req_w = os.pipe()
        res_r, res_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                os.close(req_w)
                os.close(res_r)
                _serve(req_r, res_w)
                status = 0
            finally:
                os._exit(status)
        os.close(req_r)
        os.close(res_w)
        self._pid, self._fds = pid, [req_w, res_r]

    def render(self, jobs: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, bytes]:
        if not self._pid:
            return render(jobs)
        req_w, res_r = self._fds
        self._fds = []
        with os.fdopen(req_w, "wb") as f:
            try:
                pickle.dump(jobs, f, protocol=pickle.HIGHEST_PROTOCOL)
            except BrokenPipeError:
                pass
        with os.fdopen(res_r, "rb") as f:
            data = f.read()
        pid, self._pid = self._pid, 0
        _, status = os.waitpid(pid, 0)
        if status == 0 and data:
            ok, result = pickle.loads(data)
            if ok:
                return result
        return render(jobs)  # the child failed: draw here (a real error then raises here)

    def close(self) -> None:
        for fd in self._fds:  # the child sees EOF and exits
            os.close(fd)
        self._fds = []
        if self._pid:
            os.waitpid(self._pid, 0)
            self._pid = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve(req_r: int, res_w: int) -> None:
    """Child side: import matplotlib while the parent works, then render one request."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401

    with os.fdopen(req_r, "rb") as f:
        data = f.read()
    if not data:  # the parent gave up (bad input): nothing to draw
        return
    try:
        payload: tuple[bool, Any] = (True, render(pickle.loads(data)))
    except Exception as e:  # noqa: BLE001 - the parent redraws in-process and raises it there
        payload = (False, repr(e))
    with os.fdopen(res_w, "wb") as f:
        pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
