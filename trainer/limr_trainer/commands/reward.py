"""`limr reward`: score responses with LIMR's rule reward, JSONL in, JSONL out.

Input rows `{"response", "answer", "truncated"?}`; output rows are the input rows plus `reward`
(1.0 / -0.5 / -1.0), `reason` (`correct`, `wrong_answer` or the format rule that fired) and
`extracted` (the last \\boxed{...} content or null). All input is checked before any scoring and
the output is written to a temporary file renamed into place, so a malformed line (reported with
its line number, exit code 2) leaves no output behind.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class BadInput(ValueError):
    pass


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="limr reward", description=__doc__.split("\n")[0])
    p.add_argument("--input", required=True, help="JSONL file of {response, answer, truncated?}")
    p.add_argument("--output", required=True, help="JSONL file to write")
    p.add_argument("--workers", type=int, default=None, help="checker processes (default: usable CPUs)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per answer before it scores -1")
    return p


def read_rows(path: str) -> list[dict[str, Any]]:
    """Parse and check every line; BadInput names the first bad line."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise BadInput(f"{path}:{n}: invalid JSON: {e.msg}") from None
            if not isinstance(row, dict):
                raise BadInput(f"{path}:{n}: expected a JSON object")
            for name in ("response", "answer"):
                if not isinstance(row.get(name), str):
                    raise BadInput(f"{path}:{n}: '{name}' must be a string")
            if not isinstance(row.get("truncated", False), bool):
                raise BadInput(f"{path}:{n}: 'truncated' must be true or false")
            rows.append(row)
    return rows


def write_atomic(path: str, lines: list[str]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(lines)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.timeout <= 0:
            raise BadInput("--timeout must be positive")
        if args.workers is not None and args.workers < 1:
            raise BadInput("--workers must be >= 1")
        rows = read_rows(args.input)
    except (BadInput, OSError, UnicodeDecodeError) as e:
        print(f"limr reward: {e}", file=sys.stderr)
        return 2
    from limr_trainer.reward import RewardItem
    from limr_trainer.reward_pool import CheckerPool

    items = [RewardItem(r["response"], r["answer"], r.get("truncated", False)) for r in rows]
    with CheckerPool(args.workers) as pool:
        results = pool.map(items, timeout=args.timeout)
    out = []
    counts: dict[str, int] = {}
    for row, res in zip(rows, results):
        counts[res.reason] = counts.get(res.reason, 0) + 1
        out.append(
            json.dumps(
                {**row, "reward": res.reward, "reason": res.reason, "extracted": res.answer},
                ensure_ascii=False,
            )
            + "\n"
        )
    write_atomic(args.output, out)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"limr reward: {len(rows)} rows -> {args.output} ({summary})")
    return 0
