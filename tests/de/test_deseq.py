"""DESeq2's pipeline against R (fixtures from make_deseq_fixtures.R, DESeq2 1.38.3):
DESeq() and results() with their defaults, outlier replacement, Cook's filtering,
independent filtering, poscounts, lfcThreshold, fitType = "mean" and "local" (and the fallback
to it) and the LRT."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from cohortex import CohortexError, CohortexWarning, de
from cohortex.de._deseq import _optim
from cohortex.stats._deseq import fit_beta, log_dnbinom

from conftest import fixture_cohort

DESEQ = Path(__file__).parent.parent / "fixtures" / "deseq"
B, C, Y = "condition[T.b]", "condition[T.c]", "batch[T.y]"
GENE_COLUMNS = {
    "mean_expression": "baseMean",
    "dispersion_gene": "dispGeneEst",
    "dispersion_trend": "dispFit",
    "dispersion_map": "dispMAP",
    "dispersion": "dispersion",
    "max_cooks": "maxCooks",
    "deviance": "deviance",
}
CONTRAST_COLUMNS = {
    "coefficient": "lfc",
    "se": "se",
    "statistic": "stat",
    "pvalue": "pvalue",
    "padj": "padj",
}


@pytest.fixture(scope="module")
def cohort():
    return fixture_cohort(DESEQ / "counts.csv", DESEQ / "samples.csv", scale="counts")


def _reference(case: str) -> tuple[pd.DataFrame, pd.Series]:
    genes = pd.read_csv(DESEQ / f"{case}_genes.csv")
    summary = pd.read_csv(DESEQ / f"{case}_summary.csv").set_index("key")["value"]
    return genes, summary


def _flag(column: pd.Series) -> np.ndarray:
    return column.astype("boolean").fillna(False).to_numpy(dtype=bool)


def _compare(result: xr.Dataset, case: str, rtol: float, share: float = 1.0) -> None:
    """Every gene and contrast column against R: all within ``rtol``, and, where per-gene
    line searches may stop elsewhere, ``share`` of the genes within 1e-9."""
    genes, summary = _reference(case)
    factors = summary[[k for k in summary.index if k.startswith("size_factor_")]]
    if factors.empty:  # normalization factors given: DESeq2 estimates no size factors
        assert "size_factor" not in result
    else:
        np.testing.assert_allclose(result["size_factor"], factors, rtol=1e-13)
    np.testing.assert_allclose(
        result.attrs["dispersion_prior_variance"], summary["dispPriorVar"], rtol=rtol
    )
    np.testing.assert_allclose(
        result.attrs["log_dispersion_variance"], summary["varLogDispEsts"], rtol=rtol
    )
    if "asymptDisp" in summary:
        np.testing.assert_allclose(
            [result.attrs["asymptotic_dispersion"], result.attrs["extra_poisson"]],
            summary[["asymptDisp", "extraPois"]],
            rtol=rtol,
        )
    elif "mean" in summary:
        np.testing.assert_allclose(result.attrs["mean_dispersion"], summary["mean"], rtol=1e-13)
    else:  # the local trend has no coefficients
        assert result.attrs["fit_type"] == "local" and "mean_dispersion" not in result.attrs
    pairs = [(result[ours].values, genes[theirs]) for ours, theirs in GENE_COLUMNS.items()]
    for contrast in result["contrast"].values:
        for ours, theirs in CONTRAST_COLUMNS.items():
            pairs.append(
                (result[ours].sel(contrast=contrast).values, genes[f"{contrast}_{theirs}"])
            )
        np.testing.assert_allclose(
            result["filter_threshold"].sel(contrast=contrast),
            summary[f"{contrast}_threshold"],
            rtol=1e-13,
        )
        np.testing.assert_allclose(
            result["filter_theta"].sel(contrast=contrast), summary[f"{contrast}_theta"], rtol=1e-13
        )
    close_genes = np.ones(genes.shape[0], dtype=bool)
    for ours, theirs in pairs:
        theirs = theirs.to_numpy(dtype=float)
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=1e-300)
        both = ~np.isnan(theirs)
        close = np.ones(theirs.size, dtype=bool)
        close[both] = np.abs(ours[both] - theirs[both]) <= 1e-9 * np.abs(theirs[both]) + 1e-12
        close_genes &= close
    assert close_genes.mean() >= share
    np.testing.assert_array_equal(result["dispersion_outlier"], _flag(genes["dispOutlier"]))
    np.testing.assert_array_equal(result["replaced"], _flag(genes["replace"]))
    np.testing.assert_array_equal(result["converged"], _flag(genes["betaConv"]))


def test_one_way_with_replaced_outliers_equals_deseq2(cohort):
    """~ condition: the gene-wise means from the linear model; cells of 8 samples, so the
    outlying counts are replaced and their genes refitted (and no Cook's filtering)."""
    result = de.deseq(cohort, "~ condition", contrasts={"b": B, "c": C, "cb": f"{C} - {B}"})
    _compare(result, "oneway", rtol=1e-9)
    assert result["replaced"].sum() >= 6  # the six planted outliers, at least
    assert np.isnan(result["max_cooks"]).all()  # every sample replaceable: R's NA
    # the genes without counts in condition c: large negative fold changes, still fitted
    assert (result["coefficient"].sel(contrast="c").values[[32, 34, 38]] < -7).all()


def test_additive_design_with_cooks_filtering_equals_deseq2(cohort):
    """~ batch + condition: the gene-wise means from the GLM, whose stopping point moves
    the per-gene line searches of a few genes (a stop where the log posterior rises by less
    than 1e-6) — in R as here, within 1e-7 of each other; through the trend they move every
    gene's dispersion by ~1e-10."""
    result = de.deseq(
        cohort,
        "~ batch + condition",
        contrasts={"b": B, "c": C, "y": Y, "cb": f"{C} - {B}"},
    )
    _compare(result, "additive", rtol=1e-7, share=0.98)
    genes, _ = _reference("additive")
    untested = np.isnan(genes["b_pvalue"]) & ~np.isnan(genes["b_lfc"])
    assert untested.sum() >= 3  # the planted outliers leave their genes untested
    assert np.isnan(result["pvalue"].sel(contrast="b").values[untested.to_numpy()]).all()


def test_small_two_level_design_poscounts_and_thresholds_equal_deseq2(cohort):
    """Four samples of a and four of b, poscounts size factors, and lfcThreshold 0.5 with
    the greaterAbs and lessAbs alternatives."""
    small = cohort.isel(sample=[0, 1, 2, 3, 8, 9, 10, 11])
    runs = [
        de.deseq(small, "~ condition", contrasts={"b": B}, size_factors="poscounts"),
        de.deseq(
            small,
            "~ condition",
            contrasts={"above": B},
            size_factors="poscounts",
            lfc_threshold=0.5,
        ),
        de.deseq(
            small,
            "~ condition",
            contrasts={"within": B},
            size_factors="poscounts",
            lfc_threshold=0.5,
            alternative="lessAbs",
        ),
    ]
    result = xr.concat(runs, dim="contrast", data_vars="different", compat="equals")
    _compare(result, "small", rtol=1e-9)


def test_use_t_equals_deseq2(cohort):
    """DESeq(useT = TRUE): Student's t on n - p degrees of freedom for the Wald tests, with
    and without a threshold and of a contrast; every other column as without it."""
    small = cohort.isel(sample=[0, 1, 2, 3, 8, 9, 10, 11])
    options = {"size_factors": "poscounts", "use_t": True}
    runs = [
        de.deseq(small, "~ condition", contrasts={"b": B}, **options),
        de.deseq(small, "~ condition", contrasts={"above": B}, lfc_threshold=0.5, **options),
        de.deseq(
            small,
            "~ condition",
            contrasts={"less": B},
            lfc_threshold=0.5,
            alternative="less",
            **options,
        ),
    ]
    result = xr.concat(runs, dim="contrast", data_vars="different", compat="equals")
    _compare(result, "small_t", rtol=1e-9)
    assert result.attrs["t_df"] == 6
    normal = de.deseq(small, "~ condition", contrasts={"b": B}, size_factors="poscounts")
    with_t = result["pvalue"].sel(contrast="b").values
    without = normal["pvalue"].sel(contrast="b").values
    tested = np.isfinite(without)
    assert np.all(with_t[tested] >= without[tested])  # t's heavier tails
    assert np.mean(with_t[tested] > without[tested]) > 0.9
    additive = de.deseq(
        cohort, "~ batch + condition", contrasts={"c": C, "cb": f"{C} - {B}"}, use_t=True
    )
    _compare(additive, "additive_t", rtol=1e-7, share=0.98)
    with pytest.raises(CohortexError, match="likelihood-ratio test"):
        de.deseq(cohort, "~ condition", reduced="~ 1", use_t=True)


@pytest.mark.parametrize(
    ("case", "samples", "design"),
    [
        ("prior_df1", [0, 1, 3], "~ group"),
        ("prior_df2", [0, 1, 3, 4], "~ group"),
        ("prior_df3", [0, 1, 2, 3, 4], "~ group"),
        ("prior_additive", [0, 1, 2, 3, 4], "~ batch + group"),
    ],
)
def test_few_residual_degrees_of_freedom_simulate_the_prior_variance_as_deseq2(
    case, samples, design
):
    """One to three residual degrees of freedom: DESeq2 matches the dispersion prior's
    variance by simulation (R's draws after set.seed(2)). The counts' dispersions scatter
    widely about the trend, so each variance lies above the floor of 0.25 and away from the
    MAD's estimate; it is a point of a 1,000-point grid, so it must be R's exactly.

    With so few samples one gene or two per case sit on a flat likelihood: a gene whose
    IRLS does not converge in 100 steps is refitted by L-BFGS-B (R's optim and SciPy's stop
    apart: ~1e-5 on a fold change of standard error 5.6, ~1e-4 on its Cook's distance), and
    a MAP dispersion's line search stops elsewhere (~1e-7); every other gene is R's to
    1e-9."""
    scatter = fixture_cohort(
        DESEQ / "scatter_counts.csv", DESEQ / "scatter_samples.csv", scale="counts"
    )
    result = de.deseq(scatter.isel(sample=samples), design, contrasts={"b": "group[T.b]"})
    _, summary = _reference(case)
    # R's 15 digits of a grid point 0.008 from the next: the same point
    np.testing.assert_allclose(
        result.attrs["dispersion_prior_variance"], summary["dispPriorVar"], rtol=1e-14
    )
    assert summary["dispPriorVar"] > 0.3
    _compare(result, case, rtol=1e-3, share=0.995)


def test_mean_fit_without_replacement_equals_deseq2(cohort):
    result = de.deseq(
        cohort,
        "~ condition",
        contrasts={"b": B},
        fit_type="mean",
        min_replicates_for_replace=math.inf,
    )
    _compare(result, "meanfit", rtol=1e-9)


def test_local_fit_equals_deseq2(cohort):
    """fitType = "local": locfit's local quadratic of the log dispersions on the log means,
    weighted by the means, in the MAP dispersions, the outliers' refits and the tests.
    locfit's fit at a vertex solves its normal equations through Jacobi rotations that stop
    at a threshold, so where an input moves by a rounding a rotation can come or go: the
    trend at the lowest means holds to 1e-8, and one gene's MAP dispersion, a search on a
    flat likelihood, to 2e-7."""
    result = de.deseq(cohort, "~ condition", contrasts={"b": B}, fit_type="local")
    _compare(result, "localfit", rtol=1e-6, share=0.99)


def test_the_local_fit_takes_over_where_the_parametric_fails():
    """Dispersions that grow with the mean: the gamma fit of asymptDisp + extraPois / mean
    fails, and DESeq2 fits the local trend in its place with a message (a warning here).
    As for fitType = "local", the rotations' threshold moves the trend by up to 3e-9 here
    (so only 60 % of the genes hold every column to 1e-9), and one gene's MAP dispersion by
    2e-7."""
    counts = fixture_cohort(
        DESEQ / "fallback_counts.csv", DESEQ / "fallback_samples.csv", scale="counts"
    )
    with pytest.warns(CohortexWarning, match="local regression was fitted"):
        result = de.deseq(counts, "~ group", contrasts={"b": "group[T.b]"})
    _compare(result, "fallback", rtol=1e-6, share=0.6)
    genes, _ = _reference("fallback")
    np.testing.assert_allclose(result["dispersion_trend"], genes["dispFit"], rtol=1e-8)
    chosen = de.deseq(counts, "~ group", contrasts={"b": "group[T.b]"}, fit_type="local")
    np.testing.assert_array_equal(chosen["pvalue"], result["pvalue"])


def test_likelihood_ratio_tests_equal_deseq2(cohort):
    """DESeq(test = "LRT"): ~ condition against ~ 1 (an intercept in closed form; the
    replaced genes refitted by the LRT too) and ~ batch + condition against ~ batch; the
    fold changes stay the design's Wald estimates (zero where a contrast's groups have no
    counts), the statistic and p-value are the gene's likelihood ratio."""
    lrt = de.deseq(cohort, "~ condition", reduced="~ 1", contrasts={"b": B, "cb": f"{C} - {B}"})
    _compare(lrt, "lrt", rtol=1e-9)
    assert lrt.attrs["lrt_df"] == 2
    np.testing.assert_array_equal(
        lrt["statistic"].sel(contrast="b"), lrt["statistic"].sel(contrast="cb")
    )
    additive = de.deseq(cohort, "~ batch + condition", reduced="~ batch", contrasts={"c": C})
    _compare(additive, "lrt_additive", rtol=1e-7, share=0.98)
    with pytest.raises(CohortexError, match="fewer"):
        de.deseq(cohort, "~ condition", reduced="~ batch + condition")
    with pytest.raises(CohortexError, match="Wald test"):
        de.deseq(cohort, "~ condition", reduced="~ 1", lfc_threshold=1.0)


def test_given_size_factors_and_the_default_contrasts(cohort):
    estimated = de.deseq(cohort, "~ condition", contrasts=[B])
    given = de.deseq(cohort, "~ condition", size_factors=estimated["size_factor"].values)
    assert list(given["contrast"].values) == [B, C]  # every coefficient but the intercept
    np.testing.assert_allclose(
        given["pvalue"].sel(contrast=B), estimated["pvalue"].sel(contrast=B), rtol=1e-12
    )


def test_final_pass_means_from_stored_coefficients_equal_a_refit(cohort):
    """The final pass recomputes the gene-wise GLM's means from the coefficients the first
    pass stored; they are the refit's, bit for bit (the line searches depend on them)."""
    from cohortex.de import _deseq

    data = _deseq.prepare_counts(cohort, "~ batch + condition", "ratio")
    plan = _deseq.design_plan(data)
    counts = np.asfortranarray(data.counts.compute()[:, 50:90])
    first = _deseq._gene_wise(counts, plan)
    assert first.means is not None
    again = _deseq._gene_wise(counts, plan, with_estimate=False)
    stored = _deseq._gene_wise(counts, plan, with_estimate=False, means=first.means)
    np.testing.assert_array_equal(stored.mu, again.mu)
    np.testing.assert_array_equal(stored.mu, first.mu)


def test_log_dnbinom_equals_r():
    # R 4.2: dnbinom(c(0, 5, 100, 3, 1000), size, mu, log = TRUE)
    values = [
        log_dnbinom(0.0, 2.0, 3.0),
        log_dnbinom(5.0, 0.5, 10.0),
        log_dnbinom(100.0, 1e9, 95.0),
        log_dnbinom(3.0, 1e12, 2.0),
        log_dnbinom(1000.0, 10.0, 900.0),
    ]
    np.testing.assert_allclose(
        values,
        [
            stats.nbinom.logpmf(0, 2.0, 2.0 / 5.0),
            stats.nbinom.logpmf(5, 0.5, 0.5 / 10.5),
            -3.351686432786186,
            -1.712317927551219,
            -6.745603049804958,
        ],
        rtol=1e-14,
    )


def test_optim_reaches_the_irls_fit():
    """fitNbinomGLMsOptim (for the genes IRLS leaves unconverged) maximises the same
    penalised likelihood: from a perturbed start it reaches the IRLS fit."""
    rng = np.random.default_rng(5)
    design = np.column_stack([np.ones(12), np.repeat([0.0, 1.0], 6)])
    sf = rng.uniform(0.7, 1.4, 12)
    counts = rng.negative_binomial(5, 5 / (5 + sf * np.where(design[:, 1] > 0, 80, 20)))
    counts = np.asfortranarray(counts.astype(np.float64)[:, None])
    beta = np.ascontiguousarray([[math.log(20.0)], [math.log(4.0)]])
    fit_beta(
        counts,
        np.asfortranarray(sf[:, None]),
        design,
        np.array([0.2]),
        beta,
        np.full(2, 1e-6 / math.log(2.0) ** 2),
        1e-12,
        100,
        0.5,
        np.zeros(1, dtype=np.int64),
        np.empty(1),
        np.empty((4, 1)),
        np.empty((12, 1), order="F"),
    )
    solution, converged = _optim(counts[:, 0], sf, design, 0.2, beta[:, 0] / math.log(2) + 0.3)
    assert converged
    np.testing.assert_allclose(solution, beta[:, 0] / math.log(2.0), atol=1e-4)


def test_deseq_refuses_what_deseq2_refuses(cohort):
    fractional = cohort.copy()
    fractional["expression"] = fractional["expression"] + 0.5
    with pytest.raises(CohortexError, match="whole counts"):
        de.deseq(fractional, "~ condition")
    logged = cohort.assign_attrs(scale="log2")
    with pytest.raises(CohortexError, match="raw counts"):
        de.deseq(logged, "~ condition")
    with pytest.raises(CohortexError, match="fit_type"):
        de.deseq(cohort, "~ condition", fit_type="loess")
    with pytest.raises(CohortexError, match="lessAbs"):
        de.deseq(cohort, "~ condition", alternative="lessAbs")
    with pytest.raises(CohortexError, match="size factors"):
        de.deseq(cohort, "~ condition", size_factors=np.ones(3))
    with pytest.raises(CohortexError, match="two coefficients"):
        de.deseq(cohort, "~ 1")
    sparse = cohort.copy()
    values = sparse["expression"].values.copy()
    values[np.arange(values.shape[1]) % values.shape[0], np.arange(values.shape[1])] = 0
    sparse["expression"] = (("sample", "gene"), values)  # every gene has a zero
    with pytest.raises(CohortexError, match="poscounts"):
        de.deseq(sparse, "~ condition")
    assert np.isfinite(de.deseq(sparse, "~ condition", size_factors="poscounts")["pvalue"]).any()


# the shrunken refit stops at DESeq2's tolerance (a relative change of the deviance of 1e-8):
# where it stops after one iteration more or less on another machine's rounding, a gene's
# coefficient moves by ~1e-8 of itself
SHRUNK_RTOL = 2e-8


@pytest.mark.parametrize(
    ("case", "design", "coefficients"),
    [
        ("oneway", "~ condition", {"condition_b_vs_a": B, "condition_c_vs_a": C}),
        ("additive", "~ batch + condition", {"batch_y_vs_x": Y, "condition_c_vs_a": C}),
    ],
)
def test_lfc_shrink_normal_equals_deseq2(cohort, case, design, coefficients):
    """lfcShrink(dds, coef, type = "normal"): the prior variances matched to the MLEs'
    weighted upper quantiles, the GLM refitted under them on the original counts (the
    replaced outliers' genes too, as DESeq2 refits them); the tests stay the MLE's."""
    shrunk = de.deseq(cohort, design, contrasts=coefficients, shrink="normal")
    plain = de.deseq(cohort, design, contrasts=coefficients)
    prior = pd.read_csv(DESEQ / f"shrink_{case}_prior.csv")
    np.testing.assert_allclose(shrunk.attrs["beta_prior_variance"], prior["variance"], rtol=1e-9)
    expected = pd.read_csv(DESEQ / f"shrink_{case}.csv")
    for name in coefficients:
        for ours, theirs in (("coefficient", "lfc"), ("se", "se")):
            got = shrunk[ours].sel(contrast=name).values
            want = expected[f"{name}_{theirs}"].to_numpy(dtype=float)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            np.testing.assert_allclose(got, want, rtol=SHRUNK_RTOL, atol=1e-300)
    for name in ("statistic", "pvalue", "padj"):
        np.testing.assert_array_equal(shrunk[name].values, plain[name].values)
    np.testing.assert_array_equal(
        shrunk["unshrunk_coefficient"].values, plain["coefficient"].values
    )
    np.testing.assert_array_equal(shrunk["unshrunk_se"].values, plain["se"].values)


@pytest.mark.parametrize(
    ("case", "design"), [("oneway", "~ condition"), ("additive", "~ batch + condition")]
)
def test_lfc_shrink_normal_of_a_contrast_equals_deseq2(cohort, case, design):
    """lfcShrink(dds, contrast = c("condition", "c", "b"), type = "normal"): DESeq2's
    expanded design (a column per level of every factor, the rank made up by the prior),
    each factor's prior variance the mean of its levels' and their differences'."""
    shrunk = de.deseq(cohort, design, contrasts={"cb": f"{C} - {B}"}, shrink="normal")
    prior = pd.read_csv(DESEQ / f"shrink_{case}_contrast_prior.csv")
    np.testing.assert_allclose(
        shrunk.attrs["expanded_prior_variance"], prior["variance"], rtol=1e-9
    )
    expected = pd.read_csv(DESEQ / f"shrink_{case}_contrast.csv")
    for ours, theirs in (("coefficient", "lfc"), ("se", "se")):
        got = shrunk[ours].sel(contrast="cb").values
        want = expected[theirs].to_numpy(dtype=float)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=SHRUNK_RTOL, atol=1e-300)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"shrink": "apeglm"}, "'shrink' is None or 'normal'"),
        ({"shrink": "normal", "reduced": "~ 1"}, "leave out 'reduced'"),
        ({"shrink": "normal", "lfc_threshold": 1.0}, "leave out 'reduced'"),
    ],
)
def test_lfc_shrink_refusals(cohort, options, message):
    with pytest.raises(CohortexError, match=message):
        de.deseq(cohort, "~ condition", **options)


