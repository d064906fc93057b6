"""The results of a job as the paper's Table 2: one row per arm, accuracy per benchmark, plots.

Pure functions build the table and render Markdown and JSON; `write_report` is the thin adapter
that puts them (and the PNG plots) into the job's storage. Nothing here runs a model.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from limr_api.plan import REPORT_ORDER

ARM_LABELS = {
    "base": "base model",
    "full": "full-data run",
    "lim": "LIM subset",
    "random": "random subset",
    "linear": "linear subset",
}


def build_table(
    results: Mapping[str, Mapping[str, Any]], benchmarks: Sequence[str]
) -> list[dict[str, Any]]:
    """Rows of the results table from per-arm evaluation results.

    `results[arm]` holds `questions` (training questions used; None for the base model) and
    `benchmarks` {name: {"accuracy": float, ...}}. The average is the mean of the benchmark
    accuracies (each benchmark weighs the same, as the paper's "Avg."); arms missing a benchmark
    get None there and no average.
    """
    rows = []
    for arm in [a for a in REPORT_ORDER if a in results] + sorted(set(results) - set(REPORT_ORDER)):
        res = results[arm]
        entries = {name: (res.get("benchmarks") or {}).get(name) for name in benchmarks}
        accs = {n: None if e is None else float(e["accuracy"]) for n, e in entries.items()}
        paper = {n: None if e is None or e.get("paper_accuracy") is None else float(e["paper_accuracy"])
                 for n, e in entries.items()}
        rows.append(
            {
                "arm": arm,
                "label": ARM_LABELS.get(arm, arm),
                "questions": res.get("questions"),
                "accuracy": accs,
                "average": _mean_if_complete(accs),
                "paper_accuracy": paper,
                "paper_average": _mean_if_complete(paper),
            }
        )
    return rows


def _mean_if_complete(values: Mapping[str, float | None]) -> float | None:
    present = [v for v in values.values() if v is not None]
    return sum(present) / len(present) if present and len(present) == len(values) else None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:.1f}"


def render_markdown(
    rows: Sequence[Mapping[str, Any]], benchmarks: Sequence[str], title: str, notes: Sequence[str] = ()
) -> str:
    """The table as GitHub Markdown (accuracies in percent, one decimal)."""
    head = ["arm", "questions used", *benchmarks, "average"]
    lines = [f"# {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        questions = "-" if row["questions"] is None else str(row["questions"])
        cells = [row["label"], questions, *(_pct(row["accuracy"][b]) for b in benchmarks), _pct(row["average"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Accuracy in percent: mean over all samples of each benchmark; average over benchmarks.")
    if any(row.get("paper_average") is not None for row in rows):
        lines += ["", ("The paper's metric (LIMR's judge: the last `\\boxed{}` answer against the gold, no format "
                  "or truncation rule), for comparison with its Table 1:"), "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in rows:
            questions = "-" if row["questions"] is None else str(row["questions"])
            cells = [row["label"], questions, *(_pct(row["paper_accuracy"][b]) for b in benchmarks),
                     _pct(row["paper_average"])]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    for note in notes:
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


def reward_curves(metrics: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, tuple[list[int], list[float]]]:
    """(x, mean reward) per arm from each arm's metrics.jsonl rows (rows without a reward skipped).

    x is the data epoch (1-based) when the rows carry one, the mean over that epoch's steps: arms
    of different sizes then line up (a subset has fewer steps per epoch). Otherwise x is the step.
    A resumed phase may log a step twice: the last row of each step counts.
    """
    curves = {}
    for arm, rows in metrics.items():
        by_step = {
            int(r["step"]): r for r in rows if r.get("reward_mean") is not None and r.get("step") is not None
        }
        if not by_step:
            continue
        if all(r.get("epoch") is not None for r in by_step.values()):
            groups: dict[int, list[float]] = {}
            for step in sorted(by_step):
                groups.setdefault(int(by_step[step]["epoch"]) + 1, []).append(float(by_step[step]["reward_mean"]))
            curves[arm] = (list(groups), [sum(v) / len(v) for v in groups.values()])
        else:
            steps = sorted(by_step)
            curves[arm] = (steps, [float(by_step[s]["reward_mean"]) for s in steps])
    return curves


def plot_reward_curves(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]]) -> bytes:
    """PNG of the training reward per arm over steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for arm, (steps, values) in curves.items():
        ax.plot(steps, values, marker=".", label=ARM_LABELS.get(arm, arm))
    ax.set_xlabel("data epoch (mean over its steps)")
    ax.set_ylabel("mean reward of the rollouts")
    ax.set_title("Training reward per arm")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend()
    return _png(fig)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def report_json(rows: Sequence[Mapping[str, Any]], benchmarks: Sequence[str], extra: Mapping[str, Any]) -> str:
    """The machine-readable report (same numbers as the Markdown, accuracies as fractions)."""
    return json.dumps({"benchmarks": list(benchmarks), "rows": list(rows), **extra}, indent=2) + "\n"


# ------------------------------------------------------------------ held-out accuracy during training


def heldout_curves(
    points: Mapping[str, Sequence[Mapping[str, Any]]],
    finals: Mapping[str, tuple[int, float]],
    base: float | None = None,
) -> dict[str, tuple[list[int], list[float]]]:
    """(PPO step, held-out accuracy) per arm: the base model's accuracy at step 0 (when known), the
    points evaluated during training (`heldout.jsonl`), and the final model's accuracy from the
    Evaluation step at its last step (`finals[arm] = (steps, accuracy)`), which wins over a point
    of the same step (same questions and sampling, the exported weights)."""
    curves = {}
    for arm in [a for a in REPORT_ORDER if a in points or a in finals] + sorted(
        set(points) | set(finals) - set(REPORT_ORDER)
    ):
        if arm == "base":
            continue
        xy: dict[int, float] = {} if base is None else {0: base}
        for p in points.get(arm, ()):
            xy[int(p["step"])] = float(p["average"])
        if arm in finals:
            xy[int(finals[arm][0])] = float(finals[arm][1])
        if len(xy) > (0 if base is None else 1):
            steps = sorted(xy)
            curves[arm] = (steps, [xy[s] for s in steps])
    return curves


def plot_heldout_curves(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], base: float | None) -> bytes:
    """PNG of held-out accuracy (percent) against PPO step, one line per arm, the base model dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for arm, (steps, values) in curves.items():
        ax.plot(steps, [100 * v for v in values], marker=".", label=ARM_LABELS.get(arm, arm))
    if base is not None:
        ax.axhline(100 * base, color="grey", linestyle="--", linewidth=1, label=ARM_LABELS["base"])
    ax.set_xlabel("PPO step")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title("Held-out accuracy during training")
    ax.grid(alpha=0.3)
    if curves or base is not None:
        ax.legend()
    return _png(fig)


# ------------------------------------------------------------------------- the table, in words

# The paper's Table 1 (Qwen2.5-Math-7B, MATH-8.5K; average of AIME24, MATH500, AMC23), as in README.md.
PAPER_TABLE1 = {
    "base": (0, 40.5),
    "full": (8523, 57.0),
    "random": (1389, 49.4),
    "linear": (1138, 54.9),
    "lim": (1389, 58.1),
}


def reading(rows: Sequence[Mapping[str, Any]], seeds: int = 1) -> str:
    """One paragraph: what the table's averages say, side by side with the paper's Table 1."""
    avg = {r["arm"]: r["average"] for r in rows if r.get("average") is not None}
    used = {r["arm"]: r.get("questions") for r in rows}
    pct = {arm: 100.0 * v for arm, v in avg.items()}
    paper = {arm: v for arm, (_, v) in PAPER_TABLE1.items()}
    said = [
        (
            "Each row is the same base model after PPO on a different set of training questions, scored on "
            "held-out questions none of them trained on."
        )
    ]
    if "full" in pct and "base" in pct:
        said.append(
            f"Training on all questions moves the base model from {pct['base']:.1f}% to {pct['full']:.1f}% "
            f"({pct['full'] - pct['base']:+.1f} points; paper: {paper['base']} to {paper['full']}, "
            f"{paper['full'] - paper['base']:+.1f})."
        )
    if "lim" in pct and "full" in pct and used.get("lim") and used.get("full"):
        share = 100.0 * used["lim"] / used["full"]
        ratio = 100.0 * pct["lim"] / pct["full"] if pct["full"] else float("nan")
        said.append(
            f"The LIM subset ({used['lim']} of {used['full']} questions, {share:.0f}%) reaches {pct['lim']:.1f}%, "
            f"{ratio:.0f}% of the full-data run (paper: 1,389 of 8,523, 16%, reaches {paper['lim']}, "
            f"{100 * paper['lim'] / paper['full']:.0f}% of full)."
        )
    if "lim" in pct and "random" in pct:
        said.append(
            f"A random subset of the same size reaches {pct['random']:.1f}% (LIM {pct['lim'] - pct['random']:+.1f} "
            f"points; paper: {paper['random']}, LIM {paper['lim'] - paper['random']:+.1f})."
        )
    if "linear" in pct:
        said.append(f"The linear-progress subset reaches {pct['linear']:.1f}% (paper: {paper['linear']}).")
    said.append(
        "The paper's claim is that LIM's subset matches or beats the full data and clearly beats a random "
        "subset of its size; "
        + (
            "this table is one seed, so differences of a few points can be seed-to-seed noise: "
            "`make study` (bench/pipeline/STUDY.md) gives the same comparison over 5 seeds with 95% intervals."
            if seeds == 1
            else f"this table is the mean over {seeds} seeds."
        )
    )
    return " ".join(said)
