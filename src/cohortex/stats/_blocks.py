"""Samples correlated within blocks (patients, litters, batches of replicates), on ``xp``.

limma's ``duplicateCorrelation(block=)`` and ``lmFit(block=, correlation=)``. The samples of a
block share a correlation ``ρ``: the correlation matrix ``V`` is block-diagonal with blocks
``(1 − ρ)I + ρ11'`` of the blocks' sizes ``m``. Whitened by the symmetric square root
``V^-½ y = (y − ȳ_b)/√(1 − ρ) + ȳ_b/√(1 − ρ + mρ)`` (``ȳ_b``: the mean of the sample's block),
generalised least squares is ordinary least squares; any square root gives the same fit, so
it equals limma's Cholesky whitening.

``duplicateCorrelation`` estimates ``ρ`` per gene by statmod's ``mixedModel2Fit``: REML of the
variances of the residual and of a random block effect, as a gamma GLM of the squared
residual components ``dy`` (in the eigenbasis of the blocks within the residual space) on
``[1, d]``, fitted by statmod's ``glmgam.fit`` (Levenberg-damped Fisher scoring, tolerance
1e-6, at most 20 iterations as limma asks) — reproduced step for step, vectorised over genes,
because its stopping rule, not the exact optimum, is what limma reports. Only the components
with ``d > 0`` (at most one per block) are kept one by one; those with ``d = 0`` enter as
their count and their sum, which is all the GLM needs of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import namespace

__all__ = [
    "BlockDesign",
    "block_design",
    "block_reml",
    "gls_block",
    "gls_covariance",
    "reml_components",
]

_TOLERANCE = 1e-6  # glmgam.fit's default, as mixedModel2Fit passes it
_MAX_ITERATIONS = 20  # duplicateCorrelation's maxit


@dataclass
class BlockDesign:
    """What every gene without missing values shares: the design, its blocks and the
    eigen-structure of the blocks in the residual space.

    Attributes
    ----------
    design : ndarray of shape (n_samples, p)
    codes : ndarray of shape (n_samples,), int: each sample's block, 0 … n_blocks − 1
    sizes : ndarray of shape (n_blocks,)
    q : ndarray of shape (n_samples, p): orthonormal basis of the design's columns
    d : ndarray of shape (n_kept,): the positive eigenvalues of Z'(I − H)Z
    project : ndarray of shape (n_kept, n_blocks): ``diag(1/√d) V'``, so that the residual
        components along them are ``project @ Z'e``
    n_null : int: residual components with ``d = 0``
    """

    design: np.ndarray
    codes: np.ndarray
    sizes: np.ndarray
    q: np.ndarray
    d: np.ndarray
    project: np.ndarray
    n_null: int


def block_design(design: np.ndarray, codes: np.ndarray) -> BlockDesign:
    """The shared structure of ``design`` (n × p, full rank) and the blocks ``codes``."""
    n, p = design.shape
    n_blocks = int(codes.max()) + 1
    sizes = np.bincount(codes, minlength=n_blocks).astype(np.float64)
    q, _ = np.linalg.qr(design)
    qtz = np.zeros((p, n_blocks))
    np.add.at(qtz.T, codes, q)  # Q'Z: column sums of Q within each block
    inner = np.diag(sizes) - qtz.T @ qtz  # Z'(I − H)Z
    values, vectors = np.linalg.eigh(inner)
    # statmod counts a component as having a block part when d > 1e-15; below that the
    # rounding of Z'(I − H)Z decides, and the component is a residual one (d = 0) for all
    # that the fit can tell
    kept = values > max(1e-15, 1e-12 * max(values.max(), 0.0))
    d = values[kept]
    project = (vectors[:, kept] / np.sqrt(d)).T
    return BlockDesign(design, codes, sizes, q, d, project, n - p - int(kept.sum()))


def _block_sums(values: Any, codes: np.ndarray, n_blocks: int) -> Any:
    """Σ over each block's rows: (n × g) → (n_blocks × g), by sorted cumulative sums."""
    xp = namespace(values)
    order = np.argsort(codes, kind="stable")
    ends = np.cumsum(np.bincount(codes, minlength=n_blocks))
    running = xp.cumsum(values[xp.asarray(order)], axis=0)
    totals = running[xp.asarray(ends - 1)]
    return xp.concatenate([totals[:1], totals[1:] - totals[:-1]], axis=0)


