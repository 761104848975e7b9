#!/usr/bin/env bash
# Prepares, on this (networked) machine, what the GPU lease carries: .whl/ (the packages the
# GPU image lacks, for its Python 3.12) and .devdata/ (CBSD432 to train on, Kodak24 to score),
# both ignored by git. Then run there: bash tools/device/run.sh (carry .whl and .devdata).
#   bash tools/device/prepare.sh [DATA_ROOT]     # default $RESTORECT_DATA_DIR or ../shared/data
set -euo pipefail
cd "$(dirname "$0")/../.."
data_root="${1:-${RESTORECT_DATA_DIR:-../shared/data}}"
for path in /.whl/ /.devdata/; do
  grep -qxF "$path" .git/info/exclude || echo "$path" >> .git/info/exclude
done
mkdir -p .whl
# Versions of requirements.txt; flax/orbax/optax/chex too, so the pins hold over the image's.
wheels=(tensorflow-datasets==4.9.10 array-record==0.8.6 grain==0.2.18 ml-collections==1.1.0
  tensorboardX==2.6.5 pypng==0.20220715.0 flax==0.12.8 orbax-checkpoint==0.12.8 optax==0.2.8
  chex==0.1.92 portpicker==1.6.0 dm-tree==0.1.10 immutabledict==4.3.1 simple-parsing==0.1.9
  tensorflow-metadata==1.21.0 termcolor==3.3.0 toml==0.10.2 docstring-parser==0.18.0
  googleapis-common-protos==1.76.0)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "${wheels[@]}"
# promise ships only as a source distribution: build its (pure Python) wheel here.
ls .whl/promise-2.3-*.whl > /dev/null 2>&1 || python3 -m pip wheel -q --no-deps promise==2.3 -w .whl
mkdir -p .devdata/denoise/train .devdata/denoise/test
cp -r "$data_root/denoise/train/CBSD432" .devdata/denoise/train/
cp -r "$data_root/denoise/test/Kodak24" .devdata/denoise/test/
du -sh .whl .devdata
