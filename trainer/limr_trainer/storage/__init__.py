"""Storage for LIMR artefacts: one interface over S3 (`s3://bucket/prefix`) and local folders.

`open_storage(uri)` picks the backend from the URI scheme. Importing this package loads neither
boto3 nor pyarrow: the S3 backend is imported when an `s3://` URI is opened, pyarrow when Parquet
is read or written.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from .base import ObjectNotFound, Storage, StorageError

__all__ = ["ObjectNotFound", "Storage", "StorageError", "StorageRoot", "StorageSettings", "check_no_userinfo",
           "job_root", "open_job_storage", "open_storage", "parse_uri", "redact_userinfo"]


def redact_userinfo(uri: str) -> str:
    """`uri` with any `user:password@` replaced, so no error message or log line repeats a secret."""
    return _USERINFO.sub(r"\1***@", uri)


_USERINFO = re.compile(r"(://)[^/?#@\s]*@")


def _split(uri: str):
    try:
        return urlsplit(uri)
    except ValueError as exc:  # e.g. an unclosed '[' (an IPv6 host)
        raise StorageError(f"invalid storage URI {redact_userinfo(uri)!r}: {exc}") from None


def check_no_userinfo(uri: str, what: str = "storage URI") -> None:
    """Refuse `user:password@` in a URI: credentials come from a Secret or the AWS chain, never a URI
    (a URI is printed, logged and rendered into pod specs)."""
    if "://" in uri and "@" in _split(uri).netloc:
        raise StorageError(f"invalid {what} {redact_userinfo(uri)!r}: no user:password in a URI; give "
                           "credentials through the job's storage secretRef or the AWS environment")


def parse_uri(uri: str) -> tuple[str, str, str]:
    """Split a storage URI into (scheme, location, prefix).

    `s3://bucket/some/prefix` -> ("s3", "bucket", "some/prefix"); `file:///abs/dir` and plain paths
    -> ("file", "/abs/dir" or the path as given, ""). Other schemes, and a user:password in the URI,
    raise StorageError (whose message never repeats the password).
    """
    if not isinstance(uri, str) or not uri.strip():
        raise StorageError(
            f"invalid storage URI {uri!r}: expected s3://BUCKET[/PREFIX], file:///PATH or a path"
        )
    if "://" not in uri:
        return "file", uri, ""
    check_no_userinfo(uri)
    shown = redact_userinfo(uri)
    parts = _split(uri)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        if not parts.netloc:
            raise StorageError(f"invalid storage URI {shown!r}: s3:// needs a bucket (s3://BUCKET[/PREFIX])")
        if parts.query or parts.fragment:
            raise StorageError(f"invalid storage URI {shown!r}: no query or fragment allowed")
        return "s3", parts.netloc, parts.path.strip("/")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise StorageError(f"invalid storage URI {shown!r}: file URIs need an absolute path (file:///PATH)")
        if not parts.path:
            raise StorageError(f"invalid storage URI {shown!r}: empty path")
        return "file", parts.path, ""
    raise StorageError(f"unsupported storage URI {shown!r}: use s3://BUCKET[/PREFIX], file:///PATH or a path")


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
