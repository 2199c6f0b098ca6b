#!/usr/bin/env bash
# On the lent H100/H200 (device tool): install the runner over the image's torch, train the
# gpu-size tiny_llama on code through `celine run`, run the room's GPU test, then benchmark
# greedy (`generate` and lookahead's own step loop, both before and after), prompt-lookup and
# lookahead per (N, W, G) on code completion in ONE process, with an SDPA backend probe and a
# torch.profiler table of one step pattern. Carry .whl (../shared/tools/gpu-wheels fills it).
# Results land in $OUT (table .md/.csv/.json, sweep plot, profile, log).
set -euo pipefail
source bench/device/setup.sh
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
python3 -c "import torch, transformers as t; print('torch', torch.__version__, 'cudnn',
  torch.backends.cudnn.version(), 'transformers', t.__version__)"
/usr/bin/time -f "train wall %e s" timeout 200 python3 -m celine run task=lm_pretrain \
  model.size=gpu hardware=cuda task.eval_tokens=20000 2>&1 | grep -v -E "it/s\]|s/it\]" | tail -3
python3 -m pytest -q -p no:cacheprovider -m gpu tests/experiments/lookahead/test_gpu.py 2>&1 | tail -2
# 2026-11-26 (H200): 15 decoders x 6 prompts x 160 tokens did not fit in 240 s. Now: 4 prompts x
# 128 tokens, 2 timed repeats each; configs run cheapest first and --budget-s drops the costliest
# ones if time runs short, so that the closing greedy timings always run. 2026-11-26 09:10 on an
# H200: 180 s of command time, 355 s of device time held (start included), nothing skipped.
timeout 330 python3 bench/lookahead/bench_decoding.py --size gpu --device cuda --dtype bfloat16 \
  --prompts 4 --max-new 128 --repeats 2 --sweep-levels 3,5,7 --sweep-windows 2,4,8 \
  --sdpa-probe auto,pinned --profile 5,4,4 --budget-s 200 --out "$OUT" 2>&1 \
  | grep -v -i warn | tee "$OUT/bench_log.txt" || true
ls "$OUT"
