"""Run the `make demo` job (manifests/examples/tiny-local.yaml) under several seeds and tabulate.

For each seed S the job is copied with metadata.name tiny-seedS, ppo.seed S, selection.seed S and
storage under --out; `limr run` runs it to the report (wall time measured around the whole
command, toy model build included only for the first seed unless --fresh-cache). The outcome of
every run (selection counts, accuracy per arm) goes to a Markdown table on stdout.

    .venv/bin/python bench/pipeline/run_seeds.py --seeds 0 1 2 --out /tmp/limr-bench
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "manifests/examples/tiny-local.yaml"


def run_seed(seed: int, out: Path, env: dict) -> dict:
    job = yaml.safe_load(JOB.read_text())
    name = f"tiny-seed{seed}"
    job["metadata"]["name"] = name
    job["spec"]["ppo"]["seed"] = seed
    job["spec"]["selection"]["seed"] = seed
    job["spec"]["storage"]["uri"] = str(out / "runs")
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job))
    start = time.time()
    with (out / f"{name}.log").open("w") as log:
        rc = subprocess.call([sys.executable, "-m", "limr_trainer", "run", str(path)], cwd=REPO, env=env,
                             stdout=log, stderr=subprocess.STDOUT)
    wall = time.time() - start
    root = out / "runs" / name
    report = json.loads((root / "evaluation/report/report.json").read_text()) if rc == 0 else None
    return {"seed": seed, "rc": rc, "wall_s": round(wall, 1), "report": report}


def table(results: list[dict]) -> str:
    lines = ["| seed | wall (s) | selected / total | " + "base | full | LIM | random | linear" + " |", "|---" * 8 + "|"]
    for r in results:
        if r["report"] is None:
            lines.append(f"| {r['seed']} | {r['wall_s']} | failed rc={r['rc']} |" + " |" * 5)
            continue
        sel = r["report"]["selection"] or {}
        avg = {row["arm"]: row["average"] for row in r["report"]["rows"]}
        cells = [f"{100 * avg[a]:.1f}" if avg.get(a) is not None else "-"
                 for a in ("base", "full", "lim", "random", "linear")]
        lines.append(f"| {r['seed']} | {r['wall_s']} | {sel.get('selected')} / {sel.get('total')} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("/tmp/limr-bench"))
    parser.add_argument("--fresh-cache", action="store_true", help="build the toy model for every seed")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in args.seeds:
        env = dict(os.environ)
        if args.fresh_cache:
            env["LIMR_CACHE"] = str(args.out / f"cache-{seed}")
        results.append(run_seed(seed, args.out, env))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "report"}), flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(table(results))
    return 0 if all(r["rc"] == 0 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
