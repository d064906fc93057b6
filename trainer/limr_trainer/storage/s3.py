"""S3 backend (`s3://bucket/prefix`), also for S3-compatible servers such as MinIO.

Atomicity comes from S3 itself: a single PUT or a completed multipart upload appears whole, and an
interrupted multipart upload is never visible as an object (boto3's transfer manager aborts it on
failure when the server is reachable; a bucket lifecycle rule covers servers that vanished).
Transient errors (5xx, throttling, dropped connections) are retried by botocore's own retry
handler; this module only configures it. boto3 is imported when a storage is opened, not before.
"""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from .base import ObjectNotFound, Storage, StorageError, check_key, check_prefix, join_key

MiB = 1 << 20
S3_MIN_PART = 5 * MiB  # S3's smallest multipart part (except the last)
RETRY_MODES = ("standard", "adaptive")


class S3Storage(Storage):
    """Objects under `s3://bucket/prefix`.

    `endpoint` (else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL) points at a non-AWS server and switches
    to path-style addressing, which MinIO-style servers need. Credentials: explicit keys, else the
    standard boto3 chain (environment, config files, web identity, instance metadata).
    `max_attempts` counts the first try; objects of `multipart_threshold` bytes or more go up
    in parts of `multipart_chunksize` bytes, `max_concurrency` at a time.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        region: str | None = None,
        max_attempts: int = 5,
        retry_mode: str = "standard",
        multipart_threshold: int = 64 * MiB,
        multipart_chunksize: int = 16 * MiB,
        max_concurrency: int = 4,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
    ):
        if not bucket:
            raise StorageError("S3 storage needs a bucket: s3://BUCKET[/PREFIX]")
        if (access_key_id is None) != (secret_access_key is None):
            raise StorageError("S3 credentials need both access_key_id and secret_access_key, or neither")
        if retry_mode not in RETRY_MODES:
            raise StorageError(f"retry_mode must be one of {RETRY_MODES}, not {retry_mode!r}")
        if max_attempts < 1 or multipart_threshold < 1 or max_concurrency < 1:
            raise StorageError("max_attempts, multipart_threshold and max_concurrency must be >= 1")
        if multipart_chunksize < S3_MIN_PART:
            raise StorageError(f"multipart_chunksize must be >= {S3_MIN_PART} bytes (S3's minimum part)")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            check_key(self.prefix)
        self.endpoint = (
            endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        )
        if self.endpoint:
            from . import check_no_userinfo

            check_no_userinfo(self.endpoint, "S3 endpoint")
        self.multipart_threshold = multipart_threshold

        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        session = boto3.session.Session(
            botocore_session=_botocore_session(),
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            aws_session_token=session_token,
            region_name=region,
        )
        config = Config(
            retries={"mode": retry_mode, "total_max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max(10, max_concurrency + 2),
            s3={"addressing_style": "path"} if self.endpoint else None,
        )
        self._client = session.client("s3", endpoint_url=self.endpoint, config=config)
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=max_concurrency,
            num_download_attempts=max_attempts,
            preferred_transfer_client="classic",  # the CRT client would bypass botocore's retry config
        )

    def __repr__(self) -> str:
        return f"S3Storage({self.uri()!r}, endpoint={self.endpoint!r})"

    @property
    def client(self) -> Any:
        """The boto3 S3 client (for callers that need an operation this interface lacks)."""
        return self._client

    def uri(self, key: str = "") -> str:
        if not key:
            return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return f"s3://{self.bucket}/{self._full(key)}"

    def _full(self, key: str) -> str:
        return join_key(self.prefix, check_key(key))

    # ---- primitives ---------------------------------------------------------------------------
    def put_bytes(self, key: str, data: bytes) -> None:
        full = self._full(key)
        if len(data) < self.multipart_threshold:
            with self._errors("put", key):
                self._client.put_object(Bucket=self.bucket, Key=full, Body=data)
            return
        with self._errors("put", key, f"multipart, {len(data)} bytes"):
            self._client.upload_fileobj(io.BytesIO(data), self.bucket, full, Config=self._transfer)

    def put_file(self, key: str, path: str | os.PathLike[str]) -> None:
        with self._errors("put", key, f"from {os.fspath(path)}"):
            self._client.upload_file(os.fspath(path), self.bucket, self._full(key), Config=self._transfer)

    def get_bytes(self, key: str) -> bytes:
        # The transfer manager, unlike a bare get_object, also retries a body cut off mid-stream.
        buffer = io.BytesIO()
        with self._errors("get", key):
            self._client.download_fileobj(self.bucket, self._full(key), buffer, Config=self._transfer)
        return buffer.getvalue()

    def get_file(self, key: str, path: str | os.PathLike[str]) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # The transfer manager writes a temp file and renames it: the local copy is atomic too.
        with self._errors("get", key, f"to {os.fspath(path)}"):
            self._client.download_file(self.bucket, self._full(key), os.fspath(path), Config=self._transfer)

    def exists(self, key: str) -> bool:
        try:
            with self._errors("head", key):
                self._client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ObjectNotFound:
            return False
        return True

    def list(self, prefix: str = "") -> list[str]:
        check_prefix(prefix)
        root = self.prefix + "/" if self.prefix else ""
        keys: list[str] = []
        with self._errors("list", prefix or ""):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=root + prefix
            )
            for page in pages:
                keys.extend(item["Key"][len(root) :] for item in page.get("Contents", ()))
        return sorted(keys)

    def delete(self, key: str) -> None:
        with self._errors("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        root = self.prefix + "/" if self.prefix else ""
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            batch = [{"Key": root + key} for key in keys[start : start + 1000]]  # as listed, unchecked
            with self._errors("delete", prefix or ""):
                response = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise StorageError(
                    f"delete under s3://{self.bucket}/{join_key(self.prefix, prefix)} failed for "
                    f"{len(response['Errors'])} key(s), e.g. {first.get('Key')}: "
                    f"{first.get('Code')} {first.get('Message')}"
                )
        return len(keys)

    def clean_interrupted(self, prefix: str = "", older_than_s: float = 3600.0) -> int:
        check_prefix(prefix)
        root = self.prefix + "/" if self.prefix else ""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        removed = 0
        with self._errors("clean interrupted uploads under", prefix):
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=root + prefix
            )
            stale = [u for page in pages for u in page.get("Uploads", ()) if u["Initiated"] <= cutoff]
            for upload in stale:
                self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                removed += 1
        return removed

    def _errors(self, op: str, key: str, detail: str = "") -> _S3Errors:
        where = f"s3://{self.bucket}/{join_key(self.prefix, key)}"  # key may be a prefix: no check
        extra = ", ".join(x for x in (detail, f"endpoint {self.endpoint}" if self.endpoint else "") if x)
        return _S3Errors(f"{op} {where}" + (f" ({extra})" if extra else ""), self.bucket)


_LOADER: Any = None


def _botocore_session() -> Any:
    """A fresh botocore session (own credentials) sharing one model loader with all others.

    Parsing botocore's service models dominates creating a client (~0.1-0.2 s); the shared loader
    caches them, so opening another storage costs ~20 ms.
    """
    global _LOADER
    import botocore.loaders
    import botocore.session

    if _LOADER is None:
        _LOADER = botocore.loaders.create_loader()
    session = botocore.session.get_session()
    session.register_component("data_loader", _LOADER)
    return session


class _S3Errors:
    """Turn boto3/botocore/transfer failures into StorageError naming the operation, URI and cause."""

    def __init__(self, what: str, bucket: str):
        self.what, self.bucket = what, bucket

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or isinstance(exc, StorageError):
            return False
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
        from s3transfer.exceptions import RetriesExceededError, S3UploadFailedError

        if isinstance(exc, Boto3Error) and isinstance(exc.__cause__ or exc.__context__, ClientError):
            exc = exc.__cause__ or exc.__context__  # boto3 wraps upload ClientErrors: use the original
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            meta = exc.response.get("ResponseMetadata", {})
            status = meta.get("HTTPStatusCode")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFound(f"no object at {self.what}") from exc
            if code == "NoSuchBucket":
                raise StorageError(f"{self.what} failed: bucket {self.bucket!r} does not exist") from exc
            retries = meta.get("RetryAttempts", 0)
            raise StorageError(
                f"{self.what} failed: {code or 'error'} (HTTP {status}): {error.get('Message', exc)}"
                + (f" after {retries} retries" if retries else "")
            ) from exc
        if isinstance(exc, NoCredentialsError):
            raise StorageError(
                f"{self.what} failed: no S3 credentials (give access keys, a storage secret, or "
                "configure the standard AWS chain)"
            ) from exc
        if isinstance(exc, (BotoCoreError, Boto3Error, RetriesExceededError, S3UploadFailedError, OSError)):
            raise StorageError(f"{self.what} failed: {type(exc).__name__}: {exc}") from exc
        return False
