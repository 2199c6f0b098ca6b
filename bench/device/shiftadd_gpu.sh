#!/usr/bin/env bash
# On the lent H100/H200 (device tool): the ShiftAddLLM LUT-GEMV benchmark (batch 1, 3 and 2 bits,
# 8192x8192 and 28672x8192, vs cuBLAS fp16 and the measured copy bandwidth), the GPU kernel tests,
# and, if SHIFTADD_PPL=1, the perplexity table on the GPU through `celine run`.
# Carry .whl (../shared/tools/gpu-wheels) and, for the perplexity table, the cached tiny_llama
# (outputs/models/tiny_llama-code-default-*). Results land in $OUT.
set -euo pipefail
source bench/device/setup.sh
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
python3 -m pytest -q -p no:cacheprovider -m "gpu or triton" tests/kernels 2>&1 | tail -3
timeout 300 python3 bench/shiftadd/gemv_bench.py --out "$OUT" 2>&1 | tee "$OUT/shiftadd_gemv.log" | tail -40
if [ "${SHIFTADD_PPL:-0}" = 1 ]; then
  export CELINE_OUTPUTS=$PWD/outputs
  timeout "${SHIFTADD_PPL_TIMEOUT:-240}" python3 -m celine run -m task=shiftadd hardware=cuda \
    method=shiftadd_lat,gptq,rtn,bcq_rowwise,shiftadd_acc method.bits=3,2 2>&1 | grep -E "FINISHED|FAILED|Error" | tail -12 || true
  python3 -m celine run task=shiftadd hardware=cuda method=fp16 2>&1 | tail -2 || true
  python3 -m celine compare task=shiftadd --out "$OUT" | tail -14 || true
fi
