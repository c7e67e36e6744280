"""Sample quality weights: limma's arrayWeights(method = "reml") and
voomWithQualityWeights(method = "reml") against fixtures made with R's limma 3.54
(tests/fixtures/make_array_weights_fixtures.R)."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from cohortex import CohortexError, CohortexWarning, create_cohort, de
from cohortex.de import _array_weights, _gene_columns, _least_squares
from cohortex.simulate import simulate_array

FIXTURES = Path(__file__).parents[1] / "fixtures" / "limma"
DESIGN = "~ condition"


def _cohort(chunks=None):
    """The fixture's 24 samples × 400 genes as an in-memory Dataset."""
    expression = pd.read_csv(FIXTURES / "aw_expression.csv", index_col=0).T
    samples = pd.read_csv(FIXTURES / "aw_samples.csv", index_col=0)
    values = expression.to_numpy()
    return xr.Dataset(
        {
            "expression": (
                ("sample", "gene"),
                da.from_array(values, chunks=chunks) if chunks else values,
            ),
            **{name: ("sample", samples[name].to_numpy()) for name in samples.columns},
        },
        coords={"sample": list(expression.index), "gene": list(expression.columns)},
        attrs={"scale": "log2"},
    )


def _prior_weights():
    return pd.read_csv(FIXTURES / "aw_prior_weights.csv", index_col=0).T.to_numpy()


def _limma():
    return pd.read_csv(FIXTURES / "aw_weights.csv")


CASES = {
    "reml": {},
    "reml_group": {"var_group": "batch"},
    "reml_prior3": {"prior_n": 3},
    "weighted": {"weights": "prior"},
    "weighted_group": {"weights": "prior", "var_group": "batch"},
}


@pytest.mark.parametrize("case", list(CASES))
def test_array_weights_equal_limma(case):
    options = dict(CASES[case])
    if options.get("weights") == "prior":
        options["weights"] = _prior_weights()
    result = de.array_weights(_cohort(), DESIGN, **options)
    np.testing.assert_allclose(result.values, _limma()[case], rtol=1e-12)
    assert list(result["sample"].values) == list(_limma()["sample"])
    # limma leaves out the gene with a missing value, and (unweighted) the two constant genes
    assert result.attrs["genes_left_out"] == 1
    assert result.attrs["n_genes"] == (399 if "weights" in options else 397)
    assert result.attrs["converged"] == 1 and result.attrs["iterations"] >= 2


GENE_BY_GENE = {
    "by_sample": {},
    "by_batch": {"var_group": "batch"},
    "prior3": {"prior_n": 3},
    "weighted": {"weights": "prior"},
}


@pytest.mark.parametrize("case", list(GENE_BY_GENE))
def test_gene_by_gene_equals_limma(case, monkeypatch):
    """limma's default update, one gene after another: the gene with a missing value is
    fitted on its observed samples, the two constant genes are passed over; the genes come
    in order across tiles of 7 samples × 64 genes and columns of 25."""
    monkeypatch.setattr(_array_weights, "TASK_GENES", 25)
    options = dict(GENE_BY_GENE[case])
    if options.get("weights") == "prior":
        options["weights"] = _prior_weights()
    cohort = _cohort(chunks=(7, 64))
    result = de.array_weights(cohort, DESIGN, method="genebygene", **options)
    expected = pd.read_csv(FIXTURES / "aw_gene_by_gene.csv")[case]
    np.testing.assert_allclose(result.values, expected, rtol=1e-12)
    assert result.attrs["method"] == "genebygene"
    assert result.attrs["n_genes"] == 398 and result.attrs["genes_left_out"] == 2


def test_gene_by_gene_takes_a_weight_of_0_as_a_missing_value():
    """As limma sets it (E[weights == 0] <- NA, the weight then 1)."""
    weights = _prior_weights()
    values = _cohort()["expression"].values.copy()
    weights[3, 10], weights[17, 200] = 0.0, 0.0
    zeroed = de.array_weights(values, weights=weights, method="genebygene")
    values[3, 10], values[17, 200] = np.nan, np.nan
    weights[3, 10], weights[17, 200] = 1.0, 1.0
    missing = de.array_weights(values, weights=weights, method="genebygene")
    np.testing.assert_array_equal(zeroed.values, missing.values)
    assert not np.allclose(zeroed.values, 1.0)


