#!/usr/bin/env bash
# Issue #28, fifth round on the lent H200: the LUT-4 GEMV's fixed cost per call taken apart, the
# end-to-end batches 2-16 with the per-shape tile, and more batch-1 repeats for an interval.
# Run from the repository root, carrying build/i28c/.whl (../shared/tools/gpu-wheels):
#   PART=e2e var (the default): both below, e2e first;
#   PART=var: lut4_variants.py v7 / floor / nofinish / noatomic (built in parallel processes
#             while the GPU runs e2e) on the 7B layer shapes and a 256-row call;
#   PART=tests: the gpu tests of the LUT-4 kernel and the shiftadd room (the tile rule changed);
#   PART=e2e: e2e_decode.py --fused --bits 3, compiled at batch 1 and graph at 2-16;
#   PART=rep: e2e_decode.py --fused --bits 3 --batches 1 (one more independent batch-1 run in its
#             own process, folder repN; "rep rep" makes two; BITS=3,2 adds 2 bits).
set -uo pipefail
[ -e .whl ] || ln -sfn build/i28c/.whl .whl
source bench/device/setup.sh
R=/tmp/r28e; mkdir -p $R
snap() { tar czf $OUT/result.tgz -C $R . ; }  # one file back, whatever the count
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee $R/card.txt
VARIANTS=v7,floor,nofinish,noatomic
case " ${PART:-e2e var} " in *" var "*)
  for v in ${VARIANTS//,/ }; do
    python3 bench/shiftadd/lut4_variants.py --build-only $v > $R/build_$v.log 2>&1 &
  done ;;
esac
for part in ${PART:-e2e var}; do
  echo "== $part t=$SECONDS s"
  case $part in
  var)
    wait
    timeout ${T_VAR:-200} python3 bench/shiftadd/lut4_variants.py --variants $VARIANTS --bits 3 \
      --configs rule --shapes 256x4096,4096x4096,12288x4096,22016x4096,4096x11008 --out $R/var \
      2>&1 | grep -v Warn | tee $R/var.log | tail -22 ;;
  tests)
    timeout ${T_TESTS:-200} python3 -m pytest -q -p no:cacheprovider -m gpu tests/kernels/test_lut4_gemv.py \
      tests/kernels/test_lut4_tile_rule.py tests/experiments/shiftadd 2>&1 | tee $R/kt.log | tail -3 ;;
  e2e)
    timeout ${T_E2E:-420} python3 bench/shiftadd/e2e_decode.py --fused --bits 3 --skip-gemv \
      --modes compile --batches 1,2,4,8,16 --out $R/e2e 2>&1 | grep -v -i warn | tee $R/e2e.log \
      | tail -14 ;;
  rep)
    REP=$(( ${REP:-0} + 1 ))
    timeout ${T_E2E:-300} python3 bench/shiftadd/e2e_decode.py --fused --bits ${BITS:-3} \
      --skip-gemv --modes compile --batches 1 --out $R/rep$REP 2>&1 | grep -v -i warn \
      | tee $R/rep$REP.log | tail -8 ;;
  esac
  snap
done
echo "t=$SECONDS s"
