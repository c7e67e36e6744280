"""Harrell's concordance against R's survival::concordance(reverse = TRUE) on GSE7390
(fixtures from tests/fixtures/make_concordance_fixtures.R): a gene's expression, rounded
values (tied risks), a Cox model's linear predictor; days and whole months (tied times);
within ER strata; with time and case weights. And the pair counts against every pair
counted one by one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cohorts import FIXTURES, breast_cancer

from cohortex import CohortexError, survival
from cohortex.stats._cpu.concordance import pair_counts

COUNTS = ["concordant", "discordant", "tied_risk", "tied_time", "tied_both"]


def _samples() -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "concordance_samples.csv")


@pytest.mark.parametrize("case", pd.read_csv(FIXTURES / "concordance.csv")["case"].tolist())
def test_concordance_equals_r(case):
    expected = pd.read_csv(FIXTURES / "concordance.csv").set_index("case").loc[case]
    samples = _samples()
    strata = samples[expected["strata"]] if isinstance(expected["strata"], str) else None
    found = survival.concordance(
        None, samples[expected["time"]], samples["event"], samples[expected["risk"]], strata=strata
    )
    assert found.concordance == pytest.approx(expected["concordance"], rel=1e-12)
    assert found.std_err == pytest.approx(expected["std_err"], rel=1e-10)
    assert [getattr(found, name) for name in COUNTS] == [expected[name] for name in COUNTS]
    assert found.n == expected["n"] == 198


def test_concordance_of_a_gene_and_of_sample_variables():
    """A gene id and sample variable names of the cohort; a missing risk leaves its sample
    out."""
    ds = breast_cancer()
    samples = _samples()
    gene = str(ds["gene"].values[0])
    by_gene = survival.concordance(ds, "time", "event", gene)
    expected = pd.read_csv(FIXTURES / "concordance.csv").set_index("case").loc["days_gene"]
    assert by_gene.concordance == pytest.approx(expected["concordance"], rel=1e-12)
    ds["score"] = ("sample", samples["risk_model"].to_numpy())
    by_name = survival.concordance(ds, "months", "event", "score", strata="er")
    expected = pd.read_csv(FIXTURES / "concordance.csv").set_index("case").loc["months_model_er"]
    assert by_name.concordance == pytest.approx(expected["concordance"], rel=1e-12)
    partial = samples["risk_model"].to_numpy().copy()
    partial[:10] = np.nan
    left = survival.concordance(None, samples["time"], samples["event"], partial)
    kept = survival.concordance(
        None, samples["time"][10:], samples["event"][10:], samples["risk_model"][10:]
    )
    assert left.n == 188 and left.concordance == kept.concordance
    assert left.std_err == pytest.approx(kept.std_err, rel=1e-14)


def _pairs_by_hand(time, event, risk, weight, case=None):
    """Every pair counted one by one, weighted by its earlier event's weight (and by the
    product of the two case weights): the pairs by category, and each sample's, weighted
    by the other sample's case weight."""
    n = time.size
    case = np.ones(n) if case is None else case
    counts, shares = np.zeros(5), np.zeros((n, 5))
    for i in np.flatnonzero(event == 1):
        for j in range(n):
            if time[j] > time[i] or (time[j] == time[i] and event[j] == 0):
                c = 0 if risk[i] > risk[j] else 1 if risk[i] < risk[j] else 2
            elif time[j] == time[i] and event[j] == 1 and j > i:
                c = 4 if risk[i] == risk[j] else 3
            else:
                continue
            counts[c] += weight[i] * case[i] * case[j]
            shares[i, c] += weight[i] * case[j]
            shares[j, c] += weight[i] * case[i]
    return counts, shares


def test_pair_counts_equal_every_pair_counted():
    """Each sample's pairs (R's influence of the fixture's strata case) and random
    cohorts with many ties in time and risk, against a count of every pair."""
    samples = _samples()
    expected = pd.read_csv(FIXTURES / "concordance_influence.csv").to_numpy()
    influence = np.zeros((len(samples), 5))
    for level in ("negative", "positive"):
        rows = np.flatnonzero(samples["er"] == level)
        _, shares = pair_counts(
            samples["months"].to_numpy(float)[rows],
            samples["event"].to_numpy(float)[rows],
            samples["risk_rounded"].to_numpy(float)[rows],
        )
        influence[rows] = shares
    np.testing.assert_array_equal(influence, expected)
    rng = np.random.default_rng(1)
    for _ in range(50):
        n = int(rng.integers(2, 40))
        time = rng.integers(1, 8, n).astype(float)
        event = (rng.random(n) < 0.6).astype(float)
        risk = rng.integers(1, 5, n).astype(float)
        counts, shares = pair_counts(time, event, risk)
        brute_counts, brute_shares = _pairs_by_hand(time, event, risk, np.ones(n))
        np.testing.assert_array_equal(counts, brute_counts)
        np.testing.assert_array_equal(shares, brute_shares)


