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
because its stopping rule, not the exact optimum, is what limma reports. Components that share
their ``d`` (every one without a block part, ``d = 0``; most of those of blocks of one size)
enter as their count and their sum, which is all the GLM needs of them.
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
    eigen-structure of the blocks within the residual space.

    The eigenvalues ``d`` of ``M = Z'(I − H)Z`` (blocks × blocks) are found without a dense
    eigen-decomposition of ``M``: ``M = diag(m) − AA'`` with ``A = (Q'Z)'`` of rank ≤ p, so
    within the blocks of one size ``s`` every direction orthogonal to their rows of ``A`` is
    an eigenvector of eigenvalue ``s``; only the span of those rows (at most p per size) needs
    a small eigen-decomposition. A cohort of 25,000 pairs costs what one of 25 does.

    Attributes
    ----------
    design : ndarray of shape (n_samples, p)
    codes : ndarray of shape (n_samples,), int: each sample's block, 0 … n_blocks − 1
    sizes : ndarray of shape (n_blocks,)
    q : ndarray of shape (n_samples, p): orthonormal basis of the design's columns
    d : ndarray of shape (n_components,): the eigenvalue of each kind of residual component:
        the small space's positive ones one by one, then each block size's (repeated), then
        0 (the residual components without a block part)
    count : ndarray of shape (n_components,): how many components share it
    basis : ndarray of shape (n_basis, n_blocks): orthonormal rows spanning the rows of
        ``A`` of each block size (``B'``)
    basis_size : ndarray of shape (n_basis,), int: the block size of each basis row's group
    project : ndarray of shape (n_small, n_basis): ``diag(1/√d) G'`` of the small space's
        positive eigenpairs, so that their components are ``project @ basis @ Z'e``
    repeated : ndarray of shape (n_sizes,): the block sizes with a repeated eigenvalue
    """

    design: np.ndarray
    codes: np.ndarray
    sizes: np.ndarray
    q: np.ndarray
    d: np.ndarray
    count: np.ndarray
    basis: np.ndarray
    basis_size: np.ndarray
    project: np.ndarray
    repeated: np.ndarray


def block_design(design: np.ndarray, codes: np.ndarray) -> BlockDesign:
    """The shared structure of ``design`` (n × p, full rank) and the blocks ``codes``."""
    n, p = design.shape
    n_blocks = int(codes.max()) + 1
    sizes = np.bincount(codes, minlength=n_blocks).astype(np.float64)
    q, _ = np.linalg.qr(design)
    a = np.zeros((n_blocks, p))
    np.add.at(a, codes, q)  # A = (Q'Z)': column sums of Q within each block
    rows, row_sizes, repeated, repeats = [], [], [], []
    for size in np.unique(sizes):
        members = np.flatnonzero(sizes == size)
        u, singular, _ = np.linalg.svd(a[members], full_matrices=False)
        rank = int(np.sum(singular > 1e-10 * max(singular.max(initial=0.0), 1.0)))
        span = np.zeros((rank, n_blocks))
        span[:, members] = u[:, :rank].T
        rows.append(span)
        row_sizes.append(np.full(rank, size))
        if members.size > rank:
            repeated.append(size)
            repeats.append(members.size - rank)
    basis = np.concatenate(rows, axis=0)
    basis_size = np.concatenate(row_sizes)
    small = np.diag(basis_size) - (basis @ a) @ (basis @ a).T  # M on the span of A's rows
    values, vectors = np.linalg.eigh(small)
    # statmod counts a component as having a block part when d > 1e-15; below that the
    # rounding of M decides, and the component is a residual one (d = 0) for all the fit
    # can tell
    kept = values > max(1e-15, 1e-12 * max(values.max(initial=0.0), sizes.max()))
    project = (vectors[:, kept] / np.sqrt(values[kept])).T
    n_null = n - p - int(kept.sum()) - int(np.sum(repeats))
    d = np.concatenate([values[kept], repeated, [0.0] if n_null else []])
    count = np.concatenate([np.ones(int(kept.sum())), repeats, [n_null] if n_null else []])
    return BlockDesign(
        design, codes, sizes, q, d, count, basis, basis_size, project, np.asarray(repeated)
    )


def _block_sums(values: Any, codes: np.ndarray, n_blocks: int) -> Any:
    """Σ over each block's rows: (n × g) → (n_blocks × g), by sorted cumulative sums."""
    xp = namespace(values)
    order = np.argsort(codes, kind="stable")
    ends = np.cumsum(np.bincount(codes, minlength=n_blocks))
    running = xp.cumsum(values[xp.asarray(order)], axis=0)
    totals = running[xp.asarray(ends - 1)]
    return xp.concatenate([totals[:1], totals[1:] - totals[:-1]], axis=0)


def reml_components(y: Any, shared: BlockDesign) -> Any:
    """The summed squared residual components of genes without missing values.

    Parameters
    ----------
    y : array of shape (n_samples, g), float64
    shared : BlockDesign

    Returns
    -------
    array of shape (n_components, g)
        Per kind of component (``shared.d``), the sum of its squared components.
    """
    xp = namespace(y)
    q = xp.asarray(shared.q)
    residual = y - q @ (q.T @ y)
    rss = xp.sum(residual * residual, axis=0)
    ze = _block_sums(residual, shared.codes, shared.sizes.size)  # Z'e
    spanned = xp.asarray(shared.basis) @ ze
    single = xp.asarray(shared.project) @ spanned
    parts = [single * single]
    for size in shared.repeated:
        members = xp.asarray(np.flatnonzero(shared.sizes == size))
        in_span = xp.asarray(np.flatnonzero(shared.basis_size == size))
        total = xp.sum(ze[members] ** 2, axis=0) - xp.sum(spanned[in_span] ** 2, axis=0)
        parts.append(xp.maximum(total, 0.0)[None, :] / size)
    dy = xp.concatenate(parts, axis=0)
    if dy.shape[0] < shared.d.size:  # the components without a block part: what is left
        dy = xp.concatenate([dy, xp.maximum(rss - xp.sum(dy, axis=0), 0.0)[None, :]], axis=0)
    return dy


def block_reml(dy: Any, d: np.ndarray, count: np.ndarray) -> tuple[Any, Any]:
    """statmod's ``mixedModel2Fit(only.varcomp = TRUE, maxit = 20)`` for every gene.

    Parameters
    ----------
    dy : array of shape (n_components, g)
        Sums of the squared residual components of each kind.
    d : ndarray of shape (n_components,)
        Their block part (shared by the genes).
    count : ndarray of shape (n_components,)
        How many components each sum holds.

    Returns
    -------
    residual, block : arrays of shape (g,)
        The variance components; ``block / (residual + block)`` is the intra-block
        correlation. NaN where statmod has none.
    """
    xp = namespace(dy)
    n_comp = float(count.sum())
    # the least-squares (moment) fit of dy on [1, d] over all components, as lm.fit
    sum_d, sum_dd = float(count @ d), float(count @ (d * d))
    sum_y = xp.sum(dy, axis=0)
    sum_dy = xp.asarray(d) @ dy
    det = n_comp * sum_dd - sum_d * sum_d
    if not det > 1e-12 * max(n_comp * sum_dd, 1e-300):  # d constant: lm.fit leaves slope NA
        return xp.full(sum_y.shape, xp.nan), xp.full(sum_y.shape, xp.nan)
    slope = (n_comp * sum_dy - sum_d * sum_y) / det
    intercept = (sum_y - slope * sum_d) / n_comp
    mean_d = sum_d / n_comp
    variance_d = (sum_dd - n_comp * mean_d * mean_d) / (n_comp - 1) if n_comp > 1 else 0.0
    with_block = float(count[np.abs(d) > 1e-15].sum())
    if not (n_comp > 2 and with_block > 1 and variance_d > 1e-15):
        return intercept, slope
    positive = (intercept + slope * float(d.min()) >= 0) & (intercept + slope * float(d.max()) >= 0)
    beta0 = xp.where(positive, intercept, sum_y / n_comp)
    beta1 = xp.where(positive, slope, 0.0)
    return _glmgam(dy, xp.asarray(d)[:, None], xp.asarray(count)[:, None], beta0, beta1)


def _deviance(dy: Any, d: Any, count: Any, b0: Any, b1: Any) -> Any:
    """The gamma deviance less its constant part (2Σ(y/μ + log μ)); inf where a μ < 0."""
    xp = namespace(dy)
    mu = b0[None, :] + b1[None, :] * d
    safe = xp.where(mu > 0, mu, 1.0)
    value = 2.0 * xp.sum(dy / safe + count * xp.log(safe), axis=0)
    return xp.where(xp.any(mu < 0, axis=0), xp.inf, value)


def _glmgam(dy: Any, d: Any, count: Any, b0: Any, b1: Any) -> tuple[Any, Any]:
    """statmod's ``glmgam.fit`` on ``dy ~ [1, d]`` (identity link), per gene; ``d`` and
    ``count`` of shape (n_components, 1)."""
    xp = namespace(dy)
    dev = _deviance(dy, d, count, b0, b1)
    active = xp.ones(b0.shape, dtype=bool)
    lam = xp.zeros(b0.shape)
    for iteration in range(1, _MAX_ITERATIONS + 2):
        mu = b0[None, :] + b1[None, :] * d
        v = mu * mu
        v = xp.maximum(v, xp.max(v, axis=0) / 1e3)  # glmgam.fit bounds its weights so
        a11 = xp.sum(count / v, axis=0)
        a12 = xp.sum(count * d / v, axis=0)
        a22 = xp.sum(count * d * d / v, axis=0)
        maxinfo = xp.maximum(a11, a22)
        if iteration == 1:
            lam = xp.abs((a11 + a22) / 2.0) / 2.0
        residual = (dy - count * mu) / v
        g1 = xp.sum(residual, axis=0)
        g2 = xp.sum(d * residual, axis=0)
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
            trial = _deviance(dy, d, count, t0, t1)
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
