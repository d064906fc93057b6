"""Write synthetic LIMR-style OpenRLHF dumps (`step_N.json`) at LIMR's scale, for the selection benchmark.

Layout and encoding follow what LIMR's trainer writes (facts, not code): one file per PPO step,
steps numbered from 1, each a JSON list (indent 4, ASCII-escaped) of
{prompt, response, reward, response_length}; an epoch is `steps_per_epoch` consecutive steps; every
epoch visits a fresh shuffle of the prompts and drops the remainder (8,523 prompts -> 8 x 1,024).
Rewards follow a per-prompt logistic learning curve, so LIM has something real to score.
Also writes the same rollouts as our Parquet reward records when --parquet DIR is given.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

FILLER = (
    "We compute the expression step by step. Let $x = \\frac{a+b}{2}$ and note that "
    "$x^2 - 3x + 2 = (x-1)(x-2)$. Substituting gives the value; checking the boundary cases "
    "confirms it. "
)


def response_text(rng: np.random.Generator, length: int, answer: str) -> str:
    """About `length` characters of math-like text ending in a boxed answer."""
    start = int(rng.integers(0, len(FILLER)))
    body = (FILLER * (length // len(FILLER) + 2))[start : start + max(0, length - 20)]
    return f"{body}\nThe answer is $\\boxed{{{answer}}}$."


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--prompts", default=str(Path(__file__).resolve().parents[3] / "shared/data/limr/data/prompts/math.8k.json"))
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=21)
    p.add_argument("--steps-per-epoch", type=int, default=8)
    p.add_argument("--batch", type=int, default=1024, help="prompts per step")
    p.add_argument("--rollouts", type=int, default=8)
    p.add_argument("--response-chars", type=int, default=1000)
    p.add_argument("--limit-prompts", type=int, default=0, help="use only the first N prompts (tests)")
    p.add_argument("--parquet", default="", help="also write our reward records under this directory")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    records = json.loads(Path(a.prompts).read_text())
    if a.limit_prompts:
        records = records[: a.limit_prompts]
    prompts = [r["prompt"] for r in records]
    ids = [r["id"] for r in records]
    n = len(prompts)
    rng = np.random.default_rng(a.seed)
    offset = rng.normal(-1.0, 1.5, n)  # per-prompt difficulty
    slope = rng.normal(0.15, 0.12, n)  # per-prompt learning speed
    pool = [response_text(rng, int(a.response_chars * f), "42") for f in rng.uniform(0.8, 1.2, 64)]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.parquet:
        import pyarrow as pa
        import pyarrow.parquet as pq
        from limr_trainer.data.records import SCHEMA
    step = 0
    for epoch in range(a.epochs):
        order = rng.permutation(n)
        for s in range(a.steps_per_epoch):
            step += 1
            chunk = order[s * a.batch : (s + 1) * a.batch]
            p_ok = 1.0 / (1.0 + np.exp(-(offset[chunk] + slope[chunk] * epoch)))
            u = rng.random((len(chunk), a.rollouts))
            ok = u < p_ok[:, None]
            fmt = rng.random((len(chunk), a.rollouts)) < 0.1
            reward = np.where(ok, 1.0, np.where(fmt, -1.0, -0.5))
            lengths = rng.integers(100, 3072, (len(chunk), a.rollouts))
            rows = []
            for i, j in enumerate(chunk):
                for k in range(a.rollouts):
                    rows.append(
                        {
                            "prompt": prompts[j],
                            "response": pool[int(rng.integers(0, len(pool)))],
                            "reward": float(reward[i, k]),
                            "response_length": float(lengths[i, k]),
                        }
                    )
            tmp = out / f".step_{step}.json.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(rows, f, indent=4)
            os.replace(tmp, out / f"step_{step}.json")
            if a.parquet:
                m = len(chunk) * a.rollouts
                table = pa.table(
                    {
                        "epoch": np.full(m, epoch, np.int32),
                        "step": np.full(m, step, np.int32),
                        "prompt_id": [ids[j] for j in chunk for _ in range(a.rollouts)],
                        "sample": np.tile(np.arange(a.rollouts, dtype=np.int32), len(chunk)),
                        "reward": reward.reshape(-1),
                        "correct": ok.reshape(-1),
                        "format_error": [
                            None if (o or not e) else "no_boxed"
                            for o, e in zip(ok.reshape(-1), fmt.reshape(-1))
                        ],
                        "response_length": lengths.reshape(-1).astype(np.int32),
                        "truncated": np.zeros(m, bool),
                    },
                    schema=SCHEMA,
                )
                d = Path(a.parquet) / f"epoch={epoch:04d}"
                d.mkdir(parents=True, exist_ok=True)
                pq.write_table(table, d / f"step={step:06d}.parquet")
    print(f"wrote {step} steps to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
