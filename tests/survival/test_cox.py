"""Per-gene Cox models against R's survival::coxph on GSE7390 (tests/fixtures/survival/,
made by make_survival_fixtures.R from the cohort export_breast_cancer.py writes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from cohorts import CLINICAL, FIXTURES, breast_cancer

from cohortex import CohortexError, CohortexWarning, create_cohort, survival


def _close(actual, expected, rtol):
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float), rtol=rtol)


CASES = {
    "days": {"time": "time"},
    "months_efron": {"time": "months"},
    "months_breslow": {"time": "months", "ties": "breslow"},
    "months_covariates": {"time": "months", "covariates": "~ age + er"},
    "months_strata": {"time": "months", "covariates": "~ age", "strata": "er"},
}


@pytest.mark.parametrize("case", CASES)
def test_cox_equals_r_coxph(case):
    expected = pd.read_csv(FIXTURES / f"cox_{case}.csv")
    result = survival.cox(breast_cancer(), event="event", **CASES[case])
    assert list(result["gene"].values) == list(expected["gene"])
    _close(result["coefficient"], expected["coef"], 1e-8)
    _close(result["hazard_ratio"], np.exp(expected["coef"]), 1e-8)
    _close(result["se"], expected["se"], 1e-8)
    _close(result["statistic"], expected["z"], 1e-8)
    _close(result["loglik"], expected["loglik"], 1e-12)
    for ours, theirs in (("pvalue", "wald_p"), ("lr_pvalue", "lr_p"), ("score_pvalue", "score_p")):
        _close(result[ours], expected[theirs], 1e-6)
    _close(result["lr_statistic"], expected["lr"], 1e-6)
    _close(result["score_statistic"], expected["score"], 1e-8)
    low = np.exp(expected["coef"] - 1.959963984540054 * expected["se"])
    _close(result["ci_low"], low, 1e-8)
    assert result["converged"].all() and not result["monotone"].any()
    assert (result["n_samples"] == 198).all() and (result["n_events"] == 51).all()
    assert result.attrs["ties"] == CASES[case].get("ties", "efron")
    assert "concordance" not in result
    with_c = survival.cox(breast_cancer(), event="event", concordance=True, **CASES[case])
    _close(with_c["concordance"], expected["concordance"], 1e-12)
    _close(with_c["concordance_se"], expected["concordance_se"], 1e-9)


def test_missing_values_fit_each_gene_on_its_samples(tmp_path):
    """A gene with missing values is fitted on its observed samples (the covariates' model
    refitted there for the likelihood-ratio test); from the store in any tiling."""
    ds = breast_cancer()
    expression = ds["expression"].values.astype(np.float32).astype(np.float64)  # as stored
    expression[:30, 2] = np.nan
    expression[100:110, 5] = np.nan
    ds["expression"] = (("sample", "gene"), expression)
    create_cohort(
        tmp_path / "b.zarr",
        expression,
        samples=ds[CLINICAL].to_dataframe(),
        genes=pd.DataFrame(index=ds["gene"].values),
        chunks=(64, 16),
    )
    result = survival.cox(tmp_path / "b.zarr", "months", "event", covariates="~ age + er")
    for gene, kept in ((2, slice(30, None)), (5, np.r_[0:100, 110:198])):
        alone = survival.cox(
            ds.isel(sample=kept, gene=[gene]), "months", "event", covariates="~ age + er"
        )
        for name in ("coefficient", "se", "lr_statistic", "score_statistic", "loglik"):
            _close(result[name].values[gene], alone[name].values[0], 1e-7)
        assert int(result["n_samples"].values[gene]) == alone.attrs["n_samples"]
    whole = survival.cox(ds, "months", "event", covariates="~ age + er")
    _close(result["coefficient"], whole["coefficient"], 1e-10)


def test_separation_and_constant_genes_are_flagged():
    rng = np.random.default_rng(3)
    n = 60
    time = rng.exponential(10, n)
    event = (rng.random(n) < 0.7).astype(int)
    x = rng.normal(size=(n, 3))
    order = np.argsort(time)
    x[order, 1] = np.arange(n)[::-1]  # higher expression, earlier time: the likelihood rises
    x[:, 2] = 4.0
    with pytest.warns(CohortexWarning, match="1 have a likelihood that keeps rising") as caught:
        result = survival.cox(x, time, event)
    assert "1 could not be fitted (constant expression or no event)" in str(caught[0].message)
    assert result["monotone"].values.tolist() == [False, True, False]
    assert np.isnan(result["coefficient"].values[2]) and not result["converged"].values[2]
    assert np.isfinite(result["coefficient"].values[0]) and result["converged"].values[0]


def test_simulated_hazard_ratios_are_recovered():
    """Survival times drawn from a proportional-hazards model, log HR 0.7 for gene 0 and 0.4
    per unit of a covariate, 0 for the other genes; 4,000 samples, about 30% censored."""
    rng = np.random.default_rng(11)
    n, genes = 4000, 20
    x = rng.normal(size=(n, genes))
    age = rng.normal(size=n)
    event_time = rng.exponential(1.0 / np.exp(0.7 * x[:, 0] + 0.4 * age))
    censor_time = rng.exponential(2.5, n)
    ds = xr.Dataset(
        {
            "expression": (("sample", "gene"), x),
            "time": ("sample", np.minimum(event_time, censor_time)),
            "event": ("sample", (event_time <= censor_time).astype(int)),
            "age": ("sample", age),
        }
    )
    result = survival.cox(ds, "time", "event", covariates="~ age")
    coefficient, se = result["coefficient"].values, result["se"].values
    assert abs(coefficient[0] - 0.7) < 4 * se[0] and se[0] < 0.03
    assert np.all(np.abs(coefficient[1:]) < 4 * se[1:])
    assert result["padj"].values[0] < 1e-20 and np.median(result["padj"].values[1:]) > 0.3


def test_bad_outcomes_are_refused():
    ds = breast_cancer()
    with pytest.raises(CohortexError, match="must name a sample variable; got 'tiem'"):
        survival.cox(ds, "tiem", "event")
    bad = ds.assign(time=ds["time"].where(ds["time"] > 500, -1.0))
    with pytest.raises(CohortexError, match=r"The time of \d+ samples is negative \(first: sample"):
        survival.cox(bad, "time", "event")
    bad = ds.assign(event=ds["event"] * 2)
    with pytest.raises(CohortexError, match="The event of 51 samples is not 0 or 1"):
        survival.cox(bad, "time", "event")
    bad = ds.assign(time=ds["time"].where(ds["time"] > 500))
    with pytest.raises(CohortexError, match="is missing or not finite"):
        survival.cox(bad, "time", "event")
    with pytest.raises(CohortexError, match="No sample has an event"):
        survival.cox(ds, "time", np.zeros(198))
    with pytest.raises(CohortexError, match="'ties' parameter of cox\\(\\) must be one of"):
        survival.cox(ds, "time", "event", ties="exact")
    with pytest.raises(CohortexError, match="must hold the values"):
        survival.cox(ds["expression"].values, "time", "event")
