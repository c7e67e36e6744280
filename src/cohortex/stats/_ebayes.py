"""limma's empirical Bayes (Smyth 2004; ``squeezeVar``, ``fitFDist``, ``fitFDistRobustly``,
``eBayes``), step for step.

The hyperparameters come from one value per gene, so they are estimated on the host in
float64; the moderated statistics are then computed on the coefficients' device (``xp``).

Prior (``fit_f_dist``): with residual variances s² on d degrees of freedom (one d for all
genes or one per gene), ``e = log s² − ψ(d/2) + log(d/2)``; ``d0 = 2 ψ₁⁻¹(var(e) − mean ψ₁(d/2))``
and ``s0² = exp(mean(e) + ψ(d0/2) − log(d0/2))``. With a covariate (``trend``: the genes'
average log-expression) the mean of e is a natural cubic spline in it (``splines::ns`` with 1–4
degrees of freedom by the number of genes) and s0² is one value per gene. When var(e) leaves
nothing for the prior, d0 = ∞ and s0² is the mean variance (the trend itself with a
covariate).

Robust prior (``fit_f_dist_robustly``, Phipson et al. 2016): the log-variances are Winsorised
(5% low, 10% high), their mean and variance matched to those of a Winsorised log-F
distribution (128-point Gauss–Legendre quadrature, Brent's root finder as R's ``uniroot``),
and genes whose variance is an outlier against that prior get a smaller prior df. With a
covariate the log-variances are centred on limma's ``loessFit`` trend (R's ``lowess``, span 0.4,
3 robustness iterations) instead of their trimmed mean.

Posterior: ``s²_post = (d s² + d0 s0²) / (d + d0)``; moderated t on ``min(d + d0, Σ d)``
degrees of freedom; the B-statistic with the coefficients' prior variance from ``tmixture``
(proportion 0.01, limits 0.1² and 4² over the median prior variance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats

from .._backend import namespace, to_host
from .._errors import CohortexError
from ._lowess import lowess, tied_means
from ._spline import natural_spline_basis

__all__ = [
    "Prior",
    "ebayes",
    "fit_f_dist",
    "fit_f_dist_robustly",
    "squeeze_var",
    "tmixture",
    "trigamma_inverse",
]


@dataclass
class Prior:
    """The fitted prior and the squeezed variances.

    Attributes
    ----------
    s2_prior : float or ndarray of shape (n_genes,)
        Per gene with a trend.
    df_prior : float or ndarray of shape (n_genes,)
        Per gene when robust (outliers get less).
    s2_post : ndarray of shape (n_genes,)
    """

    s2_prior: float | np.ndarray
    df_prior: float | np.ndarray
    s2_post: np.ndarray


def trigamma_inverse(x: float) -> float:
    """Solve ψ₁(y) = x for y > 0 by Newton's method (limma's ``trigammaInverse``)."""
    if x > 1e7:
        return 1.0 / np.sqrt(x)
    if x < 1e-6:
        return 1.0 / x
    y = 0.5 + 1.0 / x
    for _ in range(50):
        tri = special.polygamma(1, y)
        step = tri * (1.0 - tri / x) / special.polygamma(2, y)
        y += step
        if -step / y < 1e-8:
            break
    return float(y)


def fit_f_dist(
    x: np.ndarray, df1: float | np.ndarray, covariate: np.ndarray | None = None
) -> tuple[float | np.ndarray, float]:
    """limma's ``fitFDist``: the scale s0² and df d0 of the prior of the variances ``x``.

    Returns
    -------
    scale : float, or ndarray of shape (n,) with a covariate
    df2 : float
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    per_gene = np.ndim(df1) > 0
    df1_all = np.broadcast_to(np.asarray(df1, dtype=np.float64), x.shape)
    ok = np.isfinite(df1_all) & (df1_all > 1e-15) & np.isfinite(x) & (x > -1e-15)
    n_ok = int(ok.sum())
    if n_ok == 0:
        return (np.nan, np.nan)
    if n_ok == 1:
        return (float(x[ok][0]) if covariate is None else np.full(n, x[ok][0]), 0.0)
    if covariate is not None:
        spline_df = 1 + (n_ok >= 3) + (n_ok >= 6) + (n_ok >= 30)
        spline_df = min(spline_df, np.unique(covariate[ok]).size)
        if spline_df < 2:
            scale, df2 = fit_f_dist(x, df1)
            return np.full(n, scale), df2
    values = np.maximum(x[ok], 0.0)
    df_ok = df1_all[ok] if per_gene else float(np.asarray(df1))
    median = float(np.median(values))
    if median == 0:
        median = 1.0  # limma warns that eBayes is unreliable then
    values = np.maximum(values, 1e-5 * median)
    e = np.log(values) - special.digamma(np.asarray(df_ok) / 2.0) + np.log(np.asarray(df_ok) / 2.0)
    if covariate is None:
        e_mean: float | np.ndarray = float(np.mean(e))
        e_var = float(np.sum((e - e_mean) ** 2)) / (n_ok - 1)
    else:
        basis = natural_spline_basis(covariate[ok], spline_df)
        coef, *_ = np.linalg.lstsq(basis, e, rcond=None)
        rank = np.linalg.matrix_rank(basis)
        e_var = float(np.sum((e - basis @ coef) ** 2)) / (n_ok - rank)
        e_mean = natural_spline_basis(covariate[ok], spline_df, at=covariate) @ coef
    e_var -= float(np.mean(special.polygamma(1, np.asarray(df_ok) / 2.0)))
    if e_var > 0:
        df2 = 2.0 * trigamma_inverse(e_var)
        scale = np.exp(e_mean + special.digamma(df2 / 2.0) - np.log(df2 / 2.0))
    else:
        df2 = np.inf
        scale = float(np.mean(values)) if covariate is None else np.exp(e_mean)
    return (float(scale) if covariate is None else np.asarray(scale)), float(df2)


