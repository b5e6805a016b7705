#!/usr/bin/env bash
# Every GPU path in one go, under 8 minutes on one CUDA machine, one table at the end:
# encoder benchmark (ours vs the authors' layout, fp32 and bf16, samples/s and MFU), pretraining
# throughput with the loader (data wait %), a 2-process DDP smoke run (nccl with two GPUs, gloo on
# one), fusion fine-tuning windows/s and `criss-cross embed` throughput (gpu_check.py), then the
# ONNX rows under onnxruntime's CUDAExecutionProvider (bench_onnx.py --cuda-rows; skipped cleanly
# where onnxruntime has no CUDA provider).
#
#   bash tools/bench/gpu_check.sh [OUT_DIR]          # on the GPU machine
#   bash tools/bench/gpu_check.sh OUT --device cpu --quick   # smoke test of the script on a CPU
#
# Uses .venv/bin/python when there is one (make install), else python3 with the packages' src
# folders on PYTHONPATH. Logs of each step are in OUT_DIR (default gpu-check-out).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-gpu-check-out}"
shift || true
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
export PYTHONPATH="$PWD/packages/biosig-prep/src:$PWD/packages/criss-cross/src:$PWD/packages/fusion-emotion/src${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$(dirname "$(command -v "$PY")"):$PATH"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2 || true
fi
rc=0
timeout 480 "$PY" tools/bench/gpu_check.py --work "$OUT" "$@" || rc=$?
# Issue 21: the ONNX rows (onnxruntime's CUDAExecutionProvider, ecg-small and ecg-base, batch 1
# latency and batch 64 windows/s). Needs onnxruntime-gpu; without a CUDA provider it prints one
# "skipped" line and leaves the exit status alone.
if [ -d "$OUT" ] || mkdir -p "$OUT"; then
  timeout 240 "$PY" tools/bench/bench_onnx.py --cuda-rows --work "$OUT/onnx" \
    --json "$OUT/onnx_cuda.json" || echo "onnx cuda rows: failed (exit $?)" >&2
fi
exit $rc