def test_lfc_shrink_refuses_interactions(cohort):
    with pytest.raises(CohortexError, match="designs with interactions"):
        de.deseq(cohort, "~ batch * condition", contrasts=[Y], shrink="normal")


def testweighted_quantile_is_hmiscs():
    """Hmisc's wtd.quantile(type = "quantile", normwt = TRUE) as DESeq2 copies it: ties pool
    their weights; the order statistic at 1 + (n − 1) p on the cumulated weights."""
    from cohortex.de._deseq import weighted_quantile

    # R: DESeq2:::Hmisc.wtd.quantile(c(3, 1, 2, 2, 5), c(1, 2, 1, 1, 3), 0.95, normwt = TRUE)
    assert weighted_quantile(
        np.array([3.0, 1.0, 2.0, 2.0, 5.0]), np.array([1.0, 2.0, 1.0, 1.0, 3.0]), 0.95
    ) == pytest.approx(5.0)
    # R: DESeq2:::Hmisc.wtd.quantile(c(4, 1, 3, 2), c(1, 1, 1, 1), 0.5, normwt = TRUE) = 2.5
    assert weighted_quantile(np.array([4.0, 1.0, 3.0, 2.0]), np.ones(4), 0.5) == pytest.approx(2.5)
    # R: ...(c(0.3, 1.7, 0.2, 0.9, 1.1, 0.4), c(2.5, 0.3, 1, 4, 0.7, 1.2), 0.95, normwt = TRUE)
    assert weighted_quantile(
        np.array([0.3, 1.7, 0.2, 0.9, 1.1, 0.4]), np.array([2.5, 0.3, 1, 4, 0.7, 1.2]), 0.95
    ) == pytest.approx(1.5)


