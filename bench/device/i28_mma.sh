#!/usr/bin/env bash
# Issue #28, fourth round on the lent H200: the tensor-core GEMV (kernels/bcq_mma_cuda.py).
# Run from the repository root with build/i28c/.whl carried (../shared/tools/gpu-wheels):
#   PART=tests: its gpu tests; PART=gemv: bench/shiftadd/mma_gemv_bench.py (7B layers, 8192^2,
#   28672x8192; the LUT-4 kernel and cuBLAS bf16 beside it, one process). BITS, DEPTHS narrow it.
# Made bench/shiftadd/h200_mma_gemv/ with PART="tests gemv" BITS=3 DEPTHS=2,4.
set -uo pipefail
[ -e .whl ] || ln -sfn build/i28c/.whl .whl
source bench/device/setup.sh
R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee $R/card.txt
for part in ${PART:-tests gemv}; do
  echo "== $part t=$SECONDS s"
  case $part in
  tests)
    timeout 240 python3 -m pytest -q -p no:cacheprovider -m gpu tests/kernels/test_bcq_mma.py \
      2>&1 | tee $R/kt.log | grep -E "passed|failed|Error|assert|^E " | head -20 ;;
  gemv)
    timeout ${T_GEMV:-240} python3 bench/shiftadd/mma_gemv_bench.py --bits ${BITS:-3,2} \
      --depths ${DEPTHS:-2,4} --out $R/gemv 2>&1 | grep -v Warn | tee $R/gemv.log | tail -45 ;;
  esac
done
echo "t=$SECONDS s"
