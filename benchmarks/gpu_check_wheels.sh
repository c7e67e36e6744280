#!/usr/bin/env bash
# Prepare the wheels that benchmarks/gpu_check.sh installs offline on the lent GPU machine
# (CPython 3.12, manylinux x86-64, no network): what cohortex and the GPU tests import that the
# machine's image lacks. The image has CuPy, torch, numpy, scipy, pandas, xarray, numba,
# scikit-learn, statsmodels, h5py, matplotlib, formulaic, tqdm, hypothesis, mpmath, pyyaml,
# toolz, cloudpickle, fsspec, click and packaging (the device tool's KINDS.md).
#
#   bash benchmarks/gpu_check_wheels.sh        → .whl/ (git ignores it; carry it: carry [".whl"])
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
rm -rf .whl && mkdir .whl
# versions as this project resolves them here, so both machines run the same code
pinned() { "$python" -c "import importlib.metadata as m; print('$1==' + m.version('$1'))"; }
for name in dask partd locket zarr numcodecs donfig google-crc32c openTSNE; do
    "$python" -m pip download -q --no-deps --only-binary=:all: -d .whl \
        --python-version 3.12 --implementation cp --abi cp312 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform any \
        "$(PYTHON="$python" pinned "$name" 2>/dev/null || echo "$name")"
done
du -sh .whl && ls .whl
