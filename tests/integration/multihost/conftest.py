"""Fixtures of the multi-host tests: a bridge network of hosts on this machine and an S3 server on it.

`network` is a `multihost_support.Network` (removed after the test, also when it fails);
`s3_gateway` runs `moto_server` in the root namespace on the bridge's address, where every host
reaches it, and returns (endpoint URL, path of its request log). Both need root; without it the
tests skip loudly (and CI, which runs as root, fails on any skip).
"""

from __future__ import annotations

import importlib.util
import socket

import pytest
from moto_support import start_moto_server, stop
from multihost_support import DIE_WITH_PARENT, Network, missing_requirements


@pytest.fixture
def network(tmp_path):
    missing = missing_requirements()
    if missing:
        pytest.skip(f"SKIPPED LOUDLY: {missing}")
    for module in ("ray", "vllm", "deepspeed"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"SKIPPED LOUDLY: {module} is not installed (the multi-host cluster runs the trainer)")
    scratch = tmp_path / "network"
    scratch.mkdir()
    with Network.create(scratch) as net:
        yield net


@pytest.fixture
def s3_gateway(network, tmp_path):
    with socket.socket() as sock:
        sock.bind((network.gateway, 0))
        port = sock.getsockname()[1]
    log = tmp_path / "moto_server.log"
    url, process = start_moto_server(network.gateway, port, log, prefix=DIE_WITH_PARENT)
    yield url, log
    stop(process)
