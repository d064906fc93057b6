"""Baseline for the selection benchmark: LIM computed the way LIMR's script goes about it.

Written from the algorithm (no code copied): every step file is `json.load`ed and all rollouts of
every epoch are kept as Python dicts in per-epoch lists (responses included), then per-epoch
accuracy dicts, a forward pass filling missing epochs, the mean curve and the scores in plain Python.
Writes {prompt: score} as JSON so the benchmark can check both tools agree.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--input", required=True)
    p.add_argument("--steps-per-epoch", type=int, default=8)
    p.add_argument("--max-epochs", type=int, default=21)
    p.add_argument("--threshold", type=float, default=0.6)
    p.add_argument("--output", required=True)
    a = p.parse_args()
    root = Path(a.input)
    epochs: list[list[dict]] = []
    current: list[dict] = []
    for step in range(1, a.steps_per_epoch * a.max_epochs + 1):
        with open(root / f"step_{step}.json") as f:
            current.extend(json.load(f))
        if step % a.steps_per_epoch == 0:
            epochs.append(current)
            current = []
    prompts = {row["prompt"].strip() for epoch in epochs for row in epoch}
    per_epoch = []
    for epoch in epochs:
        counts = {k: [0, 0] for k in prompts}
        for row in epoch:
            c = counts[row["prompt"].strip()]
            c[1] += 1
            c[0] += row["reward"] == 1
        per_epoch.append({k: (ok / n if n else -1.0) for k, (ok, n) in counts.items()})
    seqs = {}
    for k in prompts:
        seq = [e[k] for e in per_epoch]
        for i in range(len(seq) - 1):
            if seq[i] == -1 and seq[i + 1] != -1:
                seq[i] = seq[i + 1]
        if -1 not in seq:
            seqs[k] = seq
    n_ep = len(per_epoch)
    mean = [sum(s[i] for s in seqs.values()) / len(seqs) for i in range(n_ep)]
    denom = sum((1 - m) ** 2 for m in mean)
    scores = {k: 1 - sum((x - m) ** 2 for x, m in zip(s, mean)) / denom for k, s in seqs.items()}
    selected = sum(s >= a.threshold for s in scores.values())
    Path(a.output).write_text(json.dumps(scores))
    print(f"baseline: {selected} selected of {len(scores)} scored")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
