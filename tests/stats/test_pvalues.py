"""p-values on the device against mpmath (exact to the digits asked for) and SciPy."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from scipy import stats

from cohortex.stats._pvalues import f_sf, normal_two_sided_upper, t_two_sided

from conftest import to_numpy

DF = [1, 2.5, 10, 29, 30, 31.5, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e10]
T = [0, 0.01, 0.3, 0.9, 1.0, 1.5, 2, 3, 5, 8, 12, 20, 37]


def _exact_two_sided_t(t: float, df: float) -> float:
    """``1 − I_y(1/2, df/2)`` with ``y = t² / (df + t²)`` in enough digits for the tail."""
    estimate = 2 * stats.t.sf(abs(t), df)
    with mpmath.workdps(40 + int(max(0.0, -np.log10(estimate)))):
        t2 = mpmath.mpf(t) ** 2
        y = t2 / (mpmath.mpf(df) + t2)
        return float(
            1 - mpmath.betainc(mpmath.mpf(1) / 2, mpmath.mpf(df) / 2, 0, y, regularized=True)
        )


def test_t_keeps_full_precision_at_every_df(xp):
    """limma's df_total reaches 1e6–1e10: x = df / (df + t²) rounds to near 1 there."""
    t, df = np.meshgrid(T, DF)
    t, df = t.ravel(), df.ravel()
    got = to_numpy(t_two_sided(xp.asarray(t), xp.asarray(df)))
    exact = np.array([_exact_two_sided_t(a, b) for a, b in zip(t, df, strict=True)])
    np.testing.assert_allclose(got, exact, rtol=1.3e-13, atol=0)
    np.testing.assert_array_equal(to_numpy(t_two_sided(xp.asarray(-t), xp.asarray(df))), got)


def test_t_edge_values(xp):
    t = xp.asarray([np.nan, np.inf, -np.inf, 0.0, 2.0, 2.0])
    df = xp.asarray([5.0, 5.0, 1e9, 1e9, 0.0, -1.0])
    np.testing.assert_array_equal(to_numpy(t_two_sided(t, df)), [np.nan, 0, 0, 1, np.nan, np.nan])


def test_f_and_normal_equal_scipy(xp):
    f = np.array([0.0, 0.5, 1.0, 3.0, 30.0, 300.0])
    got = to_numpy(f_sf(xp.asarray(f), 3.0, 40.0))
    np.testing.assert_allclose(got, stats.f.sf(f, 3, 40), rtol=1e-13)
    z = np.array([0.0, 1.0, 5.0, 30.0])
    exact = [float(mpmath.erfc(mpmath.mpf(v) / mpmath.sqrt(2))) for v in z]
    np.testing.assert_allclose(to_numpy(normal_two_sided_upper(xp.asarray(z))), exact, rtol=1e-14)


@pytest.mark.parametrize("df", [1e6, 1e8, 1e10])
def test_old_form_was_off_at_large_df(df):
    """What the module replaced: betainc of the rounded x (kept as a check on the reference)."""
    from scipy.special import betainc

    old = betainc(df / 2, 0.5, df / (df + 4.0))
    assert abs(old / _exact_two_sided_t(2.0, df) - 1) > 1e-12
