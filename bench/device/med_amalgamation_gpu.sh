#!/usr/bin/env bash
# On the lent H100/H200 (device tool): install the runner over the image's torch (the image has
# no monai/hydra/mlflow: carry .whl, filled by ../shared/tools/gpu-wheels), then run the 3D
# preset: ka2er (which trains the three 3D DynUNet experts and also scores each on its own task)
# and the joint SwinUNETR baseline. Results land in $OUT.
set -euo pipefail
source bench/device/setup.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
run() {  # name, seconds allowed, overrides...
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s.%N)
  timeout "$limit" python3 -m celine run experiment=med_amalgamation_3d "$@" 2>&1 \
    | grep -E "epoch|expert .*: |ERROR|Error" | tail -6 || echo "$name: failed or timed out"
  echo "$name wall $(python3 -c "import time; print(round(time.time() - $t0, 1))") s" \
    | tee -a "$OUT/times.txt"
  local run=$(ls -td outputs/runs/med_amalgamation/* | head -1)
  cp "$run/results.json" "$OUT/$name.results.json" 2>/dev/null || true
  [ -f "$run/tables/per_task.csv" ] && cp "$run/tables/per_task.csv" "$OUT/$name.per_task.csv"
  [ -f "$run/plots/examples.png" ] && [ "$name" = ka2er_3d ] && cp "$run/plots/examples.png" "$OUT/"
  return 0
}
run ka2er_3d 100
run med_joint_3d 60 method=med_joint
grep -h '"dice/mean"\|"train/time_s"' "$OUT"/*.results.json || true
