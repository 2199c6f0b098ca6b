#!/usr/bin/env bash
# On the lent H100/H200 (device tool): install the runner over the image's torch, run the GPU
# tests, and train + evaluate the two GPU-size models through `celine run`.
# Carry .whl (filled by ../shared/tools/gpu-wheels). Results land in $OUT.
set -euo pipefail
source bench/device/setup.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -m pytest -q -m gpu tests/llm/test_gpu.py 2>&1 | tail -3
for exp in tiny_llama_gpu tiny_reasoner_gpu; do
  /usr/bin/time -f "$exp wall %e s" python3 -m celine run experiment=$exp 2>&1 \
    | grep -v -E "it/s\]|s/it\]" | tail -4
  run=$(ls -d outputs/runs/lm_pretrain/* | tail -1)
  cp "$run/results.json" "$OUT/$exp.results.json"
  [ -f "$run/tables/reasoning_accuracy.csv" ] && cp "$run/tables/reasoning_accuracy.csv" "$OUT/$exp.reasoning.csv"
  [ -f "$run/plots/learning_curves.png" ] && cp "$run/plots/learning_curves.png" "$OUT/$exp.curves.png"
done
python3 -m celine compare task=lm_pretrain --out "$OUT" | tail -12
