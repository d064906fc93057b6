"""Reward throughput: `score_batch` over worker processes vs a one-process loop of `check`.

Same workload for both (bench/reward/workload.py, real MATH-8.5K golds). Reports answers/s and the
per-answer latency percentiles (p50, p99, max); the pool's latency is send-to-result per answer.
    python bench/reward/bench_throughput.py --n 3000 --workers 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload
from limr_trainer.reward import RewardItem, check
from limr_trainer.reward_pool import CheckerPool


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=5.0)
    a = p.parse_args()
    items = workload.make(a.n)
    check("\\boxed{1}", "1")  # import and warm math-verify outside the clock, as the workers do
    t0 = time.perf_counter()
    lat, loop = [], []
    for it in items:
        s = time.perf_counter()
        loop.append(check(it["response"], it["answer"]))
        lat.append(time.perf_counter() - s)
    loop_s = time.perf_counter() - t0
    with CheckerPool(a.workers) as pool:
        pool.map([RewardItem("\\boxed{1}", "1")] * a.workers, timeout=60)  # wait until all workers are up
        t0 = time.perf_counter()
        res = pool.map([RewardItem(i["response"], i["answer"]) for i in items], timeout=a.timeout)
        pool_s = time.perf_counter() - t0
        plat = pool.last_latencies
    agree = sum(r.reward == l.reward for r, l in zip(res, loop))
    reasons: dict[str, int] = {}
    for r in res:
        reasons[r.reason] = reasons.get(r.reason, 0) + 1
    print(
        f"workload: {a.n} answers, mean {statistics.mean(len(i['response']) for i in items):.0f} chars; reasons {reasons}"
    )
    print(f"rewards equal between the two runs: {agree}/{a.n}")
    print("| run | answers/s | p50 latency | p99 latency | max latency |")
    print("|---|---|---|---|---|")
    print(
        f"| one-process loop (`check`) | {a.n / loop_s:.0f} | {pct(lat, 0.5) * 1e3:.1f} ms | {pct(lat, 0.99) * 1e3:.1f} ms | {max(lat) * 1e3:.1f} ms |"
    )
    print(
        f"| `CheckerPool({a.workers})` / `score_batch` | {a.n / pool_s:.0f} | {pct(plat, 0.5) * 1e3:.1f} ms | {pct(plat, 0.99) * 1e3:.1f} ms | {max(plat) * 1e3:.1f} ms |"
    )
    print(f"speed-up: {loop_s / pool_s:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
