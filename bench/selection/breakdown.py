"""Where `limr select --format openrlhf` spends its CPU time, stage by stage, in one process.

Each stage is timed with `time.process_time()` (CPU seconds, so other load on the machine matters
less than for wall time), best of --repeats, over all step files of a dump folder:
interpreter start + imports (a fresh `python -c`), file reads into one reused buffer, the msgspec
scan alone (`list[Raw]`: finds where each record ends, builds no fields: the floor for this
decoder), our decode (prompt strings + rewards), accumulation into counters, scoring + output
files, matplotlib's import (a fresh process) and the two PNGs.
    python bench/selection/breakdown.py /tmp/limr_dumps_1000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import msgspec
from limr_trainer.selection.lim import TrajectoryAccumulator, select
from limr_trainer.selection.plots import render
from limr_trainer.selection.readers import _FileReader, decode_openrlhf, open_input, openrlhf_steps


def best(fn, repeats: int, setup=None) -> float:
    out = float("inf")
    for _ in range(repeats):
        if setup is not None:
            setup()
        t = time.process_time()
        fn()
        out = min(out, time.process_time() - t)
    return out


def child_cpu(code: str, repeats: int) -> float:
    """CPU seconds (user+sys) of a fresh interpreter running `code`."""
    out = float("inf")
    for _ in range(repeats):
        r = subprocess.run(
            [sys.executable, "-c", f"import os,time\n{code}\nt=os.times()\nprint(t.user+t.system)"],
            capture_output=True,
            text=True,
            check=True,
        )
        out = min(out, float(r.stdout.split()[-1]))
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("dumps")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    uri = str(Path(a.dumps).resolve())
    steps = openrlhf_steps(uri, 8, 21)
    reader = _FileReader(open_input(uri))
    size = sum(len(reader.read(k)) for _, k in steps) / 1e9
    raw = msgspec.json.Decoder(list[msgspec.Raw])

    def read_only():
        for _, k in steps:
            reader.read(k)

    sample = [(step, bytes(reader.read(k))) for step, k in steps[:24]]  # decode stages: 24 files
    scale = len(steps) / len(sample)  # in memory, scaled to all files

    def scan_floor():
        for _, data in sample:
            raw.decode(data)

    def decode_ours():
        for _, data in sample:
            decode_openrlhf(data)

    decoded = []

    def fresh():  # new prompt strings each time: a str caches its hash, and the reader's never have one
        decoded[:] = [(step, decode_openrlhf(data)) for step, data in sample]

    def accumulate():
        acc = TrajectoryAccumulator()
        for step, (prompts, rewards) in decoded:
            acc.add(prompts, (step - 1) // 8, rewards, normalize=str.strip)

    rows = {
        "interpreter + numpy/msgspec/limr imports": child_cpu("import limr_trainer.selection", a.repeats),
        "file reads (readinto one buffer)": best(read_only, a.repeats),
        "msgspec scan alone, list[Raw] (decoder floor)": best(scan_floor, a.repeats) * scale,
        "our decode (Struct: prompt str + reward)": best(decode_ours, a.repeats) * scale,
        "accumulate (prompt -> code, bincount)": best(accumulate, a.repeats, fresh) * scale,
    }
    full = TrajectoryAccumulator()
    for step, k in steps:
        prompts, rewards = decode_openrlhf(reader.read(k))
        full.add(prompts, (step - 1) // 8, rewards, normalize=str.strip)
    result = select(full.trajectories(21))
    rows["score + select"] = best(lambda: select(full.trajectories(21)), a.repeats)
    rows["matplotlib import (fresh process, minus interpreter)"] = child_cpu(
        "from matplotlib.figure import Figure\nfrom matplotlib.backends.backend_agg import FigureCanvasAgg",
        a.repeats,
    ) - child_cpu("pass", a.repeats)
    jobs = {
        "t": (
            "trajectories",
            {
                "values": result.values,
                "scores": result.lim_scores,
                "mean_curve": result.mean_curve,
                "epochs": result.epochs,
            },
        ),
        "h": (
            "histogram",
            {"scores": result.scores, "threshold": result.threshold, "selected": len(result.selected)},
        ),
    }
    render(jobs)
    rows["two PNGs (render)"] = best(lambda: render(jobs), a.repeats)
    print(f"{a.dumps}: {len(steps)} files, {size:.2f} GB")
    print(f"| stage | CPU s (best of {a.repeats}) |")
    print("|---|---|")
    for name, sec in rows.items():
        print(f"| {name} | {sec:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