# --- DESeqDataSetFromTximport's average transcript lengths -----------------------------------


@pytest.fixture(scope="module")
def lengths():
    """The fixture's average transcript lengths, samples × genes."""
    return pd.read_csv(DESEQ / "lengths.csv", index_col=0).T


@pytest.fixture(scope="module")
def tx_cohort(cohort, lengths):
    """The cohort with its lengths as a (sample, gene) variable, as read_quantifications
    gives them."""
    return cohort.assign(length=(("sample", "gene"), lengths.to_numpy()))


def test_lengths_one_way_with_replaced_outliers_equals_deseq2(tx_cohort):
    """~ condition with avgTxLength (taken by default from the cohort's per-sample lengths):
    normalization factors throughout, the outliers replaced by their trimmed means times
    the counts' factors, and the refit's moments estimate from the refitted genes' factors."""
    result = de.deseq(tx_cohort, "~ condition", contrasts={"b": B, "cb": f"{C} - {B}"})
    assert result.attrs["normalization_factors"] == "lengths"
    _compare(result, "tx_oneway", rtol=1e-9)
    assert result["replaced"].sum() >= 6


def test_lengths_additive_design_and_shrinkage_equal_deseq2(cohort, lengths):
    """~ batch + condition with the lengths given as a table: the GLM's gene-wise means,
    Cook's filtering, and lfcShrink(type = "normal") refitted with the factors."""
    result = de.deseq(cohort, "~ batch + condition", contrasts={"c": C, "y": Y}, lengths=lengths)
    _compare(result, "tx_additive", rtol=1e-7, share=0.98)
    shrunk = de.deseq(
        cohort, "~ batch + condition", contrasts=[C], lengths=lengths, shrink="normal"
    )
    expected = pd.read_csv(DESEQ / "tx_shrink.csv")
    np.testing.assert_allclose(shrunk["coefficient"].sel(contrast=C), expected["lfc"], rtol=1e-7)
    np.testing.assert_allclose(shrunk["se"].sel(contrast=C), expected["se"], rtol=1e-7)


