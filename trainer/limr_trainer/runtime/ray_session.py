"""The one way a process starts or joins Ray, and the environment its actors get.

- Inside a RayJob (KubeRay sets `RAY_ADDRESS`): join that cluster.
- Ray already initialised in this process: use it (tests, notebooks).
- Otherwise: a private local cluster for this process, in a temporary folder short enough for
  Ray's unix sockets; shut down on exit with the /dev/shm files its vLLM engines left.
Only a session this function started is shut down by it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from limr_trainer.runtime import shm
from limr_trainer.runtime.cache import torch_extensions_dir

# Passed to every actor: credentials and endpoints for storage, caches, DeepSpeed's built ops.
FORWARDED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION", "AWS_REGION", "HF_HOME", "HF_HUB_CACHE",
                 "HF_HUB_OFFLINE", "LIMR_CACHE", "XDG_CACHE_HOME")


def worker_env() -> dict[str, str]:
    """Environment variables of the actors this driver starts (Ray `runtime_env.env_vars`)."""
    env = {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}
    env["TORCH_EXTENSIONS_DIR"] = torch_extensions_dir()
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env


@contextmanager
def ray_session(num_cpus: int | None = None) -> Iterator[str]:
    """Ray for the duration of the block; yields "joined", "reused" or "local"."""
    import ray

    if ray.is_initialized():
        yield "reused"
        return
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", torch_extensions_dir())
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    before = shm.snapshot()
    temp = None
    try:
        if os.environ.get("RAY_ADDRESS"):
            ray.init(log_to_driver=bool(os.environ.get("LIMR_RAY_LOGS")), configure_logging=False)
            how = "joined"
        else:
            temp = tempfile.mkdtemp(prefix="limr-ray-", dir="/tmp")
            ray.init(address="local", _temp_dir=temp, num_cpus=num_cpus or max(os.cpu_count() or 1, 2),
                     include_dashboard=False, log_to_driver=bool(os.environ.get("LIMR_RAY_LOGS")),
                     configure_logging=False)
            how = "local"
        yield how
    finally:
        try:
            if ray.is_initialized():
                ray.shutdown()
        finally:
            shm.cleanup(before)
            if temp:
                shutil.rmtree(temp, ignore_errors=True)
