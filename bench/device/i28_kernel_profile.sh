#!/usr/bin/env bash
# Issue #28, the LUT-4 GEMV profile on the lent H200 (no wheels needed): builds the kernel
# variants of bench/shiftadd/lut4_variants.py in parallel (ptxas report in build_*.log), times
# them, profiles each variant's GEMV once per shape with Nsight Compute (clocks left alone), and
# dumps the SASS of the shipped kernel. Everything lands in $OUT/profile.tgz.
set -uo pipefail
test -f bench/shiftadd/lut4_variants.py || { echo "WRONG TREE"; git log -1 --oneline; exit 3; }
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || echo "pip -e failed"
export PYTHONUNBUFFERED=1 R=/tmp/prof; mkdir -p $R
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv | tee $R/card.txt
V=${VARIANTS:-v5,alpha4,nolookup,noload}
for v in ${V//,/ }; do
  python3 -c "import sys; sys.path.insert(0,'bench/shiftadd'); import lut4_variants as L; L.build('$v')" \
    > $R/build_$v.log 2>&1 &
done
wait; grep -h -E "error|registers|spill" $R/build_*.log | sort | uniq -c | sort -rn | head -12
timeout ${T_VAR:-300} python3 bench/shiftadd/lut4_variants.py --variants $V --out $R 2>&1 \
  | grep -v Warn | tee $R/variants.log | tail -22
timeout ${T_NCU:-150} ncu --clock-control none -k regex:lut4_gemv_kernel --section SpeedOfLight \
  --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section WarpStateStats \
  --section Occupancy --section LaunchStats --section SchedulerStats \
  --metrics l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,smsp__inst_executed.sum,lts__t_sectors_op_red.sum,sm__cycles_elapsed.avg.per_second \
  python3 bench/shiftadd/lut4_variants.py --variants $V --profile > $R/ncu.txt 2>&1
grep -E "lut4_gemv_kernel|Duration|DRAM Throughput|Memory Throughput|Compute \(SM\)|Issue Slots Busy|shared.sum|inst_executed.sum|op_red|per_second|Achieved Occupancy|Stall|One or More" $R/ncu.txt | head -90
SO=$(ls ~/.cache/torch_extensions/*/celine_lut4_variant_v5/*.so 2>/dev/null | head -1)
[ -n "$SO" ] && cuobjdump -sass "$SO" > $R/v5.sass 2>&1; gzip -f $R/v5.sass 2>/dev/null
tar czf $OUT/profile.tgz -C $R .
