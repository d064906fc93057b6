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
        accs: dict[str, float | None] = {}
        for name in benchmarks:
            entry = (res.get("benchmarks") or {}).get(name)
            accs[name] = None if entry is None else float(entry["accuracy"])
        present = [v for v in accs.values() if v is not None]
        average = sum(present) / len(present) if present and len(present) == len(accs) else None
        rows.append(
            {
                "arm": arm,
                "label": ARM_LABELS.get(arm, arm),
                "questions": res.get("questions"),
                "accuracy": accs,
                "average": average,
            }
        )
    return rows


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
