#!/usr/bin/env bash
# On the lent H200 (device tool, carry .whl as for shiftadd_lut4_gpu.sh): the CUDA LUT-GEMV
# (`lut4_gemv_cuda`, every bench tile, 8192x8192 and 28672x8192, 2/3/4 bits, plus
# ShiftAddLinear's kernel="cuda" decode) under compute-sanitizer memcheck, racecheck and
# initcheck, then the float64 GPU-reference mismatch reproducer (bench/shiftadd/
# gpu_reference_repro.py) in its arms. Logs land in $OUT (sanitizer_*.log, repro_*.log,
# summary.txt). PART=san (sanitizers, about 6-8 min) or PART=repro (the reproducer, about 4 min):
# two device calls with timeout_s=600 each; PART=all (default) runs both if time allows.
set -uo pipefail
PART=${PART:-all}
source bench/device/setup.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/summary.txt"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
echo "compute-sanitizer: ${SAN:-not found}" | tee -a "$OUT/summary.txt"
# build the extension once outside the sanitizer (nvcc, about a minute); later runs load it
python3 -c "from celine.kernels.lut4_cuda import _module; _module()" 2>&1 | tail -2
[ "$PART" = repro ] || {
# plain run first: the same driver without a sanitizer (a baseline for the logs below)
timeout 120 python3 bench/shiftadd/sanitize_lut4.py > "$OUT/plain.log" 2>&1; echo "plain rc=$?" | tee -a "$OUT/summary.txt"
tail -1 "$OUT/plain.log" | tee -a "$OUT/summary.txt"
}
if [ -n "${SAN:-}" ] && [ "$PART" != repro ]; then
  for tool in memcheck racecheck initcheck; do
    args=""
    cfgs="all"
    [ "$tool" = memcheck ] && args="--leak-check no"
    # racecheck tracks every shared-memory access: the first tile only, to stay in time
    [ "$tool" = racecheck ] && cfgs="first"
    timeout "${SAN_TIMEOUT:-150}" "$SAN" --tool "$tool" $args --print-limit 50 \
      --error-exitcode 3 python3 bench/shiftadd/sanitize_lut4.py --configs "$cfgs" \
      > "$OUT/sanitizer_$tool.log" 2>&1
    echo "$tool rc=$? (0 clean, 3 errors found, 124 timed out)" | tee -a "$OUT/summary.txt"
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|DONE" "$OUT/sanitizer_$tool.log" | tail -3 | tee -a "$OUT/summary.txt"
  done
fi
# the float64 GPU-reference mismatch: reference first (as the failing bench), kernel first,
# synchronised, and with blocking launches (hypotheses in the script's docstring)
[ "$PART" = san ] && exit 0
for arm in "--order ref-first" "--order kernel-first" "--order ref-first --sync"; do
  name=$(echo "$arm" | tr -d ' -')
  timeout 120 python3 bench/shiftadd/gpu_reference_repro.py $arm > "$OUT/repro_$name.log" 2>&1
  echo "repro $arm rc=$?" | tee -a "$OUT/summary.txt"; cat "$OUT/repro_$name.log" | tail -6 | tee -a "$OUT/summary.txt"
done
CUDA_LAUNCH_BLOCKING=1 timeout 120 python3 bench/shiftadd/gpu_reference_repro.py > "$OUT/repro_blocking.log" 2>&1
echo "repro CUDA_LAUNCH_BLOCKING=1 rc=$?" | tee -a "$OUT/summary.txt"; tail -6 "$OUT/repro_blocking.log" | tee -a "$OUT/summary.txt"