def fit_f_dist_robustly(
    x: np.ndarray,
    df1: float | np.ndarray,
    covariate: np.ndarray | None = None,
    winsor_tail_p: tuple[float, float] = (0.05, 0.1),
) -> tuple[float | np.ndarray, float, np.ndarray]:
    """limma's ``fitFDistRobustly``.

    With a ``covariate`` (``trend``) the log-variances' trend is limma's ``loessFit``
    without weights, i.e. R's ``lowess`` with span 0.4 and 3 robustness iterations.

    Returns
    -------
    scale : float, or ndarray of shape (n,) with a covariate
    df2 : float
        The prior df of the genes that are not outliers.
    df2_shrunk : ndarray of shape (n,)
        Each gene's prior df, smaller for outlying variances.
    """
    x = np.array(x, dtype=np.float64)
    n = x.size
    if covariate is not None:
        covariate = np.asarray(covariate, dtype=np.float64)
        if covariate.shape != x.shape or not np.isfinite(covariate).all():
            raise CohortexError("robust eBayes: the trend's covariate must be finite, per gene.")
    if n < 2:
        return np.nan, np.nan, np.full(n, np.nan)
    if n == 2:
        scale, df2 = fit_f_dist(x, df1, covariate)
        return scale, df2, np.full(n, df2)
    df1_all = np.broadcast_to(np.asarray(df1, dtype=np.float64), x.shape)
    ok = ~np.isnan(x) & np.isfinite(df1_all) & (df1_all > 1e-6)
    if not ok.all():
        scale, df2, shrunk_ok = fit_f_dist_robustly(
            x[ok],
            df1_all[ok] if np.ndim(df1) > 0 else df1,
            None if covariate is None else covariate[ok],
            winsor_tail_p,
        )
        shrunk = x.copy()
        shrunk[ok] = shrunk_ok
        shrunk[~ok] = df2
        if covariate is None:
            return scale, df2, shrunk
        # R's approx(rule = 2, ties = mean) of log scale over the covariate, as limma
        full = np.empty(n)
        full[ok] = scale
        order = np.argsort(covariate[ok], kind="stable")
        knots, values = tied_means(covariate[ok][order], np.log(np.asarray(scale)[order]))
        full[~ok] = np.exp(np.interp(covariate[~ok], knots, values))
        return full, df2, shrunk
    median = float(np.median(x))
    if median <= 0:
        raise CohortexError("robust eBayes: the residual variances are mostly <= 0.")
    x[x < median * 1e-12] = median * 1e-12
    scale0, df2_0 = fit_f_dist(x, df1, covariate)
    low_p, high_p = winsor_tail_p
    if low_p < 1.0 / n and high_p < 1.0 / n:
        return scale0, df2_0, np.full(n, df2_0)
    if np.ndim(df1) > 0:  # unequal df: move every variance to the largest df by its tail
        df1_max = float(np.max(df1_all))
        smaller = df1_all < df1_max - 1e-14
        if smaller.any():
            s0 = scale0 if covariate is None else np.asarray(scale0)[smaller]
            f = x[smaller] / s0
            upper = stats.f.logsf(f, df1_all[smaller], df2_0)
            lower = stats.f.logcdf(f, df1_all[smaller], df2_0)
            up = upper < lower
            moved = np.where(
                up,
                _f_isf_log(upper, df1_max, df2_0),
                _f_ppf_log(lower, df1_max, df2_0),
            )
            x[smaller] = moved * s0
        df1_value = df1_max
    else:
        df1_value = float(df1)
    z = np.log(x)
    trend: float | np.ndarray
    if covariate is None:
        trend = _trimmed_mean(z, high_p)
    else:  # loessFit(z, covariate, span = 0.4): lowess with iter = 3, back in gene order
        order = np.argsort(covariate, kind="stable")
        _, smooth, _ = lowess(covariate, z, f=0.4, iterations=3)
        trend = np.empty(n)
        trend[order] = smooth
    residual = z - trend
    bounds = np.quantile(residual, [low_p, 1.0 - high_p])
    winsorised = np.clip(residual, bounds[0], bounds[1])
    w_mean = float(np.mean(winsorised))
    w_var = float(np.mean((winsorised - w_mean) ** 2)) * n / (n - 1)

    def objective(link: float) -> float:
        moments = _winsorized_moments(df1_value, link / (1.0 - link), winsor_tail_p)
        return float(np.log(w_var / moments[1]))

    at_infinity = np.log(w_var / _winsorized_moments(df1_value, np.inf, winsor_tail_p)[1])
    if at_infinity <= 0:
        corrected = trend + w_mean - _winsorized_moments(df1_value, np.inf, winsor_tail_p)[0]
        f_stat = np.exp(z - corrected)
        tail = stats.chi2.sf(f_stat * df1_value, df1_value)
        empirical = (n - stats.rankdata(f_stat) + 0.5) / n
        not_outlier = np.minimum(tail / empirical, 1.0)
        shrunk = np.full(n, np.inf)
        outlying = not_outlier < 1
        if outlying.any():
            shrunk[outlying] = not_outlier[outlying] * n * df1_value
            order = np.argsort(tail, kind="stable")
            shrunk[order] = np.maximum.accumulate(shrunk[order])
        return _scale(np.exp(corrected)), np.inf, shrunk
    if df2_0 == np.inf:
        return scale0, df2_0, np.full(n, df2_0)
    start = df2_0 / (1.0 + df2_0)
    at_start = objective(start)
    if at_start >= 0:
        df2 = df2_0
    else:
        root = _zeroin(objective, start, 1.0, at_start, at_infinity, tol=1e-8, max_iterations=1000)
        df2 = root / (1.0 - root)
    moments = _winsorized_moments(df1_value, df2, winsor_tail_p)
    corrected = trend + w_mean - moments[0]
    f_stat = np.exp(z - corrected)
    log_tail = stats.f.logsf(f_stat, df1_value, df2)
    log_empirical = np.log(n - stats.rankdata(f_stat) + 0.5) - np.log(n)
    log_not_outlier = np.minimum(log_tail - log_empirical, 0.0)
    shrunk = np.full(n, df2)
    if (log_not_outlier < 0).any():
        not_outlier = np.exp(log_not_outlier)
        outlier = -np.expm1(log_not_outlier)
        smallest = float(np.min(log_tail))
        if smallest == -np.inf:
            shrunk = not_outlier * df2
        else:
            df2_outlier = np.log(0.5) / smallest * df2
            newest = float(stats.f.logsf(np.max(f_stat), df1_value, df2_outlier))
            df2_outlier = np.log(0.5) / newest * df2_outlier
            shrunk = not_outlier * df2 + outlier * df2_outlier
        order = np.argsort(log_tail, kind="stable")
        ordered = shrunk[order]
        running = np.cumsum(ordered) / np.arange(1, n + 1)
        lowest = int(np.argmin(running))
        ordered[: lowest + 1] = running[lowest]
        shrunk[order] = np.maximum.accumulate(ordered)
    return _scale(np.exp(corrected)), float(df2), shrunk