def test_lengths_poscounts_and_lrt_equal_deseq2(tx_cohort):
    """poscounts with lengths (the geometric means stay the counts') on eight samples, and
    the likelihood-ratio test against ~ 1 (its closed-form fit times the factors)."""
    small = tx_cohort.isel(sample=[0, 1, 2, 3, 8, 9, 10, 11])
    result = de.deseq(small, "~ condition", contrasts={"b": B}, size_factors="poscounts")
    _compare(result, "tx_small", rtol=1e-9)
    result = de.deseq(tx_cohort, "~ condition", contrasts={"c": C}, reduced="~ 1")
    _compare(result, "tx_lrt", rtol=1e-9)


@pytest.mark.parametrize(
    ("option", "table", "case", "source"),
    [
        ("lengths", "lengths.csv", "tx_replace", "lengths"),
        ("norm_factors", "norm_factors.csv", "given", "given"),
    ],
)
def test_factors_with_replacement_in_a_glm_design_equal_deseq2(cohort, option, table, case, source):
    """~ batch + condition with replacement in cells of 4, with lengths (avgTxLength) or
    with normalizationFactors(dds) <- m (as cqn's or EDASeq's, used as given): the GLM's
    gene-wise means of the genes refitted without their outliers, in a pass of their own
    (DESeq2 estimates their moments from their own normalization factors)."""
    values = pd.read_csv(DESEQ / table, index_col=0).T
    result = de.deseq(
        cohort,
        "~ batch + condition",
        contrasts={"c": C},
        min_replicates_for_replace=4,
        **{option: values},
    )
    assert result.attrs["normalization_factors"] == source
    _compare(result, case, rtol=1e-7, share=0.98)
    assert result["replaced"].sum() >= 6


