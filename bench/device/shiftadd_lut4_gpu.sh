#!/usr/bin/env bash
# On the lent H100/H200 (carry .whl, filled by shared/tools/gpu-wheels): the gpu/triton-marked
# kernel tests and ShiftAddLinear's GPU decode test, then the 4-input-LUT GEMVs (Triton
# `lut4_gemv`; CUDA `lut4_gemv_cuda`, compiled there by nvcc) against the 8-input Triton LUT
# kernel and cuBLAS fp16, batch 1, 3/2/4 bits, 8192x8192 and 28672x8192, every kernel cycling
# through weight copies that cover 4x the L2. Results land in $OUT. About 4 minutes.
set -euo pipefail
source bench/device/setup.sh
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
nvcc --version | tail -1
timeout 300 python3 -m pytest -q -p no:cacheprovider -m "gpu or triton" tests/kernels \
  tests/experiments/shiftadd 2>&1 | tail -3 || true
timeout "${BENCH_TIMEOUT:-420}" python3 bench/shiftadd/lut4_bench.py --out "$OUT" \
  ${LUT4_ARGS:-} 2>&1 | tee "$OUT/shiftadd_lut4_gemv.log" | grep -v '^{' | tail -${TAIL:-60}
