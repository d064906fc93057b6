"""The operator image has no torch: importing every operator module must load, of the trainer, only
its pure API (`spec`) and storage-key layout (`layout`), and no heavy ML stack. The trainer never
imports the operator (the `limr` CLI table is the one place that names both)."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ALLOWED_TRAINER = {"limr_trainer", "limr_trainer.spec", "limr_trainer.layout"}
HEAVY = ("torch", "ray", "vllm", "deepspeed", "transformers", "pyarrow", "matplotlib")


def test_operator_imports_only_the_trainer_api() -> None:
    import limr_operator

    modules = [m.name for m in pkgutil.walk_packages(limr_operator.__path__, "limr_operator.")]
    assert len(modules) > 5
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    loaded = set(json.loads(out.stdout))
    trainer = {m for m in loaded if m.startswith("limr_trainer")}
    assert trainer <= ALLOWED_TRAINER, f"operator pulls trainer modules: {sorted(trainer - ALLOWED_TRAINER)}"
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert not heavy, f"operator imports heavy modules: {heavy[:10]}"


def test_trainer_never_imports_the_operator() -> None:
    offenders = []
    for path in (REPO / "trainer" / "limr_trainer").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.startswith("limr_operator")]
    assert not offenders, offenders
