#!/usr/bin/env bash
# Install steps of the Dockerfile's `operator` target, also run by CI (tests/integration/chart/
# test_helm_image_install.py) so the image recipe cannot rot unseen:
#   docker-install-operator.sh PREFIX [SRC]
# builds a virtual environment at PREFIX with the limr-api and limr-operator distributions from the
# source tree SRC (a real, non-editable install with dependency resolution: what the image gets),
# then checks that the operator imports and that neither torch nor any trainer code is there.
set -euo pipefail
prefix=${1:?usage: docker-install-operator.sh PREFIX [SRC]}
src=${2:-$(cd "$(dirname "$0")/.." && pwd)}
python=${PYTHON:-python3.11}

"$python" -m venv "$prefix"
export PIP_DISABLE_PIP_VERSION_CHECK=1  # the Dockerfile sets PIP_NO_CACHE_DIR=1
# The constraints pin what the CPU venv pins (kubernetes<37 etc.); torch never enters this env.
"$prefix/bin/pip" install -q -c "$src/constraints.txt" "$src/api" "$src/operator"

# A clean interpreter: no PYTHONPATH from the caller can make the trainer look present.
env -u PYTHONPATH "$prefix/bin/python" - <<'PY'
import importlib.util
import limr_api, limr_operator, kopf, prometheus_client  # noqa: F401  (fails loudly if absent)
heavy = [m for m in ("torch", "vllm", "ray", "deepspeed", "limr_trainer") if importlib.util.find_spec(m)]
assert not heavy, f"operator image must not contain {heavy}"
print("operator install ok: kopf", kopf.__version__ if hasattr(kopf, "__version__") else "", "no torch")
PY
"$prefix/bin/limr" --version
