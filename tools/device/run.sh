#!/usr/bin/env bash
# The GPU lease's one command (see tools/device/train_gpu.py and docs/SCALE.md, "Training on a GPU lease"):
#   bash tools/device/run.sh [train_gpu.py flags]
# Installs the wheels carried in .whl/ (what the machine's image lacks) into /tmp/site, reports
# the device, then trains, evaluates and packs into $OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python3 -c "import jax, flax, orbax.checkpoint, grain; print('jax', jax.__version__, 'flax', flax.__version__, jax.devices())"
exec python3 tools/device/train_gpu.py --out "${OUT:-runs/gpu_out}" "$@"
