"""A thin reader of the Selection summary (`<root>/<job>/selection/summary.json`) for status.

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


def read_summary(uri: str, endpoint: str | None = None, region: str | None = None,
                 access_key: str | None = None, secret_key: str | None = None) -> dict[str, Any]:
    try:
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
            try:
                body = client.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                raise SummaryUnavailable(f"{uri}: {type(exc).__name__}: {exc}") from None
        else:
            path = Path(uri.removeprefix("file://"))
            try:
                body = path.read_bytes()
            except OSError as exc:
                raise SummaryUnavailable(f"{uri}: {exc.strerror}") from None
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SummaryUnavailable(f"{uri}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SummaryUnavailable(f"{uri}: expected a JSON object")
    return data