def test_concordance_refuses_what_it_cannot_score():
    with pytest.raises(CohortexError, match="No comparable pair"):
        survival.concordance(None, [1.0, 2.0, 3.0], [0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(CohortexError, match="must be numbers"):
        survival.concordance(None, [1.0, 2.0], [1, 0], ["a", "b"])
    with pytest.raises(CohortexError, match="must be values"):
        survival.concordance(None, "time", "event", [0.1, 0.2])
    with pytest.raises(CohortexError, match="finite"):
        survival.concordance(None, [1.0, 2.0], [1, 0], [np.inf, 0.2])


WEIGHTED = pd.read_csv(FIXTURES / "concordance_weighted.csv")


@pytest.mark.parametrize("row", range(len(WEIGHTED)))
def test_time_weighted_concordance_equals_r(row):
    """R's timewt (Uno's C is "n/G2"), ymin and ymax, with tied times and risks, within
    strata."""
    expected = WEIGHTED.iloc[row]
    case = pd.read_csv(FIXTURES / "concordance.csv").set_index("case").loc[expected["case"]]
    samples = _samples()
    strata = samples[case["strata"]] if isinstance(case["strata"], str) else None
    found = survival.concordance(
        None,
        samples[case["time"]],
        samples["event"],
        samples[case["risk"]],
        strata=strata,
        time_weights=expected["timewt"],
        min_time=None if np.isnan(expected["ymin"]) else expected["ymin"],
        max_time=None if np.isnan(expected["ymax"]) else expected["ymax"],
    )
    assert found.concordance == pytest.approx(expected["concordance"], rel=1e-12)
    assert found.std_err == pytest.approx(expected["std_err"], rel=1e-10)
    for name in COUNTS:
        assert getattr(found, name) == pytest.approx(expected[name], rel=1e-12, abs=1e-12)
    assert found.time_weights == expected["timewt"]


def test_time_weights_weigh_each_pair_by_its_earlier_event():
    """Weighted pair counts against every pair counted one by one with its earlier event's
    weight, on random cohorts with many ties."""
    rng = np.random.default_rng(4)
    for _ in range(50):
        n = int(rng.integers(2, 40))
        time = rng.integers(1, 8, n).astype(float)
        event = (rng.random(n) < 0.6).astype(float)
        risk = rng.integers(1, 5, n).astype(float)
        by_time = rng.random(8) + 0.5
        weight = by_time[time.astype(int)]
        counts, shares = pair_counts(time, event, risk, weight)
        brute_counts, brute_shares = _pairs_by_hand(time, event, risk, weight)
        np.testing.assert_allclose(counts, brute_counts, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(shares, brute_shares, rtol=1e-12, atol=1e-12)


def test_time_weights_refusals():
    with pytest.raises(CohortexError, match="time_weights must be one of"):
        survival.concordance(None, [1.0, 2.0], [1, 0], [0.1, 0.2], time_weights="uno")
    with pytest.raises(CohortexError, match="censored at 1, before min_time 2"):
        survival.concordance(None, [1.0, 3.0, 4.0], [0, 1, 0], [0.1, 0.2, 0.3], min_time=2)
    with pytest.raises(CohortexError, match="up to max_time 1"):
        survival.concordance(None, [2.0, 3.0, 4.0], [1, 1, 0], [0.1, 0.2, 0.3], max_time=1)


CASE_WEIGHTED = pd.read_csv(FIXTURES / "concordance_case_weighted.csv")


@pytest.mark.parametrize("row", range(len(CASE_WEIGHTED)))
def test_case_weighted_concordance_equals_r(row):
    """R's weights (non-integer), alone and with time weights, strata and ymax."""
    expected = CASE_WEIGHTED.iloc[row]
    case = pd.read_csv(FIXTURES / "concordance.csv").set_index("case").loc[expected["case"]]
    samples = _samples()
    ds = breast_cancer()
    for name in ("months", "case_weight", case["risk"]):
        ds[name] = ("sample", samples[name].to_numpy())
    found = survival.concordance(
        ds,
        case["time"],
        "event",
        case["risk"],
        strata=case["strata"] if isinstance(case["strata"], str) else None,
        time_weights=expected["timewt"],
        max_time=None if np.isnan(expected["ymax"]) else expected["ymax"],
        weights="case_weight",
    )
    assert found.concordance == pytest.approx(expected["concordance"], rel=1e-12)
    assert found.std_err == pytest.approx(expected["std_err"], rel=1e-10)
    for name in COUNTS:
        assert getattr(found, name) == pytest.approx(expected[name], rel=1e-12, abs=1e-12)


def test_case_weights_weigh_each_pair_by_its_samples():
    """Pair counts with case weights (and time weights) against every pair counted one by
    one, on random cohorts with many ties in time, risk and both; integer case weights are
    the samples repeated (but for a repeated event's copies, which tie with each other on
    both)."""
    rng = np.random.default_rng(6)
    for _ in range(50):
        n = int(rng.integers(2, 40))
        time = rng.integers(1, 8, n).astype(float)
        event = (rng.random(n) < 0.6).astype(float)
        risk = rng.integers(1, 4, n).astype(float)
        weight = (rng.random(8) + 0.5)[time.astype(int)]
        case = rng.random(n) + 0.25
        counts, shares = pair_counts(time, event, risk, weight, case)
        brute_counts, brute_shares = _pairs_by_hand(time, event, risk, weight, case)
        np.testing.assert_allclose(counts, brute_counts, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(shares, brute_shares, rtol=1e-12, atol=1e-12)
    time = rng.integers(1, 8, 30).astype(float)
    event = (rng.random(30) < 0.6).astype(float)
    risk = rng.integers(1, 4, 30).astype(float)
    repeats = rng.integers(1, 4, 30)
    weighted = survival.concordance(None, time, event, risk, weights=repeats.astype(float))
    repeated = survival.concordance(
        None, np.repeat(time, repeats), np.repeat(event, repeats), np.repeat(risk, repeats)
    )
    assert weighted.concordance == pytest.approx(repeated.concordance, rel=1e-14)
    for name in COUNTS[:4]:
        assert getattr(weighted, name) == pytest.approx(getattr(repeated, name), rel=1e-14)


def test_case_weights_refusals():
    with pytest.raises(CohortexError, match="not positive"):
        survival.concordance(None, [1.0, 2.0], [1, 0], [0.1, 0.2], weights=[1.0, 0.0])
    with pytest.raises(CohortexError, match="missing"):
        survival.concordance(None, [1.0, 2.0], [1, 0], [0.1, 0.2], weights=[1.0, np.nan])
