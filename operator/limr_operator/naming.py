"""Deterministic child names: DNS-1035 labels of at most 47 characters that carry the attempt.

47 leaves room for the suffixes KubeRay appends to a RayJob's name for its RayCluster, head and
worker pods and services (which must stay within 63). A long job name keeps a readable prefix
and gets a short hash of the full name, so two long names never collide by truncation.
"""

from __future__ import annotations

import hashlib
import re

from limr_api.plan import LIM_ARM, Step

MAX_NAME = 47
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_SHORT = {"baseline": "baseline", "selection": "select", "retrain": "retrain", "evaluation": "eval"}


def is_dns1035(name: str, max_len: int = 63) -> bool:
    return bool(_DNS1035.match(name)) and len(name) <= max_len


def child_name(job: str, step: Step, attempt: int) -> str:
    """`<job>-<kind>[-<arm>]-<attempt>`, e.g. `qwen-math-7b-limr-retrain-random-2` (the LIM arm has no suffix)."""
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    arm = step.arm if step.arm not in (None, LIM_ARM) else None
    suffix = "-" + _SHORT[step.kind] + (f"-{arm}" if arm else "") + f"-{attempt}"
    if len(job) + len(suffix) <= MAX_NAME:
        return job + suffix
    digest = hashlib.sha256(job.encode()).hexdigest()[:6]
    keep = MAX_NAME - len(suffix) - len(digest) - 1
    prefix = job[:keep].rstrip("-")
    return f"{prefix}-{digest}{suffix}"