def test_gene_by_gene_is_refused_for_many_weights(monkeypatch):
    monkeypatch.setattr(_array_weights, "GENE_BY_GENE_SAMPLES", 20)
    with pytest.raises(CohortexError, match="system of 23 sample weights per gene"):
        de.array_weights(_cohort(), DESIGN, method="genebygene")
    by_batch = de.array_weights(_cohort(), DESIGN, method="genebygene", var_group="batch")
    assert by_batch.attrs["n_genes"] == 398  # one weight per batch: one parameter
    with pytest.raises(CohortexError, match="'reml' or 'genebygene'; got 'auto'"):
        de.array_weights(_cohort(), DESIGN, method="auto")


@pytest.mark.parametrize("weighted", [False, True])
def test_tiles_and_solvers_do_not_change_the_weights(monkeypatch, weighted):
    """Tiles of 5 samples × 60 genes, tasks of 25 genes, blocks of 2; the Woodbury form of
    the unweighted step (used above DENSE_SAMPLES samples), by sample and by group."""
    monkeypatch.setattr(_gene_columns, "TASK_GENES", 25)
    monkeypatch.setattr(_gene_columns, "VALUES_PER_BLOCK", 2 * 24 * 30)
    monkeypatch.setattr(_array_weights, "DENSE_SAMPLES", 1)
    extra = {"weights": _prior_weights()} if weighted else {}
    for group, column in ((None, "weighted" if weighted else "reml"), ("batch", None)):
        result = de.array_weights(_cohort(chunks=(5, 60)), DESIGN, var_group=group, **extra)
        expected = column or ("weighted_group" if weighted else "reml_group")
        np.testing.assert_allclose(result.values, _limma()[expected], rtol=1e-12)


def test_from_a_store_with_the_cohorts_weights(tmp_path):
    """A store's matrix (float32 there, so compared with the fit of the same float32 values
    in memory) and, on a Dataset with a ``weights`` variable, those weights by default."""
    cohort = _cohort()
    samples = pd.read_csv(FIXTURES / "aw_samples.csv", index_col=0)
    values = cohort["expression"].values.astype(np.float32)
    create_cohort(tmp_path / "c.zarr", values, samples=samples, chunks=(10, 128))
    stored = de.array_weights(tmp_path / "c.zarr", DESIGN)
    in_memory = de.array_weights(cohort.assign(expression=(cohort["expression"].dims, values)))
    assert stored.attrs["n_genes"] == 397
    np.testing.assert_allclose(
        stored.values, de.array_weights(values.astype(np.float64), _design()), rtol=1e-10
    )
    assert not np.allclose(in_memory.values, stored.values)  # no design: another model
    weighted = cohort.assign(weights=(("sample", "gene"), _prior_weights()))
    np.testing.assert_allclose(
        de.array_weights(weighted, DESIGN).values, _limma()["weighted"], rtol=1e-12
    )


def _design():
    condition = pd.read_csv(FIXTURES / "aw_samples.csv", index_col=0)["condition"].to_numpy()
    return np.column_stack([np.ones(24), condition == "b", condition == "c"]).astype(float)


def test_noisy_samples_get_low_weights_and_the_fit_gains_power():
    """A realistic cohort with the defaults: 60 samples of the simulator (log2 values), three
    of them with added noise. Their weights are the three lowest, and the weighted fit gives
    the planted genes smaller p-values without more false positives."""
    x, samples, genes = simulate_array(60, 2000, groups={"a": 0.5, "b": 0.5}, seed=11)
    x = np.asarray(x, dtype=np.float64)
    noisy = [4, 31, 50]
    rng = np.random.default_rng(2)
    x[noisy] += rng.normal(0.0, 1.5 * x.std(axis=0), (3, x.shape[1]))
    cohort = xr.Dataset(
        {"expression": (("sample", "gene"), x), "group": ("sample", samples["condition"])},
        attrs={"scale": "log2"},
    )
    weights = de.array_weights(cohort, "~ group")
    assert set(np.argsort(weights.values)[:3]) == set(noisy)
    assert weights.values[noisy].max() < 0.5 < np.delete(weights.values, noisy).min()
    truth = genes["is_de"].to_numpy()
    plain = de.fit(cohort, "~ group")["pvalue"].values.ravel()
    weighted = de.fit(cohort, "~ group", weights=weights)["pvalue"].values.ravel()
    gain = np.median(np.log10(plain[truth])) - np.median(np.log10(weighted[truth]))
    assert gain > 0.5  # 14.3 → 15.2 orders of magnitude here
    assert (weighted[~truth] < 0.01).sum() <= 2 * 0.01 * (~truth).sum()


