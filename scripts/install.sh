#!/usr/bin/env bash
# Install layersafe (editable) with its test extras into the current Python.
# Where no torch is installed, pin the CPU wheel first: an unpinned torch can pull a multi-GB
# CUDA build. On a GPU machine with torch already present, the installed torch is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  "$PY" -m pip install -q "torch==2.13.0"
fi
"$PY" -m pip install -q -e ".[test]"
