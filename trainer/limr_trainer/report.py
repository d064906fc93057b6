"""The results of a job as the paper's Table 2: one row per arm, accuracy per benchmark, plots.

Pure functions build the table and render Markdown and JSON; `write_report` is the thin adapter
that puts them (and the PNG plots) into the job's storage. Nothing here runs a model.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

# Row order of the table (the paper's Table 2 reads top to bottom the same way).
ARM_ORDER = ("base", "full", "lim", "random", "linear")
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
    for arm in [a for a in ARM_ORDER if a in results] + sorted(set(results) - set(ARM_ORDER)):
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
    """(steps, mean rewards) per arm from each arm's metrics.jsonl rows (rows without a reward skipped)."""
    curves = {}
    for arm, rows in metrics.items():
        points = sorted(
            (int(r["step"]), float(r["reward_mean"]))
            for r in rows
            if r.get("reward_mean") is not None and r.get("step") is not None
        )
        # A resumed phase may log a step twice: keep the last value of each step.
        dedup = dict(points)
        if dedup:
            curves[arm] = (list(dedup), list(dedup.values()))
    return curves


def plot_reward_curves(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]]) -> bytes:
    """PNG of the training reward per arm over steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for arm, (steps, values) in curves.items():
        ax.plot(steps, values, marker=".", label=ARM_LABELS.get(arm, arm))
    ax.set_xlabel("training step")
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
