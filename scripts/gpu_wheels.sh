#!/usr/bin/env bash
# Download (here, where PyPI is reachable) the wheels the GPU check needs on a machine whose image has
# PyTorch with CUDA, transformers, pandas and pyarrow but no Dask: Python 3.12, x86-64, into .whl/.
# Versions are env/requirements.txt's pins, plus dask-cuda 26.10 (which wants exactly this dask).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
platforms=()
for tag in manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
  platforms+=(--platform "${tag}_x86_64")
done
pin() { grep -i "^$1==" env/requirements.txt; }
packages=(
  "$(pin dask)" "$(pin distributed)" "$(pin tornado)" "$(pin zict)" "$(pin tblib)" "$(pin partd)"
  "$(pin locket)" "$(pin zstandard)" "$(pin submitit)" "$(pin dask-jobqueue)"
  dask-cuda==26.10.0 rapids-dask-dependency==26.10.0
)
for package in "${packages[@]}"; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d .whl "$package"
done
du -sh .whl
