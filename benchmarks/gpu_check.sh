#!/usr/bin/env bash
# The prepared GPU check: on a lent GPU machine, one command verifies a cohortex install on the
# GPU and measures it against the CPU in the same run.
#
#   bash benchmarks/gpu_check.sh [--dry-run] [OUT_DIR]      (default OUT_DIR: benchmarks/out/gpu_check)
#
# 1. installs the wheels in .whl/ offline, if there are any (the lent machine has CuPy, torch,
#    numpy, scipy, pandas, xarray, numba, scikit-learn, h5py, matplotlib but no network and no
#    dask or zarr): prepare them here first with `bash benchmarks/gpu_check_wheels.sh`, which
#    downloads for CPython 3.12 / manylinux x86-64, at this project's resolved versions:
#    dask, partd, locket, zarr, numcodecs, donfig, google-crc32c, openTSNE (15 MB; carry it
#    with `carry: [".whl"]`);
# 2. runs every test marked gpu in the test files that have them (the CuPy side of the xp
#    fixture and of tests/test_device_parity.py, the CUDA kernel against its twin), junit XML
#    into OUT_DIR;
# 3. runs benchmarks/gpu_check.py: parity of every public entry point at 20,000 × 2,000 and
#    speed at 50,000 × 20,000 against the CPU, gpu_check.json and gpu_check.md into OUT_DIR.
# All inside 8 minutes on an H200. --dry-run uses the CuPy stand-in of tests/gpu_surface.py as
# the GPU at small sizes, on any machine: it shows that the check runs end to end.
set -uo pipefail
cd "$(dirname "$0")/.."
dry_run=""
if [ "${1:-}" = "--dry-run" ]; then dry_run="--dry-run"; shift; fi
out="${1:-benchmarks/out/gpu_check}"
mkdir -p "$out"
python="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
if [ -z "$dry_run" ] && compgen -G ".whl/*.whl" >/dev/null; then  # the lent machine's Python
    site="${TMPDIR:-/tmp}/cohortex-gpu-check-site"
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" .whl/*.whl || exit 1
    export PYTHONPATH="$site:${PYTHONPATH:-}"
fi
if ! "$python" -c "import cohortex" 2>/dev/null; then
    export PYTHONPATH="$PWD/src:${PYTHONPATH:-}"  # the source tree, without installing it
fi

status=0
start=$(date +%s)
echo "== gpu-marked tests"
mapfile -t files < <(grep -rlE "pytest.mark.gpu|gpu_xp|\bxp\b" tests --include="test_*.py")
timeout 240 "$python" -m pytest -q -p no:cacheprovider -m gpu "${files[@]}" \
    --junitxml "$out/gpu_tests.xml" -o junit_family=xunit2 2>&1 | tee "$out/gpu_tests.log" | tail -25
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "== parity and speed against the CPU"
remaining=$((420 - ($(date +%s) - start)))
timeout $((remaining > 60 ? remaining : 60)) "$python" benchmarks/gpu_check.py $dry_run \
    --out "$out" --budget $((remaining > 120 ? remaining - 90 : 30)) || status=1
echo "== done in $(($(date +%s) - start)) s, status $status; results in $out"
exit $status
