"""The Dockerfile's install steps, run for real (CI has no Docker engine, so it runs the scripts):

- `scripts/docker-install-operator.sh` builds the operator image's environment into a throwaway
  venv: a real, non-editable `pip install .[operator]` with dependency resolution (the pip cache and
  the local wheel index keep it fast). The script itself fails if torch, vllm, ray or deepspeed get
  in; the test then runs the installed `limr` console script like the container does.
- `scripts/docker-install-trainer.sh check` imports the trainer stack of the CI venv (built by
  `make venv` with the same steps as the script's `cpu` variant) and compares torch, vLLM, DeepSpeed
  and Ray with the image's pins and with the LIMRJob's default rayVersion.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from chart_support import REPO

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def run(args: list[str], **kw) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": os.environ.get("PYTHON", "python3.11")}
    return subprocess.run(args, capture_output=True, text=True, check=False, env=env, **kw)


def test_operator_image_install_has_no_torch_and_runs(tmp_path: Path) -> None:
    prefix = tmp_path / "operator-venv"
    proc = run(["bash", str(REPO / "scripts" / "docker-install-operator.sh"), str(prefix), str(REPO)], timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "operator install ok" in proc.stdout
    # Not the repository's sources: the installed copy (site-packages) is what the image runs.
    where = subprocess.run([str(prefix / "bin" / "python"), "-c", "import limr_operator; print(limr_operator.__file__)"],
                           capture_output=True, text=True, check=False, cwd=tmp_path, timeout=60)
    assert "site-packages" in where.stdout, where.stdout + where.stderr
    help_ = subprocess.run([str(prefix / "bin" / "limr"), "operator", "--help"], capture_output=True, text=True, check=False,
                           cwd=tmp_path, timeout=60)
    assert help_.returncode == 0 and "--metrics-port" in help_.stdout, help_.stderr
    crd = subprocess.run([str(prefix / "bin" / "limr"), "crd"], capture_output=True, text=True, check=False, cwd=tmp_path,
                         timeout=60)
    assert crd.returncode == 0 and "CustomResourceDefinition" in crd.stdout, crd.stderr


def test_trainer_install_matches_the_image_pins() -> None:
    venv = Path(sys.prefix)
    proc = run(["bash", str(REPO / "scripts" / "docker-install-trainer.sh"), "check", str(venv), str(REPO)],
               timeout=200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "trainer install ok" in proc.stdout
