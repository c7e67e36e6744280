"""edgeR's voomLmFit and its two parts, limma's weightedLowess and edgeR's Poisson glmFit,
against fixtures made with R's edgeR 3.40 and limma 3.54
(tests/fixtures/make_voom_lm_fit_fixtures.R)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohortex import CohortexError, de, norm_factors
from cohortex.de import _voom_lm_fit
from cohortex.stats._lowess import weighted_lowess
from cohortex.stats._poisson import poisson_basis, poisson_coefficients

from conftest import fixture_cohort

EDGER = Path(__file__).parents[1] / "fixtures" / "edger"
CASES = {
    "oneway": {"design": "~ condition"},
    "additive": {"design": "~ condition + batch"},
    "block": {"design": "~ condition", "block": "patient"},
    "quality": {"design": "~ condition", "sample_weights": True},
    "block_quality": {"design": "~ condition", "block": "patient", "sample_weights": True},
    "quality_batch": {"design": "~ condition", "sample_weights": True, "var_group": "batch"},
}


def _cohort(chunks=(7, 130)):
    """The fixture's 24 samples × 600 genes of counts, in tiles that split both axes."""
    return fixture_cohort(
        EDGER / "vlf_counts.csv", EDGER / "vlf_samples.csv", scale="counts", chunks=chunks
    )


def _close(actual, expected, rtol, atol=0.0):
    np.testing.assert_allclose(
        np.asarray(actual, float), np.asarray(expected, float), rtol=rtol, atol=atol
    )


@pytest.mark.parametrize("case", list(CASES))
def test_voom_lm_fit_equals_edger(case):
    """voomLmFit(calcNormFactors(DGEList(counts)), ...) then eBayes: the genes' own residual
    df (exact zeros left out), variances, coefficients, t, p, the prior, the correlation
    within patients and the sample weights, each estimated twice as edgeR does."""
    options = dict(CASES[case])
    result = de.voom_lm_fit(_cohort(), options.pop("design"), norm_factors="tmm", **options)
    expected = pd.read_csv(EDGER / f"vlf_{case}.csv")
    prior = pd.read_csv(EDGER / f"vlf_{case}_prior.csv")
    df = result["df_residual"].values
    np.testing.assert_array_equal(df, expected["df_residual"])
    assert (df < df.max()).sum() >= 60  # the fixture's exact zeros: 60+ genes lose df
    if case == "oneway":  # a one-way layout's exact zeros: the groups without a count
        cohort = _cohort()
        totals = cohort["expression"].groupby(cohort["condition"]).sum().values  # (3, genes)
        expected_zeros = 8 * (totals == 0).sum(axis=0)
        np.testing.assert_array_equal(result["exact_zeros"].values, expected_zeros)
    _close(result["s2"].values, expected["sigma"] ** 2, rtol=1e-10)  # NaN where df is 0
    _close(result["s2_post"].values, expected["s2_post"], rtol=1e-10)
    _close(result["mean_expression"].values, expected["amean"], rtol=1e-12)
    for k in range(result.sizes["contrast"]):  # the coefficients after the intercept
        column = k + 2
        _close(result["coefficient"].values[k], expected[f"coef_{column}"], 1e-10, 1e-12)
        _close(result["stdev_unscaled"].values[k], expected[f"sd_{column}"], rtol=1e-10)
        _close(result["statistic"].values[k], expected[f"t_{column}"], 1e-10, 1e-12)
        _close(result["pvalue"].values[k], expected[f"p_{column}"], rtol=1e-9)
    _close(result.attrs["df_prior"], prior["df_prior"][0], rtol=1e-10)
    _close(result.attrs["s2_prior"], prior["s2_prior"][0], rtol=1e-10)
    if "block" in options:  # the trimmed mean of each gene's iterated REML fit: its last
        # digits move with the machine's BLAS (7e-10 on one, 1e-11 on another)
        _close(result.attrs["correlation"], prior["correlation"][0], rtol=1e-8)
    if options.get("sample_weights"):
        weights = pd.read_csv(EDGER / f"vlf_{case}_sample_weights.csv")
        _close(result["sample_weights"].values, weights["weight"], rtol=1e-10)


@pytest.mark.parametrize("case", ["contrast", "block_contrast"])
def test_a_contrast_equals_edger(case):
    """contrasts.fit(voomLmFit(...), c − b) then eBayes: limma's per-gene standard errors of a
    contrast (the design's correlation), with and without blocks."""
    options = {"block": "patient"} if case == "block_contrast" else {}
    result = de.voom_lm_fit(
        _cohort(),
        "~ condition",
        norm_factors="tmm",
        contrasts={"c_vs_b": "condition[T.c] - condition[T.b]"},
        **options,
    ).sel(contrast="c_vs_b")
    expected = pd.read_csv(EDGER / f"vlf_{case}.csv")
    _close(result["coefficient"].values, expected["coefficient"], 1e-10, 1e-12)
    _close(result["stdev_unscaled"].values, expected["sd"], rtol=1e-10)
    _close(result["statistic"].values, expected["t"], 1e-10, 1e-12)
    _close(result["pvalue"].values, expected["p"], rtol=1e-9)


