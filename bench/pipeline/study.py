"""`make study`: the protocol of bench/pipeline/PROTOCOL.md on the toy, over 5 seeds.

Per seed S, real `limr run`s of the demo job (manifests/examples/tiny-local.yaml) with ppo.seed and
selection.seed S:
1. `study-sS`: baseline (= FULL) with the early selection recorded after every epoch
   (`selection.earlyStop.observeOnly`), selection, LIM / RANDOM / LINEAR retrained for the baseline's
   epochs over their subset (budget "same epochs"), evaluation with the base model;
2. `study-sS-steps`: the same selection from the baseline's records, LIM / RANDOM / LINEAR retrained
   for about as many PPO steps as FULL (budget "same steps": epochs = round(FULL steps / subset steps
   per epoch));
3. `study-sS-eK` for each epoch K < E whose early selection differs from the final one: the records of
   epochs 1..K, the selection on them (checked equal to the one stored during the baseline), the LIM
   retrain for E epochs (same epochs). Where the early selection equals the final one, its retrain
   is the LIM arm's run.
After every seed's GAE runs, `study-sS-grpo`: the baseline alone with `advantageEstimator: grpo`
(no critic), evaluated (protocol target 1: RL generalises with GRPO too; the base model is the GAE job's).
Then `bench/pipeline/study.json` and `bench/pipeline/STUDY.md` (mean +- 95% interval, t with 4 dof,
paired differences, the targets, the early-selection trade-off). Finished jobs are skipped on a
rerun (`limr run` resumes), so an interrupted study continues where it stopped.

    nice -n 5 .venv/bin/python bench/pipeline/study.py            # = make study
    .venv/bin/python bench/pipeline/study.py --seeds 0 --epochs-only   # a quick look at one seed
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from design import design_job
from stats import interval, paired, ratio, summary
from toyjobs import REPO, arm_accuracy, demo_job, done, run_job

ARMS = ("base", "full", "lim", "random", "linear")
SUBSET_ARMS = ("lim", "random", "linear")
STEP_OF = {"full": "baseline", "lim": "retrain", "random": "retrain-random", "linear": "retrain-linear"}
EARLY_RULE = {"minEpochs": 2, "stableEpochs": 1, "minJaccard": 0.7}  # the demo job's rule


class StudyError(RuntimeError):
    pass


def base_job(name: str, seed: int, out: Path) -> dict:
    job = demo_job()
    job["metadata"]["name"] = name
    spec = job["spec"]
    spec["ppo"]["seed"] = seed
    spec["selection"]["seed"] = seed
    spec["storage"]["uri"] = str(out / "runs")
    spec["evaluation"].pop("everySteps", None)  # the curve is the demo's; the study needs final models only
    return job


def main_job(seed: int, out: Path) -> dict:
    job = base_job(f"study-s{seed}", seed, out)
    spec = job["spec"]
    spec["selection"]["earlyStop"] = {**EARLY_RULE, "observeOnly": True}
    spec["retrain"]["epochs"] = spec["baseline"]["epochs"]
    spec["retrain"]["comparisons"] = ["random", "linear", "full"]
    return job


def from_records_job(name: str, seed: int, out: Path, records: Path, epochs: int, comparisons: list[str]) -> dict:
    """A job that starts from existing baseline records: selection, retrain arms, evaluation (no base)."""
    job = base_job(name, seed, out)
    spec = job["spec"]
    spec["baseline"] = {"enabled": False, "recordsUri": str(records)}
    spec["selection"].pop("earlyStop", None)
    spec["retrain"] = {"epochs": epochs, "comparisons": comparisons}
    spec["evaluation"]["includeBaseModel"] = False
    return job


def steps_per_epoch(questions: int, batch: int) -> int:
    return max(1, questions // batch)  # limr_trainer.ppo.batch.StepPlan


def copy_epochs(records: Path, epochs: int, into: Path) -> Path:
    """The reward records of the first `epochs` data epochs of a baseline, in a folder of their own."""
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    for k in range(epochs):
        shutil.copytree(records / f"epoch={k:04d}", into / f"epoch={k:04d}")
    return into


def selected_ids(root: Path) -> list[str]:
    return sorted(str(r["id"]) for r in json.loads((root / "selection/selected.json").read_text()))


def jaccard(a: list[str], b: list[str]) -> float:
    union = set(a) | set(b)
    return 1.0 if not union else len(set(a) & set(b)) / len(union)


def run_or_fail(job: dict, out: Path, env: dict, log: list[str]) -> Path:
    name = job["metadata"]["name"]
    rc, seconds = run_job(job, out, env)
    log.append(f"{name}: rc {rc}, {seconds:.0f} s")
    print(log[-1], flush=True)
    if rc != 0:
        raise StudyError(f"{name} failed (rc {rc}): see {out / (name + '.log')}")
    return out / "runs" / name


def run_seed(seed: int, out: Path, env: dict, log: list[str], epochs_only: bool = False) -> dict:
    root = run_or_fail(main_job(seed, out), out, env, log)
    spec = demo_job()["spec"]
    batch, epochs = spec["ppo"]["rolloutBatchSize"], spec["baseline"]["epochs"]
    baseline, selection = done(root, "baseline"), json.loads((root / "selection/summary.json").read_text())
    final = selected_ids(root)
    n, total = selection["selected"], selection["total"]
    result: dict = {
        "seed": seed,
        "questions": {"full": total, **{arm: n for arm in SUBSET_ARMS}},
        "same_epochs": {arm: arm_accuracy(root, arm) for arm in ARMS},
        "steps_same_epochs": {"full": baseline["steps"], **{a: done(root, STEP_OF[a])["steps"] for a in SUBSET_ARMS}},
        "epochs": epochs,
    }
    # budget "same steps": the subset arms run about as many PPO steps as FULL
    subset_epochs = max(1, round(baseline["steps"] / steps_per_epoch(n, batch)))
    result["same_steps_epochs"] = subset_epochs
    records = root / "baseline/rewards"
    if not epochs_only:
        steps_root = run_or_fail(from_records_job(f"study-s{seed}-steps", seed, out, records, subset_epochs,
                                                  ["random", "linear"]), out, env, log)
        if selected_ids(steps_root) != final:
            raise StudyError(f"seed {seed}: the same-steps job selected other questions than the main job")
        result["same_steps"] = {"base": result["same_epochs"]["base"], "full": result["same_epochs"]["full"],
                                **{a: arm_accuracy(steps_root, a) for a in SUBSET_ARMS}}
        result["steps_same_steps"] = {"full": baseline["steps"],
                                      **{a: done(steps_root, STEP_OF[a])["steps"] for a in SUBSET_ARMS}}
    # early selection: per epoch K < E, the selection from epochs 1..K and the LIM retrain on it
    early = baseline.get("early_stop") or {}
    rows = []
    for k in range(1, epochs):
        stored = json.loads((root / f"baseline/early-selection/epoch={k - 1:04d}.json").read_text())
        ids = sorted(stored["selected"])
        row = {"epoch": k, "selected": len(ids), "jaccard_final": round(jaccard(ids, final), 4),
               "baseline_steps_saved_share": round(1 - k / epochs, 4)}
        if ids == final:
            row.update(accuracy=result["same_epochs"]["lim"], retrain="the LIM arm (same selection)")
        elif not epochs_only:
            sub = copy_epochs(records, k, out / "early-records" / f"s{seed}-e{k}")
            early_root = run_or_fail(from_records_job(f"study-s{seed}-e{k}", seed, out, sub, epochs, []),
                                     out, env, log)
            if selected_ids(early_root) != ids:
                raise StudyError(f"seed {seed} epoch {k}: the selection on epochs 1..{k} differs from the one "
                                 "stored during the baseline")
            row.update(accuracy=arm_accuracy(early_root, "lim"), retrain=f"study-s{seed}-e{k}")
        rows.append(row)
    result["early_selection"] = rows
    result["early_stop_rule"] = {"rule": early.get("rule"), "stable_after_epoch": early.get("stable_after_epoch"),
                                 "steps_needed": early.get("steps_needed"), "steps_planned": early.get("steps_planned")}
    return result


def run_grpo(seed: int, out: Path, env: dict, log: list[str]) -> float:
    """FULL with GRPO (the baseline alone, no critic) for protocol target 1: its held-out accuracy."""
    job = design_job(f"study-s{seed}-grpo", seed, {"spec.ppo.advantageEstimator": "grpo",
                                                     "spec.evaluation.includeBaseModel": False}, out)
    return arm_accuracy(run_or_fail(job, out, env, log), "full")


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def aggregate(per_seed: list[dict], wall: float) -> dict:
    seeds = [r["seed"] for r in per_seed]
    arms = {arm: [round(r["same_epochs"][arm], 2) for r in per_seed] for arm in ARMS}
    study = {
        "seeds": seeds,
        "questions": {arm: round(mean([r["questions"][arm] for r in per_seed])) for arm in ("full", *SUBSET_ARMS)},
        "questions_per_seed": {arm: [r["questions"][arm] for r in per_seed] for arm in ("full", *SUBSET_ARMS)},
        "arms": arms,
        "budget": (f"same epochs: every retrain arm runs {per_seed[0]['epochs']} data epochs over its own subset "
                   "(FULL = the baseline run); PPO steps per arm in steps_same_epochs. The same-steps budget "
                   "(subset arms run about as many PPO steps as FULL) is in same_steps."),
        "steps_same_epochs": {arm: [r["steps_same_epochs"][arm] for r in per_seed] for arm in ("full", *SUBSET_ARMS)},
        "metric": "held-out accuracy in percent: mean of greedy (n=1) and sampled (n=4, T=0.4) accuracy on the "
                  "first 300 questions of the test split",
    }
    if all("same_steps" in r for r in per_seed):
        study["same_steps"] = {
            "arms": {arm: [round(r["same_steps"][arm], 2) for r in per_seed] for arm in ARMS},
            "epochs": [r["same_steps_epochs"] for r in per_seed],
            "steps": {arm: [r["steps_same_steps"][arm] for r in per_seed] for arm in ("full", *SUBSET_ARMS)},
        }
    study["statistics"] = {"same_epochs": statistics(arms, study["questions"])}
    if "same_steps" in study:
        study["statistics"]["same_steps"] = statistics(study["same_steps"]["arms"], study["questions"])
    if all("grpo_full" in r for r in per_seed):
        study["grpo"] = {"full": [round(r["grpo_full"], 2) for r in per_seed], "base": arms["base"]}
        diff = paired(study["grpo"]["full"], arms["base"])
        study["statistics"]["grpo"] = {"full": summary(study["grpo"]["full"]), "full_minus_base": diff,
                                       "targets": {"grpo_generalises (full - base > 2 SE)": diff["mean"] > 2 * diff["se"],
                                                   "grpo_full_above_base": diff["mean"] > 0}}
    study["early_selection"] = early_table(per_seed)
    study["per_seed"] = per_seed
    study["wall_s"] = round(wall, 1)
    study["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "load_avg_1m_at_end": round(os.getloadavg()[0], 1)}
    return study


def statistics(arms: dict[str, list[float]], questions: dict[str, int]) -> dict:
    out = {"arms": {arm: summary(values) for arm, values in arms.items()},
           "full_minus_base": paired(arms["full"], arms["base"]),
           "lim_minus_random": paired(arms["lim"], arms["random"]),
           "lim_over_full": ratio(arms["lim"], arms["full"])}
    diff, lim_random, lim_full = out["full_minus_base"], out["lim_minus_random"], out["lim_over_full"]
    share = questions["lim"] / questions["full"]
    out["targets"] = {
        "full_generalises (full - base > 2 SE)": diff["mean"] > 2 * diff["se"],
        "full_above_base": diff["mean"] > 0,
        "lim_at_least_random": lim_random["mean"] >= 0,
        "lim_at_least_95pct_of_full": lim_full["mean"] >= 0.95,
        "lim_at_most_30pct_of_questions": share <= 0.30,
    }
    out["lim_share_of_questions"] = round(share, 4)
    return out


def early_table(per_seed: list[dict]) -> list[dict]:
    epochs = per_seed[0]["epochs"]
    rows = []
    for k in range(1, epochs):
        at = [next(r for r in s["early_selection"] if r["epoch"] == k) for s in per_seed]
        row = {"epoch": k, "baseline_steps_saved_share": at[0]["baseline_steps_saved_share"],
               "selected": summary([a["selected"] for a in at]),
               "jaccard_final": summary([a["jaccard_final"] for a in at])}
        if all("accuracy" in a for a in at):
            acc = [a["accuracy"] for a in at]
            lim = [s["same_epochs"]["lim"] for s in per_seed]
            row.update(accuracy=summary(acc), minus_lim=paired(acc, lim), accuracy_per_seed=[round(a, 2) for a in acc])
        rows.append(row)
    stable = [s["early_stop_rule"]["stable_after_epoch"] for s in per_seed]
    rows.append({"rule": per_seed[0]["early_stop_rule"]["rule"], "stable_after_epoch_per_seed": stable})
    return rows


def markdown(study: dict) -> str:
    st = study["statistics"]
    lines = ["# Toy LIMR study (`make study`)", "",
             (f"Seeds {', '.join(map(str, study['seeds']))}; accuracy in percent on held-out questions "
             "(mean of greedy n=1 and n=4 at T=0.4), mean ± 95% interval (t, 4 dof) over the seeds. "
             "Protocol: bench/pipeline/PROTOCOL.md; raw numbers: bench/pipeline/study.json."), ""]
    head = "| arm | questions | same epochs: PPO steps | same epochs: accuracy |"
    sep = "|---|---:|---:|---:|"
    if "same_steps" in study:
        head += " same steps: PPO steps | same steps: accuracy |"
        sep += "---:|---:|"
    lines += [head, sep]
    labels = {"base": "base model", "full": "FULL (all questions)", "lim": "LIM subset", "random": "RANDOM subset",
              "linear": "LINEAR subset"}
    for arm in ARMS:
        q = "0" if arm == "base" else f"{study['questions'][arm]}"
        steps = "0" if arm == "base" else f"{mean(study['steps_same_epochs'][arm]):.0f}"
        cells = [labels[arm], q, steps, interval(st["same_epochs"]["arms"][arm])]
        if "same_steps" in study:
            s_steps = "0" if arm == "base" else f"{mean(study['same_steps']['steps'][arm]):.0f}"
            cells += [s_steps, interval(st["same_steps"]["arms"][arm])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Paired by seed (mean ± 95% interval):", ""]
    for budget, s in st.items():
        if budget == "grpo":
            lines.append(f"- GRPO (FULL only, no critic): FULL {interval(s['full'])}; FULL − base "
                         f"{interval(s['full_minus_base'])} points (SE {s['full_minus_base']['se']:.2f}).")
            continue
        d, lr, lf = s["full_minus_base"], s["lim_minus_random"], s["lim_over_full"]
        lines.append(f"- {budget.replace('_', ' ')}: FULL − base {interval(d)} points (SE {d['se']:.2f}); "
                     f"LIM − RANDOM {interval(lr)}; LIM / FULL {interval(lf, 3)}; LIM uses "
                     f"{100 * s['lim_share_of_questions']:.0f}% of the questions.")
    lines += ["", "Targets (PROTOCOL.md):", ""]
    for budget, s in st.items():
        met = ", ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in s["targets"].items())
        lines.append(f"- {budget.replace('_', ' ')}: {met}")
    lines += ["", "## Early selection (the selection after epoch K of the baseline, retrained with the same epochs)", "",
              "| after epoch | baseline steps saved | selected | Jaccard with the final selection | accuracy of its retrain | minus the LIM arm |",
              "|---:|---:|---:|---:|---:|---:|"]
    for row in study["early_selection"]:
        if "epoch" not in row:
            continue
        acc = interval(row["accuracy"]) if "accuracy" in row else "-"
        minus = interval(row["minus_lim"]) if "minus_lim" in row else "-"
        lines.append(f"| {row['epoch']} | {100 * row['baseline_steps_saved_share']:.0f}% | "
                     f"{interval(row['selected'], 0)} | {interval(row['jaccard_final'], 2)} | {acc} | {minus} |")
    rule = study["early_selection"][-1]
    lines += ["", (f"The earlyStop rule {rule['rule']} would have stopped the baseline after epoch "
              f"{rule['stable_after_epoch_per_seed']} (per seed; None = not before the last epoch)."), "",
              (f"Wall time {study['wall_s'] / 60:.1f} min on {study['machine']['cpus']} CPUs "
              f"(load average at the end {study['machine']['load_avg_1m_at_end']}).")]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=REPO / "runs/study", help="where the runs go")
    parser.add_argument("--json", type=Path, default=REPO / "bench/pipeline/study.json")
    parser.add_argument("--markdown", type=Path, default=REPO / "bench/pipeline/STUDY.md")
    parser.add_argument("--epochs-only", action="store_true",
                        help="only the main job per seed (no same-steps arms, no early-selection retrains)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    started = time.time()
    log: list[str] = []
    per_seed = []
    for seed in args.seeds:
        per_seed.append(run_seed(seed, args.out, env, log, args.epochs_only))
        print(f"seed {seed}: " + json.dumps(per_seed[-1]["same_epochs"]), flush=True)
    if not args.epochs_only:
        for result in per_seed:
            result["grpo_full"] = run_grpo(result["seed"], args.out, env, log)
    study = aggregate(per_seed, time.time() - started)
    study["runs"] = log
    args.json.write_text(json.dumps(study, indent=1) + "\n")
    args.markdown.write_text(markdown(study))
    print(markdown(study))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except StudyError as exc:
        print(f"study: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
