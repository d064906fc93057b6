"""Decoder micro-benchmark on the first N step files of a dump folder: what skipping `response` buys.

json.loads (full objects, the baseline's decoder) vs msgspec into a Struct that has `response`
vs msgspec into our Struct without it (the response is scanned but never becomes a string), and
two floors: msgspec finding where each record ends (`list[Raw]`: the scan alone, no fields) and
`bytes.count(b"\\n")` (memchr-speed memory traversal, which cannot tell strings from structure).
Reports MB/s of input, best of --repeats (CPU-bound, single thread).
    python bench/selection/decode_microbench.py /tmp/limr_dumps_1000 --files 24
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import msgspec
from limr_trainer.selection.readers import decode_openrlhf


class WithResponse(msgspec.Struct, gc=False):
    prompt: str
    response: str
    reward: float


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("dumps")
    p.add_argument("--files", type=int, default=24)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    datas = [f.read_bytes() for f in sorted(Path(a.dumps).glob("step_*.json"))[: a.files]]
    mb = sum(map(len, datas)) / 2**20
    with_resp = msgspec.json.Decoder(list[WithResponse])
    runs = {
        "json.loads (full dicts)": json.loads,
        "msgspec, Struct with response": with_resp.decode,
        "msgspec, Struct without response (ours)": decode_openrlhf,
        "floor: msgspec list[Raw] (scan only, no fields)": msgspec.json.Decoder(list[msgspec.Raw]).decode,
        "floor: bytes.count newline (memory traversal)": lambda d: d.count(b"\n"),
    }
    print(f"{a.dumps}: {len(datas)} files, {mb:.0f} MB")
    print(f"| decoder | MB/s (best of {a.repeats}) |")
    print("|---|---|")
    for name, fn in runs.items():
        best = float("inf")
        for _ in range(a.repeats):
            t = time.process_time()
            for d in datas:
                fn(d)
            best = min(best, time.process_time() - t)
        print(f"| {name} | {mb / best:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
