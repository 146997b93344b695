#!/usr/bin/env bash
# Install a CPU build of torch into the project's venv for the generator's local backend (and
# its tests). torch is not in the lockfile: the right build depends on the machine's hardware,
# and a locked CUDA build would cost every install several GB.
set -euo pipefail
cd "$(dirname "$0")/.."
if uv run python -c "import torch" 2>/dev/null; then
  exit 0
fi
wheel=$(ls /opt/wheels/torch-*+cpu-cp311-*.whl 2>/dev/null | head -n1 || true)
if [[ -n "$wheel" ]]; then
  uv pip install --quiet "$wheel"
else
  uv pip install --quiet torch --index-url https://download.pytorch.org/whl/cpu
fi
