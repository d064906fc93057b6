"""Shared fixtures for integration tests: a real S3 protocol server (moto_server) on loopback.

`s3_server` starts one `moto_server -H 127.0.0.1 -p <free port>` per test session and returns its
endpoint URL; `s3_bucket` creates a fresh, uniquely named bucket on it for one test;
`s3_client` is a plain boto3 client on the server for checking what is really stored.
Credentials are dummies (moto accepts any); see S3_CREDENTIALS.
"""

from __future__ import annotations

import socket
import uuid

import pytest
from moto_support import start_moto_server, stop

S3_CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing", "region": "us-east-1"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> str:
    """Endpoint URL (http://127.0.0.1:PORT) of a moto S3 server running for the whole session."""
    url, process = start_moto_server("127.0.0.1", free_port(), tmp_path_factory.mktemp("moto") / "moto_server.log")
    yield url
    stop(process)


@pytest.fixture(scope="session")
def s3_client(s3_server):
    """A boto3 S3 client on the session's moto server (no retries: checks see the server as is)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=s3_server,
        aws_access_key_id=S3_CREDENTIALS["access_key_id"],
        aws_secret_access_key=S3_CREDENTIALS["secret_access_key"],
        region_name=S3_CREDENTIALS["region"],
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}, s3={"addressing_style": "path"}),
    )


@pytest.fixture(scope="session")
def s3_credentials() -> dict[str, str]:
    """Keyword arguments for open_storage: dummy keys and a region (moto accepts any keys)."""
    return dict(S3_CREDENTIALS)


@pytest.fixture
def s3_bucket(s3_client) -> str:
    """Name of a new, empty bucket on the session's moto server."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    return name