def reml_components(y: Any, shared: BlockDesign) -> tuple[Any, Any]:
    """The residual components of genes without missing values.

    Parameters
    ----------
    y : array of shape (n_samples, g), float64
    shared : BlockDesign

    Returns
    -------
    dy : array of shape (n_kept, g): squared components with ``d > 0``
    null_sum : array of shape (g,): the sum of the squared components with ``d = 0``
    """
    xp = namespace(y)
    q = xp.asarray(shared.q)
    residual = y - q @ (q.T @ y)
    rss = xp.sum(residual * residual, axis=0)
    ze = _block_sums(residual, shared.codes, shared.sizes.size)
    components = xp.asarray(shared.project) @ ze
    dy = components * components
    return dy, xp.maximum(rss - xp.sum(dy, axis=0), 0.0)


def block_reml(dy: Any, null_sum: Any, d: np.ndarray, n_null: int) -> tuple[Any, Any]:
    """statmod's ``mixedModel2Fit(only.varcomp = TRUE, maxit = 20)`` for every gene.

    Parameters
    ----------
    dy : array of shape (n_kept, g)
        Squared residual components with a block part ``d`` (shared by the genes).
    null_sum : array of shape (g,)
        Sum of the ``n_null`` squared components without one.
    d : ndarray of shape (n_kept,)
    n_null : int

    Returns
    -------
    residual, block : arrays of shape (g,)
        The variance components; ``block / (residual + block)`` is the intra-block
        correlation. NaN where statmod fails.
    """
    xp = namespace(dy)
    d_all = xp.asarray(d)[:, None]
    n_comp = d.size + n_null
    # the least-squares (moment) fit of dy on [1, d] over all components, as lm.fit
    sum_d, sum_dd = float(d.sum()), float((d * d).sum())
    sum_y = xp.sum(dy, axis=0) + null_sum
    sum_dy = xp.sum(d_all * dy, axis=0)
    det = n_comp * sum_dd - sum_d * sum_d
    if not det > 1e-12 * max(n_comp * sum_dd, 1e-300):  # d constant: lm.fit leaves slope NA
        return xp.full(sum_y.shape, xp.nan), xp.full(sum_y.shape, xp.nan)
    slope = (n_comp * sum_dy - sum_d * sum_y) / det
    intercept = (sum_y - slope * sum_d) / n_comp
    d_low = 0.0 if n_null else float(d.min())
    d_high = float(d.max())
    mean_d = sum_d / n_comp
    variance_d = (sum_dd - n_comp * mean_d * mean_d) / (n_comp - 1) if n_comp > 1 else 0.0
    if not (n_comp > 2 and int(np.sum(np.abs(d) > 1e-15)) > 1 and variance_d > 1e-15):
        return intercept, slope
    positive = (intercept + slope * d_low >= 0) & (intercept + slope * d_high >= 0)
    beta0 = xp.where(positive, intercept, sum_y / n_comp)
    beta1 = xp.where(positive, slope, 0.0)
    return _glmgam(dy, null_sum, d_all, n_null, beta0, beta1)


def _deviance(dy: Any, null_sum: Any, d_all: Any, n_null: int, b0: Any, b1: Any) -> Any:
    """The gamma deviance less its constant part (2Σ(y/μ + log μ)); inf where a μ < 0."""
    xp = namespace(dy)
    mu = b0[None, :] + b1[None, :] * d_all
    negative = xp.any(mu < 0, axis=0) | (b0 < 0)
    safe = xp.where(mu > 0, mu, 1.0)
    safe0 = xp.where(b0 > 0, b0, 1.0)
    value = 2.0 * xp.sum(dy / safe + xp.log(safe), axis=0)
    if n_null:
        value = value + 2.0 * (null_sum / safe0 + n_null * xp.log(safe0))
    return xp.where(negative, xp.inf, value)


