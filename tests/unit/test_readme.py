"""The README's LIMRJob example is real: it validates, and the commands it promises exist."""

from __future__ import annotations

import re
from pathlib import Path

from limr_trainer.cli import COMMANDS
from limr_trainer.spec import load_job

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_limrjob_example_validates() -> None:
    import yaml

    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", README, re.S) if "kind: LIMRJob" in b]
    job = load_job(yaml.safe_load(block))
    assert job.spec.selection.resolved_threshold() == 0.6
    assert job.spec.baseline.epochs == 21


def test_readme_names_only_existing_commands() -> None:
    named = set(re.findall(r"`limr (\w+)", README))
    assert named and named <= set(COMMANDS), named - set(COMMANDS)
    assert "make demo" in README and "make test" in README
