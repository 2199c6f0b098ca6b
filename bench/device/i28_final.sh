#!/usr/bin/env bash
# Issue #28, the measuring call on the lent H200 (run from build/i28, filled by
# bench/device/sync_carry.sh, carrying .whl from ../shared/tools/gpu-wheels). In order, each step's
# files snapshotted into $OUT/result.tgz as it ends, inside one 600 s call:
#   1. the gpu tests of the LUT-4 kernel (also builds the shipped kernel for what follows);
#   2. shiftadd end to end at 7B shapes (bench/shiftadd/e2e_decode.py: GEMV table, decoding at
#      batch 1 (graph, compile) and 2-16 (graph), the step split into linears and the rest);
#   3. the kernel variants v5 / v6 / v7 side by side (bench/shiftadd/lut4_variants.py);
#   4. the rest of the gpu-marked tests, with the time left.
set -uo pipefail
test -f bench/shiftadd/lut4_variants.py || { echo "WRONG TREE"; exit 3; }
source bench/device/setup.sh
R=/tmp/r28; mkdir -p $R
snap() { tar czf $OUT/result.tgz -C $R . ; }
left() { echo $(( ${BUDGET:-585} - SECONDS )); }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee $R/card.txt
python3 -c "import torch, transformers, triton; print('torch', torch.__version__, 'transformers',
  transformers.__version__, 'triton', triton.__version__)" | tee -a $R/card.txt
# variant builds on the CPU cores while the GPU works
for v in v5 v6 v7; do
  python3 -c "import sys; sys.path.insert(0,'bench/shiftadd'); import lut4_variants as L; L.build('$v')" \
    > $R/build_$v.log 2>&1 &
done
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu tests/kernels/test_lut4_gemv.py 2>&1 \
  | tee $R/kt_lut4.log | tail -3; snap
grep -qE "[0-9]+ passed" $R/kt_lut4.log && ! grep -qE "failed|error" $R/kt_lut4.log \
  || { echo "LUT-4 GPU TESTS DID NOT PASS: no benchmark"; exit 1; }
echo "t=$SECONDS s"
timeout ${T_SA:-370} python3 bench/shiftadd/e2e_decode.py --modes graph,compile --out $R/sa 2>&1 \
  | grep -v -i warn | tee $R/sa.log | tail -40; snap
echo "t=$SECONDS s"; wait
T=$(left); [ $T -gt 40 ] && timeout $((T - 10)) python3 bench/shiftadd/lut4_variants.py \
  --variants v5,v6,v7 --out $R/var 2>&1 | grep -v Warn > $R/var.log; tail -13 $R/var.log; snap
echo "t=$SECONDS s"
T=$(left); [ $T -gt 30 ] && timeout $((T - 5)) python3 -m pytest -q -p no:cacheprovider -m gpu \
  tests/kernels tests/experiments/shiftadd tests/bench --deselect tests/kernels/test_lut4_gemv.py \
  2>&1 | tee $R/kt_rest.log | tail -4; snap
echo "t=$SECONDS s"