def _scale(values: Any) -> float | np.ndarray:
    """One prior variance (a float) or one per gene (with a covariate)."""
    return float(values) if np.ndim(values) == 0 else np.asarray(values)


def squeeze_var(
    variances: np.ndarray,
    df: float | np.ndarray,
    *,
    covariate: np.ndarray | None = None,
    robust: bool = False,
) -> Prior:
    """limma's ``squeezeVar``: the prior and the posterior variances (host NumPy)."""
    variances = np.asarray(variances, dtype=np.float64)
    if variances.size == 1:
        return Prior(float(variances[0]), 0.0, variances.copy())
    if np.ndim(df) > 0:
        variances = np.where(np.asarray(df) == 0, 0.0, variances)
    if robust:
        scale, _, df_prior = fit_f_dist_robustly(variances, df, covariate)
        s2_prior: float | np.ndarray = scale
        prior_df: float | np.ndarray = df_prior
    else:
        s2_prior, prior_df = fit_f_dist(variances, df, covariate)
    if np.any(np.isnan(prior_df)):
        raise CohortexError("eBayes could not estimate the prior degrees of freedom.")
    df_array = np.broadcast_to(np.asarray(df, dtype=np.float64), variances.shape)
    prior_df_array = np.broadcast_to(np.asarray(prior_df, dtype=np.float64), variances.shape)
    prior_array = np.broadcast_to(np.asarray(s2_prior, dtype=np.float64), variances.shape)
    finite = np.isfinite(prior_df_array)
    with np.errstate(invalid="ignore"):
        posterior = np.where(
            finite,
            (df_array * variances + prior_df_array * prior_array) / (df_array + prior_df_array),
            prior_array,
        )
    return Prior(s2_prior, prior_df, posterior)


