#!/usr/bin/env bash
# On the lent H100/H200 (device tool), one call of at most ~5 minutes:
#  1. per-token decode latency vs context (1k..64k) of recurrent linear vs softmax + KV cache
#     (gpu-size architecture, random weights: latency only), same process;
#  2. train the gpu-size tiny_llama (`celine run task=lm_pretrain model.size=gpu hardware=cuda`);
#  3. linearize it (lin_augmented), fine-tune, train Medusa heads + the draft model, and time
#     speculative vs autoregressive decoding (`celine run task=linearized ...`).
# Carry .whl (filled by ../shared/tools/gpu-wheels). Results land in $OUT.
set -uo pipefail
source bench/device/setup.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee $OUT/card.txt
timeout 70 python3 bench/linearized/decode_latency.py --size gpu --device cuda --steps 16 \
  --contexts 1024,2048,4096,8192,16384,32768,65536 --out $OUT 2>&1 | tail -12
timeout 120 python3 -m celine run task=lm_pretrain model.size=gpu hardware=cuda 2>&1 \
  | grep -v -E "it/s\]|s/it\]" | tail -3
GPU_ARGS="model.size=gpu hardware=cuda method.steps=300 method.batch_size=16 \
  method.medusa_steps=300 method.medusa_batch_size=16 method.draft_steps=200 \
  task.eval_tokens=65536 task.prompts=8 task.new_tokens=128 task.prompt_tokens=128 \
  task.latency_contexts=[1024,4096,16384] task.latency_steps=16"
for m in lin_augmented lin_softmax; do
  timeout 100 python3 -m celine run task=linearized method=$m $GPU_ARGS 2>&1 \
    | grep -v -E "it/s\]|s/it\]" | grep -E "perplexity|tok/step|Error|error" | tail -8
  run=$(ls -d outputs/runs/linearized/* 2>/dev/null | tail -1)
  [ -n "$run" ] && [ -f "$run/results.json" ] && cp "$run/results.json" "$OUT/$m.results.json" \
    && cp "$run/tables/decoding.csv" "$OUT/$m.decoding.csv"
done
true