def _count_cohort(chunks=None):
    counts = pd.read_csv(FIXTURES / "aw_counts.csv", index_col=0).T
    samples = pd.read_csv(FIXTURES / "aw_counts_samples.csv", index_col=0)
    values = counts.to_numpy().astype(np.float64)
    return xr.Dataset(
        {
            "expression": (
                ("sample", "gene"),
                da.from_array(values, chunks=chunks) if chunks else values,
            ),
            **{name: ("sample", samples[name].to_numpy()) for name in samples.columns},
        },
        coords={"sample": list(counts.index), "gene": list(counts.columns)},
        attrs={"scale": "counts"},
    )


def test_voom_with_quality_weights_equals_limma():
    cohort = _count_cohort()
    expected = pd.read_csv(FIXTURES / "aw_voom_sample_weights.csv")
    design = "~ C(group, levels=['ctrl', 'case'])"
    voomed = de.voom(cohort, design, sample_weights=True)
    np.testing.assert_allclose(voomed["sample_weights"].values, expected["sample_weights"], 1e-12)
    limma_weights = pd.read_csv(FIXTURES / "aw_voom_weights.csv", index_col=0).T.to_numpy()
    np.testing.assert_allclose(voomed["weights"].values, limma_weights, rtol=1e-12)
    assert voomed.attrs["sample_weights_weighted"] == 1
    fitted = de.fit(voomed, design)
    limma = pd.read_csv(FIXTURES / "aw_voom_results.csv")
    np.testing.assert_allclose(fitted["statistic"].values.ravel(), limma["t"], rtol=1e-10)
    np.testing.assert_allclose(fitted["pvalue"].values.ravel(), limma["p"], rtol=1e-10)
    by_site = de.voom(cohort, design, sample_weights=True, var_group="site")
    np.testing.assert_allclose(by_site["sample_weights"].values, expected["site_weights"], 1e-12)
    assert by_site.attrs["sample_weights_var_group"] == "site"


def test_voom_with_quality_weights_gene_by_gene_equals_limma():
    """voomWithQualityWeights' own default (method = "genebygene")."""
    voomed = de.voom(
        _count_cohort(), "~ C(group, levels=['ctrl', 'case'])", sample_weights="genebygene"
    )
    expected = pd.read_csv(FIXTURES / "aw_voom_gene_by_gene.csv")["sample_weights"]
    np.testing.assert_allclose(voomed["sample_weights"].values, expected, rtol=1e-12)
    limma = pd.read_csv(FIXTURES / "aw_voom_gene_by_gene_weights.csv", index_col=0)
    np.testing.assert_allclose(voomed["weights"].values, limma.T.to_numpy(), rtol=1e-12)
    assert voomed.attrs["sample_weights_method"] == "genebygene"
    with pytest.raises(CohortexError, match="'reml' or 'genebygene'; got 'yes'"):
        de.voom(_count_cohort(), "~ group", sample_weights="yes")


def test_voom_refuses_gene_by_gene_weights_for_many_samples(monkeypatch):
    monkeypatch.setattr(_array_weights, "GENE_BY_GENE_SAMPLES", 20)
    from cohortex.de import _voom

    monkeypatch.setattr(_voom, "GENE_BY_GENE_SAMPLES", 20)
    with pytest.raises(CohortexError, match="up to 21 samples; this cohort has 40"):
        de.voom(_count_cohort(), "~ group", sample_weights="genebygene")


