"""Maximally selected log-rank statistics (each gene's best cutpoint) against R's maxstat 0.7-25
and survival's survdiff on GSE7390 (fixtures from tests/fixtures/make_cutpoint_fixtures.R):
every gene, a gene with tied values, survival times tied by rounding to years, a narrower
range of splits; then why the p-values allow for the search."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cohorts import FIXTURES, breast_cancer
from scipy import stats

from cohortex import CohortexError, CohortexWarning, survival

SETTINGS = {
    "default": ("time", {}),
    "narrow": ("time", {"minprop": 0.25, "maxprop": 0.75}),
    "years": ("years", {}),
}


def cohort():
    ds = breast_cancer()
    first = ds["expression"].values[:, 0]
    tied = np.round(first)[:, None]
    expression = np.concatenate([ds["expression"].values, tied], axis=1)
    genes = [*ds["gene"].values, "tied_gene"]
    years = np.ceil(ds["time"].values / 365.25)
    return (
        ds.drop_vars("expression")
        .drop_dims("gene")
        .assign(expression=(("sample", "gene"), expression), years=("sample", years))
        .assign_coords(gene=genes)
    )


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_equals_maxstat_and_survdiff(setting):
    time, options = SETTINGS[setting]
    result = survival.cutpoint(cohort(), time, "event", **options)
    expected = pd.read_csv(FIXTURES / "cutpoint.csv")
    expected = expected[expected["setting"] == setting].set_index("gene")
    expected = expected.loc[result["gene"].values]
    np.testing.assert_allclose(result["statistic"], expected["statistic"], rtol=1e-12)
    np.testing.assert_allclose(result["cutpoint"], expected["cutpoint"], rtol=1e-14)
    np.testing.assert_array_equal(result["n_low"], expected["n_low"])
    # maxstat's bounds exceed 1 where the statistic is small; ours stop at 1
    np.testing.assert_allclose(
        result["pvalue_lau94"], np.minimum(expected["p_lau94"], 1), rtol=1e-10
    )
    np.testing.assert_allclose(
        result["pvalue_lau92"], np.minimum(expected["p_lau92"], 1), rtol=1e-10
    )
    assert (expected["p_lau94"] > 1).any()  # the cap is exercised
    for column in ("observed_high", "expected_high", "observed_low", "expected_low"):
        np.testing.assert_allclose(result[column], expected[column], rtol=1e-12, err_msg=column)
    np.testing.assert_allclose(
        result["hazard_ratio"],
        (expected["observed_high"] / expected["expected_high"])
        / (expected["observed_low"] / expected["expected_low"]),
        rtol=1e-12,
    )
    assert np.all(result["pvalue"] == result["pvalue_lau94"])
    np.testing.assert_allclose(
        result["padj"], stats.false_discovery_control(result["pvalue"].values), rtol=1e-12
    )


def test_lau92_chosen():
    result = survival.cutpoint(cohort(), "time", "event", pvalue="Lau92", fdr="none")
    assert np.all(result["pvalue"] == result["pvalue_lau92"])
    assert np.all(result["padj"] == result["pvalue"]) and result.attrs["pvalue_method"] == "Lau92"


def test_p_values_allow_for_the_search():
    """Under no effect, the best split's plain log-rank p-value is below 0.05 for far more than
    5 % of genes; maxstat's bounds are not."""
    rng = np.random.default_rng(3)
    n, genes = 150, 2000
    expression = rng.normal(size=(n, genes))
    time = rng.exponential(10.0, n)
    event = (rng.random(n) < 0.7).astype(float)
    result = survival.cutpoint(expression, time, event)
    naive = 2 * stats.norm.sf(result["statistic"].values)  # the split as if chosen beforehand
    assert np.mean(naive < 0.05) > 0.3
    assert np.mean(result["pvalue_lau94"].values < 0.05) <= 0.05
    assert np.mean(result["pvalue_lau92"].values < 0.05) <= 0.05


def test_a_strong_gene_is_found_at_its_split():
    rng = np.random.default_rng(4)
    n = 200
    expression = rng.normal(size=(n, 3))
    high = expression[:, 0] > np.quantile(expression[:, 0], 0.7)
    time = rng.exponential(np.where(high, 3.0, 12.0))
    result = survival.cutpoint(expression, time, np.ones(n))
    assert result["pvalue"].values[0] < 1e-4 and result["hazard_ratio"].values[0] > 2
    assert np.all(result["pvalue"].values[1:] > 0.05)
    assert abs(int(result["n_low"].values[0]) - 140) <= 10


def test_missing_values_use_the_observed_samples_and_constant_genes_give_nan():
    ds = cohort()
    x = ds["expression"].values.copy()
    x[:40, 0] = np.nan
    x[:, 1] = 5.0
    with pytest.warns(CohortexWarning, match="genes allow no split"):
        result = survival.cutpoint(ds.assign(expression=(("sample", "gene"), x)), "time", "event")
    assert np.isnan(result["statistic"].values[1])
    alone = survival.cutpoint(ds.isel(sample=slice(40, None), gene=[0]), "time", "event")
    for name in (
        "statistic",
        "cutpoint",
        "n_low",
        "n_high",
        "pvalue_lau94",
        "hazard_ratio",
        "observed_high",
        "expected_high",
    ):
        assert result[name].values[0] == pytest.approx(alone[name].values[0], rel=1e-12), name
    assert int(result["n_low"].values[0] + result["n_high"].values[0]) == 158
    assert np.isfinite(result["statistic"].values[2:]).all()


def test_refuses_bad_settings():
    ds = cohort()
    with pytest.raises(CohortexError, match="'pvalue' parameter of cutpoint"):
        survival.cutpoint(ds, "time", "event", pvalue="exactGauss")
    with pytest.raises(CohortexError, match="0 < minprop < maxprop < 1"):
        survival.cutpoint(ds, "time", "event", minprop=0.6, maxprop=0.4)
    with pytest.raises(CohortexError, match="No sample has an event"):
        survival.cutpoint(ds, "time", np.zeros(ds.sizes["sample"]))
