"""Cumulative incidence with competing risks against R's cmprsk::cuminc on survival::mgus2
(fixtures from tests/fixtures/make_competing_fixtures.R): progression or death first, in
months (many ties); each cause's incidence and Gray's variance per group; Gray's test
between two and three groups, with ρ = 1 and within strata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cohorts import FIXTURES

from cohortex import CohortexError, survival

CURVES = pd.read_csv(FIXTURES / "cuminc_curves.csv", dtype={"group": str, "cause": str})
TESTS = pd.read_csv(FIXTURES / "cuminc_tests.csv", dtype={"cause": str})
CASES = {
    "all": {},
    "sex": {"by": "sex"},
    "age": {"by": "age_group"},
    "age_rho": {"by": "age_group", "rho": 1.0},
    "age_within_sex": {"by": "age_group", "strata": "sex"},
}


def _mgus2() -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "mgus2.csv")


@pytest.mark.parametrize("case", CASES)
def test_cumulative_incidence_equals_r_cuminc(case):
    data = _mgus2()
    options = {k: data[v] if k != "rho" else v for k, v in CASES[case].items()}
    found = survival.cumulative_incidence(None, data["etime"], data["status"], **options)
    expected = CURVES[CURVES["case"] == case]
    if case == "all":  # R names the one group "1"
        expected = expected.assign(group="all")
    assert len(found.curves) == len(expected)
    for column in ("group", "cause"):
        assert list(found.curves[column]) == list(expected[column])
    np.testing.assert_array_equal(found.curves["time"], expected["time"])
    np.testing.assert_allclose(found.curves["estimate"], expected["estimate"], rtol=1e-12)
    np.testing.assert_allclose(found.curves["variance"], expected["variance"], rtol=1e-10)
    tests = TESTS[TESTS["case"] == case].set_index("cause")
    if case == "all":
        assert found.tests.empty
        return
    assert list(found.tests.index) == list(tests.index) == ["1", "2"]
    np.testing.assert_allclose(found.tests["statistic"], tests["statistic"], rtol=1e-10)
    np.testing.assert_array_equal(found.tests["df"], tests["df"])
    # R's 1 - pchisq() is 0 below ~1e-16, where chi2.sf is not
    np.testing.assert_allclose(found.tests["pvalue"], tests["pvalue"], rtol=1e-8, atol=1e-15)


def test_incidences_and_the_event_free_curve_add_up_to_one():
    """Without ties or censoring breaking it: at every time the causes' incidences plus the
    Kaplan–Meier curve of any event are 1; with one cause the incidence is 1 − KM."""
    rng = np.random.default_rng(2)
    time = rng.exponential(1.0, 300).round(2)
    status = rng.choice([0, 1, 2], 300, p=[0.3, 0.4, 0.3])
    found = survival.cumulative_incidence(None, time, status)
    grid = np.linspace(0.0, time.max(), 25)
    at = found.at(grid)
    total = at.groupby("time")["estimate"].sum().to_numpy()
    curve = survival.kaplan_meier(None, time, (status > 0).astype(int))
    index = np.searchsorted(curve["time"].to_numpy(), grid, side="right") - 1
    km = np.where(index >= 0, curve["survival"].to_numpy()[np.maximum(index, 0)], 1.0)
    np.testing.assert_allclose(total + km, 1.0, rtol=1e-12)
    single = survival.cumulative_incidence(None, time, np.minimum(status, 1)).at(grid)
    alone = survival.kaplan_meier(None, time, np.minimum(status, 1))
    index = np.searchsorted(alone["time"].to_numpy(), grid, side="right") - 1
    km = np.where(index >= 0, alone["survival"].to_numpy()[np.maximum(index, 0)], 1.0)
    np.testing.assert_allclose(single["estimate"], 1.0 - km, rtol=1e-12, atol=1e-15)


def test_cumulative_incidence_at_times_and_refusals():
    data = _mgus2()
    found = survival.cumulative_incidence(None, data["etime"], data["status"], by=data["sex"])
    at = found.at([0.0, 12.0, 1000.0])
    women = at[(at["group"] == "F") & (at["cause"] == "1")]
    curve = found.curves[(found.curves["group"] == "F") & (found.curves["cause"] == "1")]
    assert women["estimate"].iloc[0] == 0.0
    assert women["estimate"].iloc[1] == curve["estimate"][curve["time"] <= 12].iloc[-1]
    assert np.isnan(women["estimate"].iloc[2])  # past the last follow-up
    with pytest.raises(CohortexError, match="No sample has an event"):
        survival.cumulative_incidence(None, [1.0, 2.0], [0, 0])
    with pytest.raises(CohortexError, match="'rho'"):
        survival.cumulative_incidence(None, [1.0, 2.0], [1, 2], rho=-1)
    with pytest.raises(CohortexError, match="status of sample 'S2' is missing"):
        survival.cumulative_incidence(None, [1.0, 2.0], [1.0, np.nan])


def _mgus2_cohort():
    """mgus2 as a cohort with age in decades as its one "gene" and sex a sample variable."""
    import xarray as xr

    data = _mgus2()
    ds = xr.Dataset(
        {"expression": (("sample", "gene"), (data["age"].to_numpy() / 10.0)[:, None])},
        coords={"sample": data["sample"].to_numpy(), "gene": ["age"]},
    )
    for name in ("etime", "status", "sex"):
        ds[name] = ("sample", data[name].to_numpy())
    return ds


@pytest.mark.parametrize("case", ["progression", "death", "progression_by_sex"])
def test_fine_gray_equals_r_crr(case):
    """crr's coefficients, sandwich standard errors, log pseudo-likelihoods and predicted
    cumulative incidence; progression or death as the cause; one censoring curve per sex."""
    ds = _mgus2_cohort()
    options = {
        "progression": {"cause": 1},
        "death": {"cause": 2},
        "progression_by_sex": {"cause": 1, "censoring_groups": "sex"},
    }[case]
    model = survival.fine_gray(ds, "etime", "status", genes=["age"], covariates="~ sex", **options)
    terms = pd.read_csv(FIXTURES / f"crr_{case}_terms.csv")
    summary = pd.read_csv(FIXTURES / f"crr_{case}.csv").iloc[0]
    assert list(model.terms.index) == ["age", "sex[T.M]"]
    np.testing.assert_allclose(model.terms["coefficient"], terms["coef"], rtol=1e-10)
    np.testing.assert_allclose(model.terms["se"], terms["se"], rtol=1e-10)
    assert model.loglik == pytest.approx(summary["loglik"], rel=1e-10)
    assert model.loglik_null == pytest.approx(summary["loglik_null"], rel=1e-12)
    assert model.converged and summary["converged"]
    expected = pd.read_csv(FIXTURES / f"crr_{case}_predicted.csv")
    found = model.predict_incidence(ds.isel(sample=[0, 1, 99]), [12, 60, 120, 240, 400])
    np.testing.assert_allclose(found["incidence"], expected["incidence"], rtol=1e-10)
    assert (model.n_samples, model.n_events + model.n_competing) == (1384, 975)


def test_fine_gray_without_competing_events_is_cox_breslow():
    """With no other cause the risk sets are Cox's: the coefficients are fit_cox's with
    Breslow's ties."""
    ds = _mgus2_cohort()
    ds["one_cause"] = ("sample", np.minimum(ds["status"].values, 1))
    model = survival.fine_gray(ds, "etime", "one_cause", genes=["age"], tolerance=1e-12)
    cox = survival.fit_cox(ds, "etime", "one_cause", genes=["age"], ties="breslow")
    np.testing.assert_allclose(model.terms["coefficient"], cox.terms["coefficient"], rtol=1e-8)
    assert model.loglik == pytest.approx(cox.loglik, rel=1e-10)