@pytest.mark.parametrize("case", ["complete", "missing"])
def test_fit_with_sample_weights_and_a_contrast_equals_limma(case):
    """A contrast of two correlated coefficients takes its standard error, and the F its
    correlations, from limma's cov.coefficients: the weighted design's when every gene
    shares it (no missing value), the unweighted design's when the genes are fitted one by
    one (gene 43 has one)."""
    expected = pd.read_csv(FIXTURES / "aw_contrast.csv")
    cohort = _cohort(chunks=(7, 64))
    if case == "complete":
        cohort = cohort.drop_isel(gene=42)
        expected = expected.drop(index=42)
    weights = _limma()["reml"].to_numpy()
    contrasts = ["condition[T.c] - condition[T.b]", "condition[T.b]"]
    result = de.fit(cohort, DESIGN, weights=weights, contrasts=contrasts)
    row = result.isel(contrast=0)
    np.testing.assert_allclose(row["stdev_unscaled"], expected[f"sd_{case}"], rtol=1e-12)
    # genes 41 and 42 are constant: t is rounding (~1e-14) in both
    np.testing.assert_allclose(row["statistic"], expected[f"t_{case}"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result["F"], expected[f"F_{case}"], rtol=1e-10, atol=1e-20)


def test_voom_narrows_its_tiles_for_the_sample_weights(monkeypatch):
    """A column of voom's tiles (every sample) is kept to _COLUMN_VALUES values for
    array_weights, by splitting the tiles along genes into equal parts; same weights."""
    from cohortex.de import _voom

    cohort = _count_cohort(chunks=(7, 256))
    design = "~ C(group, levels=['ctrl', 'case'])"
    wide = de.voom(cohort, design, sample_weights=True)
    n_samples = cohort.sizes["sample"]
    monkeypatch.setattr(_voom, "_COLUMN_VALUES", n_samples * 70)  # 256 → four parts of 64
    narrow = de.voom(cohort, design, sample_weights=True)
    assert narrow["expression"].data.chunks[1] == (64, 64, 64, 64, 44)
    assert wide["expression"].data.chunks[1] == (256, 44)
    np.testing.assert_allclose(narrow["sample_weights"], wide["sample_weights"], rtol=1e-12)
    np.testing.assert_allclose(narrow["weights"], wide["weights"], rtol=1e-12)
    plain = de.voom(cohort, design)  # no sample weights: the tiles as they were
    assert plain["expression"].data.chunks[1] == (256, 44)


def test_limmas_warnings_and_trivial_cases():
    with pytest.warns(CohortexWarning, match="iteration limit reached"):
        one = de.array_weights(_cohort(), DESIGN, maxiter=1)
    assert one.attrs["iterations"] == 1 and one.attrs["converged"] == 0
    np.testing.assert_allclose(one.values, _limma()["reml_maxiter1"], rtol=1e-12)
    # fewer than two residual df: every weight 1, as in limma
    small = _cohort().isel(sample=slice(0, 4))
    flat = de.array_weights(small, DESIGN)
    np.testing.assert_array_equal(flat.values, np.ones(4))
    assert flat.attrs["iterations"] == 0


def test_bad_input_is_refused_with_its_name():
    cohort = _cohort()
    with pytest.raises(CohortexError, match="'var_group' parameter must name a sample"):
        de.array_weights(cohort, DESIGN, var_group="site")
    with pytest.raises(CohortexError, match="at least two variance groups; got 1"):
        de.array_weights(cohort, DESIGN, var_group=np.repeat("x", 24))
    with pytest.raises(CohortexError, match="not both"):
        de.array_weights(cohort, DESIGN, var_group="batch", var_design=np.arange(24.0))
    with pytest.raises(CohortexError, match="'var_design' is constant"):
        de.array_weights(cohort, DESIGN, var_design=np.ones(24))
    with pytest.raises(CohortexError, match="'prior_n' parameter must be a number >= 0"):
        de.array_weights(cohort, DESIGN, prior_n=-1)
    with pytest.raises(CohortexError, match="'maxiter'"):
        de.array_weights(cohort, DESIGN, maxiter=0)
    negative = _prior_weights()
    negative[3, 7] = -1.0
    with pytest.raises(CohortexError, match="1 NaN, negative or infinite"):
        de.array_weights(cohort, DESIGN, weights=negative)


def test_many_samples_with_precision_weights_score_with_the_diagonal(monkeypatch):
    """Above DENSE_WEIGHTED_SAMPLES (a weight per sample, precision weights) the step uses
    the information's diagonal: the same REML optimum as limma's exact scoring, reached
    within limma's tolerance; weights by group keep the exact k × k information."""
    weights = _prior_weights()
    exact = de.array_weights(_cohort(), DESIGN, weights=weights, tol=1e-14, maxiter=100)
    monkeypatch.setattr(_array_weights, "DENSE_WEIGHTED_SAMPLES", 20)
    diagonal = de.array_weights(_cohort(), DESIGN, weights=weights, tol=1e-14, maxiter=100)
    np.testing.assert_allclose(diagonal.values, exact.values, rtol=1e-5)
    assert diagonal.attrs["converged"] == 1
    # with limma's tolerance: as near limma's weights as limma's own stopping point allows
    # (limma stops 6% from the optimum on this fixture)
    default = de.array_weights(_cohort(), DESIGN, weights=weights)
    np.testing.assert_allclose(default.values, _limma()["weighted"], rtol=0.02)
    assert default.attrs["converged"] == 1
    assert np.abs(exact.values / _limma()["weighted"] - 1).max() > 0.05
    grouped = de.array_weights(_cohort(), DESIGN, weights=weights, var_group="batch")
    np.testing.assert_allclose(grouped.values, _limma()["weighted_group"], rtol=1e-12)


def test_a_variance_design_spans_what_var_group_spans():
    batch = _cohort()["batch"].values
    design = (batch == "y").astype(float) * 3.0 + 1.0  # any coding of the two groups
    result = de.array_weights(_cohort(), DESIGN, var_design=design)
    np.testing.assert_allclose(result.values, _limma()["reml_group"], rtol=1e-12)
    assert result.attrs["var_group"] == ""


def test_one_weight_per_sample_reaches_every_row_tile(monkeypatch):
    """300 samples in row tasks of 64: a weight per sample (one pass of shared sums, or per
    gene with missing values) is the same fit as that weight repeated for every gene (the
    per-gene form, held to limma's lmFit). Without missing values all genes share the
    weighted design, and one residual df, as an unweighted fit (limma's lm.series)."""
    monkeypatch.setattr(_least_squares, "_VALUES_PER_TASK", 64 * 40)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 40))
    design = np.column_stack([np.ones(300), np.arange(300) % 2]).astype(float)
    w = rng.uniform(0.3, 2.0, 300)
    for missing in (False, True):  # with a missing value: every gene on its own samples
        if missing:
            x[100, 3] = np.nan
        by_sample = de.fit(da.from_array(x, chunks=(70, 40)), design, weights=w)
        repeated = de.fit(x, design, weights=np.repeat(w[:, None], 40, axis=1))
        for name in ("coefficient", "stdev_unscaled", "statistic", "pvalue", "s2", "s2_post"):
            shared, own = xr.broadcast(by_sample[name], repeated[name])  # sd: per contrast
            np.testing.assert_allclose(shared.values, own.values, rtol=1e-12)
        assert ("df_residual" in by_sample) == missing
        df = by_sample["df_residual"] if missing else by_sample.attrs["df_residual"]
        np.testing.assert_array_equal(df, repeated["df_residual"].values)


def test_a_real_cohort_equals_limma():
    """bladderbatch's 57 arrays (1000 probes), ~ cancer, by sample and by processing batch."""
    expression = pd.read_csv(FIXTURES / "bladder_expression.csv", index_col=0).T
    samples = pd.read_csv(FIXTURES / "bladder_samples.csv", index_col=0)
    cohort = xr.Dataset(
        {
            "expression": (("sample", "gene"), expression.to_numpy()),
            "cancer": ("sample", samples["cancer"].to_numpy()),
            "batch": ("sample", samples["batch"].astype(str).to_numpy()),
        },
        coords={"sample": list(expression.index)},
        attrs={"scale": "log2"},
    )
    limma = pd.read_csv(FIXTURES / "aw_bladder.csv")
    by_sample = de.array_weights(cohort, "~ cancer")
    np.testing.assert_allclose(by_sample.values, limma["reml"], rtol=1e-12)
    assert by_sample.values.min() < 0.35 and by_sample.values.max() > 1.9  # arrays do differ
    by_batch = de.array_weights(cohort, "~ cancer", var_group="batch")
    np.testing.assert_allclose(by_batch.values, limma["by_batch"], rtol=1e-12)
