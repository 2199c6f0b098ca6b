#!/usr/bin/env bash
# Issue #28 on the lent H100/H200 (carry .whl, filled by ../shared/tools/gpu-wheels; for PART=la
# also .carry, holding the trained tiny_llama: see below). PART picks what runs:
#   kt     the gpu/triton tests of the new and changed kernels (full log);
#   smoke  the gpu/triton tests of the new code, then each bench on 2 layers (~3 min);
#   sa     shiftadd end to end at 7B shapes + the bf16 GEMV table (bench/shiftadd/e2e_decode.py);
#   la     lookahead: the fp32 headline on the trained tiny_llama (bench_decoding --require-exact)
#          and the 7B step-time curve + projection (bench/lookahead/step_time_7b.py);
#   lin    linearized: decode latency 1k..32k and prefill attention at 7B shapes.
# PART may list several ("kt lin la7b"); all files go into $OUT/result.tgz (the tool returns
# at most 8 files).
#   mkdir -p .carry/models && cp -r outputs/models/tiny_llama-code-default-<hash> .carry/models/
set -uo pipefail
source bench/device/setup.sh
R=/tmp/r28; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee $R/card.txt
python3 -c "import torch, transformers, triton; print('torch', torch.__version__, 'transformers',
  transformers.__version__, 'triton', triton.__version__)" | tee -a $R/card.txt
for part in ${PART:-smoke}; do
case "$part" in
kt)  # the gpu/triton tests of the new and changed kernels, full log
  timeout 200 python3 -c "from celine.kernels.lut4_cuda import _module; _module(); print('nvcc build ok')" \
    > $R/build.log 2>&1; grep -E "error|ok" $R/build.log | head -20
  timeout ${T_KT:-300} python3 -m pytest -q -p no:cacheprovider -m "gpu or triton" --tb=short \
    ${KT_TESTS:-tests/kernels/test_lut4_gemv.py tests/kernels/test_linear_decode.py tests/bench \
    tests/experiments/shiftadd} 2>&1 | tee $R/kt.log | grep -E "passed|failed|Error|error|assert" | tail -25
  ;;
smoke)
  timeout 240 python3 -m pytest -q -p no:cacheprovider -m "gpu or triton" \
    tests/kernels/test_lut4_gemv.py tests/kernels/test_linear_decode.py tests/bench 2>&1 | tail -8
  timeout 150 python3 bench/shiftadd/e2e_decode.py --layers 2 --batches 1,4 --new 16 --repeats 1 \
    --gemv-bits 3 --bits 3 --out $R/sa 2>&1 | tail -12
  timeout 100 python3 bench/lookahead/step_time_7b.py --layers 2 --tokens 1,8,56 --out $R/la 2>&1 | tail -8
  timeout 100 python3 bench/linearized/decode_7b.py --layers 2 --contexts 1024,4096 --prefill 1024 \
    --out $R/lin 2>&1 | tail -8
  ;;
sa)
  timeout ${T_SA:-500} python3 bench/shiftadd/e2e_decode.py ${SA_ARGS:-} --out $R/sa 2>&1 \
    | tee $R/sa.log | tail -60
  ;;
la7b)
  timeout ${T_LA2:-300} python3 bench/lookahead/step_time_7b.py ${LA_ARGS:-} --out $R/la7b 2>&1 \
    | tee $R/la7b.log | tail -25
  ;;
la)
  M=$(ls -d .carry/models/tiny_llama-code-default-* | head -1)
  timeout ${T_LA1:-240} python3 bench/lookahead/bench_decoding.py --model "$M" --device cuda \
    --dtype float32 --prompts 8 --max-new 128 --repeats 2 --require-exact --out $R/la_fp32 2>&1 \
    | grep -v -i warn | tee $R/la_fp32.log | tail -30
  timeout ${T_LA2:-240} python3 bench/lookahead/step_time_7b.py --compression $R/la_fp32/lookahead_bench.csv \
    --out $R/la7b 2>&1 | tee $R/la7b.log | tail -40
  ;;
lin)
  timeout ${T_LIN:-300} python3 bench/linearized/decode_7b.py --out $R/lin 2>&1 | tee $R/lin.log | tail -30
  ;;
esac
done
tar czf $OUT/result.tgz -C $R .
