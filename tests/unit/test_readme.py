"""The README's LIMRJob example is real: it validates, and the commands it promises exist."""

from __future__ import annotations

import re

from limr_api.cli import commands
from limr_api.loader import load_job
from paths import REPO

README = (REPO / "README.md").read_text()


def test_readme_limrjob_example_validates() -> None:
    import yaml

    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", README, re.DOTALL) if "kind: LIMRJob" in b]
    job = load_job(yaml.safe_load(block))
    assert job.spec.selection.resolved_threshold() == 0.6
    assert job.spec.baseline.epochs == 21


def test_readme_names_only_existing_commands() -> None:
    named = set(re.findall(r"`limr (\w+)", README))
    assert named and named <= set(commands()), named - set(commands())
    assert "make demo" in README and "make test" in README
