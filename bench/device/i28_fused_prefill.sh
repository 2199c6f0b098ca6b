#!/usr/bin/env bash
# Issue #28, second round on the lent H200 (run from build/i28c, filled by bench/device/sync_carry.sh,
# carrying .whl from ../shared/tools/gpu-wheels). PART selects what runs, so that one 600 s call
# holds what fits:
#   PART=newtests: the gpu tests of the new prefill kernel and the fused-projection helper;
#   PART=oldtests: the gpu-marked tests of tests/llm, lookahead and fmt, not re-run last round;
#   PART=prefill: one layer's prefill attention, SDPA flash vs the Triton kernel vs eager, 1k..32k;
#   PART=shapes: the LUT-4 GEMV (v7) on the 7B layer shapes, unfused and fused (qkv, gate_up);
#   PART=room: the linearized room's gpu tests (its layers call the prefill kernel at inference);
#   PART=ttft: time to first token of the 7B-shaped model, softmax vs linearized (the kernel);
#   PART=e2e: 7B-shaped decoding, bf16 vs bf16 with q/k/v and gate/up fused vs 3-bit fused.
set -uo pipefail
test -f kernels/linear_prefill.py || { echo "WRONG TREE"; exit 3; }
source bench/device/setup.sh
R=/tmp/r28b; mkdir -p $R
snap() { tar czf $OUT/result.tgz -C $R . ; }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee $R/card.txt
python3 -c "import torch, transformers, triton; print('torch', torch.__version__, 'transformers',
  transformers.__version__, 'triton', triton.__version__)" | tee -a $R/card.txt
for part in ${PART:-newtests prefill e2e}; do
  echo "== $part t=$SECONDS s"
  case $part in
  newtests)
    timeout 200 python3 -m pytest -q -p no:cacheprovider -m "gpu or triton" \
      tests/kernels/test_linear_prefill.py tests/bench/test_llama7b_helper.py 2>&1 | tee $R/kt_new.log | tail -3 ;;
  oldtests)
    timeout ${T_REST:-200} python3 -m pytest -q -p no:cacheprovider -m gpu tests/llm \
      tests/experiments/lookahead tests/experiments/fmt 2>&1 | tee $R/kt_rest.log | tail -4 ;;
  prefill)
    timeout 200 python3 bench/linearized/decode_7b.py --contexts "" --out $R/prefill 2>&1 \
      | grep -v -i warn | tee $R/prefill.log | tail -8 ;;
  shapes)
    timeout 200 python3 bench/shiftadd/lut4_variants.py --variants v7 --bits 3,2 \
      --shapes 4096x4096,12288x4096,11008x4096,22016x4096,4096x11008 --out $R/shapes 2>&1 \
      | grep -v Warn | tee $R/shapes.log | tail -12 ;;
  room)
    timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu tests/experiments/linearized 2>&1 \
      | tee $R/kt_room.log | tail -3 ;;
  ttft)
    timeout 240 python3 bench/linearized/decode_7b.py --contexts "" --prefill "" \
      --ttft 1024,4096,16384,32768 --out $R/ttft 2>&1 | grep -v -i warn | tee $R/ttft.log | tail -8 ;;
  e2e)
    timeout ${T_E2E:-500} python3 bench/shiftadd/e2e_decode.py --fused --bits 3 --skip-gemv \
      --modes compile --batches 1,2,4,8,16 --out $R/e2e 2>&1 | grep -v -i warn | tee $R/e2e.log | tail -30 ;;
  esac
  snap
done
echo "t=$SECONDS s"
