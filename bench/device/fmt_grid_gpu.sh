#!/usr/bin/env bash
# On the lent H100/H200 (carry .whl, filled by shared/tools/gpu-wheels): the fmt room's defence
# grid (experiments/fmt/grid.py) at ResNet-20 width 1.0 on the built-in digits: one Celine multirun
# per defence setting over attack x seed (each cell an MLflow run in $OUT/outputs), 8 joblib
# workers sharing the GPU. CSV, summary, plot and log land in $OUT.
set -euo pipefail
source bench/device/setup.sh
nvidia-smi --query-gpu=name --format=csv,noheader
CELINE_OUTPUTS="$OUT/outputs" timeout "${GRID_TIMEOUT:-540}" python3 -m celine.experiments.fmt.grid \
  --seeds ${SEEDS:-0 1 2 3 4} --attacks ${ATTACKS:-badnets blend wanet} \
  --out "$OUT/fmt_grid.csv" ${GRID_ARGS:-} hardware=cuda model.width="${WIDTH:-1.0}" \
  hydra/launcher=joblib hydra.launcher.n_jobs=8 \
  2>&1 | tee "$OUT/fmt_grid.log" | grep -v "^attack=" | tail -80
