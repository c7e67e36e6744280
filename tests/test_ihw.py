"""Independent hypothesis weighting (cohortex.fdr.ihw and deseq(ihw=True)) against the
Bioconductor package IHW 1.26 and DESeq2's results(filterFun = ihw) (fixtures made by
tests/fixtures/make_ihw_fixtures.R)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohortex import CohortexError, CohortexWarning, de, fdr

from conftest import fixture_cohort

IHW = Path(__file__).parent / "fixtures" / "ihw"


def _tests(case: str) -> tuple[np.ndarray, np.ndarray]:
    table = pd.read_csv(IHW / "tests.csv", dtype={"p": str, "covariate": str})
    rows = table[table["case"] == case]
    p = rows["p"].astype(np.float64).to_numpy()
    covariate = rows["covariate"].to_numpy()
    if case != "nominal":
        covariate = covariate.astype(np.float64)
    return p, covariate


def _assert_equal_to_ihw(
    result: fdr.IHWResult, case: str, p: np.ndarray, weights_atol: float = 0.0
) -> None:
    """The bins, folds, each fold's λ, the rejections and the decisions IHW's exactly; the
    weights and adjusted p-values to 1e-10, or, where SYMPHONY's vertex is off the optimum,
    to ``weights_atol`` (and relatively to the same in the adjusted p-values)."""
    expected = pd.read_csv(IHW / f"{case}.csv", dtype={"adj_pvalue": str, "weight": str})
    folds = pd.read_csv(IHW / f"{case}_folds.csv", dtype={"weight": str})
    present = ~np.isnan(p)
    np.testing.assert_array_equal(result.bins[present] + 1, expected["group"][present])
    np.testing.assert_array_equal(result.folds[present] + 1, expected["fold"][present])
    assert (result.bins[~present] == -1).all() and (result.folds[~present] == -1).all()
    n_bins, n_folds = folds["bin"].max(), folds["fold"].max()
    assert result.fold_weights.shape == (n_bins, n_folds)
    np.testing.assert_array_equal(
        result.fold_lambdas, folds.groupby("fold")["lambda"].first().to_numpy()
    )
    assert result.rejections == folds["rejections"].iloc[0]
    adjusted = expected["adj_pvalue"].astype(np.float64).to_numpy()
    np.testing.assert_array_equal(result.adjusted <= result.alpha, adjusted <= result.alpha)
    rtol = max(1e-10, weights_atol)
    np.testing.assert_allclose(
        result.fold_weights.T.ravel(),
        folds["weight"].astype(np.float64),
        rtol=1e-10,
        atol=weights_atol,
    )
    np.testing.assert_allclose(
        result.weights,
        expected["weight"].astype(np.float64),
        rtol=1e-10,
        atol=weights_atol,
        equal_nan=True,
    )
    np.testing.assert_allclose(result.adjusted, adjusted, rtol=rtol, equal_nan=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(p == 0, 0.0, np.minimum(p / result.weights, 1.0))
    np.testing.assert_array_equal(result.weighted_pvalues, ratio)


def test_ihw_equals_r_with_its_defaults():
    """A mean-count-like covariate, p-values of 1, NaN and below 1e-17 (even 1e-300: the
    Grenander slopes reach 1e20): 7 bins. One fold's weight of a bin is 0 in SYMPHONY's
    vertex and 2.6e-6 at the optimum."""
    p, covariate = _tests("mean")
    result = fdr.ihw(p, covariate)
    assert result.n_bins == 7 and result.n_folds == 5
    _assert_equal_to_ihw(result, "mean", p, weights_atol=1e-5)
    # the weighting pays: more discoveries than BH at the same level
    assert result.rejections > int(np.sum(fdr.adjust(p) <= 0.1))


def test_ihw_breaks_ties_in_the_covariate_as_r_with_the_seed():
    p, covariate = _tests("ties")
    result = fdr.ihw(p, covariate, 0.05, n_bins=6, seed=7)
    _assert_equal_to_ihw(result, "ties", p, weights_atol=1e-6)
    other = fdr.ihw(p, covariate, 0.05, n_bins=6, seed=8)
    assert not np.array_equal(other.bins, result.bins)  # ties broken by other draws


@pytest.mark.parametrize("covariate_type", ["nominal", "ordinal"])
def test_ihw_with_categories_equals_r(covariate_type):
    p, covariate = _tests("nominal")
    result = fdr.ihw(p, covariate, covariate_type=covariate_type)
    case = "nominal" if covariate_type == "nominal" else "nominal_ordinal"
    _assert_equal_to_ihw(result, case, p)
    # the categories in sorted order, as R's factor(): "a" is bin 0
    assert set(result.bins[covariate == "a"]) == {0}


def test_ihw_bonferroni_and_given_lambdas_equal_r():
    p, covariate = _tests("mean")
    p = np.maximum(p, 1e-10)
    result = fdr.ihw(p, covariate, method="bonferroni", n_folds=3, lambdas=[0.5, np.inf])
    # the FWER's thresholds (~1e-6) sit where SYMPHONY's tolerance moves its vertex most
    _assert_equal_to_ihw(result, "bonferroni", p, weights_atol=3e-3)


def test_ihw_null_proportion_and_repeated_inner_splits_equal_r():
    p, covariate = _tests("mean")
    result = fdr.ihw(
        p,
        covariate,
        null_proportion=True,
        lambdas=[2.0],
        n_folds=4,
        n_folds_internal=3,
        n_splits_internal=2,
    )
    _assert_equal_to_ihw(result, "null_proportion", p)


def test_ihw_solves_the_linear_programmes_ihw_sets_up_exactly():
    """IHW's own programme of each outer fold (ties case, as handed to SYMPHONY), solved
    exactly by HiGHS, gives cohortex's weights to 1e-9: the programmes are the same, and
    the differences from IHW's results are SYMPHONY's (its vertices break the constraints by
    up to 4e-7, its feasibility tolerance)."""
    from scipy import optimize, sparse

    p, covariate = _tests("ties")
    result = fdr.ihw(p, covariate, 0.05, n_bins=6, seed=7)
    programmes = pd.read_csv(IHW / "ties_programmes.csv", dtype={"value": str})
    for fold, programme in programmes.groupby("fold"):
        part = {name: rows for name, rows in programme.groupby("part")}
        matrix = part["matrix"]
        constraints = sparse.csr_matrix(
            (
                matrix["value"].astype(np.float64),
                (matrix["row"].astype(int) - 1, matrix["column"].astype(int) - 1),
            )
        )
        objective = part["objective"]["value"].astype(np.float64).to_numpy()
        solution = optimize.linprog(
            -objective,
            A_ub=constraints,
            b_ub=part["rhs"]["value"].astype(np.float64).to_numpy(),
            bounds=(0, None),
            method="highs-ds",
        )
        assert solution.status == 0
        n_bins = result.n_bins
        thresholds = solution.x[n_bins : 2 * n_bins]
        sizes = np.bincount(result.bins[result.folds == fold - 1], minlength=n_bins)
        weights = thresholds * sizes.sum() / np.sum(sizes * thresholds)
        np.testing.assert_allclose(result.fold_weights[:, fold - 1], weights, rtol=1e-9)


def test_ihw_with_one_bin_is_bh():
    p, covariate = _tests("one_bin")
    with pytest.warns(CohortexWarning, match="2000 tests make one bin"):
        result = fdr.ihw(p, covariate)
    assert result.n_bins == 1
    _assert_equal_to_ihw(result, "one_bin", p)
    np.testing.assert_allclose(result.adjusted, fdr.adjust(p), rtol=1e-14)
    np.testing.assert_array_equal(result.weights, 1.0)


def test_deseq_with_ihw_equals_results_filterfun_ihw():
    """results(dds, filterFun = ihw) on 6,000 genes, 4 against 4 (5 genes without counts):
    padj and the weights DESeq2's, the weights from the mean counts."""
    expected = pd.read_csv(IHW / "deseq_results.csv", dtype=str)
    cohort = fixture_cohort(IHW / "deseq_counts.csv", IHW / "deseq_samples.csv", scale="counts")
    result = de.deseq(cohort, "~ condition", ihw=True).sel(contrast="condition[T.b]")
    # DESeq2's p-values to 1e-6 (IRLS stopping), IHW's weights as far as SYMPHONY's vertex
    np.testing.assert_allclose(
        result["pvalue"], expected["pvalue"].astype(np.float64), rtol=1e-6, equal_nan=True
    )
    np.testing.assert_allclose(
        result["ihw_weight"],
        expected["weight"].astype(np.float64),
        rtol=1e-6,
        atol=1e-5,
        equal_nan=True,
    )
    padj = expected["padj"].astype(np.float64).to_numpy()
    np.testing.assert_allclose(result["padj"], padj, rtol=1e-5, equal_nan=True)
    np.testing.assert_array_equal(result["padj"] < 0.1, padj < 0.1)
    assert np.isnan(result["filter_threshold"]) and result.attrs["ihw"] == 1
    plain = de.deseq(cohort, "~ condition").sel(contrast="condition[T.b]")
    assert "ihw_weight" not in plain and plain.attrs["ihw"] == 0
    np.testing.assert_array_equal(plain["pvalue"], result["pvalue"])


