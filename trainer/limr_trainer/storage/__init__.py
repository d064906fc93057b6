"""Storage for LIMR artefacts: one interface over S3 (`s3://bucket/prefix`) and local folders.

`open_storage(uri)` picks the backend from the URI scheme. Importing this package loads neither
boto3 nor pyarrow: the S3 backend is imported when an `s3://` URI is opened, pyarrow when Parquet
is read or written.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .base import ObjectNotFound, Storage, StorageError

__all__ = ["ObjectNotFound", "Storage", "StorageError", "StorageRoot", "StorageSettings", "job_root",
           "open_job_storage", "open_storage", "parse_uri"]


def parse_uri(uri: str) -> tuple[str, str, str]:
    """Split a storage URI into (scheme, location, prefix).

    `s3://bucket/some/prefix` -> ("s3", "bucket", "some/prefix"); `file:///abs/dir` and plain paths
    -> ("file", "/abs/dir" or the path as given, ""). Other schemes raise StorageError.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise StorageError(
            f"invalid storage URI {uri!r}: expected s3://BUCKET[/PREFIX], file:///PATH or a path"
        )
    if "://" not in uri:
        return "file", uri, ""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        if not parts.netloc:
            raise StorageError(f"invalid storage URI {uri!r}: s3:// needs a bucket (s3://BUCKET[/PREFIX])")
        if parts.query or parts.fragment:
            raise StorageError(f"invalid storage URI {uri!r}: no query or fragment allowed")
        return "s3", parts.netloc, parts.path.strip("/")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise StorageError(f"invalid storage URI {uri!r}: file URIs need an absolute path (file:///PATH)")
        if not parts.path:
            raise StorageError(f"invalid storage URI {uri!r}: empty path")
        return "file", parts.path, ""
    raise StorageError(f"unsupported storage URI {uri!r}: use s3://BUCKET[/PREFIX], file:///PATH or a path")


def open_storage(
    uri: str,
    endpoint: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    region: str | None = None,
    **s3_options: Any,
) -> Storage:
    """Open the storage root named by `uri`.

    `endpoint`, the keys and `region` apply to `s3://` only (endpoint default: AWS_ENDPOINT_URL_S3
    or AWS_ENDPOINT_URL; credentials default: the standard AWS chain). `s3_options` are passed to
    S3Storage (max_attempts, retry_mode, multipart_threshold, multipart_chunksize, ...) and are
    ignored for local roots, so one configuration serves both kinds of URI.
    """
    scheme, location, prefix = parse_uri(uri)
    if scheme == "s3":
        from .s3 import S3Storage

        return S3Storage(
            location,
            prefix,
            endpoint=endpoint,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            region=region,
            **s3_options,
        )
    from .local import LocalStorage

    return LocalStorage(location)


from .settings import StorageRoot, StorageSettings, job_root, open_job_storage