def test_without_exact_zeros_it_is_voom_then_fit():
    """Genes whose counts hold no zero: no df is lost and voomLmFit is voom + lmFit (R's
    lowess for the trend, not weightedLowess)."""
    cohort = _cohort()
    complete = (cohort["expression"] > 0).all("sample").values
    kept = cohort.isel(gene=complete)
    factors = norm_factors(kept).values
    result = de.voom_lm_fit(kept, "~ condition", norm_factors=factors)
    expected = de.fit(de.voom(kept, "~ condition", norm_factors=factors), "~ condition")
    assert (result["df_residual"].values == 21).all()
    for name in ("coefficient", "statistic", "pvalue", "s2"):
        _close(result[name].values, expected[name].values, rtol=1e-12)


def test_weighted_lowess_equals_limma():
    points = pd.read_csv(EDGER / "vlf_lowess_input.csv")
    expected = pd.read_csv(EDGER / "vlf_lowess_output.csv")
    for case, size, span in (("wide", len(points), 0.5), ("few", 150, 0.3)):
        x, y, w = (points[name].to_numpy()[:size] for name in ("x", "y", "w"))
        xs, fitted = weighted_lowess(x, y, w, span=span)
        want = expected[expected["case"] == case]
        np.testing.assert_array_equal(xs, want["x"])
        _close(fitted, want["y"], rtol=1e-12, atol=1e-14)


def test_poisson_fit_equals_edger():
    """edgeR's Levenberg fit (~condition + batch is not a one-way layout) of the rows with
    zeros: the fitted values, the 764 below 1e-4 among them (down to 1e-8)."""
    cohort = _cohort()
    fitted = pd.read_csv(EDGER / "vlf_poisson_fitted.csv", index_col=0)
    counts = cohort["expression"].sel(gene=list(fitted.index)).values
    samples = cohort["condition"].values, cohort["batch"].values
    design = np.column_stack(
        [np.ones(24), samples[0] == "b", samples[0] == "c", samples[1] == "y"]
    ).astype(float)
    library = cohort["expression"].values.sum(axis=1) * norm_factors(cohort).values
    coefficients = poisson_coefficients(counts, design, np.log(library))
    assert poisson_basis(design) is design
    mean = np.exp(design @ coefficients + np.log(library)[:, None])
    mean[:, np.isnan(coefficients).any(axis=0)] = 0.0  # no count at all: edgeR's fitted 0
    expected = fitted.to_numpy().T
    np.testing.assert_array_equal(mean < 1e-4, expected < 1e-4)
    assert (expected < 1e-4).sum() == 764
    _close(mean, expected, rtol=1e-8, atol=1e-11)


def test_poisson_fit_of_a_one_way_layout_is_each_groups_rate():
    rng = np.random.default_rng(5)
    groups = np.repeat([0, 1, 2], 4)
    design = np.column_stack([np.ones(12), groups == 1, groups == 2]).astype(float)
    counts = rng.poisson(3.0, size=(12, 6)).astype(float)
    counts[groups == 2, 0] = 0  # a group without a count: edgeR's floor, a fitted 0
    library = rng.uniform(1e6, 2e6, 12)
    basis = poisson_basis(design)
    assert basis.shape == (12, 3) and (basis.sum(axis=1) == 1).all()  # one group per sample
    log_mean = basis @ poisson_coefficients(counts, design, np.log(library))
    for g in range(3):
        rate = counts[groups == g].sum(axis=0) / library[groups == g].sum()
        with np.errstate(divide="ignore"):
            expected = np.maximum(np.log(rate), -1e8)
        _close(log_mean[groups == g], np.broadcast_to(expected, (4, 6)), rtol=1e-14)
    assert (log_mean[groups == 2, 0] == -1e8).all()


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"sample_weights": "yes"}, "'sample_weights' must be"),
        ({"var_group": "batch"}, "'var_group' goes with 'sample_weights'"),
        ({"span": 0.0}, "'span' must be in"),
        ({"trend": True, "moderate": False}, "apply to the moderated t"),
    ],
)
def test_options_are_checked(options, said):
    with pytest.raises(CohortexError, match=said):
        de.voom_lm_fit(_cohort(), "~ condition", **options)


def test_it_needs_counts_and_few_samples_for_gene_by_gene_weights(monkeypatch):
    logged = _cohort()
    logged.attrs["scale"] = "log2"
    with pytest.raises(CohortexError, match="needs raw counts"):
        de.voom_lm_fit(logged, "~ condition")
    monkeypatch.setattr(_voom_lm_fit, "GENE_BY_GENE_SAMPLES", 10)
    with pytest.raises(CohortexError, match="offered up to 11 samples"):
        de.voom_lm_fit(_cohort(), "~ condition", sample_weights=True)
