"""Ordinary least squares for every gene at once, and limma's empirical Bayes, on ``xp``.

Sufficient statistics
---------------------
One pass over sample chunks accumulates, for a design X (n × p) and the data Y (n × genes),
``X'X``, ``X'1``, ``X'Ỹ``, ``1'Ỹ`` and ``Σ Ỹ²`` where ``Ỹ = Y − 1 c'`` is shifted by a
per-gene provisional mean ``c`` (the chunk's own mean, moved to the first chunk's when chunks
are merged). When the columns of X span the constant (an intercept, or the cell means of a
factor) the fit is unchanged by the shift and the residual sum of squares
``RSS = Σ Ỹ² − b̃' X'Ỹ`` loses nothing to cancellation; otherwise no shift is applied.

Empirical Bayes (Smyth 2004; limma's ``squeezeVar``/``fitFDist``/``eBayes``)
----------------------------------------------------------------------------
With residual variances s² on d degrees of freedom: ``e = log s² − ψ(d/2) + log(d/2)``,
``d0 = 2 ψ₁⁻¹(var(e) − ψ₁(d/2))``, ``s0² = exp(mean(e) + ψ(d0/2) − log(d0/2))``; posterior
variances ``(d s² + d0 s0²) / (d + d0)``; moderated t on ``min(d + d0, d · genes)`` degrees of
freedom; the B-statistic as limma's, with the prior variance of the coefficients from
``tmixture`` (proportion 0.01, limits 0.1² and 4² over the median prior variance).
``robust=True`` (limma's ``fitFDistRobustly``) and ``trend=True`` are not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats

from .._backend import namespace, to_host

__all__ = ["LinearSums", "chunk_sums", "ebayes", "merge_sums", "trigamma_inverse"]


@dataclass
class LinearSums:
    """Sufficient statistics of OLS over a set of samples (see the module notes).

    Attributes
    ----------
    n : int
    xtx : ndarray of shape (p, p), float64 (host)
    xsum : ndarray of shape (p,), float64 (host): X'1
    xy : array of shape (p, n_genes): X'Ỹ
    ysum : array of shape (n_genes,): 1'Ỹ
    yy : array of shape (n_genes,): Σ Ỹ²
    shift : array of shape (n_genes,): the c in Ỹ = Y − c
    """

    n: int
    xtx: np.ndarray
    xsum: np.ndarray
    xy: Any
    ysum: Any
    yy: Any
    shift: Any


def chunk_sums(block: Any, design: np.ndarray, shifted: bool) -> LinearSums:
    """Sums of one chunk: ``block`` (n_chunk × genes, NumPy or CuPy), ``design`` its rows."""
    xp = namespace(block)
    y = block.astype(xp.float64)
    shift = y.mean(axis=0) if shifted else xp.zeros(y.shape[1])
    y -= shift
    x = xp.asarray(design)
    return LinearSums(
        n=design.shape[0],
        xtx=design.T @ design,
        xsum=design.sum(axis=0),
        xy=x.T @ y,
        ysum=y.sum(axis=0),
        yy=xp.sum(y * y, axis=0),
        shift=shift,
    )


def merge_sums(a: LinearSums, b: LinearSums) -> LinearSums:
    """Add two chunks' sums, moving ``b`` to ``a``'s shift first."""
    xp = namespace(a.xy)
    delta = b.shift - a.shift  # Ỹ_b relative to a's shift = Ỹ_b + δ
    xy_b = b.xy + xp.asarray(b.xsum)[:, None] * delta[None, :]
    yy_b = b.yy + 2.0 * delta * b.ysum + b.n * delta * delta
    ysum_b = b.ysum + b.n * delta
    return LinearSums(
        n=a.n + b.n,
        xtx=a.xtx + b.xtx,
        xsum=a.xsum + b.xsum,
        xy=a.xy + xy_b,
        ysum=a.ysum + ysum_b,
        yy=a.yy + yy_b,
        shift=a.shift,
    )


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


@dataclass
class EBayes:
    """Hyperparameters and posterior variances of the empirical Bayes step."""

    s2_prior: float
    df_prior: float
    s2_post: Any
    df_total: float


def squeeze_variances(s2: Any, df: float) -> EBayes:
    """limma's ``squeezeVar`` for one residual df shared by every gene (``fitFDist``)."""
    xp = namespace(s2)
    n_genes = s2.shape[0]
    x = xp.maximum(s2, 0.0)
    median = float(to_host(xp.median(x)))
    if median == 0:
        median = 1.0  # limma warns that eBayes is unreliable then
    x = xp.maximum(x, 1e-5 * median)
    e = xp.log(x) - special.digamma(df / 2.0) + np.log(df / 2.0)
    e_mean = float(to_host(xp.mean(e)))
    e_var = float(to_host(xp.sum((e - e_mean) ** 2))) / (n_genes - 1)
    e_var -= float(special.polygamma(1, df / 2.0))
    if e_var > 0:
        df_prior = 2.0 * trigamma_inverse(e_var)
        s2_prior = float(np.exp(e_mean + special.digamma(df_prior / 2.0) - np.log(df_prior / 2.0)))
        s2_post = (df * s2 + df_prior * s2_prior) / (df + df_prior)
    else:  # no more spread than sampling gives: one variance for all, their mean (as limma)
        df_prior = np.inf
        s2_prior = float(to_host(xp.mean(x)))
        s2_post = xp.full_like(s2, s2_prior)
    df_total = min(df + df_prior, df * n_genes)
    return EBayes(s2_prior, df_prior, s2_post, df_total)


