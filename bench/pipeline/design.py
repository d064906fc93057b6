"""Design runs of the toy (bench/pipeline/PROTOCOL.md): does RL on it generalise to held-out questions?

One configuration = the `make demo` job (manifests/examples/tiny-local.yaml) with `--set` edits,
trained as the baseline only (FULL: every training question) and evaluated with the base model, over
the design seeds (100-104 by default, never the study's 0-4). Each run is a real `limr run`. The
outcome (held-out accuracy in percent per seed, the paired difference FULL - base with its standard
error, the verdict "generalises" when the difference exceeds 2 SE) is printed and appended to
`bench/pipeline/results/design.jsonl`, from which RESULTS.md's table of every configuration tried is
written.

    nice -n 5 .venv/bin/python bench/pipeline/design.py --name v1 --seeds 100 101 102 103 104
    nice -n 5 .venv/bin/python bench/pipeline/design.py --name v1-grpo --set spec.ppo.advantageEstimator=grpo
    .venv/bin/python bench/pipeline/design.py --table     # the table of every configuration tried
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stats import paired, summary
from toyjobs import REPO, arm_accuracy, demo_job, done, run_job, set_path

RESULTS = REPO / "bench/pipeline/results/design.jsonl"


def parse_sets(items: list[str]) -> dict[str, object]:
    out = {}
    for item in items:
        path, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected PATH=VALUE")
        out[path] = yaml.safe_load(raw)
    return out


def design_job(name: str, seed: int, sets: dict[str, object], out: Path) -> dict:
    """The demo job with the edits, as a baseline-only run (FULL) evaluated next to the base model."""
    job = demo_job()
    job["metadata"]["name"] = name
    for path, value in sets.items():
        set_path(job, path, value)
    spec = job["spec"]
    spec["ppo"]["seed"] = seed
    spec["selection"] = {"enabled": False}
    spec["retrain"] = {"enabled": False}
    spec["evaluation"].pop("everySteps", None)
    spec["storage"]["uri"] = str(out / "runs")
    return job


def described(job: dict) -> dict:
    """What a configuration is, in the fields the design changes (for the table of RESULTS.md)."""
    spec = job["spec"]
    ppo = spec["ppo"]
    return {"model": spec["model"]["name"], "dataset": spec["dataset"]["uri"],
            "heldout": spec["evaluation"]["benchmarks"][0]["uri"], "epochs": spec["baseline"]["epochs"],
            "temperature": spec["rollout"]["sampling"]["temperature"],
            **{k: ppo.get(k) for k in ("advantageEstimator", "actorLearningRate", "criticLearningRate", "klCoef",
                                       "rolloutBatchSize", "samplesPerPrompt", "trainBatchSize", "generateMaxLength")}}


def lim_selection(job: dict, root: Path) -> dict:
    """What LIM (threshold 0.6) would select from the baseline's records, per difficulty of the toy task."""
    from limr_trainer.data.synthetic import synthetic_rows
    from limr_trainer.selection.core import SelectionConfig, build_outputs

    files = build_outputs(SelectionConfig(input=str(root / "baseline/rewards"), no_plots=True))
    chosen = {str(r["prompt_id"]) for r in json.loads(files["selected.json"])}
    rows = synthetic_rows(job["spec"]["dataset"]["uri"])
    levels: dict[str, list[int]] = {}
    for row in rows:
        level = levels.setdefault(row["difficulty"], [0, 0])
        level[0] += row["id"] in chosen
        level[1] += 1
    return {"selected": len(chosen), "total": len(rows), "by_difficulty": levels}


def run(job: dict, out: Path, env: dict) -> dict:
    rc, wall = run_job(job, out, env)
    if rc != 0:
        return {"rc": rc, "wall_s": round(wall, 1)}
    root = out / "runs" / job["metadata"]["name"]
    baseline = done(root, "baseline")
    return {"rc": 0, "wall_s": round(wall, 1), "base": arm_accuracy(root, "base"), "full": arm_accuracy(root, "full"),
            "steps": baseline.get("steps"), "train_accuracy_last": baseline.get("accuracy_last"),
            "lim": lim_selection(job, root)}


