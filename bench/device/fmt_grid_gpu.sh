#!/usr/bin/env bash
# On the lent H100/H200 (carry .whl, filled by shared/tools/gpu-wheels): the fmt room's defence
# grid (experiments/fmt/grid.py) at ResNet-20 width 1.0 on the built-in digits, every attack x
# seed x defence setting in-process, 8 worker processes sharing the GPU. CSV and log land in $OUT.
set -euo pipefail
source bench/device/setup.sh
nvidia-smi --query-gpu=name --format=csv,noheader
timeout "${GRID_TIMEOUT:-540}" python3 -m celine.experiments.fmt.grid --device cuda --workers 8 \
  --width "${WIDTH:-1.0}" --seeds ${SEEDS:-0 1 2 3 4} --attacks ${ATTACKS:-badnets blend wanet} \
  --out "$OUT/fmt_grid.csv" ${GRID_ARGS:-} 2>&1 | tee "$OUT/fmt_grid.log" | grep -v "^attack=" | tail -80
