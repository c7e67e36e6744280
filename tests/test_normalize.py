"""Normalisation: edgeR's factors and log-CPM against R (fixtures made by
tests/fixtures/make_edger_fixtures.R), textbook formulas, DESeq2's size factors and limma's
quantile ties."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from cohortex import CohortexError, create_cohort, norm_factors, normalize

EDGER = Path(__file__).parent / "fixtures" / "edger"


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
    ds = normalize(path, "log_cpm_offset")
    assert isinstance(ds["expression"].data, da.Array)
    assert ds.attrs["scale"] == "log2" and ds.attrs["normalization"] == "log_cpm_offset"
    library = counts.sum(axis=1, keepdims=True)
    expected = np.log2(counts / library * 1e6 + 1.0)
    np.testing.assert_allclose(ds["expression"].values, expected, rtol=1e-6)
    assert ds["expression"].dtype == np.float32  # float32 store, float32 layer


def _edger_case(case):
    counts = pd.read_csv(EDGER / f"{case}_counts.csv", index_col=0)  # genes × samples
    ds = xr.Dataset(
        {"expression": (("sample", "gene"), counts.to_numpy(dtype=np.float64).T)},
        coords={"sample": counts.columns.to_numpy(), "gene": counts.index.to_numpy()},
        attrs={"scale": "counts"},
    )
    factors = pd.read_csv(EDGER / f"{case}_factors.csv")
    logcpm = pd.read_csv(EDGER / f"{case}_logcpm.csv")
    return ds, factors, logcpm


@pytest.mark.parametrize("case", ["bulk", "sparse"])
@pytest.mark.parametrize("method", ["tmm", "upperquartile", "rle"])
def test_norm_factors_equal_edger(case, method):
    ds, factors, _ = _edger_case(case)
    expected = factors[method].to_numpy()
    if np.isnan(expected).any():  # edgeR: NA with a warning; cohortex refuses
        with pytest.raises(CohortexError, match="upper quartile is 0 in 20 samples"):
            norm_factors(ds, method)
        return
    got = norm_factors(ds.chunk({"sample": 5}), method)
    np.testing.assert_allclose(got.values, expected, rtol=1e-12, atol=0)
    assert list(got["sample"].values) == list(factors["sample"])
    assert np.exp(np.mean(np.log(got.values))) == pytest.approx(1.0, rel=1e-14)
    assert got.attrs["method"] == method


def test_tmm_reference_follows_edger_rules():
    bulk, _, _ = _edger_case("bulk")
    sparse, _, _ = _edger_case("sparse")
    counts = sparse["expression"].values
    # every upper quartile is 0: edgeR takes the sample with the largest sum of square roots
    assert (
        norm_factors(sparse).attrs["reference"]
        == sparse["sample"].values[np.argmax(np.sqrt(counts).sum(axis=1))]
    )
    x = bulk["expression"].values
    quartiles = np.quantile(x[:, (x > 0).any(axis=0)], 0.75, axis=1) / x.sum(axis=1)
    expected = bulk["sample"].values[np.argmin(np.abs(quartiles - quartiles.mean()))]
    assert norm_factors(bulk).attrs["reference"] == expected


@pytest.mark.parametrize("case", ["bulk", "sparse"])
def test_voom_takes_edger_factors_from_its_own_sums(case):
    """voom sums the library sizes and the expressed genes once and hands them to TMM."""
    from cohortex import de

    ds, factors, _ = _edger_case(case)
    voomed = de.voom(ds.chunk({"sample": 5}), np.ones((ds.sizes["sample"], 1)), norm_factors="tmm")
    library = ds["expression"].values.sum(axis=1)
    np.testing.assert_allclose(
        voomed["lib_size"].values, library * factors["tmm"].to_numpy(), rtol=1e-12
    )


@pytest.mark.parametrize("case", ["bulk", "sparse"])
def test_log_cpm_equals_edger_cpm_log(case):
    ds, _, logcpm = _edger_case(case)
    with_tmm = logcpm[logcpm["kind"] == "tmm_prior2"].iloc[:, 2:].to_numpy().T
    raw = logcpm[logcpm["kind"] == "raw_prior05"].iloc[:, 2:].to_numpy().T
    got = normalize(ds, "log_cpm", norm_factors="tmm")
    np.testing.assert_allclose(got["expression"].values, with_tmm, rtol=1e-12, atol=1e-12)
    assert got.attrs["prior_count"] == 2.0 and got.attrs["norm_factors"] == "tmm"
    assert got["expression"].dtype == np.float64
    got = normalize(ds.chunk({"sample": 7, "gene": 100}), "log_cpm", prior_count=0.5)
    np.testing.assert_allclose(got["expression"].values, raw, rtol=1e-12, atol=1e-12)
    given = normalize(ds, "log_cpm", norm_factors=norm_factors(ds))
    np.testing.assert_array_equal(
        given["expression"].values,
        normalize(ds, "log_cpm", norm_factors="tmm")["expression"].values,
    )
    assert given.attrs["norm_factors"] == "given"
    # a zero count at 10 million reads is log2(2 / (1e7 + 4) · 1e6) ≈ -2.32, not 0
    deep = create_cohort_in_memory(np.array([[0.0, 1e7], [1e7, 0.0]]))
    deep.attrs["scale"] = "counts"
    zero = normalize(deep, "log_cpm")["expression"].values[0, 0]
    assert zero == pytest.approx(np.log2(2.0 / (1e7 + 4.0) * 1e6), rel=1e-12)


def test_rpkm_equals_edger_and_tpm_sums_to_a_million():
    """edgeR's rpkm of a DGEList with TMM factors, plain and log; the lengths from the gene
    variable ``length`` (as a featureCounts import stores them) or given."""
    ds, _, _ = _edger_case("bulk")
    lengths = pd.read_csv(EDGER / "bulk_lengths.csv")["length"].to_numpy()
    expected = pd.read_csv(EDGER / "bulk_rpkm.csv")
    stored = ds.assign(length=("gene", lengths)).chunk({"sample": 5, "gene": 250})
    for kind in ("rpkm", "log_rpkm"):
        want = expected[expected["kind"] == kind].iloc[:, 2:].to_numpy().T
        got = normalize(stored, kind, norm_factors="tmm")
        np.testing.assert_allclose(got["expression"].values, want, rtol=1e-12, atol=1e-12)
        given = normalize(ds, kind, norm_factors="tmm", gene_length=lengths)
        np.testing.assert_allclose(given["expression"].values, want, rtol=1e-12, atol=1e-12)
        assert got.attrs["scale"] == ("log2" if kind == "log_rpkm" else "linear")
    tpm = normalize(stored, "tpm")["expression"].values
    x = ds["expression"].values
    rate = x / lengths[None, :]
    np.testing.assert_allclose(tpm, rate / rate.sum(axis=1, keepdims=True) * 1e6, rtol=1e-12)
    np.testing.assert_allclose(tpm.sum(axis=1), 1e6, rtol=1e-12)
    with pytest.raises(CohortexError, match="need each gene's length"):
        normalize(ds, "tpm")
    with pytest.raises(CohortexError, match="finite lengths > 0"):
        normalize(ds, "rpkm", gene_length=np.where(lengths > 5000, 0, lengths))
    with pytest.raises(CohortexError, match="'gene_length' applies to"):
        normalize(ds, "log_cpm", gene_length=lengths)
    with pytest.raises(CohortexError, match="'norm_factors' applies to"):
        normalize(stored, "tpm", norm_factors="tmm")


def test_per_sample_lengths_divide_each_value_by_its_own():
    """tximport's length(sample, gene) (a store of estimated counts keeps it): rpkm,
    log_rpkm and tpm divide each value by its sample's length of the gene, as edgeR's rpkm
    with a matrix of lengths; lengths equal in every sample give edgeR's numbers."""
    ds, _, _ = _edger_case("bulk")
    lengths = pd.read_csv(EDGER / "bulk_lengths.csv")["length"].to_numpy()
    expected = pd.read_csv(EDGER / "bulk_rpkm.csv")
    n, m = ds.sizes["sample"], ds.sizes["gene"]
    repeated = ds.assign(length=(("sample", "gene"), np.tile(lengths.astype(float), (n, 1))))
    for kind in ("rpkm", "log_rpkm"):
        want = expected[expected["kind"] == kind].iloc[:, 2:].to_numpy().T
        got = normalize(repeated.chunk({"sample": 5, "gene": 250}), kind, norm_factors="tmm")
        np.testing.assert_allclose(got["expression"].values, want, rtol=1e-12, atol=1e-12)

    per_sample = np.random.default_rng(4).uniform(300, 9000, (n, m))
    varying = ds.assign(length=(("sample", "gene"), per_sample)).chunk({"gene": 300})
    per_kilobase = normalize(ds, "rpkm", norm_factors="tmm", gene_length=np.full(m, 1e3))
    got = normalize(varying, "rpkm", norm_factors="tmm")["expression"].values
    np.testing.assert_allclose(got, per_kilobase["expression"].values / (per_sample / 1e3))
    logged = normalize(ds, "log_rpkm", norm_factors="tmm", gene_length=np.full(m, 1e3))
    got = normalize(varying, "log_rpkm", norm_factors="tmm")["expression"].values
    np.testing.assert_allclose(got, logged["expression"].values - np.log2(per_sample / 1e3))
    rate = ds["expression"].values / per_sample
    np.testing.assert_allclose(
        normalize(varying, "tpm")["expression"].values,
        rate / rate.sum(axis=1, keepdims=True) * 1e6,
        rtol=1e-12,
    )
    given = normalize(varying, "tpm", gene_length=lengths)["expression"].values  # given wins
    rate = ds["expression"].values / lengths
    np.testing.assert_allclose(given, rate / rate.sum(axis=1, keepdims=True) * 1e6, rtol=1e-12)
    per_sample[2, 5] = 0.0
    zero = ds.assign(length=(("sample", "gene"), per_sample))
    with pytest.raises(CohortexError, match=r"lengths length\(sample, gene\) must be finite"):
        normalize(zero, "tpm")["expression"].values  # noqa: B018 (computing is the point)


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
        match="'method' parameter of normalize\\(\\) must be one of 'log_cpm', "
        "'log_cpm_offset', 'log1p', 'log2', 'quantile', 'median_ratio', 'rpkm', 'log_rpkm', "
        "'tpm'; got 'tmm'",
    ):
        normalize(path, "tmm")
    logged = normalize(path, "log2")
    with pytest.raises(
        CohortexError,
        match="needs raw values \\(scale 'counts' or 'linear'\\); this cohort's scale is 'log2'",
    ):
        normalize(logged, "log_cpm")
    with pytest.raises(CohortexError, match="norm_factors\\(\\) needs raw counts"):
        norm_factors(logged)
    with_nan = create_cohort_in_memory(np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(CohortexError, match="does not accept NaN values"):
        normalize(with_nan, "quantile")["expression"].compute()
    with_nan.attrs["scale"] = "counts"
    with pytest.raises(CohortexError, match="holds 1 NaN values \\(edgeR refuses NA"):
        norm_factors(with_nan)
    empty = create_cohort_in_memory(np.array([[0.0, 0.0], [2.0, 3.0]]))
    empty.attrs["scale"] = "counts"
    with pytest.raises(CohortexError, match="library size 0 in: 0"):
        norm_factors(empty)
    with pytest.raises(CohortexError, match="'method' parameter of norm_factors\\(\\) must be"):
        norm_factors(path, "TMM")
    with pytest.raises(CohortexError, match="'logratio_trim' must be in \\[0, 0.5\\)"):
        norm_factors(path, logratio_trim=0.5)
    with pytest.raises(CohortexError, match="'norm_factors' applies to log_cpm"):
        normalize(path, "log2", norm_factors="tmm")
    with pytest.raises(CohortexError, match="must be a method name or 12 positive finite"):
        normalize(path, "log_cpm", norm_factors=np.ones(11))
    with pytest.raises(CohortexError, match="'prior_count' must be a number >= 0"):
        normalize(path, "log_cpm", prior_count=-1)
