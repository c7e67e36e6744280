"""Harrell's concordance against R's survival::concordance(reverse = TRUE) on GSE7390
(fixtures from tests/fixtures/make_concordance_fixtures.R): a gene's expression, rounded
values (tied risks), a Cox model's linear predictor; days and whole months (tied times);
within ER strata. And the pair counts against every pair counted one by one."""

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
        brute_counts, brute_shares = np.zeros(5), np.zeros((n, 5))
        for i in np.flatnonzero(event == 1):
            for j in range(n):
                if time[j] > time[i] or (time[j] == time[i] and event[j] == 0):
                    c = 0 if risk[i] > risk[j] else 1 if risk[i] < risk[j] else 2
                elif time[j] == time[i] and event[j] == 1 and j > i:
                    c = 4 if risk[i] == risk[j] else 3
                else:
                    continue
                brute_counts[c] += 1
                brute_shares[[i, j], c] += 1
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
