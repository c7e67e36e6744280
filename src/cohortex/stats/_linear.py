"""Ordinary least squares for every gene at once, on ``xp``.

One pass over sample chunks accumulates, for a design X (n × p) and the data Y (n × genes),
``X'X``, ``X'1``, ``X'Ỹ``, ``1'Ỹ`` and ``Σ Ỹ²`` where ``Ỹ = Y − 1 c'`` is shifted by a
per-gene provisional mean ``c`` (the chunk's own mean, moved to the first chunk's when chunks
are merged). When the columns of X span the constant (an intercept, or the cell means of a
factor) the fit is unchanged by the shift and the residual sum of squares
``RSS = Σ Ỹ² − b̃' X'Ỹ`` loses nothing to cancellation; otherwise no shift is applied.
limma's empirical Bayes on the result is in ``_ebayes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import namespace, to_host

__all__ = [
    "LinearSums",
    "WeightedSums",
    "chunk_sums",
    "contrast_stdev_unscaled",
    "join_genes",
    "merge_sums",
    "merge_weighted_sums",
    "solve_weighted",
    "weighted_chunk_sums",
]


@dataclass
class LinearSums:
    """Sufficient statistics of OLS over a set of samples (see the module notes); with
    sample weights w, of the fit of ``√w Y`` on ``√w X`` (weighted least squares with one
    weight per sample, shared by every gene).

    Attributes
    ----------
    n : int
        Samples.
    mass : float
        ``Σ w`` (``n`` without weights).
    xtx : ndarray of shape (p, p), float64 (host): X'WX
    xsum : ndarray of shape (p,), float64 (host): X'W1
    xy : array of shape (p, n_genes): X'WỸ
    ysum : array of shape (n_genes,): 1'WỸ
    yy : array of shape (n_genes,): Σ w Ỹ²
    plain_sum : array of shape (n_genes,): 1'Ỹ, unweighted (for the mean)
    shift : array of shape (n_genes,): the c in Ỹ = Y − c
    """

    n: int
    mass: float
    xtx: np.ndarray
    xsum: np.ndarray
    xy: Any
    ysum: Any
    yy: Any
    plain_sum: Any
    shift: Any


def chunk_sums(
    block: Any,
    design: np.ndarray,
    shifted: bool,
    weights: np.ndarray | None = None,
    *,
    compiled: bool = True,
) -> LinearSums:
    """Sums of one chunk: ``block`` (n_chunk × genes, NumPy or CuPy), ``design`` its rows,
    ``weights`` (n_chunk,) one per sample (> 0) or None.

    NumPy chunks go through the compiled loop of ``_cpu.linear`` (one read of each value)
    unless ``compiled=False``.
    """
    xp = namespace(block)
    if compiled and xp is np:
        from ._cpu.linear import linear_chunk_sums  # numba: CPU only

        root = np.ones(design.shape[0]) if weights is None else np.sqrt(weights)
        weighted = design * (root * root)[:, None]
        return LinearSums(
            n=design.shape[0],
            mass=float(root @ root),
            xtx=design.T @ weighted,
            xsum=weighted.sum(axis=0),
            **linear_chunk_sums(np.asarray(block), design, shifted, root),
        )
    y = block.astype(xp.float64)
    shift = y.mean(axis=0) if shifted else xp.zeros(y.shape[1])
    y -= shift
    plain_sum = y.sum(axis=0)
    ones = np.ones(design.shape[0]) if weights is None else np.sqrt(weights)
    ysum = plain_sum
    if weights is not None:  # the rows of √w Ỹ and √w X
        y *= xp.asarray(ones)[:, None]
        design = design * ones[:, None]
        ysum = xp.asarray(ones) @ y
    x = xp.asarray(design)
    return LinearSums(
        n=design.shape[0],
        mass=float(ones @ ones),
        xtx=design.T @ design,
        xsum=design.T @ ones,
        xy=x.T @ y,
        ysum=ysum,
        yy=xp.sum(y * y, axis=0),
        plain_sum=plain_sum,
        shift=shift,
    )


def merge_sums(a: LinearSums, b: LinearSums) -> LinearSums:
    """Add two chunks' sums, moving ``b`` to ``a``'s shift first."""
    xp = namespace(a.xy)
    delta = b.shift - a.shift  # Ỹ_b relative to a's shift = Ỹ_b + δ
    xy_b = b.xy + xp.asarray(b.xsum)[:, None] * delta[None, :]
    yy_b = b.yy + 2.0 * delta * b.ysum + b.mass * delta * delta
    ysum_b = b.ysum + b.mass * delta
    return LinearSums(
        n=a.n + b.n,
        mass=a.mass + b.mass,
        xtx=a.xtx + b.xtx,
        xsum=a.xsum + b.xsum,
        xy=a.xy + xy_b,
        ysum=a.ysum + ysum_b,
        yy=a.yy + yy_b,
        plain_sum=a.plain_sum + b.plain_sum + b.n * delta,
        shift=a.shift,
    )


def join_genes(parts: list[LinearSums]) -> LinearSums:
    """The sums of consecutive blocks of genes (over the same samples) as one."""
    xp = namespace(parts[0].xy)
    first = parts[0]

    def joined(name: str, axis: int = 0) -> Any:
        return xp.concatenate([getattr(part, name) for part in parts], axis=axis)

    return LinearSums(
        n=first.n,
        mass=first.mass,
        xtx=first.xtx,
        xsum=first.xsum,
        xy=joined("xy", axis=1),
        ysum=joined("ysum"),
        yy=joined("yy"),
        plain_sum=joined("plain_sum"),
        shift=joined("shift"),
    )


@dataclass
class WeightedSums:
    """Sufficient statistics of per-gene weighted least squares (observations with NaN or a
    weight ≤ 0 left out, as limma's ``lmFit``), shifted like :class:`LinearSums`.

    Attributes
    ----------
    gram : array of shape (n_genes, p, p): X'WX per gene
    xw : array of shape (n_genes, p): X'W1
    xy : array of shape (n_genes, p): X'WỸ
    w : array of shape (n_genes,): Σ w
    wy : array of shape (n_genes,): Σ w Ỹ
    yy : array of shape (n_genes,): Σ w Ỹ²
    n_obs : array of shape (n_genes,): observations used
    total, seen : arrays of shape (n_genes,)
        Sum and number of the finite values, whatever their weight (limma's ``Amean``).
    shift : array of shape (n_genes,)
    """

    gram: Any
    xw: Any
    xy: Any
    w: Any
    wy: Any
    yy: Any
    n_obs: Any
    total: Any
    seen: Any
    shift: Any


def weighted_chunk_sums(
    block: Any, weights: Any | None, design: np.ndarray, shifted: bool, *, compiled: bool = True
) -> WeightedSums:
    """Sums of one chunk: ``block`` and ``weights`` (n_chunk × genes), ``design`` its rows.

    NumPy chunks go through the compiled loop of ``_cpu.weighted`` (one read of each value)
    unless ``compiled`` is False; this ``xp`` body is the reference and the GPU path.
    """
    xp = namespace(block)
    if compiled and xp is np and (weights is None or namespace(weights) is np):
        from ._cpu.weighted import weighted_chunk_sums as compiled_sums  # numba: CPU only

        return WeightedSums(**compiled_sums(np.asarray(block), weights, design, shifted))
    y = block.astype(xp.float64)
    finite = xp.isfinite(y)
    if weights is None:
        w = finite.astype(xp.float64)
    else:
        w = xp.asarray(weights).astype(xp.float64)
        w = xp.where(finite & xp.isfinite(w) & (w > 0), w, 0.0)
    used = w > 0
    n_obs = xp.sum(used, axis=0).astype(xp.float64)
    values = xp.where(finite, y, 0.0)
    if shifted:
        shift = xp.sum(xp.where(used, values, 0.0), axis=0) / xp.maximum(n_obs, 1.0)
    else:
        shift = xp.zeros(y.shape[1])
    centred = xp.where(used, values - shift[None, :], 0.0)
    x = xp.asarray(design)
    p = design.shape[1]
    products = (x[:, :, None] * x[:, None, :]).reshape(design.shape[0], p * p)
    weighted = w * centred
    return WeightedSums(
        gram=(w.T @ products).reshape(y.shape[1], p, p),
        xw=w.T @ x,
        xy=weighted.T @ x,
        w=xp.sum(w, axis=0),
        wy=xp.sum(weighted, axis=0),
        yy=xp.sum(weighted * centred, axis=0),
        n_obs=n_obs,
        total=xp.sum(values, axis=0),
        seen=xp.sum(finite, axis=0).astype(xp.float64),
        shift=shift,
    )


def merge_weighted_sums(a: WeightedSums, b: WeightedSums) -> WeightedSums:
    """Add two chunks' sums, moving ``b`` to ``a``'s shift first (Ỹ_b + δ on b's observations)."""
    delta = b.shift - a.shift
    return WeightedSums(
        gram=a.gram + b.gram,
        xw=a.xw + b.xw,
        xy=a.xy + b.xy + b.xw * delta[:, None],
        w=a.w + b.w,
        wy=a.wy + b.wy + b.w * delta,
        yy=a.yy + b.yy + 2.0 * delta * b.wy + b.w * delta * delta,
        n_obs=a.n_obs + b.n_obs,
        total=a.total + b.total,
        seen=a.seen + b.seen,
        shift=a.shift,
    )


def join_weighted_genes(parts: list[WeightedSums]) -> WeightedSums:
    """The sums of consecutive blocks of genes (over the same samples) as one."""
    xp = namespace(parts[0].w)
    fields = WeightedSums.__dataclass_fields__
    return WeightedSums(
        **{name: xp.concatenate([getattr(part, name) for part in parts]) for name in fields}
    )


# A gene's X'WX counts as singular below this ratio of its smallest to largest eigenvalue (the
# square of limma's QR tolerance 1e-7 on W^½X)
_RANK_TOLERANCE = 1e-14


def solve_weighted(sums: WeightedSums, shifted: bool) -> tuple[Any, Any, Any, Any]:
    """Per-gene weighted least squares from :class:`WeightedSums`, as limma's ``lm.series``.

    A gene whose observations leave the design rank-deficient keeps the estimable
    coefficients of the columns taken in order (R's pivoting QR); the others are NaN.

    Returns
    -------
    beta : array of shape (p, n_genes)
    stdev_unscaled : array of shape (p, n_genes)
        ``sqrt(diag((X'WX)⁻¹))`` per gene; NaN for coefficients that are not estimable.
    s2 : array of shape (n_genes,)
        Residual variance; NaN without residual df.
    df : array of shape (n_genes,)
        Observations minus rank.
    """
    xp = namespace(sums.gram)
    n_genes, p, _ = sums.gram.shape
    eigenvalues = xp.linalg.eigvalsh(sums.gram)
    largest = eigenvalues[:, -1]
    full = (eigenvalues[:, 0] > largest * _RANK_TOLERANCE) & (largest > 0)
    safe = xp.where(full[:, None, None], sums.gram, xp.eye(p)[None, :, :])
    inverse = xp.linalg.inv(safe)
    beta_shifted = xp.einsum("gpq,gq->gp", inverse, sums.xy)
    rss = sums.yy - xp.sum(beta_shifted * sums.xy, axis=1)
    beta = beta_shifted
    if shifted:  # (X'WX)⁻¹ X'W1 solves X e = 1 on each gene's observations
        e = xp.einsum("gpq,gq->gp", inverse, sums.xw)
        beta = beta_shifted + e * sums.shift[:, None]
    variance = xp.diagonal(inverse, axis1=1, axis2=2).copy()  # a view is read-only
    rank = xp.full(n_genes, float(p))
    deficient = np.flatnonzero(to_host(~full))
    if deficient.size:
        beta, variance, rss, rank = _deficient_genes(
            sums, shifted, deficient, beta, variance, rss, rank
        )
    df = sums.n_obs - rank
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = xp.where(df > 0, xp.maximum(rss, 0.0) / df, xp.nan)
    return beta.T, xp.sqrt(variance).T, s2, xp.maximum(df, 0.0)


def _deficient_genes(
    sums: WeightedSums,
    shifted: bool,
    genes: np.ndarray,
    beta: Any,
    variance: Any,
    rss: Any,
    rank: Any,
) -> tuple[Any, Any, Any, Any]:
    """The few rank-deficient genes one by one on the host, columns kept in order."""
    xp = namespace(beta)
    gram, xy, xw = (np.asarray(to_host(v[genes])) for v in (sums.gram, sums.xy, sums.xw))
    yy, shift = (np.asarray(to_host(v[genes])) for v in (sums.yy, sums.shift))
    p = gram.shape[1]
    out_beta = np.full((genes.size, p), np.nan)
    out_variance = np.full((genes.size, p), np.nan)
    out_rss = np.full(genes.size, np.nan)
    out_rank = np.zeros(genes.size)
    for k in range(genes.size):
        kept: list[int] = []
        for j in range(p):
            trial = [*kept, j]
            values = np.linalg.eigvalsh(gram[k][np.ix_(trial, trial)])
            if values[-1] > 0 and values[0] > values[-1] * _RANK_TOLERANCE:
                kept.append(j)
        out_rank[k] = len(kept)
        if not kept:
            continue
        block = np.linalg.inv(gram[k][np.ix_(kept, kept)])
        coefficients = block @ xy[k][kept]
        out_rss[k] = yy[k] - coefficients @ xy[k][kept]
        if shifted:
            coefficients = coefficients + (block @ xw[k][kept]) * shift[k]
        out_beta[k, kept] = coefficients
        out_variance[k, kept] = np.diag(block)
    index = xp.asarray(genes)
    beta[index] = xp.asarray(out_beta)
    variance[index] = xp.asarray(out_variance)
    rss[index] = xp.asarray(out_rss)
    rank[index] = xp.asarray(out_rank)
    return beta, variance, rss, rank


def contrast_stdev_unscaled(
    stdev_unscaled: Any, correlation: np.ndarray, contrasts: np.ndarray
) -> Any:
    """Per-gene unscaled standard deviations of contrasts, as limma's ``contrasts.fit``.

    limma combines each gene's coefficient deviations with the correlation of the coefficients
    of the unweighted design (exact for a shared design, limma's approximation otherwise):
    ``sqrt(colSums((R · diag(s_g) · C)²))`` with ``R'R`` that correlation.

    Parameters
    ----------
    stdev_unscaled : array of shape (p, n_genes)
    correlation : ndarray of shape (p, p)
    contrasts : ndarray of shape (p, n_contrasts)

    Returns
    -------
    array of shape (n_contrasts, n_genes)
    """
    xp = namespace(stdev_unscaled)
    upper = xp.asarray(np.linalg.cholesky(correlation).T)  # R with R'R = correlation
    scaled = stdev_unscaled[:, None, :] * xp.asarray(contrasts)[:, :, None]  # (p, c, genes)
    combined = xp.einsum("kp,pcg->kcg", upper, scaled)
    return xp.sqrt(xp.sum(combined * combined, axis=0))
