#!/usr/bin/env bash
# On the lent H100/H200 (device tool): MFDMC and biased MF at MovieLens-1M scale (planted data
# with ML-1M's shape: 6040 users x 3706 items, ~1M ratings), reporting time per epoch.
# Carry .whl (filled by ../shared/tools/gpu-wheels). Results land in $OUT.
set -euo pipefail
source bench/device/setup.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
ML1M="task=mfdmc task.users=6040 task.items=3706 task.density=0.0447 hardware=cuda
      method.batch_size=8192 method.epochs=30"
python3 -m celine run -m $ML1M method=mfdmc,mf_biased 2>&1 | grep -E "epoch|rmse|error|Error" | tail -20
python3 -m celine compare task=mfdmc --out "$OUT" | tail -8
