"""Starting a real S3 protocol server (`moto_server`) for tests: one implementation for every fixture.

`start_moto_server(host, port, log)` returns (endpoint URL, process) once it answers; the caller
stops the process. A missing `moto_server` skips loudly (CI installs it with `make venv`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def moto_server_command() -> list[str]:
    local = Path(sys.executable).with_name("moto_server")
    found = str(local) if local.exists() else shutil.which("moto_server")
    if not found:
        pytest.skip(
            "MOTO_SERVER MISSING: the S3 integration tests need `moto_server` (pip install 'moto[server]'); "
            "CI installs it with `make venv`"
        )
    return [found]


def wait_until_answering(url: str, process: subprocess.Popen, timeout_s: float = 30.0) -> None:
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


def start_moto_server(host: str, port: int, log: Path, prefix: tuple[str, ...] = ()) -> tuple[str, subprocess.Popen]:
    """`moto_server -H host -p port` writing its request log to `log`; (URL, process) once serving.
    `prefix` goes before the command (e.g. `setpriv --pdeathsig KILL --`)."""
    command = moto_server_command()
    url = f"http://{host}:{port}"
    with open(log, "wb") as out:
        process = subprocess.Popen([*prefix, *command, "-H", host, "-p", str(port)], stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        wait_until_answering(url, process)
    except RuntimeError as exc:
        process.kill()
        process.wait()
        raise RuntimeError(f"{exc}; log:\n{log.read_text(errors='replace')[-2000:]}") from None
    return url, process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