def ebayes(
    coefficient: Any,
    stdev_unscaled: Any,
    s2: Any,
    df: float | np.ndarray,
    *,
    proportion: float = 0.01,
    covariate: np.ndarray | None = None,
    robust: bool = False,
) -> tuple[Prior, Any, Any, Any]:
    """Moderated t and B for contrasts (limma's ``eBayes``).

    Parameters
    ----------
    coefficient : array of shape (n_contrasts, n_genes)
    stdev_unscaled : array of shape (n_contrasts,) or (n_contrasts, n_genes)
        ``sqrt(c' (X'WX)⁻¹ c)``: one per contrast, or per gene with weights or missing values.
    s2 : array of shape (n_genes,)
        Residual variances on ``df`` degrees of freedom (a number or one per gene).
    covariate : ndarray of shape (n_genes,), optional
        limma's ``trend``: the prior variance follows it.
    robust : bool
        limma's ``robust``.

    Returns
    -------
    prior : Prior
    t : array of shape (n_contrasts, n_genes)
    df_total : float or array of shape (n_genes,)
    lods : array of shape (n_contrasts, n_genes)
        limma's B-statistic.
    """
    xp = namespace(coefficient)
    prior = squeeze_var(np.asarray(to_host(s2)), df, covariate=covariate, robust=robust)
    su = xp.asarray(stdev_unscaled)
    if su.ndim == 1:
        su = su[:, None]
    t = coefficient / su / xp.sqrt(xp.asarray(prior.s2_post))[None, :]
    df_pooled = float(np.sum(df)) if np.ndim(df) > 0 else float(df) * int(np.size(prior.s2_post))
    df_total_host = np.minimum(np.asarray(df, dtype=np.float64) + prior.df_prior, df_pooled)
    df_total = float(df_total_host) if df_total_host.ndim == 0 else xp.asarray(df_total_host)
    limits = np.array([0.1, 4.0]) ** 2 / float(np.median(prior.s2_prior))
    t_host = np.asarray(to_host(t))
    su_host = np.broadcast_to(np.asarray(to_host(su)), t_host.shape)
    var_prior = np.array(
        [
            tmixture(
                t_host[j],
                su_host[j],
                np.broadcast_to(df_total_host, t_host[j].shape),
                proportion,
                limits,
            )
            for j in range(t_host.shape[0])
        ]
    )
    if np.any(np.isnan(var_prior)):
        var_prior[np.isnan(var_prior)] = 1.0 / float(np.median(prior.s2_prior))
    r = (su**2 + xp.asarray(var_prior)[:, None]) / su**2
    t2 = t * t
    infinite = np.asarray(prior.df_prior, dtype=np.float64) > 1e6
    total = xp.asarray(df_total_host) if df_total_host.ndim else df_total
    with np.errstate(divide="ignore", invalid="ignore"):
        finite_kernel = (1.0 + total) / 2.0 * xp.log((t2 + total) / (t2 / r + total))
    if infinite.all():
        kernel = t2 * (1.0 - 1.0 / r) / 2.0
    elif infinite.any():
        kernel = xp.where(xp.asarray(infinite)[None, :], t2 * (1.0 - 1.0 / r) / 2.0, finite_kernel)
    else:
        kernel = finite_kernel
    lods = np.log(proportion / (1.0 - proportion)) - xp.log(r) / 2.0 + kernel
    return prior, t, df_total, lods