def test_deseq_ihw_refuses_other_adjustments():
    cohort = fixture_cohort(IHW / "deseq_counts.csv", IHW / "deseq_samples.csv", scale="counts")
    with pytest.raises(CohortexError, match="'fdr' must be 'bh' or 'bonferroni'"):
        de.deseq(cohort, "~ condition", ihw=True, fdr="by")


def test_ihw_checks_its_input():
    p = np.linspace(0.001, 1, 4000)
    covariate = np.arange(4000.0)
    with pytest.raises(CohortexError, match="4 values for 4000 p-values"):
        fdr.ihw(p, covariate[:4])
    with pytest.raises(CohortexError, match=r"must lie in \[0, 1\]"):
        fdr.ihw(p * 2, covariate)
    with pytest.raises(CohortexError, match="covariate is NaN"):
        fdr.ihw(p, np.where(covariate == 3, np.nan, covariate))
    with pytest.raises(CohortexError, match="needs categories"):
        fdr.ihw(p, covariate, covariate_type="nominal")
    with pytest.raises(CohortexError, match="'method' parameter"):
        fdr.ihw(p, covariate, method="by")
    with pytest.raises(CohortexError, match="'n_bins' parameter"):
        fdr.ihw(p, covariate, n_bins=0)
    with pytest.raises(CohortexError, match="'seed' parameter"):
        fdr.ihw(p, covariate, seed=None)  # type: ignore[arg-type]
    with pytest.raises(CohortexError, match="'lambdas' parameter"):
        fdr.ihw(p, covariate, lambdas=[-1.0])
    with pytest.warns(CohortexWarning, match="holds 800 tests"):
        fdr.ihw(p, covariate, n_bins=5)
    # a NaN covariate is fine where the p-value is NaN too
    p_missing = np.where(covariate == 3, np.nan, p)
    result = fdr.ihw(p_missing, np.where(covariate == 3, np.nan, covariate))
    assert np.isnan(result.adjusted[3]) and result.bins[3] == -1


