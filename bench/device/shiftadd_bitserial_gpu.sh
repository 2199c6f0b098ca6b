#!/usr/bin/env bash
# On the lent H100/H200 (device tool, no carry needed): the gpu-marked ShiftAddLLM kernel tests
# and the batch-1 GEMV bench with the bit-serial kernel beside the LUT kernel (its two fastest
# tiles only) and cuBLAS fp16. Results land in $OUT. About 5 minutes of device time (the first
# run, with a 60 s test limit and a 150 s bench limit, was cut off in the 28672x8192 cases).
set -euo pipefail
export MLFLOW_DISABLE_TELEMETRY=true PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu tests/kernels 2>&1 | tail -4 || true
timeout "${BENCH_TIMEOUT:-200}" python3 bench/shiftadd/gemv_bench.py --out "$OUT" \
  --lut-configs best 2>&1 | tee "$OUT/shiftadd_gemv.log" | tail -60
