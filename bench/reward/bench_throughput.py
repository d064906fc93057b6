"""Reward throughput: `score_batch` over worker processes vs a one-process loop of `check`.

Same workload for both (bench/reward/workload.py, real MATH-8.5K golds). Reports answers/s (wall), answers per CPU-second (workers' and parent's CPU time: the machine is
shared, so wall time moves with other load), and the per-answer latency percentiles (p50, p99,
max); the pool's latency is send-to-result per answer. The two runs alternate, best wall of each.
    python bench/reward/bench_throughput.py --n 3000 --workers 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
import workload
from limr_trainer.reward import RewardItem, check
from limr_trainer.reward.pool import CheckerPool


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run_loop(items: list[dict]) -> tuple[list, list[float], float, float]:
    lat, out = [], []
    t0, c0 = time.perf_counter(), time.process_time()
    for it in items:
        s = time.perf_counter()
        out.append(check(it["response"], it["answer"]))
        lat.append(time.perf_counter() - s)
    return out, lat, time.perf_counter() - t0, time.process_time() - c0


def run_pool(pool: CheckerPool, items: list[dict], timeout: float) -> tuple[list, list[float], float, float]:
    procs = [psutil.Process(w.proc.pid) for w in pool._workers]

    def cpu() -> float:
        return sum(p.cpu_times().user + p.cpu_times().system for p in procs) + time.process_time()

    t0, c0 = time.perf_counter(), cpu()
    res = pool.map([RewardItem(i["response"], i["answer"]) for i in items], timeout=timeout)
    wall, used = time.perf_counter() - t0, cpu() - c0
    return res, pool.last_latencies, wall, used


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    check("\\boxed{1}", "1")  # import math-verify outside the clock, as the workers do
    print(f"{a.n} answers per round, a fresh workload each round (seed = round); the loop runs in this")
    print("process and the pool's workers live across rounds (as the shared pool does in a trainer), so")
    print("round 0 is both cold (sympy caches empty), later rounds warm.")
    print("| round | run | answers/s (wall) | answers per CPU-second | cores used | p50 | p99 | max |")
    print("|---|---|---|---|---|---|---|---|")
    with CheckerPool(a.workers) as pool:
        pool.map([RewardItem("\\boxed{1}", "1")] * a.workers, timeout=60)  # wait until all workers are up
        for rnd in range(a.rounds):
            items = workload.make(a.n, seed=rnd)
            loop = run_loop(items)
            pooled = run_pool(pool, items, a.timeout)
            agree = sum(x.reward == y.reward for x, y in zip(loop[0], pooled[0]))
            assert agree == a.n, f"round {rnd}: rewards differ on {a.n - agree} answers"
            for label, (_, lat, wall, used) in (
                ("one-process loop (`check`)", loop),
                (f"`score_batch`, {a.workers} workers", pooled),
            ):
                print(
                    f"| {rnd} | {label} | {a.n / wall:.0f} | {a.n / used:.0f} | {used / wall:.2f} | "
                    f"{pct(lat, 0.5) * 1e3:.1f} ms | {pct(lat, 0.99) * 1e3:.1f} ms | {max(lat) * 1e3:.1f} ms |",
                    flush=True,
                )
    reasons: dict[str, int] = {}
    for r in pooled[0]:
        reasons[r.reason] = reasons.get(r.reason, 0) + 1
    chars = statistics.mean(len(i["response"]) for i in items)
    print(
        f"\nlast round: mean {chars:.0f} chars per response; reasons {reasons}; rewards identical in every round"
    )
    print(f"load average at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
