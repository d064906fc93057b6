"""Property-based and fuzz tests (hypothesis): a fixed budget, the same examples on every run.

The `ci` profile (the default) is derandomized, so a run on CI replays exactly the examples a run
here did, and has a fixed number of examples per test and a per-example deadline that is a hang
guard (generous for a loaded 2-core machine), not a performance measure. `HYPOTHESIS_PROFILE=deep`
explores further (random seeds, 20x the examples) for a developer hunting bugs.
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=timedelta(seconds=10),
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "deep",
    max_examples=1200,
    deadline=timedelta(seconds=30),
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