def test_fine_gray_refusals():
    ds = _mgus2_cohort()
    with pytest.raises(CohortexError, match="needs terms"):
        survival.fine_gray(ds, "etime", "status")
    with pytest.raises(CohortexError, match="No sample with every term observed has an event"):
        survival.fine_gray(ds, "etime", "status", genes=["age"], cause=3)


def test_fine_gray_genes_equals_one_model_a_gene():
    """Each gene's model as fine_gray fits it alone (the gene beside the covariates, on the
    samples where it is observed); a gene with missing values, a constant gene; and crr on
    mgus2 for the age 'gene' beside sex."""
    rng = np.random.default_rng(3)
    data = _mgus2()
    n = len(data)
    expression = np.column_stack(
        [data["age"] / 10.0, rng.normal(size=n), rng.normal(size=n), np.ones(n)]
    )
    expression[:40, 2] = np.nan
    import xarray as xr

    ds = xr.Dataset(
        {"expression": (("sample", "gene"), expression)},
        coords={"sample": data["sample"].to_numpy(), "gene": ["age", "noise", "gappy", "flat"]},
    )
    for name in ("etime", "status", "sex"):
        ds[name] = ("sample", data[name].to_numpy())
    found = survival.fine_gray_genes(ds, "etime", "status", covariates="~ sex")
    for gene in ("age", "noise", "gappy"):
        alone = survival.fine_gray(ds, "etime", "status", genes=[gene], covariates="~ sex")
        row = found.sel(gene=gene)
        for column in ("coefficient", "se", "pvalue"):
            assert float(row[column]) == pytest.approx(alone.terms[column].iloc[0], rel=1e-12)
        assert int(row["n_samples"]) == alone.n_samples and bool(row["converged"])
    terms = pd.read_csv(FIXTURES / "crr_progression_terms.csv")
    assert float(found["coefficient"].sel(gene="age")) == pytest.approx(terms["coef"][0], rel=1e-10)
    assert int(found["n_samples"].sel(gene="gappy")) == n - 40
    assert np.isnan(float(found["coefficient"].sel(gene="flat")))
    assert found["padj"].notnull().sum() == 3
