#!/usr/bin/env bash
# Issue #28, the LUT-4 GEMV on the lent H200 (no wheels needed; run from build/i28, filled by
# bench/device/sync_carry.sh): the gpu tests of the kernel, then the variants of
# bench/shiftadd/lut4_variants.py built in parallel (ptxas report in build_*.log) and timed, each
# variant's GEMV profiled once per shape with Nsight Compute (clocks left alone), and the SASS of
# the shipped kernel. Everything lands in $OUT/profile.tgz.
set -uo pipefail
test -f bench/shiftadd/lut4_variants.py || { echo "WRONG TREE"; git log -1 --oneline; exit 3; }
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || echo "pip -e failed"
export PYTHONUNBUFFERED=1 R=/tmp/prof; mkdir -p $R
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv | tee $R/card.txt
V=${VARIANTS:-v6,v7,nolookup}
for v in ${V//,/ }; do
  python3 -c "import sys; sys.path.insert(0,'bench/shiftadd'); import lut4_variants as L; L.build('$v')" \
    > $R/build_$v.log 2>&1 &
done
timeout ${T_KT:-200} python3 -m pytest -q -p no:cacheprovider -m gpu tests/kernels/test_lut4_gemv.py \
  2>&1 | tee $R/kt.log | grep -E "passed|failed|Error|error|assert" | tail -15
wait; grep -h -E "error|registers|spill" $R/build_*.log | sort | uniq -c | sort -rn | head -8
timeout ${T_VAR:-300} python3 bench/shiftadd/lut4_variants.py --variants $V --out $R 2>&1 \
  | grep -v Warn > $R/variants.log; tail -14 $R/variants.log
timeout ${T_NCU:-120} ncu --clock-control none -k regex:"lut4_gemv_kernel|finish_kernel" --section SpeedOfLight \
  --section ComputeWorkloadAnalysis --section WarpStateStats --section Occupancy --section SchedulerStats \
  --metrics l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,smsp__inst_executed.sum,sm__cycles_elapsed.avg.per_second \
  python3 bench/shiftadd/lut4_variants.py --variants ${NCU_V:-v6,v7} --profile > $R/ncu.txt 2>&1
grep -E "^  void|Duration|DRAM Throughput|Issue Slots Busy|inst_executed.sum|Achieved Occupancy" $R/ncu.txt | cut -c1-90 | head -40
SO=$(ls ~/.cache/torch_extensions/*/celine_lut4_variant_v7/*.so 2>/dev/null | head -1)
[ -n "$SO" ] && cuobjdump -sass "$SO" > $R/v7.sass 2>&1; gzip -f $R/v7.sass 2>/dev/null
tar czf $OUT/profile.tgz -C $R .
