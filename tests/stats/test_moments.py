"""The compiled CPU group moments against the ``xp`` reference they replace on NumPy chunks."""

from __future__ import annotations

import numpy as np
import pytest

import cohortex.stats._moments as moments_module

# ------------------------------------------------------------ the compiled CPU moments loop


@pytest.mark.parametrize("omit_nan", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_compiled_chunk_moments_equal_the_xp_reference(monkeypatch, omit_nan, dtype):
    rng = np.random.default_rng(41)
    wide = rng.normal(1e3, 5.0, (300, 90))  # a large mean: the shift matters
    if dtype is np.int32:
        wide = np.round(wide)
    else:
        wide[rng.random(wide.shape) < 0.02] = np.nan
        wide[7, 3], wide[9, 4] = np.inf, -np.inf
    wide = wide.astype(dtype)
    block = wide[:, 5:75]  # a strided view: rows contiguous, not the whole array
    codes = rng.integers(-1, 3, block.shape[0])
    results = {}
    for compiled in (True, False):
        monkeypatch.setattr(moments_module, "COMPILED_CPU", compiled)
        with np.errstate(invalid="ignore", over="ignore"):
            results[compiled] = moments_module.chunk_moments(
                block, codes, 3, omit_nan, linear=True, count_infinite=True
            )
    fast, reference = results[True], results[False]
    np.testing.assert_array_equal(fast.count, reference.count)
    np.testing.assert_array_equal(fast.infinite, reference.infinite)
    compared = block[codes >= 0].astype(np.float64)
    # NaN (propagated) and ±inf genes differ on purpose: the reference's one-hot GEMM spreads
    # 0 × NaN into every group, the loop keeps it in its own group (infinite data are refused)
    clean = np.isfinite(compared).all(axis=0) if not omit_nan else ~np.isinf(compared).any(axis=0)
    np.testing.assert_allclose(fast.mean[:, clean], reference.mean[:, clean], rtol=1e-13)
    np.testing.assert_allclose(fast.m2[:, clean], reference.m2[:, clean], rtol=1e-9)
    if not omit_nan:
        for g in range(3):
            has_nan = np.isnan(block[codes == g].astype(np.float64)).any(axis=0)
            np.testing.assert_array_equal(np.isnan(fast.mean[g]), has_nan)


def test_compiled_chunk_moments_linear_means(monkeypatch):
    rng = np.random.default_rng(42)
    block = np.log1p(rng.poisson(3.0, (200, 40))).astype(np.float32)
    block[rng.random(block.shape) < 0.03] = np.nan
    codes = rng.integers(0, 2, 200)
    results = {}
    for compiled in (True, False):
        monkeypatch.setattr(moments_module, "COMPILED_CPU", compiled)
        results[compiled] = moments_module.chunk_moments(block, codes, 2, True, linear=True)
    np.testing.assert_allclose(results[True].linear_mean, results[False].linear_mean, rtol=1e-13)
    expected = [np.nanmean(np.expm1(block[codes == g].astype(float)), axis=0) for g in (0, 1)]
    np.testing.assert_allclose(results[True].linear_mean, expected, rtol=1e-12)
