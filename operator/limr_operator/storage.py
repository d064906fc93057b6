"""What the operator reads from a job's storage (thin): the Selection summary and the last line of a
training step's `metrics.jsonl`; and the artifact URIs it puts in status.

Keys come from `limr_api.layout`, so operator and trainer never disagree about where a file lives.
The operator image has no trainer code, so this reads one object with boto3 (or a local path).

Whose credentials: the job's own Secret (`spec.storage.secretRef`) when it names one. Without one
the request is anonymous (unsigned): the operator never signs a request to an endpoint that a
LIMRJob author chose with the operator's own cloud identity, unless the cluster admin opted in
(`LIMR_OPERATOR_AMBIENT_STORAGE_CREDENTIALS=true`, see docs/SECURITY.md). Credentials are never logged.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from limr_api import layout
from limr_api.plan import SELECTION, parse_step

AMBIENT_ENV = "LIMR_OPERATOR_AMBIENT_STORAGE_CREDENTIALS"
MAX_SUMMARY_BYTES = 1024 * 1024


class SummaryUnavailable(Exception):
    """The object could not be read (not there yet, no access, bad JSON)."""


@dataclass(frozen=True)
class Access:
    """How to reach a job's storage: endpoint, region and (only from the job's Secret) keys."""

    endpoint: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None

    @property
    def signed(self) -> bool:
        return bool(self.access_key and self.secret_key)


def ambient_credentials_allowed() -> bool:
    return os.environ.get(AMBIENT_ENV, "").strip().lower() in ("1", "true", "yes")


def _uri(spec: Any, key: str) -> str:
    return f"{spec.storage.uri.rstrip('/')}/{key}"


def summary_uri(spec: Any, job: str) -> str:
    return _uri(spec, layout.summary_key(job))


def metrics_uri(spec: Any, job: str, step_key: str) -> str:
    return _uri(spec, layout.metrics_key(job, step_key))


def done_uri(spec: Any, job: str, step_key: str) -> str:
    return _uri(spec, layout.done_key(job, step_key))


def log_uri(spec: Any, job: str, step_key: str, attempt: int) -> str:
    return _uri(spec, layout.log_key(job, step_key, attempt))


def artifacts(spec: Any, job: str, step_key: str) -> dict[str, str]:
    """URIs a finished step leaves behind, keyed for status.artifacts."""
    if step_key == SELECTION.key:
        return {
            "selection": _uri(spec, layout.selection_prefix(job)),
            "selectionSummary": summary_uri(spec, job),
            "selected": _uri(spec, layout.selected_key(job)),
        }
    if step_key == "evaluation":
        return {"evaluation": _uri(spec, layout.step_prefix(job, "evaluation")),
                "report": _uri(spec, layout.report_prefix(job) + "report.md")}
    name = "".join(p.capitalize() if i else p for i, p in enumerate(step_key.split("-")))
    out = {f"{name}Records": _uri(spec, layout.rewards_prefix(job, step_key)),
           f"{name}Checkpoints": _uri(spec, layout.checkpoints_prefix(job, step_key))}
    if parse_step(step_key).trains:
        out[f"{name}Model"] = _uri(spec, layout.final_model_prefix(job, step_key))
    return out


def _s3_client(access: Access) -> Any:
    return _client_for(access, ambient_credentials_allowed())


@functools.lru_cache(maxsize=64)
def _client_for(access: Access, ambient: bool) -> Any:
    """One client per endpoint, region and key (and per opt-in), shared by the reconcile threads
    (boto3 clients are thread-safe): a session per read cost ~50 ms and a few MB each, so 200 jobs
    starting at once pushed the operator's peak memory past 300 MB."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    kwargs: dict[str, Any] = {}
    if access.endpoint:
        kwargs["endpoint_url"] = access.endpoint
    if access.region:
        kwargs["region_name"] = access.region
    if access.signed:
        kwargs.update(aws_access_key_id=access.access_key, aws_secret_access_key=access.secret_key)
        return boto3.session.Session().client("s3", **kwargs)
    if ambient:
        return boto3.session.Session().client("s3", **kwargs)
    return boto3.session.Session().client("s3", config=Config(signature_version=UNSIGNED), **kwargs)


def _read(uri: str, access: Access, tail: int | None = None) -> bytes:
    """The object's bytes (at most MAX_SUMMARY_BYTES), or only its last `tail` bytes."""
    if uri.startswith("s3://"):
        import botocore.exceptions

        parsed = urlparse(uri)
        extra = {"Range": f"bytes=-{tail}"} if tail else {"Range": f"bytes=0-{MAX_SUMMARY_BYTES - 1}"}
        try:
            body = _s3_client(access).get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"), **extra)["Body"]
            return body.read(MAX_SUMMARY_BYTES)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise SummaryUnavailable(f"{uri}: {type(exc).__name__}") from None
    path = Path(uri.removeprefix("file://"))
    try:
        with path.open("rb") as fh:
            if tail:
                fh.seek(max(0, path.stat().st_size - tail))
            return fh.read(MAX_SUMMARY_BYTES)
    except OSError as exc:
        raise SummaryUnavailable(f"{uri}: {exc.strerror}") from None


def exists(uri: str, access: Access = Access()) -> bool | None:
    """Whether the object is there: True, False (the store says it is not), None (cannot tell:
    no access, no answer). Used for a step's `_DONE.json` when its child is gone."""
    if uri.startswith("s3://"):
        import botocore.exceptions

        parsed = urlparse(uri)
        try:
            _s3_client(access).head_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
            return True
        except botocore.exceptions.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            return False if code in ("404", "NoSuchKey", "NotFound") else None
        except botocore.exceptions.BotoCoreError:
            return None
    try:
        return Path(uri.removeprefix("file://")).is_file()
    except OSError:
        return None


def read_summary(uri: str, access: Access = Access()) -> dict[str, Any]:
    try:
        data = json.loads(_read(uri, access))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise SummaryUnavailable(f"{uri}: not JSON: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise SummaryUnavailable(f"{uri}: expected a JSON object")
    return data


def read_last_jsonl(uri: str, access: Access = Access(), tail: int = 16384) -> dict[str, Any]:
    """The last complete line of a JSON-lines object (the trainer's metrics.jsonl), reading its tail only."""
    body = _read(uri, access, tail=tail)
    for line in reversed(body.splitlines()):
        try:
            row = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            continue  # the first line of a tail read may be cut
        if isinstance(row, dict):
            return row
    raise SummaryUnavailable(f"{uri}: no complete JSON line in its last {tail} bytes")
