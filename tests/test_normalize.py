"""Normalisation: textbook formulas, DESeq2's size factors and limma's quantile ties."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from scipy import stats

from cohortex import CohortexError, create_cohort, normalize


@pytest.fixture
def counts_store(tmp_path):
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 2.0, 12)
    counts = rng.poisson(50 * depth[:, None] * rng.uniform(0.1, 3, 40)[None, :]).astype(float)
    counts[0, 3] = 0  # a zero: gene 3 is left out of the size-factor medians
    create_cohort(tmp_path / "c.zarr", counts, scale="counts", chunks=(5, 16))
    return tmp_path / "c.zarr", counts


def test_is_lazy_and_updates_scale(counts_store):
    path, counts = counts_store
    ds = normalize(path, "log_cpm")
    assert isinstance(ds["expression"].data, da.Array)
    assert ds.attrs["scale"] == "log2" and ds.attrs["normalization"] == "log_cpm"
    library = counts.sum(axis=1, keepdims=True)
    expected = np.log2(counts / library * 1e6 + 1.0)
    np.testing.assert_allclose(ds["expression"].values, expected, rtol=1e-6)


def test_log_transforms(counts_store):
    path, counts = counts_store
    np.testing.assert_allclose(
        normalize(path, "log1p")["expression"].values, np.log1p(counts), rtol=1e-6
    )
    logged = normalize(path, "log2", prior_count=0.5)
    np.testing.assert_allclose(logged["expression"].values, np.log2(counts + 0.5), rtol=1e-6)
    assert normalize(path, "log1p").attrs["scale"] == "log1p"


def test_median_ratio_size_factors(counts_store):
    path, counts = counts_store
    ds = normalize(path, "median_ratio")
    # DESeq2's estimateSizeFactorsForMatrix, written out (genes are columns here)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(counts)
        log_geomeans = logs.mean(axis=0)
        factors = np.array(
            [
                np.exp(np.median((row - log_geomeans)[np.isfinite(log_geomeans) & (counts[i] > 0)]))
                for i, row in enumerate(logs)
            ]
        )
    assert np.ptp(factors) > 0.5  # the samples' depths differ, and the factors follow
    np.testing.assert_allclose(ds["expression"].values, counts / factors[:, None], rtol=1e-6)
    assert ds.attrs["scale"] == "counts"


def test_quantile_matches_limma_rules():
    x = np.array(
        [[5.0, 2.0, 3.0, 4.0], [4.0, 1.0, 4.0, 2.0], [3.0, 4.0, 6.0, 8.0], [4.0, 2.0, 8.0, 6.0]]
    )  # the samples are rows; sample 1 has tied values
    ds = create_cohort_in_memory(x)
    out = normalize(ds, "quantile")["expression"].values
    reference = np.sort(x, axis=1).mean(axis=0)
    for i, row in enumerate(x):
        ranks = stats.rankdata(row) - 1  # average ranks, 0-based
        expected = np.interp(ranks, np.arange(4), reference)
        np.testing.assert_allclose(out[i], expected, rtol=1e-6)
    # untied samples take exactly the reference values; tied values stay tied
    np.testing.assert_allclose(np.sort(out[0]), reference, rtol=1e-6)
    assert out[1, 0] == out[1, 2]
    assert out[1, 0] == pytest.approx((reference[2] + reference[3]) / 2)


def create_cohort_in_memory(x):
    import xarray as xr

    return xr.Dataset({"expression": (("sample", "gene"), x)}, attrs={"scale": "log2"})


def test_bad_input(counts_store):
    path, counts = counts_store
    with pytest.raises(
        CohortexError,
        match="'method' parameter of normalize\\(\\) must be one "
        "of 'log_cpm', 'log1p', 'log2', 'quantile', 'median_ratio'; got 'tmm'",
    ):
        normalize(path, "tmm")
    logged = normalize(path, "log2")
    with pytest.raises(
        CohortexError,
        match="needs raw values \\(scale 'counts' or 'linear'\\); this cohort's scale is 'log2'",
    ):
        normalize(logged, "log_cpm")
    with_nan = create_cohort_in_memory(np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(CohortexError, match="does not accept NaN values"):
        normalize(with_nan, "quantile")["expression"].compute()
