"""The top-level `operator/` folder must never shadow Python's standard `operator` module."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

from paths import REPO


def test_operator_folder_is_not_a_package():
    assert (REPO / "operator" / "limr_operator").is_dir()
    assert not (REPO / "operator" / "__init__.py").exists(), (
        "operator/__init__.py would make the folder a package that shadows the standard `operator` module"
    )


def test_import_operator_from_repo_root_is_the_standard_module():
    # `python -c` puts the working directory first on sys.path, as a user's shell in the repo would.
    code = "import operator, sys; print(operator.__file__); print(operator.itemgetter(1)([0, 7]))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    path, item = out.stdout.split()
    assert Path(path).resolve().parent == Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert item == "7"
