"""Multiple-testing corrections against statsmodels, and Storey's π0 against its formula."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from cohortex import CohortexError, fdr

STATSMODELS = {"bh": "fdr_bh", "by": "fdr_by", "bonferroni": "bonferroni", "holm": "holm"}


def _pvalues(seed, m=2000):
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=m)
    p[: m // 10] = rng.uniform(0, 1e-4, m // 10)  # some signal
    p[5:15] = p[5]  # ties
    p[20] = 0.0
    p[21] = 1.0
    return p


@pytest.mark.parametrize("method", list(STATSMODELS))
def test_equal_to_statsmodels(xp, method):
    p = _pvalues(1)
    expected = multipletests(p, method=STATSMODELS[method])[1]
    got = fdr.adjust(xp.asarray(p), method)
    assert type(got) is type(xp.asarray(p))  # stays on the input's device
    np.testing.assert_array_equal(np.asarray(got.get() if hasattr(got, "get") else got), expected)


@pytest.mark.parametrize("method", list(STATSMODELS))
def test_nan_stays_nan_and_is_not_counted(method):
    p = _pvalues(2, 500)
    with_nan = p.copy()
    holes = np.random.default_rng(3).choice(500, 40, replace=False)
    with_nan[holes] = np.nan
    got = fdr.adjust(with_nan, method)
    assert np.all(np.isnan(got[holes]))
    keep = ~np.isnan(with_nan)
    expected = multipletests(with_nan[keep], method=STATSMODELS[method])[1]
    np.testing.assert_allclose(got[keep], expected, rtol=1e-15, atol=0)


def test_rows_are_separate_families():
    a, b = _pvalues(4, 300), _pvalues(5, 300)
    b[:50] = np.nan
    got = fdr.adjust(np.stack([a, b]), "bh")
    np.testing.assert_array_equal(got[0], multipletests(a, method="fdr_bh")[1])
    np.testing.assert_allclose(got[1, 50:], multipletests(b[50:], method="fdr_bh")[1], rtol=1e-15)


def test_storey_fixed_lambda():
    rng = np.random.default_rng(6)
    p = np.concatenate([rng.uniform(size=800), rng.uniform(0, 0.01, 200)])
    pi0 = fdr.pi0(p, lambda_=0.5)
    assert pi0 == pytest.approx(np.mean(p >= 0.5) / 0.5)
    assert 0.7 < pi0 < 0.9  # 800 of 1000 hypotheses are null
    q = fdr.adjust(p, "storey", lambda_=0.5)
    np.testing.assert_allclose(q, np.minimum(pi0 * multipletests(p, method="fdr_bh")[1], 1))


def test_storey_bootstrap_lambda_matches_qvalue_formula():
    rng = np.random.default_rng(7)
    p = np.concatenate([rng.uniform(size=1500), rng.beta(0.2, 5, 500)])
    lambdas = np.round(np.arange(0.05, 0.951, 0.05), 2)
    # qvalue's pi0est(pi0.method = "bootstrap"), written out as in its R source
    m = p.size
    estimates = np.array([np.mean(p >= lam) / (1 - lam) for lam in lambdas])
    minpi0 = np.quantile(estimates, 0.1)
    w = np.array([np.sum(p >= lam) for lam in lambdas])
    mse = (w / (m**2 * (1 - lambdas) ** 2)) * (1 - w / m) + (estimates - minpi0) ** 2
    expected = min(estimates[mse == mse.min()].min(), 1)
    assert fdr.pi0(p) == pytest.approx(expected, rel=1e-14)
    assert 0.65 < expected < 0.85


def test_all_null_pi0_is_capped_at_one():
    p = np.random.default_rng(8).uniform(0.5, 1, 100)
    assert fdr.pi0(p, lambda_=0.4) == 1.0


def test_bad_input():
    with pytest.raises(
        CohortexError,
        match="'method' parameter of fdr.adjust\\(\\) must be one "
        "of 'bh', 'by', 'bonferroni', 'holm', 'storey', 'none'; got 'fdr'",
    ):
        fdr.adjust(np.array([0.1]), "fdr")
    with pytest.raises(CohortexError, match="must lie in \\[0, 1\\] \\(or be NaN\\); 1 do not"):
        fdr.adjust(np.array([0.1, 1.5]))
    with pytest.raises(CohortexError, match="'lambda_' parameter must be a number in \\[0, 1\\)"):
        fdr.pi0(np.array([0.1]), lambda_=1.0)
    np.testing.assert_array_equal(fdr.adjust(np.array([0.1, np.nan]), "none"), [0.1, np.nan])
