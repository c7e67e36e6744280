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
enter as their count and their sum, which is all the GLM needs of them. With precision
weights (voom's) statmod weights the data and the design, not the blocks, so every gene has a
design of its own: the same steps, batched over the genes of a block.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import namespace

__all__ = [
    "BlockDesign",
    "BlockLayout",
    "block_design",
    "block_layout",
    "block_reml",
    "block_sums",
    "gls_basis",
    "gls_block",
    "reml_components",
    "weighted_gls",
    "weighted_reml_components",
    "whiten",
]

_TOLERANCE = 1e-6  # glmgam.fit's default, as mixedModel2Fit passes it
_MAX_ITERATIONS = 20  # duplicateCorrelation's maxit


@dataclass
class BlockLayout:
    """The rows ordered by block size, then by block: the blocks of each size form one
    contiguous run of rows, so that sums and means over blocks are reshapes, not gathers.

    Attributes
    ----------
    order : ndarray of shape (n_samples,), int: the rows in layout order
    position : ndarray of shape (n_samples,), int: each row's place in the layout (the
        inverse of ``order``)
    sizes : ndarray of shape (n_blocks,): each block's size, blocks in layout order
    runs : list of (size, n_blocks)
    """

    order: np.ndarray
    position: np.ndarray
    sizes: np.ndarray
    runs: list[tuple[int, int]]


def block_layout(codes: np.ndarray) -> BlockLayout:
    """The layout of blocks ``codes`` (each sample's block, 0 … n_blocks − 1)."""
    sizes = np.bincount(codes)
    blocks = np.lexsort((np.arange(sizes.size), sizes))  # by size, then by block
    position = np.empty(sizes.size, dtype=np.int64)
    position[blocks] = np.arange(sizes.size)
    order = np.argsort(position[codes], kind="stable")
    ordered = sizes[blocks]
    runs = [(int(size), int(np.sum(ordered == size))) for size in np.unique(ordered)]
    rows = np.empty_like(order)
    rows[order] = np.arange(order.size)
    return BlockLayout(order, rows, ordered.astype(np.float64), runs)


def _runs(layout: BlockLayout) -> Iterator[tuple[int, int, slice, slice]]:
    """(size, n_blocks, their rows, their blocks) of each run."""
    row = block = 0
    for size, count in layout.runs:
        yield size, count, slice(row, row + size * count), slice(block, block + count)
        row, block = row + size * count, block + count


def block_sums(values: Any, layout: BlockLayout) -> Any:
    """Σ over each block's rows of ``values`` (n × k, rows in layout order) → (n_blocks × k)."""
    xp = namespace(values)
    parts = [
        values[rows].reshape(count, size, values.shape[1]).sum(axis=1)
        for size, count, rows, _ in _runs(layout)
    ]
    return xp.concatenate(parts, axis=0)


def whiten(values: Any, layout: BlockLayout, correlation: float) -> Any:
    """``V^-½ values`` (n × k, rows in layout order), in place: within each block
    ``(y − ȳ)/√(1 − ρ) + ȳ/√(1 − ρ + mρ)``."""
    within = 1.0 / np.sqrt(1.0 - correlation)
    for size, count, rows, _ in _runs(layout):
        block = values[rows].reshape(count, size, values.shape[1])  # a view
        means = block.sum(axis=1, keepdims=True)
        between = 1.0 / np.sqrt(1.0 - correlation + size * correlation)
        means *= (between - within) / size
        block *= within
        block += means
    return values


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
    design : ndarray of shape (n_samples, p), rows in layout order
    layout : BlockLayout
    q : ndarray of shape (n_samples, p): orthonormal basis of the design's columns
    a : ndarray of shape (n_blocks, p): ``Q'Z`` transposed, the sums of ``q`` in each block
    spans_constant : bool: whether the design's columns span the constant, so that each
        gene may be shifted by its mean first
    d : ndarray of shape (n_components,): the eigenvalue of each kind of residual component:
        the small space's positive ones one by one, then each block size's (repeated), then
        0 (the residual components without a block part)
    count : ndarray of shape (n_components,): how many components share it
    spans : list of ndarray of shape (n_blocks of the run, rank)
        Per run, orthonormal columns spanning its rows of ``A``.
    project : ndarray of shape (n_small, Σ rank): ``diag(1/√d) G'`` of the small space's
        positive eigenpairs, so that their components are ``project @ (spans' Z'e)``
    repeated : list of bool: per run, whether its size is a repeated eigenvalue
    """

    design: np.ndarray
    layout: BlockLayout
    q: np.ndarray
    a: np.ndarray
    spans_constant: bool
    d: np.ndarray
    count: np.ndarray
    spans: list[np.ndarray]
    project: np.ndarray
    repeated: list[bool]


def block_design(design: np.ndarray, codes: np.ndarray) -> BlockDesign:
    """The shared structure of ``design`` (n × p, full rank, rows in sample order) and the
    blocks ``codes``."""
    n, p = design.shape
    layout = block_layout(codes)
    ordered = design[layout.order]
    q, _ = np.linalg.qr(ordered)
    a = block_sums(q, layout)  # A = (Q'Z)': column sums of Q within each block
    spans, projected, repeated, repeats = [], [], [], []
    for size, n_run, _, blocks in _runs(layout):
        u, singular, _ = np.linalg.svd(a[blocks], full_matrices=False)
        rank = int(np.sum(singular > 1e-10 * max(singular.max(initial=0.0), 1.0)))
        spans.append(u[:, :rank])
        projected.append((u[:, :rank].T @ a[blocks], np.full(rank, float(size))))
        repeated.append(n_run > rank)
        repeats.append((float(size), n_run - rank))
    spanned_a = np.concatenate([part for part, _ in projected], axis=0)
    span_sizes = np.concatenate([sizes for _, sizes in projected])
    small = np.diag(span_sizes) - spanned_a @ spanned_a.T  # M on the span of A's rows
    values, vectors = np.linalg.eigh(small)
    # statmod counts a component as having a block part when d > 1e-15; below that the
    # rounding of M decides, and the component is a residual one (d = 0) for all the fit
    # can tell
    kept = values > max(1e-15, 1e-12 * max(values.max(initial=0.0), layout.sizes.max()))
    project = (vectors[:, kept] / np.sqrt(values[kept])).T
    many = [(size, times) for size, times in repeats if times]
    n_null = n - p - int(kept.sum()) - sum(times for _, times in many)
    d = np.concatenate([values[kept], [size for size, _ in many], [0.0] if n_null else []])
    count = np.concatenate(
        [np.ones(int(kept.sum())), [times for _, times in many], [n_null] if n_null else []]
    )
    ones = np.ones(n)
    spans_constant = bool(np.allclose(q @ (q.T @ ones), ones, atol=1e-8))
    return BlockDesign(ordered, layout, q, a, spans_constant, d, count, spans, project, repeated)


def reml_components(y: Any, shared: BlockDesign) -> Any:
    """The summed squared residual components of genes without missing values.

    Parameters
    ----------
    y : array of shape (n_samples, g), float64, rows in layout order; shifted by each gene's
        mean when ``shared.spans_constant`` (so that the residual sum of squares, the
        difference of two sums, keeps its digits)
    shared : BlockDesign

    Returns
    -------
    array of shape (n_components, g)
        Per kind of component (``shared.d``), the sum of its squared components.
    """
    xp = namespace(y)
    fitted = xp.asarray(shared.q).T @ y  # Q'y
    rss = xp.maximum(xp.sum(y * y, axis=0) - xp.sum(fitted * fitted, axis=0), 0.0)
    ze = block_sums(y, shared.layout) - xp.asarray(shared.a) @ fitted  # Z'e = Z'y − (Q'Z)'Q'y
    spanned, repeated = [], []
    for (size, _, _, blocks), span, many in zip(
        _runs(shared.layout), shared.spans, shared.repeated, strict=True
    ):
        part = xp.asarray(span.T) @ ze[blocks]
        spanned.append(part)
        if many:  # what lies outside the span: the repeated eigenvalue's components
            total = xp.sum(ze[blocks] ** 2, axis=0) - xp.sum(part * part, axis=0)
            repeated.append(xp.maximum(total, 0.0)[None, :] / size)
    single = xp.asarray(shared.project) @ xp.concatenate(spanned, axis=0)
    dy = xp.concatenate([single * single, *repeated], axis=0)
    if dy.shape[0] < shared.d.size:  # the components without a block part: what is left
        dy = xp.concatenate([dy, xp.maximum(rss - xp.sum(dy, axis=0), 0.0)[None, :]], axis=0)
    return dy


def block_reml(dy: Any, d: Any, count: Any) -> tuple[Any, Any]:
    """statmod's ``mixedModel2Fit(only.varcomp = TRUE, maxit = 20)`` for every gene.

    Parameters
    ----------
    dy : array of shape (n_components, g)
        Sums of the squared residual components of each kind.
    d : array of shape (n_components,) or (n_components, g)
        Their block part: shared by the genes, or each gene's (weighted fits).
    count : array of the shape of ``d``
        How many components each sum holds (0: a component the gene does not have).

    Returns
    -------
    residual, block : arrays of shape (g,)
        The variance components; ``block / (residual + block)`` is the intra-block
        correlation. NaN where statmod has none.
    """
    xp = namespace(dy)
    d, count = xp.asarray(d), xp.asarray(count)
    if d.ndim == 1:
        d, count = d[:, None], count[:, None]
    present = count > 0
    n_comp = xp.sum(count, axis=0)
    # the least-squares (moment) fit of dy on [1, d] over all components, as lm.fit
    sum_d, sum_dd = xp.sum(count * d, axis=0), xp.sum(count * d * d, axis=0)
    sum_y, sum_dy = xp.sum(dy, axis=0), xp.sum(d * dy, axis=0)
    det = n_comp * sum_dd - sum_d * sum_d
    singular = ~(det > 1e-12 * xp.maximum(n_comp * sum_dd, 1e-300))  # lm.fit: slope NA
    slope = (n_comp * sum_dy - sum_d * sum_y) / xp.where(singular, 1.0, det)
    intercept = (sum_y - slope * sum_d) / n_comp
    mean_d = sum_d / n_comp
    variance_d = (sum_dd - n_comp * mean_d * mean_d) / xp.maximum(n_comp - 1, 1.0)
    with_block = xp.sum(xp.where(xp.abs(d) > 1e-15, count, 0.0), axis=0)
    scoring = (n_comp > 2) & (with_block > 1) & (variance_d > 1e-15) & ~singular
    low = xp.min(xp.where(present, d, xp.inf), axis=0)
    high = xp.max(xp.where(present, d, -xp.inf), axis=0)
    positive = (intercept + slope * low >= 0) & (intercept + slope * high >= 0)
    beta0 = xp.where(positive, intercept, sum_y / n_comp)
    beta1 = xp.where(positive, slope, 0.0)
    b0, b1 = _glmgam(dy, d, count, beta0, beta1, scoring)
    residual = xp.where(singular, xp.nan, xp.where(scoring, b0, intercept))
    block = xp.where(singular, xp.nan, xp.where(scoring, b1, slope))
    return residual, block


def _deviance(dy: Any, d: Any, count: Any, b0: Any, b1: Any) -> Any:
    """The gamma deviance less its constant part (2Σ(y/μ + log μ)); inf where a μ < 0."""
    xp = namespace(dy)
    mu = b0[None, :] + b1[None, :] * d
    safe = xp.where(mu > 0, mu, 1.0)
    value = 2.0 * xp.sum(dy / safe + count * xp.log(safe), axis=0)
    return xp.where(xp.any((mu < 0) & (count > 0), axis=0), xp.inf, value)


def _glmgam(dy: Any, d: Any, count: Any, b0: Any, b1: Any, active: Any) -> tuple[Any, Any]:
    """statmod's ``glmgam.fit`` on ``dy ~ [1, d]`` (identity link), for the ``active`` genes;
    ``d`` and ``count`` of shape (n_components, 1 or g)."""
    xp = namespace(dy)
    present = count > 0
    dev = _deviance(dy, d, count, b0, b1)
    active = active.copy()
    lam = xp.zeros(b0.shape)
    for iteration in range(1, _MAX_ITERATIONS + 2):
        if not bool(xp.any(active)):
            break
        mu = b0[None, :] + b1[None, :] * d
        v = mu * mu
        largest = xp.max(xp.where(present, v, 0.0), axis=0)
        v = xp.maximum(v, largest / 1e3)  # glmgam.fit bounds its weights so
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
            # damped out: statmod's limit, or values that no damping mends (NaN)
            too_damped = searching & ~accepted & ~(lam / maxinfo <= 1e15)
            b0 = xp.where(too_damped, old0, b0)
            b1 = xp.where(too_damped, old1, b1)
            damped_out = damped_out | too_damped
            searching = searching & ~accepted & ~too_damped
            lam = xp.where(searching, 2.0 * lam, lam)
        lam = xp.where(active & (levels == 1), lam / 10.0, lam)
        converged = (g1 * step0 + g2 * step1) < _TOLERANCE
        active = active & ~damped_out & ~converged
    return b0, b1


def weighted_reml_components(
    y: Any, weights: Any, design: np.ndarray, layout: BlockLayout
) -> tuple[Any, Any, Any]:
    """The residual components of genes with precision weights (statmod's ``mixedModel2Fit``
    with ``w``: the data and the design weighted by ``√w``, the blocks not), every gene with
    a design of its own.

    Parameters
    ----------
    y, weights : arrays of shape (n_samples, g), float64, rows in layout order, no missing
        value, every weight > 0; ``y`` shifted by each gene's mean when the design spans the
        constant
    design : ndarray of shape (n_samples, p), rows in layout order
    layout : BlockLayout

    Returns
    -------
    dy, d, count : arrays of shape (n_components, g), as :func:`block_reml` takes them
    """
    xp = namespace(y)
    n, g = y.shape
    p = design.shape[1]
    root = xp.sqrt(weights)
    wy = root * y
    # batched matrix products over the genes (einsum's loops are 10× slower here)
    wx = root.T[:, :, None] * xp.asarray(design)[None, :, :]  # (g, n, p)
    gram = wx.transpose(0, 2, 1) @ wx
    lower = xp.linalg.cholesky(gram)
    q = wx @ xp.linalg.inv(lower).transpose(0, 2, 1)  # each gene's orthonormal basis XL⁻ᵀ
    fitted = (q.transpose(0, 2, 1) @ wy.T[:, :, None])[:, :, 0]  # Q'y, (g, p)
    rss = xp.maximum(xp.sum(wy * wy, axis=0) - xp.sum(fitted * fitted, axis=1), 0.0)
    rows = q.transpose(1, 0, 2).reshape(n, g * p)
    a = block_sums(rows, layout).reshape(-1, g, p)  # Q'Z per gene, (blocks, g, p)
    ze = block_sums(wy, layout) - xp.sum(a * fitted[None, :, :], axis=2)  # Z'e
    spanned, span_a, span_sizes, repeated_dy, repeated_n = [], [], [], [], []
    for size, n_run, _, blocks in _runs(layout):
        rank = min(n_run, p)
        run_a = a[blocks].transpose(1, 0, 2)  # (g, n_run, p)
        u, _, _ = xp.linalg.svd(run_a, full_matrices=False)
        u = u[:, :, :rank]  # (g, n_run, rank): zero singular values keep their directions
        part = (u.transpose(0, 2, 1) @ ze[blocks].T[:, :, None])[:, :, 0].T  # (rank, g)
        spanned.append(part)
        span_a.append(u.transpose(0, 2, 1) @ run_a)  # (g, rank, p)
        span_sizes.append(np.full(rank, float(size)))
        if n_run > rank:  # outside the span: the repeated eigenvalue's components
            total = xp.sum(ze[blocks] ** 2, axis=0) - xp.sum(part * part, axis=0)
            repeated_dy.append(xp.maximum(total, 0.0) / size)
            repeated_n.append((float(size), n_run - rank))
    sizes = xp.asarray(np.concatenate(span_sizes))
    small_a = xp.concatenate(span_a, axis=1)  # (g, R, p)
    small = xp.eye(sizes.size)[None] * sizes[None, :, None] - small_a @ small_a.transpose(0, 2, 1)
    values, vectors = xp.linalg.eigh(small)  # (g, R), (g, R, R)
    stacked = xp.concatenate(spanned, axis=0).T[:, :, None]  # (g, R, 1)
    components = (vectors.transpose(0, 2, 1) @ stacked)[:, :, 0].T  # (R, g)
    values = values.T  # (R, g)
    kept = values > xp.maximum(1e-15, 1e-12 * xp.maximum(xp.max(values, axis=0), sizes.max()))
    safe = xp.where(kept, values, 1.0)
    single = xp.where(kept, components * components / safe, 0.0)
    n_kept = xp.sum(kept, axis=0)
    n_null = n - p - n_kept - sum(times for _, times in repeated_n)
    used = xp.sum(single, axis=0) + sum(repeated_dy) if repeated_dy else xp.sum(single, axis=0)
    ones = xp.ones((1, g))
    dy = xp.concatenate(
        [single, *(r[None, :] for r in repeated_dy), xp.maximum(rss - used, 0.0)[None, :]]
    )
    d = xp.concatenate(
        [xp.where(kept, values, 0.0), *(size * ones for size, _ in repeated_n), 0.0 * ones]
    )
    count = xp.concatenate(
        [kept.astype(xp.float64), *(times * ones for _, times in repeated_n), n_null[None, :]]
    )
    return dy, d, count


def gls_basis(
    shared: BlockDesign, correlation: float, root: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The whitened design's orthonormal basis ``Q`` (n × p, layout order) and ``R⁻¹``
    (p × p); ``R⁻¹R⁻ᵀ = (X'V⁻¹X)⁻¹`` is limma's ``cov.coefficients`` of a block fit.

    ``root``: the square roots of one weight per sample (n, layout order), optional: then
    ``V = W^-½ C W^-½`` for all genes, and the genes' values go in times ``root``."""
    design = shared.design.copy() if root is None else root[:, None] * shared.design
    q, r = np.linalg.qr(whiten(design, shared.layout, correlation))
    return q, np.linalg.inv(r)


def gls_block(
    y: Any, shared: BlockDesign, correlation: float, basis: tuple[np.ndarray, np.ndarray]
) -> tuple[Any, Any]:
    """Generalised least squares of genes without missing values (limma's ``gls.series``).

    Parameters
    ----------
    y : array of shape (n_samples, g), float64, rows in layout order, each gene shifted by a
        constant of its own (near its mean: the residual sum of squares is a difference of
        two sums); whitened in place
    shared : BlockDesign
    correlation : float
    basis : the :func:`gls_basis` of ``shared`` and ``correlation``

    Returns
    -------
    beta : array of shape (p, g)
    rss : array of shape (g,): the whitened residual sum of squares
    """
    xp = namespace(y)
    q, r_inverse = (xp.asarray(m) for m in basis)
    wy = whiten(y, shared.layout, correlation)
    qtwy = q.T @ wy
    rss = xp.maximum(xp.sum(wy * wy, axis=0) - xp.sum(qtwy * qtwy, axis=0), 0.0)
    return r_inverse @ qtwy, rss


def weighted_gls(
    y: Any, weights: Any, design: np.ndarray, layout: BlockLayout, correlation: float
) -> tuple[Any, Any, Any]:
    """Generalised least squares with precision weights (limma's ``gls.series`` with
    ``weights``): ``V = W^-½ C W^-½`` per gene, whitened by ``C^-½ W^½``.

    Parameters
    ----------
    y, weights : arrays of shape (n_samples, g), float64, rows in layout order, no missing
        value, every weight > 0; ``y`` shifted by a constant per gene (near its mean)
    design : ndarray of shape (n_samples, p), rows in layout order
    layout : BlockLayout
    correlation : float

    Returns
    -------
    beta : array of shape (p, g)
    sd : array of shape (p, g): ``sqrt(diag((X'V⁻¹X)⁻¹))`` of each gene
    rss : array of shape (g,)
    """
    xp = namespace(y)
    n, g = y.shape
    p = design.shape[1]
    root = xp.sqrt(weights)
    wy = whiten(root * y, layout, correlation)
    wx = root[:, :, None] * xp.asarray(design)[:, None, :]
    wx = whiten(wx.reshape(n, g * p), layout, correlation).reshape(n, g, p)
    by_gene = wx.transpose(1, 2, 0)  # (g, p, n): batched products, not einsum's loops
    gram = by_gene @ by_gene.transpose(0, 2, 1)
    right = (by_gene @ wy.T[:, :, None])[:, :, 0]
    inverse = xp.linalg.inv(gram)
    beta = (inverse @ right[:, :, None])[:, :, 0]
    rss = xp.maximum(xp.sum(wy * wy, axis=0) - xp.sum(beta * right, axis=1), 0.0)
    sd = xp.sqrt(xp.diagonal(inverse, axis1=1, axis2=2))
    return beta.T, sd.T, rss