def _glmgam(dy: Any, null_sum: Any, d_all: Any, n_null: int, b0: Any, b1: Any) -> tuple[Any, Any]:
    """statmod's ``glmgam.fit`` on ``dy ~ [1, d]`` (identity link), per gene."""
    xp = namespace(dy)
    dev = _deviance(dy, null_sum, d_all, n_null, b0, b1)
    active = xp.ones(b0.shape, dtype=bool)
    lam = xp.zeros(b0.shape)
    for iteration in range(1, _MAX_ITERATIONS + 2):
        mu = b0[None, :] + b1[None, :] * d_all
        v = mu * mu
        v0 = b0 * b0
        v_max = xp.max(v, axis=0)
        if n_null:
            v_max = xp.maximum(v_max, v0)
        v = xp.maximum(v, v_max / 1e3)
        v0 = xp.maximum(v0, v_max / 1e3)
        a11 = xp.sum(1.0 / v, axis=0) + (n_null / v0 if n_null else 0.0)
        a12 = xp.sum(d_all / v, axis=0)
        a22 = xp.sum(d_all * d_all / v, axis=0)
        maxinfo = xp.maximum(a11, a22)
        if iteration == 1:
            lam = xp.abs((a11 + a22) / 2.0) / 2.0
        residual = (dy - mu) / v
        g1 = xp.sum(residual, axis=0) + ((null_sum - n_null * b0) / v0 if n_null else 0.0)
        g2 = xp.sum(d_all * residual, axis=0)
        old0, old1, dev_old = b0, b1, dev
        searching = active.copy()
        levels = xp.zeros(b0.shape)
        damped_out = xp.zeros(b0.shape, dtype=bool)
        step0, step1 = xp.zeros(b0.shape), xp.zeros(b0.shape)
        while bool(xp.any(searching)):
            levels = levels + searching
            m11, m22 = a11 + lam, a22 + lam
            det = m11 * m22 - a12 * a12
            s0 = (m22 * g1 - a12 * g2) / det
            s1 = (m11 * g2 - a12 * g1) / det
            t0, t1 = old0 + s0, old1 + s1
            trial = _deviance(dy, null_sum, d_all, n_null, t0, t1)
            b0 = xp.where(searching, t0, b0)
            b1 = xp.where(searching, t1, b1)
            step0 = xp.where(searching, s0, step0)
            step1 = xp.where(searching, s1, step1)
            dev = xp.where(searching, trial, dev)
            accepted = searching & (trial <= dev_old)
            too_damped = searching & ~accepted & (lam / maxinfo > 1e15)
            b0 = xp.where(too_damped, old0, b0)
            b1 = xp.where(too_damped, old1, b1)
            damped_out = damped_out | too_damped
            searching = searching & ~accepted & ~too_damped
            lam = xp.where(searching, 2.0 * lam, lam)
        lam = xp.where(active & (levels == 1), lam / 10.0, lam)
        converged = (g1 * step0 + g2 * step1) < _TOLERANCE
        active = active & ~damped_out & ~converged
        if not bool(xp.any(active)):
            break
    return b0, b1


def gls_block(y: Any, shared: BlockDesign, correlation: float) -> tuple[Any, Any]:
    """Generalised least squares of genes without missing values (limma's ``gls.series``).

    Parameters
    ----------
    y : array of shape (n_samples, g), float64, each gene shifted by a constant of its own
    shared : BlockDesign
    correlation : float

    Returns
    -------
    beta : array of shape (p, g)
    rss : array of shape (g,): the whitened residual sum of squares
    """
    xp = namespace(y)
    q, r = np.linalg.qr(whiten(shared.design, shared.codes, shared.sizes, correlation))
    wy = whiten(y, shared.codes, shared.sizes, correlation)
    qtwy = xp.asarray(q.T) @ wy
    residual = wy - xp.asarray(q) @ qtwy
    beta = xp.asarray(np.linalg.inv(r)) @ qtwy
    return beta, xp.sum(residual * residual, axis=0)


def gls_covariance(shared: BlockDesign, correlation: float) -> np.ndarray:
    """``(X'V⁻¹X)⁻¹`` of shape (p, p), limma's ``cov.coefficients`` of a block fit."""
    _, r = np.linalg.qr(whiten(shared.design, shared.codes, shared.sizes, correlation))
    r_inverse = np.linalg.inv(r)
    return r_inverse @ r_inverse.T


def whiten(values: Any, codes: np.ndarray, sizes: np.ndarray, correlation: float) -> Any:
    """``V^-½ values`` for rows in blocks ``codes`` of ``sizes`` (n × k → n × k)."""
    xp = namespace(values)
    within = 1.0 / np.sqrt(1.0 - correlation)
    between = 1.0 / np.sqrt(1.0 - correlation + sizes * correlation)
    means = _block_sums(values, codes, sizes.size) / xp.asarray(sizes)[:, None]
    row_means = means[xp.asarray(codes)]
    factor = xp.asarray(between[codes] - within)[:, None]
    return within * values + factor * row_means
