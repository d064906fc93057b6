"""`limr run`'s progress when the output is not a terminal: plain lines, not bars."""

from __future__ import annotations

import io

from limr_trainer.pipeline import local
from rich.console import Console


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_pipe_gets_plain_lines_and_a_terminal_gets_bars():
    piped = Console(file=io.StringIO(), force_terminal=False)
    assert isinstance(local.progress_view(piped, 3), local.PlainProgress)
    tty = Console(file=io.StringIO(), force_terminal=True)
    assert isinstance(local.progress_view(tty, 3), local.ProgressView)


def test_plain_progress_prints_phases_throttled_steps_logs_and_summaries():
    out = io.StringIO()
    clock = Clock()
    view = local.PlainProgress(Console(file=out, force_terminal=False, width=60), 2, every=10.0, clock=clock)
    with view:
        view("baseline", "step", {"step": 1, "total": 4})  # before begin: ignored
        view.begin("baseline")
        for step in range(1, 6):
            clock.now += 4.0 if step < 5 else 1.0
            view("baseline", "step", {"step": step, "total": 5, "reward_mean": 0.25, "accuracy": 0.5})
        view("baseline", "log", {"message": "held-out accuracy after step 5: 40.0%"})
        view.finish("baseline", {"steps": 5, "seconds": 17.0})
        view.begin("evaluation")
        view("evaluation", "step", {"done": 64, "total": 200, "arm": "lim", "benchmark": "heldout"})
        view.finish("evaluation", {"seconds": 3.0})
    lines = out.getvalue().splitlines()
    assert lines == [
        "[1/2] baseline: started",
        "  baseline: 1/5 reward_mean 0.250 accuracy 0.500 (4 s)",  # the first step always shows
        "  baseline: 4/5 reward_mean 0.250 accuracy 0.500 (16 s)",  # 10 s or more after the last line
        "  baseline: 5/5 reward_mean 0.250 accuracy 0.500 (17 s)",  # the last step always shows
        "  baseline: held-out accuracy after step 5: 40.0%",
        "[1/2] baseline: 5 steps, 17 s",
        "[2/2] evaluation: started",
        "  evaluation: 64/200 benchmark heldout arm lim (0 s)",
        "[2/2] evaluation: 3 s",
    ]
    assert not any("\x1b[" in line for line in lines)  # no escape codes in a log file
