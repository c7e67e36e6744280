"""CUDA kernels without a GPU: built for the host under tests/cuda_host_shim.h and held to their
CPU twins and to SciPy (also under AddressSanitizer/UBSan), compiled for Hopper by NVRTC and
nvcc; on a GPU, the real launch against the twin."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats

from cohortex._backend import gpu_available, kernel_dir, load_kernel
from cohortex.stats._cpu.rank_sums import walk_sorted_runs

import host_kernels

HERE = Path(__file__).parent
KERNELS = sorted(kernel_dir().glob("*.cu"))
RANK_SUM_WALK = (kernel_dir() / "rank_sum_walk.cu").read_text()
THREADS = 128  # what stats/_gpu/rank_sums.py launches per block
# each kernel and the test that holds it to its CPU twin (a new kernel needs one)
TWIN_TESTS = {"rank_sum_walk.cu": "test_rank_sum_walk_equals_its_twin_and_scipy"}


def test_every_kernel_has_a_twin_test():
    assert {k.name for k in KERNELS} == set(TWIN_TESTS)
    assert all(name in globals() for name in TWIN_TESTS.values())


@pytest.mark.skipif(host_kernels.compiler() is None, reason="no C++ compiler")
@pytest.mark.parametrize("source", KERNELS, ids=[k.name for k in KERNELS])
def test_every_kernel_builds_for_the_host(source):
    kernels = host_kernels.load(source.read_text())
    assert kernels, f'{source.name} has no extern "C" __global__ function'


# ----------------------------------------------------------------------- rank_sum_walk.cu


def _sorted_genes(seed: int, n_genes: int, n_values: int, n_levels: int):
    """Genes of tied values with NaN, ±inf and ±0, each sorted (NaN last), with group codes."""
    rng = np.random.default_rng(seed)
    pool = np.concatenate([[0.0, -0.0, np.inf, -np.inf, np.nan], rng.normal(size=4).round(1)])
    values = rng.choice(pool, (n_genes, n_values))
    codes = rng.integers(0, n_levels, (n_genes, n_values)).astype(np.int32)
    order = np.argsort(values, axis=1, kind="stable")
    return np.take_along_axis(values, order, axis=1), np.take_along_axis(codes, order, axis=1)


def _launch_walk(kernel, sorted_values, sorted_codes, n_levels, linear):
    """Launch rank_sum_walk as stats/_gpu/rank_sums.py does (one thread per gene)."""
    genes, values = sorted_values.shape
    rank_level, linear_sum = np.zeros((n_levels, genes)), np.zeros((n_levels, genes))
    tie_term = np.zeros(genes)
    kernel(
        ((genes + THREADS - 1) // THREADS,),
        (THREADS,),
        (
            np.ascontiguousarray(sorted_values),
            np.ascontiguousarray(sorted_codes),
            np.int64(genes),
            np.int64(values),
            np.int32(linear),
            rank_level,
            linear_sum,
            tie_term,
        ),
    )
    return {"rank_level": rank_level, "linear_sum": linear_sum, "tie_term": tie_term}


def _scipy_rank_sums(sorted_values, sorted_codes, n_levels):
    """Each group's sum of scipy's average ranks, and Σ(t³ − t), per gene."""
    genes = sorted_values.shape[0]
    rank_level, tie_term = np.zeros((n_levels, genes)), np.zeros(genes)
    for gene in range(genes):
        valid = ~np.isnan(sorted_values[gene])
        ranks = stats.rankdata(sorted_values[gene, valid])
        codes = sorted_codes[gene, valid]
        rank_level[:, gene] = np.bincount(codes, weights=ranks, minlength=n_levels)
        _, sizes = np.unique(sorted_values[gene, valid], return_counts=True)
        tie_term[gene] = np.sum(sizes.astype(float) ** 3 - sizes)
    return rank_level, tie_term


@pytest.mark.skipif(host_kernels.compiler() is None, reason="no C++ compiler")
@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_genes=st.sampled_from([1, 2, 5, THREADS - 1, THREADS, THREADS + 1]),
    n_values=st.integers(1, 40),
    n_levels=st.integers(1, 4),
    linear=st.booleans(),
)
@example(seed=0, n_genes=1, n_values=1, n_levels=1, linear=True)  # one gene, one value
@example(seed=1, n_genes=THREADS + 1, n_values=3, n_levels=2, linear=False)  # grid edge
def test_rank_sum_walk_equals_its_twin_and_scipy(seed, n_genes, n_values, n_levels, linear):
    kernel = host_kernels.load(RANK_SUM_WALK)["rank_sum_walk"]
    sorted_values, sorted_codes = _sorted_genes(seed, n_genes, n_values, n_levels)
    got = _launch_walk(kernel, sorted_values, sorted_codes, n_levels, linear)
    twin = walk_sorted_runs(sorted_values, sorted_codes, n_levels, linear=linear)
    np.testing.assert_array_equal(got["rank_level"], twin["rank_level"])
    np.testing.assert_array_equal(got["tie_term"], twin["tie_term"])
    if linear:
        np.testing.assert_allclose(got["linear_sum"], twin["linear_sum"], rtol=1e-14)
    else:
        assert not got["linear_sum"].any()
    rank_level, tie_term = _scipy_rank_sums(sorted_values, sorted_codes, n_levels)
    np.testing.assert_array_equal(got["rank_level"], rank_level)
    np.testing.assert_array_equal(got["tie_term"], tie_term)


def test_host_launch_refuses_what_a_gpu_would_get_wrong():
    """The launcher checks arguments against the kernel's C signature, as a GPU cannot."""
    kernel = host_kernels.load(RANK_SUM_WALK)["rank_sum_walk"]
    values, codes = _sorted_genes(3, 4, 5, 2)
    good = [values, codes, np.int64(4), np.int64(5), np.int32(0)]
    outputs = [np.zeros((2, 4)), np.zeros((2, 4)), np.zeros(4)]
    with pytest.raises(TypeError, match="'values' points to double; got a float32 array"):
        kernel((1,), (4,), (values.astype(np.float32), *good[1:], *outputs))
    with pytest.raises(TypeError, match="'codes' points to int; got a int64 array"):
        kernel((1,), (4,), (values, codes.astype(np.int64), *good[2:], *outputs))
    with pytest.raises(TypeError, match="'linear' is int; got int64"):
        kernel((1,), (4,), (*good[:4], 0, *outputs))  # a Python int goes as 64 bits
    with pytest.raises(TypeError, match="'values' must be C-contiguous"):
        kernel((1,), (4,), (np.asfortranarray(values), *good[1:], *outputs))
    with pytest.raises(TypeError, match="takes 8 arguments; got 7"):
        kernel((1,), (4,), (*good, *outputs[:2]))


