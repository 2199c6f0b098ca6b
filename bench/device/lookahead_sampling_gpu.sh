#!/usr/bin/env bash
# On the lent H200 (device tool, carry .whl): lookahead decoding under sampling against plain
# sampling (`generate(do_sample=True)`), same process, gpu-size tiny_llama on code completion,
# T=1.0 and T=0.7/top-p 0.9, (N, W, G) = (3, 4, 4), (5, 7, 7), (7, 20, 20). bf16. Writes the
# table (.md/.csv) and meta.json to $OUT. Not run yet (issue #29): expected ~4 min of command time.
set -euo pipefail
source bench/device/setup.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
timeout 200 python3 -m celine run task=lm_pretrain model.size=gpu hardware=cuda \
  task.eval_tokens=20000 2>&1 | grep -v -E "it/s\]|s/it\]" | tail -3
timeout 300 python3 bench/lookahead/bench_sampling.py --size gpu --device cuda --dtype bfloat16 \
  --prompts 4 --max-new 128 --repeats 2 --configs "3,4,4 5,7,7 7,20,20" --out "$OUT" 2>&1 \
  | grep -v -i warn | tee "$OUT/bench_log.txt" || true
