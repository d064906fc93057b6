"""What the selection found in a finished tiny run: per toy difficulty, how many questions LIM kept,
their mean trajectory, and the mean LIM score. Reads `<runs>/<job>/selection/scores.parquet`.

    .venv/bin/python bench/pipeline/analyze.py runs/tiny-local
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
from limr_trainer.data.synthetic import arithmetic_rows


def analyze(root: Path) -> dict:
    job = json.loads((root / "selection/summary.json").read_text())
    scores = pq.read_table(root / "selection/scores.parquet").to_pylist()
    # the synthetic ids are arith-<seed>-<index>: rebuild the rows to know each question's difficulty
    seed = int(scores[0]["prompt_id"].split("-")[1])
    n = max(int(r["prompt_id"].split("-")[2]) for r in scores) + 1
    difficulty = {r["id"]: r["difficulty"] for r in arithmetic_rows(n, seed=seed)}
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in scores:
        groups[difficulty[r["prompt_id"]]].append(r)
    out = {"summary": {k: job[k] for k in ("strategy", "threshold", "scored", "selected", "dropped", "total")},
           "by_difficulty": {}}
    for level, rows in sorted(groups.items()):
        epochs = len(rows[0]["trajectory"])
        mean = [round(sum(r["trajectory"][k] for r in rows) / len(rows), 2) for k in range(epochs)]
        out["by_difficulty"][level] = {
            "questions": len(rows),
            "selected": sum(r["selected"] for r in rows),
            "mean_lim_score": round(sum(r["lim_score"] for r in rows) / len(rows), 3),
            "mean_trajectory": mean,
        }
    return out


if __name__ == "__main__":
    print(json.dumps(analyze(Path(sys.argv[1])), indent=1))