def tmixture(
    t: np.ndarray, stdev_unscaled: np.ndarray, df: np.ndarray, proportion: float, limits: np.ndarray
) -> float:
    """limma's ``tmixture.vector`` for one contrast: the coefficients' prior variance from the
    largest |t| (NaN when ``proportion`` leaves no gene).

    Parameters
    ----------
    t, stdev_unscaled, df : ndarray of shape (n_genes,)
    proportion : float
        The expected share of changed genes.
    limits : ndarray of shape (2,)
        The prior variance's bounds.
    """
    keep = ~np.isnan(t)
    t, stdev_unscaled, df = np.abs(t[keep]), stdev_unscaled[keep], np.array(df[keep])
    n_genes = t.size
    n_target = int(np.ceil(proportion / 2.0 * n_genes))
    if n_target < 1:
        return float("nan")
    p = max(n_target / n_genes, proportion)
    df_max = float(np.max(df))
    smaller = df < df_max
    if smaller.any():  # to the largest df by the tail probability
        tail = stats.t.logsf(t[smaller], df[smaller])
        t = t.copy()
        t[smaller] = _t_isf_log(tail, df_max)
    order = np.argsort(-t, kind="stable")[:n_target]
    top = t[order]
    v1 = stdev_unscaled[order] ** 2
    rank = np.arange(1, n_target + 1)
    p0 = 2.0 * stats.t.sf(top, df_max)
    p_target = ((rank - 0.5) / n_genes - (1.0 - p) * p0) / p
    v0 = np.zeros(n_target)
    positive = p_target > p0
    if positive.any():
        q_target = stats.t.isf(p_target[positive] / 2.0, df_max)
        v0[positive] = v1[positive] * ((top[positive] / q_target) ** 2 - 1.0)
    v0 = np.minimum(np.maximum(v0, limits[0]), limits[1])
    return float(np.mean(v0))


