"""Tests of proportional hazards against R's survival::cox.zph on GSE7390 (fixtures made by
tests/fixtures/make_cox_zph_fixtures.R): each ties method, covariates (each one's own test, a
three-level factor's together), strata, each transform of time, and a gene with missing values
(its own samples, its own Kaplan–Meier transform)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cohorts import FIXTURES, breast_cancer

from cohortex import CohortexError, survival

CASES = {
    "days": {"time": "time"},
    "months_efron": {"time": "months"},
    "months_breslow": {"time": "months", "ties": "breslow"},
    "months_covariates": {"time": "months", "covariates": "~ age + er"},
    "months_grade": {"time": "months", "covariates": "~ age + grade3"},
    "months_strata": {"time": "months", "covariates": "~ age", "strata": "er"},
    "months_rank": {"time": "months", "transform": "rank"},
    "months_identity": {"time": "months", "transform": "identity"},
    "months_log": {"time": "months", "transform": "log"},
}
MISSING = [2, 16, 39, 40, 98, 149]  # the first gene's missing samples in the R script


def _cohort():
    cohort = breast_cancer()
    cohort["expression"].values[MISSING, 0] = np.nan
    grade = cohort["grade"].values
    cohort["grade3"] = ("sample", np.where(grade == "unkown", "intermediate", grade))
    return cohort


@pytest.mark.parametrize("case", CASES)
def test_cox_zph_equals_r(case):
    expected = pd.read_csv(FIXTURES / f"zph_{case}.csv")
    result = survival.cox_zph(_cohort(), event="event", **CASES[case])
    assert list(result["gene"].values) == list(expected["gene"])
    for ours, theirs in (
        ("statistic", "chisq"),
        ("pvalue", "p"),
        ("global_statistic", "global_chisq"),
        ("global_pvalue", "global_p"),
    ):
        np.testing.assert_allclose(result[ours], expected[theirs], rtol=1e-10, err_msg=ours)
    assert result.attrs["global_df"] == expected["global_df"].iloc[0]
    assert result["converged"].all()
    terms = [c[: -len("_chisq")] for c in expected.columns if c.endswith("_chisq")]
    terms = [t for t in terms if t not in ("", "global")]
    if not terms:
        assert "term_statistic" not in result
    for term in terms:  # each covariate's own row of R's table
        found = result.sel(term=term)
        np.testing.assert_allclose(found["term_statistic"], expected[f"{term}_chisq"], rtol=1e-10)
        np.testing.assert_allclose(found["term_pvalue"], expected[f"{term}_p"], rtol=1e-10)
        assert found["term_df"] == expected[f"{term}_df"].iloc[0]


def _time_varying_study(seed=4):
    """600 patients × 120 genes: 100 without effect, 17 with a constant hazard ratio (e^0.25
    per unit each), 3 whose effect (e^0.8 per unit each) stops after the first year; censoring
    uniform over four years."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    n = 600
    x = rng.normal(size=(n, 120))
    constant = 0.25 * x[:, 100:117].sum(axis=1)
    early = 0.8 * x[:, 117:].sum(axis=1)
    # piecewise-exponential times: hazard 0.3·exp(constant + early) before 1, without early after
    first = rng.exponential(1.0 / (0.3 * np.exp(constant + early)))
    later = 1.0 + rng.exponential(1.0 / (0.3 * np.exp(constant)))
    time = np.where(first < 1.0, first, later)
    censor = rng.uniform(0.0, 4.0, n)
    cohort = xr.Dataset(
        {
            "expression": (("sample", "gene"), x),
            "time": ("sample", np.minimum(time, censor)),
            "event": ("sample", (time <= censor).astype(int)),
        },
        coords={"gene": [f"g{i:03d}" for i in range(120)]},
    )
    return cohort


def test_cox_zph_finds_effects_that_fade_and_holds_its_size():
    result = survival.cox_zph(_time_varying_study(), "time", "event")
    fading = result["pvalue"].values[117:]
    proportional = result["pvalue"].values[:117]
    assert np.all(fading < 0.01)
    assert np.mean(proportional < 0.05) <= 0.1
    assert np.all(result["coefficient"].values[117:] > 0)  # the average of the early effect


def test_cox_zph_refuses_bad_options():
    with pytest.raises(CohortexError, match="'transform' parameter"):
        survival.cox_zph(_cohort(), "months", "event", transform="sqrt")
    with pytest.raises(CohortexError, match="'ties' parameter"):
        survival.cox_zph(_cohort(), "months", "event", ties="exact")
    cohort = _cohort()
    cohort["months"].values[0] = 0.0
    with pytest.raises(CohortexError, match="above 0"):
        survival.cox_zph(cohort, "months", "event", transform="log")
