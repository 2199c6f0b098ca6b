#!/usr/bin/env bash
# Issue #28: the shipped LUT-4 GEMV (v7) on the Llama-2-7B layer shapes that make up a decoding
# step (q/k/v/o 4096x4096, gate/up 11008x4096, down 4096x11008), then an Nsight Compute profile of
# v7 on 8192x8192 and 28672x8192 (clocks left alone). Run from build/i28; files in $OUT/shapes.tgz.
set -uo pipefail
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || echo "pip -e failed"
export PYTHONUNBUFFERED=1 R=/tmp/sh; mkdir -p $R
timeout 150 python3 bench/shiftadd/lut4_variants.py --variants v7 --bits 3,2 \
  --shapes 4096x4096,11008x4096,4096x11008 --out $R 2>&1 | grep -v Warn > $R/shapes.log; tail -8 $R/shapes.log
tar czf $OUT/shapes.tgz -C $R .
timeout 80 ncu --clock-control none -k regex:lut4_gemv_kernel --section SpeedOfLight \
  --section ComputeWorkloadAnalysis --section Occupancy --section SchedulerStats \
  --metrics smsp__inst_executed.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum \
  python3 bench/shiftadd/lut4_variants.py --variants v7 --profile > $R/ncu_v7.txt 2>&1
grep -E "^  void|Duration|DRAM Throughput|Issue Slots Busy|inst_executed.sum|Achieved Occupancy" $R/ncu_v7.txt | cut -c1-90
tar czf $OUT/shapes.tgz -C $R .
