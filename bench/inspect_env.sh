#!/usr/bin/env bash
# Issue #21's Inspect AI baseline: a venv of its own in .bench/inspect (gitignored), never a
# dependency of harmrank. bench/platform_overhead.py finds it there and runs the same workload
# through Inspect beside harmrank's (bench/inspect_baseline.py). Pinned so figures compare.
#   bash bench/inspect_env.sh          # or INSPECT_ENV=/some/dir bash bench/inspect_env.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"
env_dir="${INSPECT_ENV:-.bench/inspect}"
uv venv --quiet --allow-existing --python 3.11 "$env_dir"
uv pip install --quiet --python "$env_dir/bin/python" "inspect-ai==0.3.285" "openai==3.63.0"
"$env_dir/bin/python" -c 'import inspect_ai; print("Inspect AI", inspect_ai.__version__, "in", "'"$env_dir"'")'
