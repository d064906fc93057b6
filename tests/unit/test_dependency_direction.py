"""The import graph is the architecture (docs/ARCHITECTURE.md): operator <- api only, no trainer
import in the api or the operator, no operator import in the trainer, and the trainer's packages
in one direction (each imports only packages of lower layers), so there is no cycle anywhere."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from collections import defaultdict

from paths import REPO

HEAVY = ("torch", "ray", "vllm", "deepspeed", "transformers", "pyarrow", "matplotlib", "kopf", "kubernetes")
# A package may import packages of lower layers (and its own), never higher or equal ones.
TRAINER_LAYERS = {
    "storage": 0,
    "data": 1,
    "runtime": 2,
    "reward": 3,
    "rollout": 3,
    "ppo": 4,
    "selection": 4,
    "evaluation": 5,
    "pipeline": 6,
    "commands": 7,
}


def _imports(path) -> list[tuple[str, int]]:
    """(module, line) of every import in a file, relative ones resolved against its package."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(path.parents[len(path.relative_to(REPO).parts) - 2]).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append((module, node.lineno))
    return out


def _files(package: str):
    folder = {"limr_api": "api", "limr_operator": "operator", "limr_trainer": "trainer"}[package]
    return sorted((REPO / folder / package).rglob("*.py"))


def test_the_api_imports_neither_side_nor_anything_heavy() -> None:
    offenders = [f"{p.relative_to(REPO)}:{line}: {m}" for p in _files("limr_api") for m, line in _imports(p)
                 if m.split(".")[0] in ("limr_trainer", "limr_operator", *HEAVY)]
    assert not offenders, offenders


def test_the_operator_imports_the_api_and_nothing_of_the_trainer() -> None:
    offenders = [f"{p.relative_to(REPO)}:{line}: {m}" for p in _files("limr_operator") for m, line in _imports(p)
                 if m.startswith("limr_trainer")]
    assert not offenders, offenders


def test_importing_every_operator_module_loads_no_ml_stack() -> None:
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
    assert not {m for m in loaded if m.startswith("limr_trainer")}
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY[:7])
    assert not heavy, f"operator imports heavy modules: {heavy[:10]}"


def test_the_trainer_never_imports_the_operator() -> None:
    offenders = [f"{p.relative_to(REPO)}:{line}: {m}" for p in _files("limr_trainer") for m, line in _imports(p)
                 if m.startswith("limr_operator")]
    assert not offenders, offenders


def test_trainer_packages_import_only_lower_layers() -> None:
    missing = {p.name for p in (REPO / "trainer" / "limr_trainer").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert missing <= set(TRAINER_LAYERS), f"give these packages a layer: {sorted(missing - set(TRAINER_LAYERS))}"
    offenders = []
    for path in _files("limr_trainer"):
        parts = path.relative_to(REPO / "trainer" / "limr_trainer").parts
        if len(parts) < 2:
            continue  # __init__ / __main__ of the distribution
        own = parts[0]
        for module, line in _imports(path):
            bits = module.split(".")
            if bits[0] != "limr_trainer" or len(bits) < 2 or bits[1] == own:
                continue
            if TRAINER_LAYERS[bits[1]] >= TRAINER_LAYERS[own]:
                offenders.append(f"{path.relative_to(REPO)}:{line}: {own} imports {module}")
    assert not offenders, offenders


def test_no_import_cycle_between_modules() -> None:
    """Module-level imports only (a function-level import is a deliberate lazy edge, not a cycle risk
    at import time); every package's modules form a DAG."""
    graph: dict[str, set[str]] = defaultdict(set)
    names: dict[str, object] = {}
    for package in ("limr_api", "limr_operator", "limr_trainer"):
        for path in _files(package):
            rel = path.relative_to(path.parents[len(path.relative_to(REPO).parts) - 2]).with_suffix("")
            name = ".".join(rel.parts).removesuffix(".__init__")
            names[name] = path
    for name, path in names.items():
        tree = ast.parse(path.read_text())
        for node in tree.body:  # top level only
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                if node.level:
                    base = base[: len(base) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            for target in targets:
                related = target.startswith(name + ".") or name.startswith(target + ".")  # a package and its own modules
                if target in names and target != name and not related:
                    graph[name].add(target)
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [node])
        state[node] = 2

    for node in sorted(names):
        if node not in state:
            visit(node, [])
    assert not cycles, cycles
