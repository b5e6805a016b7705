#!/usr/bin/env bash
# Runs every benchmark in turn (minutes each on a 2-core machine); figures go to stdout as
# Markdown tables, to be copied into docs/benchmarks.md with the machine and the date. Each
# benchmark runs with its defaults (their options differ; run one directly to change them).
set -euo pipefail
cd "$(dirname "$0")/../.."
for b in bench_convert bench_store bench_encoder parity_floor bench_loader bench_pretrain bench_fusion; do
  echo "## $b"
  python "tools/bench/$b.py"
  echo
done