def lim_text(selections: list[dict]) -> str:
    """`18% (sum2 13/25, easy 4/40, prod2 0/31)`: mean share selected, and per difficulty (summed over seeds)."""
    share = sum(s["selected"] / s["total"] for s in selections) / len(selections)
    levels: dict[str, list[int]] = {}
    for s in selections:
        for name, (chosen, total) in s["by_difficulty"].items():
            acc = levels.setdefault(name, [0, 0])
            acc[0] += chosen
            acc[1] += total
    parts = ", ".join(f"{name} {c}/{t}" for name, (c, t) in sorted(levels.items()))
    return f"{100 * share:.0f}% ({parts})"


def table(records: list[dict]) -> str:
    """Every configuration tried, as the Markdown table of RESULTS.md."""
    lines = ["| config | what it tries | seeds | base | FULL | FULL - base (± 2 SE) | LIM selects | verdict |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for r in records:
        base, full = summary(r["base"]) if r["base"] else None, summary(r["full"]) if r["full"] else None
        diff = r.get("full_minus_base")
        cells = [r["name"], r["note"], ", ".join(map(str, r["seeds"])) or "-",
                 f"{base['mean']:.1f}" if base else "-", f"{full['mean']:.1f}" if full else "-",
                 f"{diff['mean']:+.1f} ± {2 * diff['se']:.1f}" if diff else
                 (f"{full['mean'] - base['mean']:+.1f} (one seed)" if base and full else "-"),
                 r.get("lim_selects", "-"), r["verdict"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main() -> int:
    if sys.argv[1:] == ["--table"]:
        print(table([json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="name of the configuration (a DNS label)")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", help="edit of the demo job")
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102, 103, 104])
    parser.add_argument("--out", type=Path, default=Path("/tmp/limr-design"))
    parser.add_argument("--note", default="", help="what this configuration tries")
    parser.add_argument("--no-record", action="store_true", help="do not append to results/design.jsonl")
    args = parser.parse_args()
    sets = parse_sets(args.set)
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    per_seed = []
    for seed in args.seeds:
        job = design_job(f"d-{args.name}-s{seed}", seed, sets, args.out)
        result = {"seed": seed, **run(job, args.out, env)}
        per_seed.append(result)
        print(json.dumps(result), flush=True)
    ok = [r for r in per_seed if r["rc"] == 0]
    record = {"name": args.name, "note": args.note, "set": {k: v for k, v in sets.items()},
              "config": described(design_job("x", 0, sets, args.out)),
              "seeds": [r["seed"] for r in ok], "failed_seeds": [r["seed"] for r in per_seed if r["rc"] != 0],
              "base": [round(r["base"], 2) for r in ok], "full": [round(r["full"], 2) for r in ok],
              "steps": ok[0]["steps"] if ok else None, "wall_s": [r["wall_s"] for r in per_seed],
              "lim_selects": lim_text([r["lim"] for r in ok]) if ok else "-",
              "load_avg_1m": round(os.getloadavg()[0], 1), "at": time.strftime("%Y-%m-%d %H:%M")}
    if len(ok) >= 2:
        diff = paired(record["full"], record["base"])
        record.update(base_stats=summary(record["base"]), full_stats=summary(record["full"]), full_minus_base=diff)
        record["verdict"] = "generalises" if diff["mean"] > 2 * diff["se"] else "does not generalise"
    elif ok:
        record["verdict"] = "one seed: " + ("above base" if ok[0]["full"] > ok[0]["base"] else "not above base")
    else:
        record["verdict"] = "failed"
    print(json.dumps(record, indent=1))
    if not args.no_record:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("a") as f:
            f.write(json.dumps(record) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
