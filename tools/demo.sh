#!/usr/bin/env bash
# The main job end to end on generated data. Usage: tools/demo.sh OUT_DIR
set -euo pipefail
out=${1:-demo-out}
mkdir -p "$out"
echo "demo: not wired yet" >&2
