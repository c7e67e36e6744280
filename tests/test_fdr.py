"""Multiple-testing corrections against statsmodels, Storey's q-values and π0 against R's
qvalue (fixtures made by tests/fixtures/make_qvalue_fixtures.R)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
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


QVALUE = Path(__file__).parent / "fixtures" / "qvalue"
QVALUE_CASES = ["mixture", "welch", "all_null", "tied", "strong"]
QVALUE_METHODS = {"smoother": "smoother", "bootstrap": "bootstrap", "fixed": 0.5}


@pytest.mark.parametrize("case", QVALUE_CASES)
@pytest.mark.parametrize("method", list(QVALUE_METHODS))
def test_storey_equals_r_qvalue(xp, case, method):
    table = pd.read_csv(QVALUE / f"{case}.csv")
    expected_pi0 = pd.read_csv(QVALUE / "pi0.csv").set_index("case").loc[case, method]
    p = table["p"].to_numpy()
    lambda_ = QVALUE_METHODS[method]
    got_pi0 = float(fdr.pi0(xp.asarray(p), lambda_=lambda_))
    assert got_pi0 == pytest.approx(expected_pi0, rel=1e-10, abs=0)
    q = fdr.adjust(xp.asarray(p), "storey", lambda_=lambda_)
    q = np.asarray(q.get() if hasattr(q, "get") else q)
    expected = table[f"q_{method}"].to_numpy()
    np.testing.assert_array_equal(np.isnan(q), np.isnan(expected))
    np.testing.assert_allclose(q, expected, rtol=1e-10, atol=0)


def test_storey_defaults_to_the_smoother_as_qvalue():
    p = pd.read_csv(QVALUE / "mixture.csv")["p"].to_numpy()
    assert fdr.pi0(p) == fdr.pi0(p, lambda_="smoother") != fdr.pi0(p, lambda_="bootstrap")
    np.testing.assert_array_equal(
        fdr.adjust(p, "storey"), fdr.adjust(p, "storey", lambda_="smoother")
    )


def test_smoother_refuses_a_nonpositive_estimate_as_qvalue():
    # nothing above 0.3: the spline through the empty upper bins goes below 0 (qvalue stops on
    # these p-values too, when smooth.spline meets the NA of its empty bins)
    p = np.r_[np.full(990, 1e-6), np.linspace(0.05, 0.3, 10)]
    with pytest.raises(CohortexError, match=r"π0 smoother gives -0.000309 \(not positive\)"):
        fdr.pi0(p)


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
    for bad in (1.0, "spline"):
        with pytest.raises(CohortexError, match="'lambda_' parameter must be 'smoother', 'boot"):
            fdr.pi0(np.array([0.1]), lambda_=bad)
    np.testing.assert_array_equal(fdr.adjust(np.array([0.1, np.nan]), "none"), [0.1, np.nan])


def test_every_function_names_its_bad_correction():
    """One check for every function's ``fdr=``: the message names the function and the choices."""
    from cohortex import CohortexError, genesets, survival

    with pytest.raises(CohortexError, match=r"The 'fdr' parameter of fit\(\) must be one of 'bh'"):
        fdr.check_method("fdr", "fit()")
    ranking = pd.Series(np.linspace(-2.0, 2.0, 30), index=[f"g{i}" for i in range(30)])
    sets = genesets.GeneSets.from_dict({"s": ["g1", "g2", "g3"]})
    with pytest.raises(CohortexError, match=r"'fdr' parameter of camera_pr\(\)"):
        genesets.camera_pr(ranking, sets, fdr="BH")
    with pytest.raises(CohortexError, match=r"'fdr' parameter of cox_zph\(\)"):
        survival.cox_zph(np.ones((4, 2)), [1.0, 2.0, 3.0, 4.0], [1, 0, 1, 1], fdr="qvalue")


@pytest.mark.parametrize("case", QVALUE_CASES)
def test_lfdr_equals_r_qvalue(xp, case):
    """qvalue(p)$lfdr, with the bootstrap's π0, with adj = 1, and neither truncated nor
    monotone; missing p-values stay missing (the tied case), π0 capped at 1 (all null)."""
    p = pd.read_csv(QVALUE / f"{case}.csv")["p"].to_numpy()
    expected = pd.read_csv(QVALUE / f"{case}_lfdr.csv")
    pi0 = float(fdr.pi0(p))
    runs = {
        "lfdr": fdr.lfdr(xp.asarray(p)),
        "bootstrap": fdr.lfdr(xp.asarray(p), lambda_="bootstrap"),
        "adj1": fdr.lfdr(xp.asarray(p), pi0=pi0, adjust=1.0),
        "raw": fdr.lfdr(xp.asarray(p), pi0=pi0, truncate=False, monotone=False),
    }
    for column, got in runs.items():
        assert type(got) is type(xp.asarray(p))  # on the p-values' device
        got = np.asarray(got.get() if hasattr(got, "get") else got)
        theirs = expected[column].to_numpy()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(theirs))
        np.testing.assert_allclose(got, theirs, rtol=1e-10, atol=1e-12, err_msg=column)


def test_lfdr_refuses_bad_input():
    with pytest.raises(CohortexError, match="at least four p-values, each in"):
        fdr.lfdr(np.array([0.1, 0.2, 1.5, 0.3, 0.4]))
    with pytest.raises(CohortexError, match="1-D"):
        fdr.lfdr(np.full((2, 5), 0.5))
    with pytest.raises(CohortexError, match="'pi0' parameter of lfdr"):
        fdr.lfdr(np.linspace(0.01, 1, 50), pi0=1.5)
