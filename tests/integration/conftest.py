"""Shared fixtures for integration tests: a real S3 protocol server (moto_server) on loopback.

`s3_server` starts one `moto_server -H 127.0.0.1 -p <free port>` per test session and returns its
endpoint URL; `s3_bucket` creates a fresh, uniquely named bucket on it for one test;
`s3_client` is a plain boto3 client on the server for checking what is really stored.
Credentials are dummies (moto accepts any); see S3_CREDENTIALS.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

S3_CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing", "region": "us-east-1"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _moto_server_command() -> list[str]:
    local = Path(sys.executable).with_name("moto_server")
    found = str(local) if local.exists() else shutil.which("moto_server")
    if not found:
        pytest.skip(
            "MOTO_SERVER MISSING: the S3 integration tests need `moto_server` (pip install 'moto[server]'); "
            "CI installs it with `make venv`"
        )
    return [found]


def _wait_until_answering(url: str, process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode} before answering on {url}")
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # an HTTP answer of any status: it is serving
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"moto_server did not answer on {url} within {timeout_s} s")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> str:
    """Endpoint URL (http://127.0.0.1:PORT) of a moto S3 server running for the whole session."""
    command = _moto_server_command()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*command, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_answering(url, process)
    except RuntimeError as exc:
        process.kill()
        process.wait()
        raise RuntimeError(f"{exc}; log:\n{log.read_text(errors='replace')[-2000:]}") from None
    yield url
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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
