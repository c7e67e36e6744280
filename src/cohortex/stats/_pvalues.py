"""p-values on the device, in float64, without underflow where SciPy gives a non-zero p.

CuPy has no Student-t survival function, so both distributions go through the regularized
incomplete beta function, which CuPy and SciPy both provide and which stays accurate in the far
tail (it computes the small tail directly, never as 1 - something)::

    two-sided t:  p = I_x(df / 2, 1 / 2),  x = df / (df + t²)
    F upper tail: p = I_{d2 / (d2 + d1 F)}(d2 / 2, d1 / 2)
    two-sided z:  p = erfc(z / √2) for z ≥ 0 (callers clip at 1)

For large df (limma's ``df_total`` reaches 10⁶–10⁹) ``x`` lies so close to 1 that rounding it
costs digits (4e-7 relative at df = 10¹⁰), and CuPy's ``betainc`` (Cephes, at most 300
continued-fraction terms) converges poorly there. The t p-value therefore follows the regions
of ACM TOMS 708 (DiDonato & Morris 1992, as R's ``pt``/``pbeta`` do), computed from
``y = t² / (df + t²)`` directly, which is exact to rounding:

* small ``t`` (``y < 0.1`` and ``y df / 2 ≤ 0.49``): ``p = 1 − I_y(1/2, df/2)``, a power
  series in the small ``y`` (``p ≥ 0.3`` there, so the difference loses nothing);
* ``df ≥ 30`` and ``y < 0.29``: TOMS 708's asymptotic expansion ``bgrat`` for ``I_x(a, b)``
  with large ``a = df/2`` and ``b = 1/2``, in ``ln x = log1p(−y)`` and ``erfcx``;
* elsewhere ``x`` is not close to 1 and ``betainc`` is used as it is.

Against mpmath over df = 1 … 10¹⁰ and |t| ≤ 37: relative error ≤ 1.3e-13, the largest in
the far tail (p ≈ 1e-299, where SciPy's own ``t.sf`` is off by 7e-14); the plain ``betainc``
of the rounded ``x`` is off by up to 4e-7 (tests/stats/test_pvalues.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import namespace, special, to_host

__all__ = [
    "f_sf",
    "log_f_sf",
    "log_normal_two_sided_upper",
    "log_t_two_sided",
    "log_t_upper",
    "normal_two_sided_upper",
    "normal_upper",
    "t_two_sided",
    "t_upper",
]

# below this a p-value is recomputed in logs: it has underflowed to 0 or to a denormal that has
# lost digits; above it, ln p is the log of the p-value itself
_LOG_BELOW = 1e-300
# terms of the power series of ln I_x(a, b) where it is needed: enough for x ≤ 0.99985
_SERIES_TERMS = 250_000


def t_two_sided(t: Any, df: Any) -> Any:
    """Two-sided p-value of Student's t with ``df`` degrees of freedom (arrays broadcast).

    NaN where ``t`` or ``df`` is NaN or ``df <= 0``. See the module notes for the regions.
    """
    xp = namespace(t)
    t = xp.asarray(t, dtype=xp.float64)
    df = xp.asarray(df, dtype=xp.float64)
    functions = special(xp)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        t2 = t * t
        x = df / (df + t2)
        y = t2 / (df + t2)
        a = df / 2.0
        small_t = (y < 0.1) & (y * a <= 0.49)
        expansion = (a >= 15.0) & (y < 0.29) & ~small_t
        p = xp.where(
            small_t,
            1.0 - functions.betainc(0.5, a, y),
            xp.where(expansion, xp.exp(_log_bgrat_half(a, x, y, xp)), functions.betainc(a, 0.5, x)),
        )
    return xp.where(df > 0, p, xp.nan)


def t_upper(t: Any, df: Any) -> Any:
    """Upper tail ``P(T > t)`` of Student's t (arrays broadcast), from the two-sided value:
    full relative precision for t ≥ 0, where the tail is small."""
    xp = namespace(t)
    t = xp.asarray(t, dtype=xp.float64)
    half = t_two_sided(t, df) / 2.0
    return xp.where(t >= 0, half, 1.0 - half)


# TOMS 708's bgrat for b = 1/2: the coefficients d_n of its series depend on b and n only
_BGRAT_TERMS = 30
_BGRAT_EPS = 15 * 2.0 * np.finfo(np.float64).eps / 2.0  # bratio's 15 · eps, eps = 2^-52


def _bgrat_coefficients(b: float) -> list[float]:
    c: list[float] = []
    d: list[float] = []
    cn, n2 = 1.0, 0.0
    for n in range(1, _BGRAT_TERMS + 1):
        n2 += 2.0
        cn /= n2 * (n2 + 1.0)
        c.append(cn)
        s, coefficient = 0.0, b - n
        for i in range(1, n):
            s += coefficient * c[i - 1] * d[n - 1 - i]
            coefficient += b
        d.append((b - 1.0) * cn + s / n)
    return d


_BGRAT_D = _bgrat_coefficients(0.5)


def _log_bgrat_half(a: Any, x: Any, y: Any, xp: Any) -> Any:
    """``ln I_x(a, 1/2)`` for ``a ≥ 15`` by the expansion of TOMS 708's ``bgrat``
    (``y = 1 − x``); in logs, so that it stays finite where ``I_x`` underflows.

    Every element runs the same 30 terms; an element stops adding terms once its own term is
    below ``15 eps`` of its sum, as ``bgrat`` does (the series is asymptotic).
    """
    b = 0.5
    nu = a - 0.25  # a + (b − 1) / 2
    ln_x = xp.where(y > 0.375, xp.log(x), xp.log1p(-y))
    z = -nu * ln_x
    # r = exp(−z) z^b / Γ(b); u = r Γ(a) / Γ(a + b) / nu^b, in logs
    log_r = -z + b * xp.log(z) - 0.5 * np.log(np.pi)
    log_u = log_r - (_log_gamma_ratio_half(a, xp) + b * xp.log(nu))
    sqrt_z = xp.sqrt(z)
    j = np.sqrt(np.pi) * special(xp).erfcx(sqrt_z) / sqrt_z  # Q(1/2, z) / r
    total = j
    v = 0.25 / (nu * nu)
    t2 = 0.25 * ln_x * ln_x
    power = xp.ones_like(z)
    n2 = 0.0
    active = xp.ones(z.shape, dtype=bool)
    for n in range(_BGRAT_TERMS):
        bp2n = b + n2
        j = (bp2n * (bp2n + 1.0) * j + (z + bp2n + 1.0) * power) * v
        n2 += 2.0
        power = power * t2
        term = _BGRAT_D[n] * j
        total = xp.where(active, total + term, total)
        active = active & (xp.abs(term) > _BGRAT_EPS * total)
    return log_u + xp.log(total)


def _log_gamma_ratio_half(a: Any, xp: Any) -> Any:
    """``ln Γ(a) − ln Γ(a + 1/2)`` for ``a ≥ 8`` without cancellation (TOMS 708's algdiv)."""
    b = 0.5
    h = b / a
    c = h / (h + 1.0)
    x = 1.0 / (h + 1.0)
    d = a + (b - 0.5)
    x2 = x * x
    s3 = x + x2 + 1.0
    s5 = x + x2 * s3 + 1.0
    s7 = x + x2 * s5 + 1.0
    s9 = x + x2 * s7 + 1.0
    s11 = x + x2 * s9 + 1.0
    t = 1.0 / (a * a)
    w = (
        (
            (
                (-0.00165322962780713 * s11 * t + 8.37308034031215e-4 * s9) * t
                - 5.9520293135187e-4 * s7
            )
            * t
            + 7.9365066682539e-4 * s5
        )
        * t
        - 0.00277777777760991 * s3
    ) * t + 0.0833333333333333
    w = w * c / a
    u = d * xp.log1p(h)
    v = b * (xp.log(a) - 1.0)
    return xp.where(u > v, (w - v) - u, (w - u) - v)


def f_sf(f: Any, dfn: Any, dfd: Any) -> Any:
    """Upper-tail p-value of the F distribution (arrays broadcast); NaN for NaN input."""
    xp = namespace(f)
    f = xp.asarray(f, dtype=xp.float64)
    dfn = xp.asarray(dfn, dtype=xp.float64)
    dfd = xp.asarray(dfd, dtype=xp.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = dfd / (dfd + dfn * f)
        p = special(xp).betainc(dfd / 2.0, dfn / 2.0, x)
        # infinite denominator df: the chi-square limit, P(χ²_dfn > dfn · F)
        p = xp.where(xp.isinf(dfd), special(xp).gammaincc(dfn / 2.0, dfn * f / 2.0), p)
    return xp.where((dfn > 0) & (dfd > 0), p, xp.nan)


def normal_two_sided_upper(z: Any) -> Any:
    """``2 · P(Z > z) = erfc(z / √2)``, not folded: above 1 for negative z (callers clip)."""
    xp = namespace(z)
    return special(xp).erfc(xp.asarray(z, dtype=xp.float64) / np.sqrt(2.0))


def normal_upper(z: Any) -> Any:
    """``P(Z > z) = erfc(z / √2) / 2``, in full relative precision for either sign of z."""
    return normal_two_sided_upper(z) / 2.0


def log_t_two_sided(t: Any, df: Any) -> Any:
    """``ln`` of the two-sided t p-value, finite where the p-value underflows.

    Where ``p ≥ 1e-300``, ``ln p``; below, the same regions in logs: TOMS 708's ``bgrat``
    expansion (``df ≥ 30``, ``y < 0.29``), otherwise the power series of ``I_x(df/2, 1/2)``
    (``x = df / (df + t²)`` is then at most 0.71, or ``x^{df/2}`` could not underflow).
    """
    xp = namespace(t)
    t = xp.asarray(t, dtype=xp.float64)
    df = xp.asarray(df, dtype=xp.float64)
    p = t_two_sided(t, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = xp.log(p)
    deep = xp.flatnonzero((p < _LOG_BELOW).ravel())
    if int(deep.size) == 0:
        return log_p
    t_deep = xp.broadcast_to(t, p.shape).reshape(-1)[deep]
    df_deep = xp.broadcast_to(df, p.shape).reshape(-1)[deep]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        t2 = t_deep * t_deep
        x = df_deep / (df_deep + t2)
        y = t2 / (df_deep + t2)
        a = df_deep / 2.0
        expansion = (a >= 15.0) & (y < 0.29)
        # ln x without forming t² (it overflows for |t| > 1e154)
        log_x = xp.log(df_deep) - 2.0 * xp.log(xp.abs(t_deep)) - xp.log1p(df_deep / t2)
        values = xp.where(
            expansion,
            _log_bgrat_half(xp.where(expansion, a, 15.0), x, y, xp),
            _log_betainc_series(a, xp.full_like(a, 0.5), x, log_x, xp),
        )
    log_p.reshape(-1)[deep] = values
    return log_p


def log_t_upper(t: Any, df: Any) -> Any:
    """``ln P(T > t)``, finite where the tail underflows (t far above 0)."""
    xp = namespace(t)
    t = xp.asarray(t, dtype=xp.float64)
    log_two_sided = log_t_two_sided(t, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = xp.log1p(-xp.exp(log_two_sided) / 2.0)
    return xp.where(t >= 0, log_two_sided - np.log(2.0), lower)


def log_f_sf(f: Any, dfn: Any, dfd: Any) -> Any:
    """``ln`` of the F upper-tail p-value, finite where it underflows (finite ``dfd``): the
    power series of ``I_x(dfd/2, dfn/2)``, ``x = dfd / (dfd + dfn F)``."""
    xp = namespace(f)
    f = xp.asarray(f, dtype=xp.float64)
    dfn = xp.asarray(dfn, dtype=xp.float64)
    dfd = xp.asarray(dfd, dtype=xp.float64)
    p = f_sf(f, dfn, dfd)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = xp.log(p)
    deep = xp.flatnonzero(((p < _LOG_BELOW) & xp.isfinite(dfd)).ravel())
    if int(deep.size) == 0:
        return log_p
    f_deep = xp.broadcast_to(f, p.shape).reshape(-1)[deep]
    dfn_deep = xp.broadcast_to(dfn, p.shape).reshape(-1)[deep]
    dfd_deep = xp.broadcast_to(dfd, p.shape).reshape(-1)[deep]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        x = dfd_deep / (dfd_deep + dfn_deep * f_deep)
        spread = dfn_deep * f_deep
        log_x = xp.log(dfd_deep) - xp.log(dfn_deep) - xp.log(f_deep) - xp.log1p(dfd_deep / spread)
        values = _log_betainc_series(dfd_deep / 2.0, dfn_deep / 2.0, x, log_x, xp)
    log_p.reshape(-1)[deep] = values
    return log_p


def log_normal_two_sided_upper(z: Any) -> Any:
    """``ln erfc(z / √2)`` (``ln`` of :func:`normal_two_sided_upper`), finite for any z:
    ``ln erfcx(u) − u²`` for ``u = z / √2 ≥ 0``."""
    xp = namespace(z)
    u = xp.asarray(z, dtype=xp.float64) / np.sqrt(2.0)
    functions = special(xp)
    with np.errstate(divide="ignore", invalid="ignore"):
        return xp.where(
            u >= 0, xp.log(functions.erfcx(xp.maximum(u, 0.0))) - u * u, xp.log(functions.erfc(u))
        )


def _log_betainc_series(a: Any, b: Any, x: Any, log_x: Any, xp: Any) -> Any:
    """``ln I_x(a, b)`` from ``I_x(a, b) = x^a (1 − x)^b / (a B(a, b)) · Σ_n (a + b)_n /
    (a + 1)_n x^n``, for small ``I_x`` (the terms fall by about ``x`` each); ``log_x`` is
    ``ln x``, computed by the caller where ``x`` itself underflows."""
    functions = special(xp)
    head = a * log_x + b * xp.log1p(-x) - xp.log(a) - functions.betaln(a, b)
    # one reduction before the loop: the terms needed for the slowest-falling element
    finite = xp.isfinite(x)
    largest = float(
        to_host(xp.max(xp.where(finite, x * xp.maximum(1.0, (a + b) / (a + 1.0)), 0.0)))
    )
    if largest <= 0.0:
        terms = 1
    elif largest >= 1.0:
        terms = _SERIES_TERMS
    else:
        terms = min(_SERIES_TERMS, int(np.ceil(np.log(1e-17) / np.log(largest))) + 2)
    term = xp.ones_like(x)
    total = xp.ones_like(x)
    for n in range(terms):
        term = term * ((a + b + n) / (a + 1.0 + n) * x)
        total = total + term
    return head + xp.log(total)