def test_de_ihw_of_any_result_is_fdr_ihw_on_its_mean_expression():
    """de.ihw(result): each contrast's padj from fdr.ihw on the genes' mean expression;
    on a DESeq2 result it is deseq(ihw=True), on edgeR's QL F-tests IHW on logCPM."""
    cohort = fixture_cohort(IHW / "deseq_counts.csv", IHW / "deseq_samples.csv", scale="counts")
    plain = de.deseq(cohort, "~ condition")
    weighted = de.ihw(plain)
    direct = de.deseq(cohort, "~ condition", ihw=True)
    np.testing.assert_array_equal(weighted["padj"], direct["padj"])
    np.testing.assert_array_equal(weighted["ihw_weight"], direct["ihw_weight"])
    assert np.isnan(weighted["filter_threshold"]).all()
    assert weighted.attrs["ihw_covariate"] == "mean_expression"
    np.testing.assert_array_equal(plain["padj"], de.deseq(cohort, "~ condition")["padj"])

    ql = de.glm_ql(cohort, "~ condition")
    result = de.ihw(ql, alpha=0.05, seed=3)
    expected = fdr.ihw(ql["pvalue"].values[0], ql["mean_expression"].values, 0.05, seed=3)
    np.testing.assert_array_equal(result["padj"].values[0], expected.adjusted)
    np.testing.assert_array_equal(result["ihw_weight"].values[0], expected.weights)
    np.testing.assert_array_equal(result["pvalue"], ql["pvalue"])
    given = de.ihw(ql, ql["mean_expression"].values, alpha=0.05, seed=3)
    np.testing.assert_array_equal(given["padj"], result["padj"])
    assert given.attrs["ihw_covariate"] == "given"
    with pytest.raises(CohortexError, match="must name a gene variable"):
        de.ihw(ql, "condition")
    with pytest.raises(CohortexError, match="the test's own output"):
        de.ihw(ql, "pvalue")
    with pytest.raises(CohortexError, match="has shape"):
        de.ihw(ql, np.ones(5))
