"""Classic edgeR against R (fixtures from make_exact_test_fixtures.R, edgeR 3.40):
estimateDisp without a design, exactTest, and their parts — equalizeLibSizes' pseudo-counts,
the conditional likelihood and R's optimize."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest

from cohortex import CohortexError, de
from cohortex.de._voom import count_sums
from cohortex.stats._brent import brent_minimize
from cohortex.stats._qcml import conditional_log_likelihood, equalize_lib_sizes

from conftest import fixture_cohort

EDGER = Path(__file__).parent.parent / "fixtures" / "edger"
# The classic likelihoods are sums of lgamma(y + 1/δ) over pseudo-counts: at the smallest
# dispersions (1/δ ~ 10⁴) terms of ~10⁵ whose rounding (SciPy's gammaln against R's
# lgammafn) leaves 1e-9 of a flat likelihood; its maximum, a tagwise dispersion of ~10⁻³,
# moves by up to 3e-6 of itself, and the genes' fold changes and p-values by 1e-8.
CLASSIC = 1e-8


@pytest.fixture(scope="module")
def cohort():
    return fixture_cohort(EDGER / "ql_counts.csv", EDGER / "ql_samples.csv", scale="counts")


@pytest.fixture(scope="module")
def library(cohort):
    counts = cohort["expression"].values
    return count_sums(cohort, da.from_array(counts), "tmm", "test").library


def test_pseudo_counts_and_conditional_likelihood_equal_edger(cohort, library):
    counts = cohort["expression"].values
    codes = np.unique(cohort["condition"].values, return_inverse=True)[1]
    pseudo = equalize_lib_sizes(counts, codes, library, np.full(counts.shape[1], 0.1))
    theirs = pd.read_csv(EDGER / "exact_pseudo.csv", index_col=0).to_numpy().T
    np.testing.assert_allclose(pseudo, theirs, rtol=1e-12, atol=1e-10)
    likelihood = pd.read_csv(EDGER / "exact_cond_loglik.csv")
    for delta in (0.05, 0.5):
        ours = conditional_log_likelihood(pseudo, codes, delta)
        # R's rowSums adds in long double: a gene without counts sums to 0 there, to 3e-13
        np.testing.assert_allclose(ours, likelihood[f"delta_{delta:g}"], rtol=1e-12, atol=1e-12)
    selected = counts.sum(axis=0) >= 5
    best = brent_minimize(
        lambda d: -conditional_log_likelihood(pseudo[:, selected], codes, d).sum(),
        1e-4,
        100 / 101,
        1e-6,
    )
    # R's optimize on the same function: the same steps, the parabolas' vertices moved by
    # the likelihood's rounding
    assert best == pytest.approx(pd.read_csv(EDGER / "exact_optimize.csv")["maximum"][0], rel=1e-8)


def test_brent_minimize_is_rs_optimize():
    """R 4.2: optimize(function(x) (x - 1/3)^2 + sin(5 * x), c(-1, 2), tol = 1e-8)$minimum
    is 0.89699388827154902 (a local minimum: Brent's steps decide which), and
    optimize(function(x) (x - 0.7)^2, c(0, 1), tol = 1e-10)$minimum 0.69999999999999996."""
    x = brent_minimize(lambda x: (x - 1 / 3) ** 2 + np.sin(5 * x), -1.0, 2.0, 1e-8)
    assert x == pytest.approx(0.89699388827154902, rel=1e-15)
    assert brent_minimize(lambda x: (x - 0.7) ** 2, 0.0, 1.0, 1e-10) == pytest.approx(
        0.69999999999999996, rel=1e-15
    )


def test_estimate_dispersion_classic_mode_equals_estimate_disp(cohort):
    ours = de.estimate_dispersion(cohort, group="condition")
    theirs = pd.read_csv(EDGER / "exact_dispersion.csv")
    scalars = pd.read_csv(EDGER / "exact_common.csv")
    assert ours.attrs["common_dispersion"] == pytest.approx(scalars["common"][0], rel=1e-10)
    assert ours.attrs["span"] == pytest.approx(scalars["span"][0], rel=1e-14)
    assert ours.attrs["prior_df"] == pytest.approx(scalars["prior_df"][0], rel=1e-9)
    np.testing.assert_allclose(ours["ave_log_cpm"], theirs["ave_log_cpm"], rtol=1e-12)
    np.testing.assert_allclose(ours["trended_dispersion"], theirs["trended"], rtol=1e-9)
    np.testing.assert_allclose(ours["tagwise_dispersion"], theirs["tagwise"], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("pair", [("a", "b"), ("b", "c"), ("c", "a")])
def test_exact_test_equals_edger(cohort, pair):
    """Condition c has genes without a count (fold changes from the prior count alone) and
    genes above the big count (the beta approximation)."""
    ours = de.exact_test(cohort, "condition", pair)
    theirs = pd.read_csv(EDGER / f"exact_{pair[0]}{pair[1]}.csv")
    np.testing.assert_allclose(ours["log2fc"], theirs["logFC"], rtol=CLASSIC, atol=1e-10)
    np.testing.assert_allclose(ours["pvalue"], theirs["PValue"], rtol=CLASSIC, atol=1e-14)
    np.testing.assert_allclose(ours["mean_expression"], theirs["logCPM"], rtol=1e-12)
    np.testing.assert_allclose(
        ours["log10_pvalue"], np.log10(theirs["PValue"]), rtol=CLASSIC, atol=1e-10
    )
    assert ours["group"].item() == pair[1] and ours["reference"].item() == pair[0]


def test_exact_test_at_a_given_dispersion_equals_edger(cohort):
    """At a given dispersion nothing is estimated: the exact test's own numbers to 1e-11."""
    ours = de.exact_test(cohort, "condition", ("a", "b"), dispersion=0.2)
    theirs = pd.read_csv(EDGER / "exact_ab_given.csv")
    np.testing.assert_allclose(ours["log2fc"], theirs["logFC"], rtol=1e-11)
    np.testing.assert_allclose(ours["pvalue"], theirs["PValue"], rtol=1e-10, atol=1e-15)


def test_exact_test_refuses_what_it_cannot_test(cohort):
    with pytest.raises(CohortexError, match="two different groups"):
        de.exact_test(cohort, "condition", ("a", "z"))
    with pytest.raises(CohortexError, match="> 0"):
        de.exact_test(cohort, "condition", dispersion=0.0)
    with pytest.raises(CohortexError, match="one per gene"):
        de.exact_test(cohort, "condition", dispersion=np.full(5, 0.1))
    with pytest.raises(CohortexError, match="'tagwise', 'trended'"):
        de.exact_test(cohort, "condition", dispersion="median")
    with pytest.raises(CohortexError, match="raw counts"):
        de.exact_test(cohort.assign_attrs(scale="log2"), "condition")
    single = np.arange(24).astype(str)  # every sample its own group
    with pytest.raises(CohortexError, match="no residual degrees of freedom"):
        de.exact_test(cohort, single, ("0", "1"))
    with pytest.raises(CohortexError, match="a design or a group"):
        de.estimate_dispersion(cohort, "~ condition", group="condition")
