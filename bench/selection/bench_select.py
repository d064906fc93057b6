"""Selection benchmark: `limr select --format openrlhf` vs the LIMR-style baseline, side by side.

For each dump folder: run each tool `--repeats` times (alternating, so both see the same page
cache), each in a fresh process under /usr/bin/time; report the best wall time and the peak RSS;
check that both give the same scores. Prints a Markdown table.
    python bench/selection/bench_select.py /tmp/limr_dumps_1000 /tmp/limr_dumps_3000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MB of the largest process, user+sys CPU seconds) under /usr/bin/time.

    CPU time is reported too because the machine is shared: wall time moves with other load.
    (Reader subprocesses are waited for, so their CPU time is included.)
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        proc = subprocess.run(
            ["/usr/bin/time", "-o", t.name, "-f", "%e %M %U %S", *cmd],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode:
            raise RuntimeError(f"{cmd} failed: {proc.stderr[-2000:]}")
        wall, kb, user, sys_ = t.read().split()[-4:]
    return float(wall), int(kb) / 1024, float(user) + float(sys_)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("dumps", nargs="+")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument(
        "--no-plots-workers", type=int, nargs="*", default=[1], help="also run these with --no-plots"
    )
    a = p.parse_args()
    py = sys.executable
    rows = []
    for d in a.dumps:
        size = sum(f.stat().st_size for f in Path(d).glob("step_*.json")) / 2**30
        work = Path(tempfile.mkdtemp(prefix="bench-select-"))
        cmds = {
            "baseline (json.load, lists/dicts)": [
                py,
                str(HERE / "baseline_limr_style.py"),
                "--input",
                d,
                "--output",
                str(work / "baseline.json"),
            ],
        }
        variants = [(w, "") for w in a.workers] + [(w, " --no-plots") for w in a.no_plots_workers]
        for w, extra in variants:
            cmds[f"limr select --workers {w}{extra}"] = [
                py,
                "-m",
                "limr_trainer.cli",
                "select",
                "--input",
                d,
                "--format",
                "openrlhf",
                "--steps-per-epoch",
                "8",
                "--max-epochs",
                "21",
                "--workers",
                str(w),
                *extra.split(),
                "--output",
                str(work / f"ours{w}{extra.strip()}"),
            ]
        runs: dict[str, list] = {name: [] for name in cmds}
        for _ in range(a.repeats):  # alternate, so every tool sees the same page cache and load
            for name, cmd in cmds.items():
                runs[name].append(timed(cmd))
        ref = json.loads((work / "baseline.json").read_text())
        for w, extra in variants:
            got = {}
            for line in (work / f"ours{w}{extra.strip()}" / "scores.jsonl").read_text().splitlines():
                r = json.loads(line)
                got[r["prompt"]] = r["score"]
            same = got.keys() == ref.keys() and all(abs(got[k] - ref[k]) < 1e-9 for k in ref)
            assert same, f"scores differ from the baseline on {d}"
        base_wall = min(r[0] for r in runs[next(iter(cmds))])
        for name, rs in runs.items():
            wall, rss, cpu = min(r[0] for r in rs), max(r[1] for r in rs), min(r[2] for r in rs)
            rows.append((os.path.basename(d), size, name, wall, cpu, rss, base_wall / wall))
            print(f"{d} {name}: {wall:.2f}s wall, {cpu:.2f}s cpu, {rss:.0f} MB", flush=True)
    print(
        f"\n| dumps | size | tool | wall (best of {a.repeats}) | CPU user+sys | peak RSS | speed-up vs baseline (wall) |"
    )
    print("|---|---|---|---|---|---|---|")
    for d, size, name, wall, cpu, rss, up in rows:
        print(f"| {d} | {size:.2f} GiB | {name} | {wall:.2f} s | {cpu:.2f} s | {rss:,.0f} MB | {up:.1f}x |")
    print("\nscores: identical to the baseline's (|diff| < 1e-9) for every run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
