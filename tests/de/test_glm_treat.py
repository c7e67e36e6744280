"""edgeR's glmTreat against R (fixtures from make_glm_treat_fixtures.R, edgeR 3.40): the log
fold change tested against a threshold after glmQLFit (QL z-scores, the Poisson bound) and
after glmFit, for coefficients and a contrast, each null, with tximport's offsets and with
given ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohortex import CohortexError, de

from conftest import fixture_cohort

EDGER = Path(__file__).parent.parent / "fixtures" / "edger"
ONEWAY = "~ condition"
ADDITIVE = "~ condition + batch"
B, C = "condition[T.b]", "condition[T.c]"
PAIR = {"c - b": "condition[T.c] - condition[T.b]"}
LOG2_15 = float(np.log2(1.5))
TX_LENGTHS = pd.read_csv(EDGER / "ql_lengths.csv", index_col=0).T  # tximport's route
OFFSETS = pd.read_csv(EDGER / "ql_offsets.csv", index_col=0).T  # edgeR's y$offset
CASES = {
    "ql_oneway": (de.glm_ql, ONEWAY, [B], {}),
    "ql_oneway_lfc1": (de.glm_ql, ONEWAY, [C], {"treat_lfc": 1.0}),
    "ql_additive": (de.glm_ql, ADDITIVE, [B], {"treat_lfc": LOG2_15}),
    "ql_contrast": (de.glm_ql, ADDITIVE, PAIR, {"treat_lfc": LOG2_15}),
    "ql_worst_case": (de.glm_ql, ONEWAY, [B], {"treat_null": "worst.case"}),
    "ql_robust": (de.glm_ql, ADDITIVE, [B], {"treat_lfc": LOG2_15, "robust": True}),
    "lrt_oneway": (de.glm_lrt, ONEWAY, [B], {}),
    "lrt_contrast": (de.glm_lrt, ADDITIVE, PAIR, {"treat_lfc": LOG2_15}),
    "ql_tx": (de.glm_ql, ADDITIVE, [B], {"treat_lfc": LOG2_15, "lengths": TX_LENGTHS}),
    "lrt_tx": (de.glm_lrt, ADDITIVE, ["batch[T.y]"], {"lengths": TX_LENGTHS}),
    "ql_offset": (de.glm_ql, ADDITIVE, [B], {"treat_lfc": LOG2_15, "offsets": OFFSETS}),
}


@pytest.fixture(scope="module")
def cohort():
    return fixture_cohort(EDGER / "ql_counts.csv", EDGER / "ql_samples.csv", scale="counts")


def _treat(cohort, case, **more):
    test, design, contrasts, options = CASES[case]
    options = {"treat_lfc": float(np.log2(1.2)), **options, **more}  # glmTreat's default lfc
    return test(cohort, design, contrasts=contrasts, **options).isel(contrast=0)


@pytest.mark.parametrize("case", [c for c in CASES if c != "ql_worst_case"])
def test_glm_treat_equals_edger(cohort, case):
    result = _treat(cohort, case)
    expected = pd.read_csv(EDGER / f"treat_{case}.csv", index_col=0)
    assert "statistic" not in result
    assert result.attrs["treat_lfc"] == CASES[case][3].get("treat_lfc", np.log2(1.2))
    # genes without a defined fold change (no count: NA in edgeR, whose glmTreat then
    # misaligns the p-values of the genes after them) have a p-value of 1 here
    undefined = ~np.isin(result["gene"].values, expected.index)
    assert np.all(np.isnan(result["unshrunk_coefficient"].values[undefined]))
    assert np.all(result["pvalue"].values[undefined] == 1.0)
    result = result.sel(gene=expected.index)
    np.testing.assert_allclose(
        result["coefficient"].values, expected["logFC"], rtol=1e-9, atol=1e-10
    )
    unshrunk = expected["unshrunk.logFC"].to_numpy()
    finite = np.abs(unshrunk) < 1e6  # no count in a group: edgeR stops anywhere out there
    # without prior counts the GLM's stopping point shows more (edgeR's tolerance)
    np.testing.assert_allclose(
        result["unshrunk_coefficient"].values[finite], unshrunk[finite], rtol=1e-8, atol=1e-8
    )
    np.testing.assert_allclose(result["pvalue"].values, expected["PValue"], rtol=1e-8, atol=1e-12)


def test_glm_treat_worst_case_null_bounds_by_the_same_null(cohort):
    """edgeR's Poisson bound takes the interval null whatever the null; here the Poisson
    test takes the null asked for: equal to edgeR where its bound does not bind, and no
    smaller (the worst case is the more conservative null) where it does."""
    expected = pd.read_csv(EDGER / "treat_ql_worst_case.csv", index_col=0)["PValue"].to_numpy()
    ours = _treat(cohort, "ql_worst_case")["pvalue"].values
    unbounded = _treat(cohort, "ql_worst_case", poisson_bound=False)["pvalue"].values
    binding = ~np.isclose(ours, unbounded, rtol=1e-12, atol=0)
    assert 0 < binding.sum() < 200  # the Poisson-like genes of the fixture
    # where our bound does not bind, edgeR's (smaller) does not either
    np.testing.assert_allclose(ours[~binding], expected[~binding], rtol=1e-8, atol=1e-12)
    assert np.all(ours[binding] > unbounded[binding])
    assert np.all(ours[binding] >= expected[binding] * (1 - 1e-8))


def test_glm_treat_with_its_defaults_calls_changes_beyond_the_threshold():
    """A simulated negative-binomial study (40 samples, 300 of 3,000 genes changed by 0.2–2.5
    log2 units), filterByExpr then glmQLFit + glmTreat at 1.5-fold: nearly every call is a
    gene changed beyond the threshold, and nearly every gene changed by more than 1.2 log2
    units is called — where the plain QL test also calls the small changes."""
    import xarray as xr

    from cohortex import filter_by_expr
    from cohortex.simulate import simulate_array

    x, samples, genes = simulate_array(
        40, 3000, n_de=300, log2fc=(0.2, 2.5), distribution="negbinom", seed=5
    )
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
    true_change = np.abs(genes["true_log2fc"].to_numpy()[keep])
    threshold = float(np.log2(1.5))
    plain = de.glm_ql(cohort, "~ condition")["padj"].values.ravel() < 0.05
    assert np.mean(true_change[plain] <= threshold) > 0.05  # the plain test calls small ones
    for test in (de.glm_ql, de.glm_lrt):
        called = test(cohort, "~ condition", treat_lfc=threshold)["padj"].values.ravel() < 0.05
        assert np.mean(true_change[called] <= threshold) < 0.02, test.__name__
        assert np.mean(called[true_change > 1.2]) > 0.95, test.__name__


def test_glm_treat_refuses_bad_thresholds(cohort):
    with pytest.raises(CohortexError, match="'treat_lfc' must be a number >= 0"):
        de.glm_ql(cohort, ONEWAY, treat_lfc=-1.0)
    with pytest.raises(CohortexError, match="'treat_null' must be one of"):
        de.glm_lrt(cohort, ONEWAY, treat_lfc=1.0, treat_null="worst")
    # a threshold of 0 is the plain test, as in edgeR
    plain = de.glm_ql(cohort, ONEWAY, contrasts=[B])
    zero = de.glm_ql(cohort, ONEWAY, contrasts=[B], treat_lfc=0.0)
    np.testing.assert_array_equal(zero["pvalue"].values, plain["pvalue"].values)
    # several contrasts: each against the threshold on its own, no joint test
    both = de.glm_ql(cohort, ONEWAY, contrasts=[B, C], treat_lfc=1.0)
    assert "F" not in both and both.sizes["contrast"] == 2
    alone = de.glm_ql(cohort, ONEWAY, contrasts=[C], treat_lfc=1.0)
    np.testing.assert_allclose(both["pvalue"].sel(contrast=C), alone["pvalue"][0], rtol=1e-12)
