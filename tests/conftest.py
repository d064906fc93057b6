"""Suite-wide policy: a test may skip (loudly) on a developer machine that lacks something, but in
CI (`CI=true`, set by the CI runner) every component must be present, so any skip fails the run."""

from __future__ import annotations

import os

import pytest

# The real control plane (scripts/cluster.sh) as the session fixture `real_cluster`, for every test.
from realcluster import real_cluster  # noqa: F401

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") and _skipped:
        print("\nCI forbids skipped tests; these skipped (install what they name):")
        for line in _skipped:
            print(f"  {line}")
        session.exitstatus = 1