def ebayes(
    coefficient: Any, stdev_unscaled: np.ndarray, s2: Any, df: float, proportion: float = 0.01
) -> tuple[EBayes, Any, Any]:
    """Moderated t and B for contrasts.

    Parameters
    ----------
    coefficient : array of shape (n_contrasts, n_genes)
    stdev_unscaled : ndarray of shape (n_contrasts,)
        ``sqrt(c' (X'X)⁻¹ c)`` per contrast (the same for every gene: no missing values).
    s2 : array of shape (n_genes,)
        Residual variances on ``df`` degrees of freedom.

    Returns
    -------
    hyper : EBayes
    t : array of shape (n_contrasts, n_genes)
    lods : array of shape (n_contrasts, n_genes)
        limma's B-statistic (log-odds of differential expression).
    """
    xp = namespace(coefficient)
    hyper = squeeze_variances(s2, df)
    su = xp.asarray(stdev_unscaled)[:, None]
    t = coefficient / su / xp.sqrt(hyper.s2_post)[None, :]
    limits = np.array([0.1, 4.0]) ** 2 / hyper.s2_prior
    var_prior = np.array(
        [
            _tmixture(to_host(t[j]), float(stdev_unscaled[j]), hyper.df_total, proportion, limits)
            for j in range(t.shape[0])
        ]
    )
    if np.any(np.isnan(var_prior)):
        var_prior[np.isnan(var_prior)] = 1.0 / hyper.s2_prior
    r = (su**2 + xp.asarray(var_prior)[:, None]) / su**2
    t2 = t * t
    total = hyper.df_total
    if hyper.df_prior > 1e6:
        kernel = t2 * (1.0 - 1.0 / r) / 2.0
    else:
        kernel = (1.0 + total) / 2.0 * xp.log((t2 + total) / (t2 / r + total))
    lods = np.log(proportion / (1.0 - proportion)) - xp.log(r) / 2.0 + kernel
    return hyper, t, lods


def _tmixture(
    t: np.ndarray, stdev_unscaled: float, df: float, proportion: float, limits: np.ndarray
) -> float:
    """limma's ``tmixture.vector`` for one contrast (a common df and stdev.unscaled)."""
    t = np.abs(t[~np.isnan(t)])
    n_genes = t.size
    n_target = int(np.ceil(proportion / 2.0 * n_genes))
    if n_target < 1:
        return float("nan")
    p = max(n_target / n_genes, proportion)
    top = np.sort(t)[::-1][:n_target]
    v1 = stdev_unscaled**2
    rank = np.arange(1, n_target + 1)
    p0 = 2.0 * stats.t.sf(top, df)
    p_target = ((rank - 0.5) / n_genes - (1.0 - p) * p0) / p
    v0 = np.zeros(n_target)
    positive = p_target > p0
    if positive.any():
        q_target = stats.t.isf(p_target[positive] / 2.0, df)
        v0[positive] = v1 * ((top[positive] / q_target) ** 2 - 1.0)
    v0 = np.minimum(np.maximum(v0, limits[0]), limits[1])
    return float(np.mean(v0))
