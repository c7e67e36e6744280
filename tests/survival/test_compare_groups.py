"""Survival compared between groups against R's survival on its lung cancer data (fixtures
from tests/fixtures/make_survdiff_fixtures.R): survdiff's log-rank and G-rho tests, within
strata, with tied times; survfit's medians with their limits and restricted means; weighted
Kaplan–Meier curves (Greenwood's and the infinitesimal jackknife's standard errors)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from cohorts import FIXTURES

from cohortex import CohortexError, survival

SURVDIFF = pd.read_csv(FIXTURES / "survdiff.csv", dtype={"group": str})
CASES = {
    "sex": {"time": "time", "by": "sex"},
    "ecog": {"time": "time", "by": "ph.ecog"},
    "ecog_peto": {"time": "time", "by": "ph.ecog", "rho": 1.0},
    "sex_months_half": {"time": "months", "by": "sex", "rho": 0.5},
    "sex_within_ecog": {"time": "months", "by": "sex", "strata": "ph.ecog"},
}


def _lung() -> xr.Dataset:
    """R's lung data as a cohort of one placeholder gene (its samples' variables are what
    count here)."""
    table = pd.read_csv(FIXTURES / "lung.csv")
    ds = xr.Dataset(
        {"expression": (("sample", "gene"), np.zeros((len(table), 1), np.float32))},
        coords={"sample": table["sample"].to_numpy(), "gene": ["G1"]},
    )
    for name in ("time", "months", "event", "sex", "ph.ecog", "age", "repeats", "case_weight"):
        ds[name] = ("sample", table[name].to_numpy())
    return ds


@pytest.mark.parametrize("case", CASES)
def test_compare_groups_equals_r_survdiff(case):
    options = dict(CASES[case])
    expected = SURVDIFF[SURVDIFF["case"] == case].set_index("group")
    ds = _lung()  # with strata, the patient without ph.ecog is left out, as R's na.omit
    found = survival.compare_groups(ds, options.pop("time"), "event", **options)
    assert list(found.table.index) == list(expected.index)
    np.testing.assert_array_equal(found.table["n"], expected["n"])
    for column in ("observed", "expected"):
        np.testing.assert_allclose(found.table[column], expected[column], rtol=1e-12)
    variance = pd.read_csv(FIXTURES / f"survdiff_{case}_var.csv").to_numpy()
    np.testing.assert_allclose(found.variance, variance, rtol=1e-12, atol=1e-14)
    assert found.statistic == pytest.approx(expected["chisq"].iloc[0], rel=1e-12)
    assert found.df == expected["df"].iloc[0]
    assert found.pvalue == pytest.approx(expected["pvalue"].iloc[0], rel=1e-10)


def test_compare_groups_by_hand_and_refusals():
    """Two groups without ties: the log-rank statistic from its textbook sums; values
    without a cohort; fewer than two groups, a negative ρ and no event are refused."""
    time = np.array([1.0, 2, 3, 4, 5, 6, 7, 8])
    event = np.array([1, 1, 0, 1, 1, 1, 0, 1])
    group = np.array(["a", "b", "a", "b", "a", "b", "a", "b"])
    o = e = v = 0.0
    for t in time[event == 1]:
        at_risk = time >= t
        n, n_a = at_risk.sum(), (at_risk & (group == "a")).sum()
        o += float(((time == t) & (group == "a")).sum())
        e += n_a / n
        v += n_a * (n - n_a) / n**2
    found = survival.compare_groups(None, time, event, group)
    assert found.table.loc["a", "observed"] == o
    assert found.table.loc["a", "expected"] == pytest.approx(e, rel=1e-14)
    assert found.statistic == pytest.approx((o - e) ** 2 / v, rel=1e-13)
    with pytest.raises(CohortexError, match="two groups"):
        survival.compare_groups(None, time, event, ["a"] * 8)
    with pytest.raises(CohortexError, match="'rho'"):
        survival.compare_groups(None, time, event, group, rho=-1)
    with pytest.raises(CohortexError, match="No sample has an event"):
        survival.compare_groups(None, time, np.zeros(8), group)
    with pytest.raises(CohortexError, match="must be values"):
        survival.compare_groups(None, time, event, "group")


TABLE = pd.read_csv(FIXTURES / "survfit_table.csv", dtype={"group": str})


@pytest.mark.parametrize("case", ["sex_common", "sex_year", "sex_months", "all_90"])
def test_median_survival_equals_r_survfit_table(case):
    """Records, events, the median and its limits (R's default log-type interval), the
    restricted mean up to the largest time or a year, and its standard error."""
    expected = TABLE[TABLE["case"] == case].set_index("group")
    options = {
        "sex_common": {"time": "time", "by": "sex"},
        "sex_year": {"time": "time", "by": "sex", "restricted_time": 365},
        "sex_months": {"time": "months", "by": "sex"},
        "all_90": {"time": "time", "confidence": 0.9},
    }[case]
    found = survival.median_survival(_lung(), options.pop("time"), "event", **options)
    assert list(found.index) == list(expected.index)
    for column in ("records", "events"):
        np.testing.assert_array_equal(found[column], expected[column])
    for column in ("median", "lower", "upper", "rmean", "rmean_se"):
        np.testing.assert_allclose(found[column], expected[column], rtol=1e-12)


def test_median_survival_where_the_curve_is_one_half():
    """Ten deaths at 1, …, 10: the curve is 0.5 from 5 to 6, so the median is 5.5 (R's);
    the upper limit is never reached (NaN, R's NA)."""
    expected = TABLE[TABLE["case"] == "ten_deaths"].iloc[0]
    found = survival.median_survival(None, np.arange(1.0, 11.0), np.ones(10)).iloc[0]
    assert found["median"] == expected["median"] == 5.5
    assert found["lower"] == expected["lower"] and np.isnan(found["upper"])
    assert found["rmean"] == pytest.approx(expected["rmean"], rel=1e-14)
    assert found["rmean_se"] == pytest.approx(expected["rmean_se"], rel=1e-12)
    with pytest.raises(CohortexError, match="restricted_time"):
        survival.median_survival(None, [1.0, 2.0], [1, 1], restricted_time=-1)


@pytest.mark.parametrize("weights", ["repeats", "case_weight"])
def test_weighted_kaplan_meier_equals_r_survfit(weights):
    """survfit(weights =): weighted counts at risk, of events and censored; the curve;
    Greenwood's standard error for integer weights and R's default infinitesimal jackknife
    for the others; the log-type limits; and the summary table (medians, restricted means)."""
    expected = pd.read_csv(FIXTURES / f"survfit_weighted_{weights}.csv", dtype={"group": str})
    curves = survival.kaplan_meier(_lung(), "time", "event", by="sex", weights=weights)
    assert list(curves["group"]) == list(expected["group"])
    for column in ("time", "n_risk", "n_event", "n_censor"):
        np.testing.assert_allclose(curves[column], expected[column], rtol=1e-14)
    np.testing.assert_allclose(curves["survival"], expected["survival"], rtol=1e-13)
    # R's summary reports the se of S, the curves' the se of −log S
    found = curves["survival"] * curves["std_err"]
    np.testing.assert_allclose(found, expected["std_err"], rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(curves["lower"], expected["lower"], rtol=1e-10)
    np.testing.assert_allclose(curves["upper"], expected["upper"], rtol=1e-10)
    table = pd.read_csv(FIXTURES / "survfit_weighted_table.csv", dtype={"group": str})
    table = table[table["case"] == weights].set_index("group")
    medians = survival.median_survival(_lung(), "time", "event", by="sex", weights=weights)
    np.testing.assert_array_equal(medians["records"], table["records"])
    for column in ("events", "median", "lower", "upper", "rmean", "rmean_se"):
        np.testing.assert_allclose(medians[column], table[column], rtol=1e-12)


def test_integer_weights_are_repeated_samples_in_kaplan_meier():
    """Weights of 1, 2 and 3 give the curves of the samples repeated that often."""
    ds = _lung()
    repeats = ds["repeats"].values.astype(int)
    weighted = survival.kaplan_meier(ds, "time", "event", by="sex", weights="repeats")
    rows = np.repeat(np.arange(ds.sizes["sample"]), repeats)
    repeated = survival.kaplan_meier(
        None, ds["time"].values[rows], ds["event"].values[rows], by=ds["sex"].values[rows]
    )
    for column in ("n_risk", "survival", "std_err", "lower", "upper"):
        np.testing.assert_allclose(weighted[column], repeated[column], rtol=1e-13)


def test_a_group_censored_before_any_event_leaves_the_test():
    """A group whose samples are all censored before the first event expects no event: R
    leaves it out of the test and its df, which then equal those without it."""
    ds = _lung()
    time = np.concatenate([ds["time"].values, [1.0, 2.0, 3.0]])
    event = np.concatenate([ds["event"].values, [0, 0, 0]])
    group = np.concatenate([ds["ph.ecog"].values.astype(str), ["early"] * 3])
    keep = group != "nan"
    found = survival.compare_groups(None, time[keep], event[keep], group[keep])
    without = survival.compare_groups(None, time[keep][:-3], event[keep][:-3], group[keep][:-3])
    assert found.table.loc["early", "expected"] == 0.0 and found.df == without.df == 3
    assert found.statistic == pytest.approx(without.statistic, rel=1e-12)
