"""Thin readers of what the trainer stores, for status: the Selection summary
(`<root>/<job>/selection/summary.json`) and the last line of a phase's `metrics.jsonl`.

The operator may not import the trainer's storage layer (no torch in its image), so this reads one
JSON object from S3 with boto3 (or from a local path, for `limr run`-style storage). Credentials
come from the job's Secret and are never logged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


class SummaryUnavailable(Exception):
    """The summary could not be read (not there yet, no access, bad JSON)."""


def _read(uri: str, endpoint: str | None, region: str | None, access_key: str | None,
          secret_key: str | None, tail: int | None = None) -> bytes:
    """The object's bytes, or only its last `tail` bytes (a ranged GET on S3)."""
    if uri.startswith("s3://"):
        import boto3
        import botocore.exceptions

        parsed = urlparse(uri)
        kwargs: dict[str, Any] = {}
        if endpoint:
            kwargs["endpoint_url"] = endpoint
        if region:
            kwargs["region_name"] = region
        if access_key and secret_key:
            kwargs.update(aws_access_key_id=access_key, aws_secret_access_key=secret_key)
        client = boto3.client("s3", **kwargs)
        extra = {"Range": f"bytes=-{tail}"} if tail else {}
        try:
            return client.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"), **extra)["Body"].read()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise SummaryUnavailable(f"{uri}: {type(exc).__name__}: {exc}") from None
    path = Path(uri.removeprefix("file://"))
    try:
        with path.open("rb") as fh:
            if tail:
                fh.seek(max(0, path.stat().st_size - tail))
            return fh.read()
    except OSError as exc:
        raise SummaryUnavailable(f"{uri}: {exc.strerror}") from None


def read_summary(uri: str, endpoint: str | None = None, region: str | None = None,
                 access_key: str | None = None, secret_key: str | None = None) -> dict[str, Any]:
    try:
        body = _read(uri, endpoint, region, access_key, secret_key)
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SummaryUnavailable(f"{uri}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SummaryUnavailable(f"{uri}: expected a JSON object")
    return data


def read_last_jsonl(uri: str, endpoint: str | None = None, region: str | None = None,
                    access_key: str | None = None, secret_key: str | None = None,
                    tail: int = 16384) -> dict[str, Any]:
    """The last complete line of a JSON-lines object (the trainer's metrics.jsonl), reading its tail only."""
    body = _read(uri, endpoint, region, access_key, secret_key, tail=tail)
    for line in reversed(body.splitlines()):
        try:
            row = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            continue  # the first line of a tail read may be cut
        if isinstance(row, dict):
            return row
    raise SummaryUnavailable(f"{uri}: no complete JSON line in its last {tail} bytes")