# ----------------------------------------------------------------------- sanitizers


def _asan_runtime() -> str | None:
    cxx = host_kernels.compiler()
    if cxx is None:
        return None
    path = subprocess.run(
        [cxx, "-print-file-name=libasan.so"], capture_output=True, text=True
    ).stdout.strip()
    return path if os.path.isabs(path) and Path(path).exists() else None


def _run_sanitized(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a Python whose malloc is AddressSanitizer's (kernels built with it)."""
    env = {
        **os.environ,
        "LD_PRELOAD": _asan_runtime() or "",
        "ASAN_OPTIONS": "detect_leaks=0",
        # the tests' helpers (tests/) and this file's folder, for host_kernels and test_kernels
        "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE), *sys.path]),
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


_SANITIZED_WALK = """
    import numpy as np
    import host_kernels
    from test_kernels import RANK_SUM_WALK, _launch_walk, _sorted_genes, THREADS

    kernel = host_kernels.load(RANK_SUM_WALK, sanitize=True)["rank_sum_walk"]
    for seed, genes in enumerate([1, THREADS - 1, THREADS + 1]):
        values, codes = _sorted_genes(seed, genes, 37, 3)
        out = _launch_walk(kernel, values, codes, 3, True)
    print("clean", out["tie_term"].sum())
"""

_OUT_OF_BOUNDS = """
    import numpy as np
    import host_kernels

    code = '''extern "C" __global__ void past_the_end(double* out, long long n) {
        long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
        if (i <= n) { out[i] = 1.0; }  // the bug: <= instead of <
    }'''
    kernel = host_kernels.load(code, sanitize=True)["past_the_end"]
    kernel((1,), (64,), (np.zeros(40), np.int64(40)))
    print("not caught")
"""


@pytest.mark.skipif(_asan_runtime() is None, reason="no AddressSanitizer runtime for g++")
def test_kernels_are_clean_under_address_and_undefined_behaviour_sanitizers():
    done = _run_sanitized(_SANITIZED_WALK)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "clean" in done.stdout
    # the harness does catch a kernel that writes one element past its array
    broken = _run_sanitized(_OUT_OF_BOUNDS)
    assert broken.returncode != 0 and "not caught" not in broken.stdout
    assert "AddressSanitizer: heap-buffer-overflow" in broken.stderr


# ----------------------------------------------------------------------- Hopper builds


def _nvrtc():
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
    except Exception:  # CuPy absent, or no NVRTC library (the nvidia-cuda-nvrtc wheel)
        return None
    return nvrtc


@pytest.mark.skipif(_nvrtc() is None, reason="no NVRTC (pip install nvidia-cuda-nvrtc)")
@pytest.mark.parametrize("source", KERNELS, ids=[k.name for k in KERNELS])
def test_kernels_compile_with_nvrtc_for_hopper(source):
    """What cupy.RawModule does on a GPU, without one: NVRTC from its wheel, sm_90 machine code.

    The options are those of ``_backend._raw_module`` plus the architecture CuPy would add.
    """
    nvrtc = _nvrtc()
    program = nvrtc.createProgram(source.read_text(), source.name, (), ())
    try:
        try:
            nvrtc.compileProgram(program, ("-std=c++17", "-arch=sm_90"))
        except nvrtc.NVRTCError:
            pytest.fail(nvrtc.getProgramLog(program))
        cubin = nvrtc.getCUBIN(program)
    finally:
        nvrtc.destroyProgram(program)
    assert cubin[:4] == b"\x7fELF"


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
@pytest.mark.parametrize("source", KERNELS, ids=[k.name for k in KERNELS])
def test_kernels_compile_with_nvcc_for_hopper(tmp_path, source):
    done = subprocess.run(
        ["nvcc", "-arch=sm_90", "-std=c++17", "-c", str(source), "-o", str(tmp_path / "k.o")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


# ----------------------------------------------------------------------- on a GPU


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="no CUDA device")
def test_rank_sum_walk_kernel_on_a_gpu_equals_twin():
    import cupy

    values, codes = _sorted_genes(34, THREADS + 3, 300, 3)
    expected = walk_sorted_runs(values, codes, 3, linear=True)
    got = {
        "rank_level": cupy.zeros((3, values.shape[0])),
        "linear_sum": cupy.zeros((3, values.shape[0])),
        "tie_term": cupy.zeros(values.shape[0]),
    }
    load_kernel("rank_sum_walk.cu", "rank_sum_walk")(
        ((values.shape[0] + THREADS - 1) // THREADS,),
        (THREADS,),
        (
            cupy.asarray(values),
            cupy.asarray(codes),
            np.int64(values.shape[0]),
            np.int64(values.shape[1]),
            np.int32(1),
            got["rank_level"],
            got["linear_sum"],
            got["tie_term"],
        ),
    )
    np.testing.assert_array_equal(got["rank_level"].get(), expected["rank_level"])
    np.testing.assert_array_equal(got["tie_term"].get(), expected["tie_term"])
    np.testing.assert_allclose(got["linear_sum"].get(), expected["linear_sum"], rtol=1e-14)