def test_lengths_change_the_fit_and_none_ignores_them(cohort, tx_cohort):
    """The lengths matter (genes whose isoforms switch with the condition change fold
    change), lengths=None fits the size factors alone, as without them, and a DataArray
    is read by its dims."""
    plain = de.deseq(cohort, "~ condition", contrasts=[C])
    ignored = de.deseq(tx_cohort, "~ condition", contrasts=[C], lengths=None)
    with_lengths = de.deseq(tx_cohort, "~ condition", contrasts=[C])
    np.testing.assert_array_equal(ignored["coefficient"], plain["coefficient"])
    assert plain.attrs["normalization_factors"] == "size factors"
    transposed = tx_cohort["length"].transpose("gene", "sample")  # a DataArray by its dims
    given = de.deseq(cohort, "~ condition", contrasts=[C], lengths=transposed)
    np.testing.assert_array_equal(given["coefficient"], with_lengths["coefficient"])
    change = np.abs(with_lengths["coefficient"] - plain["coefficient"]).values[0]
    assert np.nanmedian(change[:60]) > 3 * np.nanmedian(change[60:])


@pytest.mark.parametrize(
    ("lengths", "message"),
    [
        ("width", "not a variable of the cohort"),
        (np.ones((3, 4)), "one value per sample and gene"),
        ("zero", "finite and positive"),
        ("table", "lacks the cohort's samples or genes"),
    ],
)
def test_lengths_refused(cohort, lengths, message):
    if isinstance(lengths, str) and lengths == "zero":
        lengths = np.ones(cohort["expression"].shape)
        lengths[3, 7] = 0.0
    elif isinstance(lengths, str) and lengths == "table":
        lengths = pd.DataFrame(
            1.0, index=cohort["sample"].values[:-1], columns=cohort["gene"].values
        )
    with pytest.raises(CohortexError, match=message):
        de.deseq(cohort, "~ condition", lengths=lengths)


