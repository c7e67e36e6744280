"""edgeR's quasi-likelihood pipeline against R (fixtures from make_glm_ql_fixtures.R, edgeR
3.40): estimateDisp, glmQLFit and glmQLFTest, and their parts — locfit's local constant fit,
maximizeInterpolant, the NB glmFit, adjustedProfileLik and aveLogCPM."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest

from cohortex import CohortexError, de
from cohortex.de._voom import count_sums
from cohortex.stats._locfit import locfit_constant
from cohortex.stats._negative_binomial import (
    adjusted_profile_likelihood,
    ave_log_cpm,
    nb_glm_fit,
)
from cohortex.stats._spline_maximum import maximize_interpolant

from conftest import fixture_cohort

EDGER = Path(__file__).parent.parent / "fixtures" / "edger"
ONEWAY = "~ condition"
ADDITIVE = "~ condition + batch"
B, C = "condition[T.b]", "condition[T.c]"


@pytest.fixture(scope="module")
def cohort():
    return fixture_cohort(EDGER / "ql_counts.csv", EDGER / "ql_samples.csv", scale="counts")


def _close(ours, theirs, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(
        np.asarray(ours, dtype=float), np.asarray(theirs), rtol=rtol, atol=atol
    )


# Each gene's GLM stops at edgeR's tolerance (the step's score below 1e-6), so a value near 0
# (a deviance, a fold change, an F) carries the stopping point's rounding in absolute terms,
# and a tagwise dispersion where the likelihood is flat (nearly Poisson) moves with it.
NEAR_ZERO = 1e-10


def test_locfit_constant_equals_locfit():
    table = pd.read_csv(EDGER / "ql_locfit.csv")
    for span in ("0.3", "0.8", "0.05"):  # a wide, a narrow and a tiny neighbourhood
        fitted = locfit_constant(table["x"].to_numpy(), table["y"].to_numpy(), float(span))
        _close(fitted, table[f"span_{span}"], atol=1e-13)


def test_maximize_interpolant_equals_edger():
    table = pd.read_csv(EDGER / "ql_interpolant.csv")
    maximum = maximize_interpolant(np.arange(-10.0, 11.0), table.iloc[:, :21].to_numpy())
    _close(maximum, table["maximum"], atol=1e-12)


def test_nb_glm_and_profile_likelihood_equal_edger(cohort):
    """The additive design (edgeR's Levenberg fits) at three dispersions; aveLogCPM."""
    table = pd.read_csv(EDGER / "ql_apl.csv")
    counts = cohort["expression"].values
    library = count_sums(cohort, da.from_array(counts), "tmm", "test").library  # TMM-effective
    keep = counts.sum(axis=0) >= 5
    y = counts[:, keep]
    design = np.column_stack(
        [
            np.ones(24),
            cohort["condition"].values == "b",
            cohort["condition"].values == "c",
            cohort["batch"].values == "y",
        ]
    ).astype(float)
    # genes without counts in condition a: their intercepts run to −28 and stop where edgeR's
    # damping gives up, within 1e-8 of edgeR's
    diverging = np.any(np.abs(table[[c for c in table if c.startswith("coef1_")]]) > 20, axis=1)
    for phi in (0.01, 0.2, 3.0):
        dispersion = np.full(y.shape[1], phi)
        fit = nb_glm_fit(y, design, np.log(library), dispersion)
        profile = adjusted_profile_likelihood(y, fit.fitted, dispersion, design)
        _close(fit.deviance, table[f"deviance_{phi:g}"], rtol=1e-11)
        _close(profile[~diverging], table[f"apl_{phi:g}"][~diverging], rtol=1e-12)
        _close(profile[diverging], table[f"apl_{phi:g}"][diverging], rtol=1e-8)
        _close(fit.coefficients[0][~diverging], table[f"coef1_{phi:g}"][~diverging], atol=1e-10)
    _close(ave_log_cpm(y, library, 0.1), table["ave_log_cpm"], rtol=1e-13)


@pytest.mark.parametrize(
    ("case", "formula", "robust"),
    [("oneway", ONEWAY, False), ("additive", ADDITIVE, False), ("robust", ADDITIVE, True)],
)
def test_estimate_dispersion_equals_estimate_disp(cohort, case, formula, robust):
    ours = de.estimate_dispersion(cohort, formula, robust=robust)
    theirs = pd.read_csv(EDGER / f"ql_{case}_dispersion.csv")
    common = pd.read_csv(EDGER / f"ql_{case}_common.csv")
    assert ours.attrs["common_dispersion"] == pytest.approx(common["common"][0], rel=1e-12)
    assert ours.attrs["span"] == pytest.approx(common["span"][0], rel=1e-14)
    _close(ours["ave_log_cpm"], theirs["ave_log_cpm"], rtol=1e-13)
    _close(ours["trended_dispersion"], theirs["trended"], rtol=1e-11)
    _close(ours["tagwise_dispersion"], theirs["tagwise"], rtol=1e-10)
    if robust:  # one prior df per gene, infinite for the genes left out of the estimation
        _close(ours["prior_df"], theirs["prior_df"], rtol=1e-11)
    else:
        assert ours.attrs["prior_df"] == pytest.approx(theirs["prior_df"][0], rel=1e-11)


def test_estimate_dispersion_with_a_covariate(cohort):
    data = cohort.assign(depth=("sample", np.log(cohort["expression"].sum("gene").values)))
    ours = de.estimate_dispersion(data, "~ condition + depth")
    theirs = pd.read_csv(EDGER / "ql_covariate_dispersion.csv")
    _close(ours["trended_dispersion"], theirs["trended"], rtol=1e-11)
    _close(ours["tagwise_dispersion"], theirs["tagwise"], rtol=1e-9, atol=NEAR_ZERO)


def _check_fit(ours, case):
    fit = pd.read_csv(EDGER / f"ql_{case}_fit.csv")
    _close(ours["deviance"], fit["deviance"], rtol=1e-10, atol=NEAR_ZERO)
    np.testing.assert_array_equal(ours["df_residual"], fit["df_residual_zeros"])
    _close(ours["s2_post"], fit["var_post"], rtol=1e-11)
    prior = ours["s2_prior"] if "s2_prior" in ours else ours.attrs["s2_prior"]
    _close(np.broadcast_to(prior, (fit.shape[0],)), fit["var_prior"], rtol=1e-11)


@pytest.mark.parametrize(
    ("case", "formula", "robust", "test", "contrasts"),
    [
        ("oneway", ONEWAY, False, "last", [C]),
        ("additive", ADDITIVE, False, "last", ["batch[T.y]"]),
    ],
)
def test_glm_ql_one_coefficient_equals_glm_ql_ftest(cohort, case, formula, robust, test, contrasts):
    ours = de.glm_ql(cohort, formula, contrasts=contrasts, robust=robust)
    _check_fit(ours, case)
    theirs = pd.read_csv(EDGER / f"ql_{case}_test_{test}.csv")
    _close(ours["coefficient"][0], theirs["logFC_1"], rtol=1e-11, atol=NEAR_ZERO)
    _close(ours["mean_expression"], theirs["logCPM"], rtol=1e-13)
    _close(ours["statistic"][0], theirs["F"], rtol=1e-10, atol=NEAR_ZERO)
    _close(ours["pvalue"][0], theirs["PValue"], rtol=1e-9, atol=1e-12)
    _close(ours["df_total"], theirs["df_total"], rtol=1e-12)
    _close(ours["log10_pvalue"][0], np.log10(theirs["PValue"]), rtol=1e-9, atol=NEAR_ZERO)


@pytest.mark.parametrize(
    ("case", "formula", "robust"),
    [("oneway", ONEWAY, False), ("additive", ADDITIVE, False), ("robust", ADDITIVE, True)],
)
def test_glm_ql_several_coefficients_together(cohort, case, formula, robust):
    """glmQLFTest(coef = 2:3): each contrast on its own, and the 2-df F of both."""
    ours = de.glm_ql(cohort, formula, contrasts=[B, C], robust=robust)
    _check_fit(ours, case)
    name = "both" if case == "oneway" else "condition"
    theirs = pd.read_csv(EDGER / f"ql_{case}_test_{name}.csv")
    assert ours.attrs["F_df1"] == 2
    _close(ours["F"], theirs["F"], rtol=1e-10, atol=NEAR_ZERO)
    _close(ours["F_pvalue"], theirs["PValue"], rtol=1e-9, atol=1e-12)
    _close(ours["coefficient"].sel(contrast=B), theirs["logFC_1"], rtol=1e-11, atol=NEAR_ZERO)
    _close(ours["coefficient"].sel(contrast=C), theirs["logFC_2"], rtol=1e-11, atol=NEAR_ZERO)
    if robust:
        assert "df_prior" in ours  # one per gene


def test_glm_ql_contrast_of_two_coefficients(cohort):
    """glmQLFTest(contrast = c(0, -1, 1)): the null design rotated by the contrast's QR. Its
    rows of conditions b and c differ in rounding only, which makes edgeR fit it with the
    Levenberg scoring rather than as a one-way layout; so does cohortex."""
    ours = de.glm_ql(cohort, ONEWAY, contrasts={"c_vs_b": f"{C} - {B}"})
    theirs = pd.read_csv(EDGER / "ql_oneway_test_pair.csv")
    _close(ours["coefficient"][0], theirs["logFC_1"], rtol=1e-11, atol=NEAR_ZERO)
    _close(ours["statistic"][0], theirs["F"], rtol=1e-10, atol=NEAR_ZERO)
    # a gene whose contrast is ~0 has an F of ~1e-11 (a difference of two deviances, each fit
    # stopped at edgeR's tolerance) and a p-value of 1 - 6e-6, which the machine's rounding
    # moves by ~3e-9
    _close(ours["pvalue"][0], theirs["PValue"], rtol=1e-9, atol=1e-8)


def test_glm_ql_with_a_continuous_covariate(cohort):
    data = cohort.assign(depth=("sample", np.log(cohort["expression"].sum("gene").values)))
    ours = de.glm_ql(data, "~ condition + depth", contrasts=["depth"])
    _check_fit(ours, "covariate")
    theirs = pd.read_csv(EDGER / "ql_covariate_test_last.csv")
    _close(ours["statistic"][0], theirs["F"], rtol=1e-10, atol=NEAR_ZERO)
    _close(ours["pvalue"][0], theirs["PValue"], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("dispersion", "name"), [("tagwise", "tagwise"), (0.1, "number")])
def test_glm_ql_at_given_dispersions(cohort, dispersion, name):
    ours = de.glm_ql(cohort, ONEWAY, contrasts=[C], dispersion=dispersion)
    theirs = pd.read_csv(EDGER / f"ql_given_{name}.csv")
    _close(ours["s2_post"], theirs["var_post"], rtol=1e-11)
    _close(ours["mean_expression"], theirs["logCPM"], rtol=1e-13)
    _close(ours["coefficient"][0], theirs["logFC_1"], rtol=1e-11, atol=NEAR_ZERO)
    _close(ours["statistic"][0], theirs["F"], rtol=1e-10, atol=NEAR_ZERO)
    _close(ours["pvalue"][0], theirs["PValue"], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("name", "contrasts", "dispersion"),
    [
        ("last", ["batch[T.y]"], "tagwise"),
        ("condition", [B, C], "tagwise"),
        ("pair", {"c_vs_b": f"{C} - {B}"}, "tagwise"),
        ("given", ["batch[T.y]"], 0.1),
    ],
)
def test_glm_lrt_equals_glm_lrt(cohort, name, contrasts, dispersion):
    """glmLRT(glmFit(estimateDisp(y, design), design), coef / contrast): the tagwise
    dispersions by default; with several coefficients the joint chi-square too."""
    ours = de.glm_lrt(cohort, ADDITIVE, contrasts=contrasts, dispersion=dispersion)
    theirs = pd.read_csv(EDGER / f"ql_lrt_{name}.csv")
    _close(ours["deviance"], theirs["deviance"], rtol=1e-10, atol=NEAR_ZERO)
    _close(ours["mean_expression"], theirs["logCPM"], rtol=1e-13)
    for k in range(ours.sizes["contrast"]):
        _close(ours["coefficient"][k], theirs[f"logFC_{k + 1}"], rtol=1e-11, atol=NEAR_ZERO)
    statistic = ours["LR"] if len(contrasts) > 1 else ours["statistic"][0]
    pvalue = ours["LR_pvalue"] if len(contrasts) > 1 else ours["pvalue"][0]
    _close(statistic, theirs["LR"], rtol=1e-10, atol=NEAR_ZERO)
    _close(pvalue, theirs["PValue"], rtol=1e-9, atol=1e-12)
    if len(contrasts) > 1:
        assert ours.attrs["LR_df"] == 2


def test_poisson_bound_only_raises_p_values(cohort):
    bounded = de.glm_ql(cohort, ONEWAY, contrasts=[C])
    free = de.glm_ql(cohort, ONEWAY, contrasts=[C], poisson_bound=False)
    raised = bounded["pvalue"].values > free["pvalue"].values
    below = (bounded["s2_post"].values < 1).any()
    assert below and raised.sum() > 10  # this fixture has genes below the Poisson bound
    assert np.all(bounded["pvalue"].values >= free["pvalue"].values)


def test_glm_ql_reads_a_store_in_gene_tiles(cohort, tmp_path):
    """The same numbers from Dask tiles of a few genes and samples as from one array."""
    tiled = cohort.copy()
    tiled["expression"] = (
        ("sample", "gene"),
        da.from_array(cohort["expression"].values, chunks=(7, 50)),
    )
    whole = de.glm_ql(cohort, ADDITIVE, contrasts=[C])
    parts = de.glm_ql(tiled, ADDITIVE, contrasts=[C])
    np.testing.assert_allclose(parts["pvalue"], whole["pvalue"], rtol=1e-14, atol=0)
    np.testing.assert_array_equal(parts["gene"], whole["gene"])


def test_glm_ql_refuses_what_it_cannot_fit(cohort):
    with pytest.raises(CohortexError, match="raw counts"):
        de.glm_ql(cohort.assign_attrs(scale="log2"), ONEWAY)
    with pytest.raises(CohortexError, match="two coefficients"):
        de.glm_ql(cohort, "~ 1")
    with pytest.raises(CohortexError, match="dispersion"):
        de.glm_ql(cohort, ONEWAY, dispersion=-0.1)
    with pytest.raises(CohortexError, match="dispersion"):
        de.glm_ql(cohort, ONEWAY, dispersion="median")
    with pytest.raises(CohortexError, match="linearly independent"):
        de.glm_ql(cohort, ONEWAY, contrasts={"b": B, "b again": f"2*{B}"})
    negative = cohort.copy()
    negative["expression"] = cohort["expression"] - 1.0
    with pytest.raises(CohortexError, match="negative"):
        de.estimate_dispersion(negative, ONEWAY)
    with pytest.raises(CohortexError, match="span"):
        de.estimate_dispersion(cohort, ONEWAY, span=0.0)


def test_edger_tests_find_the_planted_genes_with_their_defaults():
    """A simulated study as RNA-seq comes (40 samples, negative-binomial counts with the low
    tail, 150 of 3,000 genes changed), edgeR's recipe with every default: filterByExpr, then
    each test. The planted genes are found, their fold changes recovered, and at an FDR of
    5% the false discoveries stay near 5% (3–7% over other seeds for QL, up to 9% for the
    likelihood-ratio and exact tests, whose dispersions are not moderated as QL's are)."""
    import xarray as xr

    from cohortex import filter_by_expr
    from cohortex.simulate import simulate_array

    x, samples, genes = simulate_array(40, 3000, n_de=150, distribution="negbinom", seed=3)
    cohort = xr.Dataset(
        {
            "expression": (("sample", "gene"), x.astype(np.float64)),
            "condition": ("sample", samples["condition"].to_numpy()),
        },
        coords={"gene": genes.index.to_numpy()},
        attrs={"scale": "counts"},
    )
    keep = filter_by_expr(cohort, "~ condition").values
    cohort = cohort.isel(gene=keep)
    planted = genes["is_de"].to_numpy()[keep]
    true_log2fc = genes["true_log2fc"].to_numpy()[keep]
    results = {
        "glm_ql": (de.glm_ql(cohort, "~ condition"), 0.10),
        "glm_lrt": (de.glm_lrt(cohort, "~ condition"), 0.12),
        "exact_test": (de.exact_test(cohort, "condition", ("normal", "tumor")), 0.12),
    }
    for name, (result, most_false) in results.items():
        called = result["padj"].values.ravel() < 0.05
        false_share = (called & ~planted).sum() / called.sum()
        assert (called & planted).sum() / planted.sum() > 0.95, name
        assert false_share < most_false, name
        log2fc = result["log2fc" if "log2fc" in result else "coefficient"].values.ravel()
        assert np.corrcoef(log2fc[planted], true_log2fc[planted])[0, 1] > 0.95, name


# --- tximport's edgeR route: average transcript lengths as offsets ---------------------------


@pytest.fixture(scope="module")
def tx_cohort(cohort):
    """The cohort with average transcript lengths, as read_quantifications gives them."""
    lengths = pd.read_csv(EDGER / "ql_lengths.csv", index_col=0).T
    return cohort.assign(length=(("sample", "gene"), lengths.to_numpy()))


@pytest.mark.parametrize(
    ("case", "formula", "contrasts", "test", "tagwise_rtol"),
    [
        ("tx_oneway", ONEWAY, [C], "last", 1e-10),
        ("tx_additive", ADDITIVE, [B, C], "condition", 1e-8),
    ],
)
def test_glm_ql_with_lengths_equals_tximports_edger_route(
    tx_cohort, case, formula, contrasts, test, tagwise_rtol
):
    """scaleOffset(DGEList(counts), normMat) then estimateDisp, glmQLFit and glmQLFTest: an
    offset per count in every fit (the profile likelihoods, the fitted zeros, the prior
    counts of each gene), the library sizes the counts' sums for aveLogCPM. The additive
    design's Levenberg fits stop at edgeR's tolerance, and with an offset per count 4 of the
    600 tagwise dispersions move by up to 3e-9 of themselves (the trend and the common
    dispersion hold to 1e-11)."""
    dispersion = de.estimate_dispersion(tx_cohort, formula)
    theirs = pd.read_csv(EDGER / f"ql_{case}_dispersion.csv")
    common = pd.read_csv(EDGER / f"ql_{case}_common.csv")
    assert dispersion.attrs["common_dispersion"] == pytest.approx(common["common"][0], rel=1e-12)
    _close(dispersion["ave_log_cpm"], theirs["ave_log_cpm"], rtol=1e-13)
    _close(dispersion["trended_dispersion"], theirs["trended"], rtol=1e-11)
    _close(dispersion["tagwise_dispersion"], theirs["tagwise"], rtol=tagwise_rtol)
    ours = de.glm_ql(tx_cohort, formula, contrasts=contrasts)
    _check_fit(ours, case)
    theirs = pd.read_csv(EDGER / f"ql_{case}_test_{test}.csv")
    statistic = ours["F"] if len(contrasts) > 1 else ours["statistic"][0]
    pvalue = ours["F_pvalue"] if len(contrasts) > 1 else ours["pvalue"][0]
    _close(statistic, theirs["F"], rtol=1e-10, atol=NEAR_ZERO)
    _close(pvalue, theirs["PValue"], rtol=1e-9, atol=1e-12)
    for k in range(len(contrasts)):
        _close(ours["coefficient"][k], theirs[f"logFC_{k + 1}"], rtol=1e-11, atol=NEAR_ZERO)


def test_glm_lrt_with_lengths_and_none_equal_edger(cohort, tx_cohort):
    """glmLRT(glmFit(...)) on tximport's offsets (glmFit's prior counts scaled gene by gene);
    lengths=None is the plain pipeline."""
    ours = de.glm_lrt(tx_cohort, ADDITIVE, contrasts=["batch[T.y]"])
    theirs = pd.read_csv(EDGER / "ql_lrt_tx.csv")
    _close(ours["deviance"], theirs["deviance"], rtol=1e-10, atol=NEAR_ZERO)
    _close(ours["coefficient"][0], theirs["logFC_1"], rtol=1e-11, atol=NEAR_ZERO)
    _close(ours["statistic"][0], theirs["LR"], rtol=1e-10, atol=NEAR_ZERO)
    _close(ours["pvalue"][0], theirs["PValue"], rtol=1e-9, atol=1e-12)
    plain = de.glm_lrt(cohort, ADDITIVE, contrasts=["batch[T.y]"])
    ignored = de.glm_lrt(tx_cohort, ADDITIVE, contrasts=["batch[T.y]"], lengths=None)
    np.testing.assert_array_equal(ignored["pvalue"], plain["pvalue"])
    assert [r.attrs["offsets"] for r in (ours, plain, ignored)] == [
        "lengths",
        *["library sizes"] * 2,
    ]
    with pytest.raises(CohortexError, match="classic mode"):
        de.estimate_dispersion(cohort, group="condition", lengths=tx_cohort["length"])


# --- given offsets: edgeR's y$offset ----------------------------------------------------------


@pytest.fixture(scope="module")
def offsets():
    """make_glm_ql_fixtures.R's offsets (samples × genes): log TMM library sizes plus a GC
    bias of each sample and noise per count."""
    return pd.read_csv(EDGER / "ql_offsets.csv", index_col=0).T


def test_glm_ql_with_offsets_equals_edger(cohort, offsets):
    """`y$offset <- m` on the TMM DGEList, then estimateDisp, glmQLFit and glmQLFTest: the
    offsets in every fit, the TMM library sizes in the average log-CPM. As the tximport
    route's additive case, a few tagwise dispersions move by up to 1e-8 of themselves."""
    dispersion = de.estimate_dispersion(cohort, ADDITIVE, offsets=offsets)
    theirs = pd.read_csv(EDGER / "ql_offset_additive_dispersion.csv")
    common = pd.read_csv(EDGER / "ql_offset_additive_common.csv")
    assert dispersion.attrs["common_dispersion"] == pytest.approx(common["common"][0], rel=1e-12)
    _close(dispersion["ave_log_cpm"], theirs["ave_log_cpm"], rtol=1e-13)
    _close(dispersion["trended_dispersion"], theirs["trended"], rtol=1e-11)
    _close(dispersion["tagwise_dispersion"], theirs["tagwise"], rtol=1e-8)
    ours = de.glm_ql(cohort, ADDITIVE, contrasts=[B, C], offsets=offsets)
    _check_fit(ours, "offset_additive")
    assert ours.attrs["offsets"] == "given"
    theirs = pd.read_csv(EDGER / "ql_offset_additive_test_condition.csv")
    _close(ours["mean_expression"], theirs["logCPM"], rtol=1e-13)
    _close(ours["F"], theirs["F"], rtol=1e-10, atol=NEAR_ZERO)
    _close(ours["F_pvalue"], theirs["PValue"], rtol=1e-9, atol=1e-12)
    for k in range(2):
        _close(ours["coefficient"][k], theirs[f"logFC_{k + 1}"], rtol=1e-11, atol=NEAR_ZERO)
    last = de.glm_ql(cohort, ADDITIVE, contrasts=["batch[T.y]"], offsets=offsets.to_numpy())
    theirs = pd.read_csv(EDGER / "ql_offset_additive_test_last.csv")
    _close(last["statistic"][0], theirs["F"], rtol=1e-10, atol=NEAR_ZERO)
    _close(last["pvalue"][0], theirs["PValue"], rtol=1e-9, atol=1e-12)


def test_glm_lrt_with_offsets_equals_edger(cohort, offsets):
    """glmLRT(glmFit(...)) on the given offsets; a variable of the cohort by name is the
    same as the table."""
    ours = de.glm_lrt(cohort, ADDITIVE, contrasts=["batch[T.y]"], offsets=offsets)
    theirs = pd.read_csv(EDGER / "ql_lrt_offset.csv")
    _close(ours["deviance"], theirs["deviance"], rtol=1e-10, atol=NEAR_ZERO)
    _close(ours["coefficient"][0], theirs["logFC_1"], rtol=1e-11, atol=NEAR_ZERO)
    _close(ours["statistic"][0], theirs["LR"], rtol=1e-10, atol=NEAR_ZERO)
    _close(ours["pvalue"][0], theirs["PValue"], rtol=1e-9, atol=1e-12)
    named = cohort.assign(gc_offset=(("sample", "gene"), offsets.to_numpy()))
    by_name = de.glm_lrt(named, ADDITIVE, contrasts=["batch[T.y]"], offsets="gc_offset")
    np.testing.assert_array_equal(by_name["pvalue"], ours["pvalue"])


def test_offsets_are_checked(cohort, offsets):
    """Offsets may be negative but not missing; not beside explicit lengths, not in classic
    mode, and a table must name every sample and gene."""
    # a shift of every offset: the intercepts absorb it, up to where the fits stop (edgeR's
    # tolerance, reached from other starting points)
    negative = offsets - 50.0
    shifted = de.glm_lrt(cohort, ADDITIVE, contrasts=["batch[T.y]"], offsets=negative)
    plain = de.glm_lrt(cohort, ADDITIVE, contrasts=["batch[T.y]"], offsets=offsets)
    _close(shifted["pvalue"], plain["pvalue"], rtol=1e-5, atol=1e-12)
    missing = offsets.to_numpy().copy()
    missing[3, 5] = np.nan
    with pytest.raises(CohortexError, match="must be finite"):
        de.glm_ql(cohort, ADDITIVE, offsets=missing)
    with pytest.raises(CohortexError, match="not both"):
        de.glm_ql(cohort, ADDITIVE, offsets=offsets, lengths=np.exp(offsets.to_numpy()))
    with pytest.raises(CohortexError, match="classic mode"):
        de.estimate_dispersion(cohort, group="condition", offsets=offsets)
    with pytest.raises(CohortexError, match="lacks the cohort's samples or genes"):
        de.glm_ql(cohort, ADDITIVE, offsets=offsets.iloc[:, :-1])
    with pytest.raises(CohortexError, match="one value per sample and gene"):
        de.glm_ql(cohort, ADDITIVE, offsets=offsets.to_numpy()[:, :-1])
