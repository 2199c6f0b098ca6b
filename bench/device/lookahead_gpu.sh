#!/usr/bin/env bash
# On the lent H100/H200 (device tool): install the runner over the image's torch, train the
# gpu-size tiny_llama on code through `celine run`, run the room's GPU test, then benchmark
# greedy, prompt-lookup and lookahead per (N, W, G) on code completion in ONE process.
# Carry .whl (filled by ../shared/tools/gpu-wheels). Results land in $OUT.
set -euo pipefail
source bench/device/setup.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
/usr/bin/time -f "train wall %e s" timeout 200 python3 -m celine run task=lm_pretrain \
  model.size=gpu hardware=cuda task.eval_tokens=20000 2>&1 | grep -v -E "it/s\]|s/it\]" | tail -3
python3 -m pytest -q -m gpu tests/experiments/lookahead/test_gpu.py 2>&1 | tail -2
# 2026-11-26 (H200): 15 decoders x 6 prompts x 160 tokens did not fit in 240 s; 4 x 128 does.
timeout 300 python3 bench/lookahead/bench_decoding.py --size gpu --device cuda --dtype bfloat16 \
  --prompts 4 --max-new 128 --sweep-levels 3,5,7 --sweep-windows 2,4,8 --out "$OUT" 2>&1 \
  | grep -v -i warn || true
ls "$OUT"