def _t_isf_log(log_p: np.ndarray, df: float) -> np.ndarray:
    """R's ``qt(log_p, df, lower.tail = FALSE, log.p = TRUE)``."""
    return np.asarray(stats.t.isf(np.exp(log_p), df))


def _f_isf_log(log_p: np.ndarray, df1: float, df2: float) -> np.ndarray:
    return np.asarray(stats.f.isf(np.exp(log_p), df1, df2))


def _f_ppf_log(log_p: np.ndarray, df1: float, df2: float) -> np.ndarray:
    return np.asarray(stats.f.ppf(np.exp(log_p), df1, df2))


def _trimmed_mean(values: np.ndarray, trim: float) -> float:
    """R's ``mean(x, trim = trim)``."""
    n = values.size
    low = int(np.floor(n * trim))
    ordered = np.sort(values)
    return float(np.mean(ordered[low : n - low]))


def _winsorized_moments(df1: float, df2: float, tail_p: tuple[float, float]) -> tuple[float, float]:
    """Mean and variance of log F(df1, df2) Winsorised at the ``tail_p`` quantiles."""
    low_p, high_p = tail_p
    probabilities = np.array([low_p, 1.0 - high_p])
    if np.isinf(df2):
        fq = stats.chi2.ppf(probabilities, df1) / df1
    else:
        fq = stats.f.ppf(probabilities, df1, df2)
    zq = np.log(fq)
    q = fq / (1.0 + fq)
    nodes = q[0] + (q[1] - q[0]) * _GAUSS_NODES
    f_nodes = nodes / (1.0 - nodes)
    z_nodes = np.log(f_nodes)
    if np.isinf(df2):
        density = stats.chi2.pdf(f_nodes * df1, df1) * df1
    else:
        density = stats.f.pdf(f_nodes, df1, df2)
    density = density / (1.0 - nodes) ** 2
    width = q[1] - q[0]
    tails = np.array([low_p, high_p])
    mean = width * float(np.sum(_GAUSS_WEIGHTS * density * z_nodes)) + float(np.sum(zq * tails))
    variance = width * float(np.sum(_GAUSS_WEIGHTS * density * (z_nodes - mean) ** 2)) + float(
        np.sum((zq - mean) ** 2 * tails)
    )
    return mean, variance


# statmod's gauss.quad.prob(128, "uniform"): Gauss–Legendre on [0, 1], weights summing to 1
_legendre_nodes, _legendre_weights = np.polynomial.legendre.leggauss(128)
_GAUSS_NODES = (_legendre_nodes + 1.0) / 2.0
_GAUSS_WEIGHTS = _legendre_weights / 2.0


def _zeroin(
    function: Callable[[float], float],
    a: float,
    b: float,
    fa: float,
    fb: float,
    *,
    tol: float,
    max_iterations: int,
) -> float:
    """Brent's root finder in the form of R's ``uniroot`` (Forsythe, Malcolm and Moler)."""
    eps = np.finfo(float).eps
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(max_iterations + 1):
        previous = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2.0 * eps * abs(b) + tol / 2.0
        step = (c - b) / 2.0
        if abs(step) <= tol_act or fb == 0.0:
            return b
        if abs(previous) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:  # two points: secant
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:  # inverse quadratic interpolation
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < 0.75 * cb * q - abs(tol_act * q) / 2.0 and p < abs(previous * q / 2.0):
                step = p / q
        if abs(step) < tol_act:
            step = tol_act if step > 0 else -tol_act
        a, fa = b, fb
        b += step
        fb = function(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b
