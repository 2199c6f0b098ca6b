# Sourced by every bench/device/*_gpu.sh on the lent H100/H200: install the wheels the image
# lacks (hydra, omegaconf, mlflow, monai: carry .whl, filled by ../shared/tools/gpu-wheels) over
# its torch/triton/transformers, then Celine itself without dependencies; runs go to ./outputs.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site MLFLOW_DISABLE_TELEMETRY=true PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null
export CELINE_OUTPUTS=$PWD/outputs
