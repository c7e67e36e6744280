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


def _log_betainc(a: float, b: float, x_numerator: float, x_denominator: float) -> float:
    """``ln I_x(a, b)`` with ``x = numerator / denominator`` in mpmath (no underflow)."""
    with mpmath.workdps(60):
        x = mpmath.mpf(x_numerator) / mpmath.mpf(x_denominator)
        value = mpmath.betainc(mpmath.mpf(a), mpmath.mpf(b), 0, x, regularized=True)
        return float(mpmath.log(value))


def _log_t_two_sided(t: float, df: float) -> float:
    """``ln P(|T| > t)`` in mpmath: ``betainc`` where its series converges, otherwise the
    density integrated from t on a grid scaled to its decay (they agree to 35 digits where both
    run)."""
    try:
        with mpmath.workdps(60):
            return _log_betainc(df / 2, 0.5, df, mpmath.mpf(df) + mpmath.mpf(t) ** 2)
    except mpmath.libmp.libhyper.NoConvergence:
        pass
    with mpmath.workdps(40):
        t, nu = mpmath.mpf(t), mpmath.mpf(df)
        c = (
            mpmath.loggamma((nu + 1) / 2)
            - mpmath.loggamma(nu / 2)
            - mpmath.log(mpmath.sqrt(nu * mpmath.pi))
        )
        top = c - (nu + 1) / 2 * mpmath.log1p(t * t / nu)
        h = (nu + t * t) / ((nu + 1) * t)  # the scale on which the density falls by e

        def density(s):
            return mpmath.exp(c - (nu + 1) / 2 * mpmath.log1p(s * s / nu) - top)

        grid = [t + k * h for k in (0, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 512, 4096)]
        return float(mpmath.log(2 * mpmath.quad(density, [*grid, mpmath.inf])) + top)


# (t, df) pairs whose p underflows float64 (or falls to a denormal), in both regions: the bgrat
# expansion (df ≥ 30, t² < 0.41 df) and the power series (t² ≥ 0.41 df, or df < 30)
DEEP_T = [
    (40, 1e4),
    (60, 5e4),
    (200, 5e4),
    (400, 1e6),
    (1e3, 2e3),
    (1e8, 50),
    (1e50, 3),
    (1e160, 1),
]


def test_log_t_is_finite_and_exact_where_p_underflows(xp):
    from cohortex.stats._pvalues import log_t_two_sided, log_t_upper

    t = np.array([a for a, _ in DEEP_T] + [2.0, 5.0])
    df = np.array([b for _, b in DEEP_T] + [10.0, 1e6])
    got = to_numpy(log_t_two_sided(xp.asarray(t), xp.asarray(df)))
    exact = [_log_t_two_sided(a, d) for a, d in zip(t, df, strict=True)]
    assert np.all(to_numpy(t_two_sided(xp.asarray(t[:6]), xp.asarray(df[:6]))) < 1e-300)
    np.testing.assert_allclose(got, exact, rtol=1e-12)
    # one-sided: the small tail in logs, the large one as ln(1 − p/2)
    upper = to_numpy(log_t_upper(xp.asarray(np.r_[t, -2.0]), xp.asarray(np.r_[df, 10.0])))
    np.testing.assert_allclose(upper[:-1], np.asarray(exact) - np.log(2), rtol=1e-12)
    assert upper[-1] == pytest.approx(np.log(stats.t.sf(-2.0, 10.0)), rel=1e-13)


def test_log_f_and_log_normal_where_p_underflows(xp):
    from cohortex.stats._pvalues import log_f_sf, log_normal_two_sided_upper

    f = np.array([1e4, 300.0, 1e3, 2.0])
    dfn = np.array([3.0, 2.0, 9.0, 3.0])
    dfd = np.array([5e4, 1e4, 200.0, 50.0])
    got = to_numpy(log_f_sf(xp.asarray(f), xp.asarray(dfn), xp.asarray(dfd)))
    exact = [_log_betainc(d / 2, n / 2, d, d + n * v) for v, n, d in zip(f, dfn, dfd, strict=True)]
    np.testing.assert_allclose(got, exact, rtol=1e-12)
    z = np.array([0.0, 1.0, 8.0, 40.0, 1e3, -3.0])
    with mpmath.workdps(50):
        exact_z = [float(mpmath.log(mpmath.erfc(mpmath.mpf(v) / mpmath.sqrt(2)))) for v in z]
    np.testing.assert_allclose(
        to_numpy(log_normal_two_sided_upper(xp.asarray(z))), exact_z, rtol=1e-13
    )