def test_norm_factors_refused_beside_lengths_or_size_factors(cohort):
    ones = np.ones(cohort["expression"].shape)
    with pytest.raises(CohortexError, match="'lengths' or 'norm_factors', not both"):
        de.deseq(cohort, "~ condition", lengths=ones, norm_factors=ones)
    with pytest.raises(CohortexError, match="leave out 'size_factors'"):
        de.deseq(cohort, "~ condition", size_factors="poscounts", norm_factors=ones)


def test_results_do_not_depend_on_the_tiles(cohort, monkeypatch):
    """Every gene's numbers are the same whether it is fitted alone or beside others (a
    machine's cores set the tile width): the sums and products that start its line searches
    are taken in one order, where BLAS and NumPy round a lone column differently from a
    wide tile and a search near the Poisson limit can then stop elsewhere. (The size factors
    are given: theirs is a reduction over the tiles, the same to the last bit or two.)"""
    size_factors = de.deseq(cohort, "~ batch + condition", contrasts=[C])["size_factor"].values
    wide = de.deseq(cohort, "~ batch + condition", contrasts=[C], size_factors=size_factors)
    monkeypatch.setattr(de._deseq, "_TILE_GENES", 1)
    alone = de.deseq(cohort, "~ batch + condition", contrasts=[C], size_factors=size_factors)
    for name in ("dispersion_gene", "dispersion", "coefficient", "pvalue"):
        np.testing.assert_array_equal(alone[name].values, wide[name].values, err_msg=name)
