"""`limr reward`: score responses with LIMR's rule reward, JSONL in, JSONL out.

Input rows `{"response", "answer", "truncated"?}`; output rows are the input rows plus `reward`
(1.0 / -0.5 / -1.0), `reason` (`correct`, `wrong_answer` or the format rule that fired) and
`extracted` (the last \\boxed{...} content or null). All input, and `--output`, are checked before any scoring (a bad
line is reported with its number, exit code 2), and the output is written whole at the end, to a
local path (through a temporary file renamed into place) or to an s3:// URI, so nothing half
written is ever left. Ctrl-C or SIGTERM stops the checker workers with the command (exit 130).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from typing import Any

from limr_api import cliargs

HELP = "score responses with the LIMR rule reward (JSONL in, JSONL out)"


class BadInput(ValueError):
    pass


def _timeout(text: str) -> float:
    from limr_trainer.reward.pool import check_timeout

    try:
        return check_timeout(float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="limr reward", description=__doc__.split("\n")[0])
    p.add_argument("--input", required=True, help="JSONL file of {response, answer, truncated?}")
    p.add_argument("--output", required=True, help="JSONL file or s3:// URI to write")
    p.add_argument("--workers", type=cliargs.workers, default=None, help="checker processes (default: usable CPUs)")
    p.add_argument("--timeout", type=_timeout, default=5.0, help="seconds per answer before it scores -1")
    return p


def read_rows(path: str) -> list[dict[str, Any]]:
    """Parse and check every line; BadInput names the first bad line."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, not a JSONL file") from None
    rows = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadInput(f"{path}:{n}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1})") from None
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise BadInput(f"{path}:{n}: invalid JSON: {e.msg} (column {e.colno})") from None
        except RecursionError:
            raise BadInput(f"{path}:{n}: JSON nested too deeply") from None
        if not isinstance(row, dict):
            raise BadInput(f"{path}:{n}: expected a JSON object")
        for name in ("response", "answer"):
            if not isinstance(row.get(name), str):
                raise BadInput(f"{path}:{n}: '{name}' must be a string")
        if not isinstance(row.get("truncated", False), bool):
            raise BadInput(f"{path}:{n}: 'truncated' must be true or false")
        rows.append(row)
    return rows


def json_line(row: dict[str, Any]) -> bytes:
    """One output line; text that cannot be UTF-8 (a lone surrogate) is written as \\u escapes."""
    from limr_trainer.storage.base import json_bytes

    return json_bytes(row) + b"\n"


def open_output(target: str) -> tuple[Any, str]:
    """(storage, key) that `--output` names, a local path or a storage URI; checked before any
    scoring, so a bad --output costs nothing."""
    from pathlib import Path

    from limr_trainer.storage import open_storage, parse_uri

    scheme, location, key = parse_uri(target)
    if scheme == "s3":
        if not key:
            raise BadInput(f"{target}: give an object key after the bucket (s3://BUCKET/KEY)")
        return open_storage(f"s3://{location}"), key
    path = Path(location)
    if path.is_dir() or location.endswith("/"):
        raise BadInput(f"{target}: is a directory; give a file name for --output")
    return open_storage(str(path.parent)), path.name


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    from limr_trainer.storage import StorageError

    try:
        rows = read_rows(args.input)
        storage, key = open_output(args.output)
    except (BadInput, StorageError, OSError) as e:
        print(f"limr reward: {e}", file=sys.stderr)
        return 2
    from limr_trainer.reward import RewardItem
    from limr_trainer.reward.pool import CheckerPool

    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too where a shell left it ignored
        signal.signal(signum, _stop)
    items = [RewardItem(r["response"], r["answer"], r.get("truncated", False)) for r in rows]
    try:
        with CheckerPool(args.workers) as pool:
            results = pool.map(items, timeout=args.timeout)
        out = []
        counts: dict[str, int] = {}
        for row, res in zip(rows, results):
            counts[res.reason] = counts.get(res.reason, 0) + 1
            out.append(json_line({**row, "reward": res.reward, "reason": res.reason, "extracted": res.answer}))
        storage.put_bytes(key, b"".join(out))
    except KeyboardInterrupt:
        print("limr reward: interrupted; no output written", file=sys.stderr)
        return 130
    except (BadInput, StorageError, OSError) as e:
        print(f"limr reward: {e}", file=sys.stderr)
        return 2
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"limr reward: {len(rows)} rows -> {args.output} ({summary})")
    return 0
