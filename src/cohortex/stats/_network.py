"""WGCNA's network of genes on ``xp``: correlations, soft-thresholded adjacency, the topological
overlap (TOM) and connectivities, as WGCNA 1.72 computes them.

Every function takes and returns arrays of one namespace (NumPy or CuPy); matrices are
genes × genes in float64. Elementwise steps run over blocks of rows of about a megabyte: on a
CPU a whole-matrix temporary costs more in fresh pages than the arithmetic (10× for a power).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.linalg
from scipy import stats

from .._backend import namespace, to_host

__all__ = [
    "accumulate_gram",
    "adjacency",
    "adjacency_matrix",
    "adjacency_sums",
    "bicor_columns",
    "connectivities",
    "correlation_from_gram",
    "pairwise_adjacency_sums",
    "pairwise_bicor",
    "pairwise_bicor_adjacency_sums",
    "pairwise_correlation",
    "pairwise_spearman",
    "spearman_columns",
    "tom_denominator",
    "tom_dissimilarity",
]

_BLOCK_VALUES = 1 << 17  # values of a row block of elementwise work: 1 MB, cache-sized
_PRODUCT_VALUES = 1 << 24  # values of a row block of a matrix product: 128 MB
_PAIRWISE_VALUES = 1 << 20  # pairwise correlations: a dozen elementwise steps on each block


def _row_blocks(n_rows: int, n_columns: int, product: bool = False) -> list[slice]:
    rows = max(1, (_PRODUCT_VALUES if product else _BLOCK_VALUES) // max(n_columns, 1))
    return [slice(start, min(n_rows, start + rows)) for start in range(0, n_rows, rows)]


def accumulate_gram(gram: Any, block: Any, mean: Any, sd: Any) -> None:
    """Add ``zᵀz`` of a block of samples, standardised by the genes' means and sds, to ``gram``.

    Parameters
    ----------
    gram : array of shape (n_genes, n_genes), float64
        Updated in place.
    block : array of shape (n_block_samples, n_genes)
    mean, sd : arrays of shape (n_genes,), float64
    """
    xp = namespace(gram)
    z = (xp.asarray(block, dtype=xp.float64) - mean) / sd
    n_genes = gram.shape[0]
    for rows in _row_blocks(n_genes, n_genes, product=True):
        gram[rows] += z[:, rows].T @ z


def pairwise_correlation(z: Any, present: Any, rows: Any = None) -> Any:
    """Pearson's correlations over the samples each pair of genes both have (R's ``cor(use =
    "p")``), from sums over the samples: six products of the values and their presence (over
    the upper triangle only, for the whole matrix).

    Parameters
    ----------
    z : array of shape (n_samples, n_genes), float64
        The genes centred and scaled by their own means and sds (so that the pairs' sums do
        not cancel), 0 where missing.
    present : array of shape (n_samples, n_genes), float64
        1 where a value is present, else 0.
    rows : array of int, shape (m,), optional
        The genes whose rows are wanted (all by default).

    Returns
    -------
    array of shape (m, n_genes), float64
        NaN where a pair shares fewer than 2 samples or one of them does not vary over those.
    """
    xp = namespace(z)
    n_genes = z.shape[1]
    whole = rows is None
    index = xp.arange(n_genes) if whole else xp.asarray(rows)
    out = xp.empty((index.shape[0], n_genes), dtype=xp.float64)
    squares = z * z
    rows_each = max(1, _PAIRWISE_VALUES // max(n_genes, 1))
    for start in range(0, index.shape[0], rows_each):
        block = slice(start, min(index.shape[0], start + rows_each))
        genes = index[block]
        columns = slice(block.start if whole else 0, n_genes)  # whole: mirrored below
        values = _pairwise_block(
            (z[:, genes], present[:, genes], squares[:, genes]),
            (z[:, columns], present[:, columns], squares[:, columns]),
        )
        out[block, columns] = values
        if whole:
            out[block.stop :, block] = values[:, block.stop - block.start :].T
    out[xp.arange(index.shape[0]), index] = 1.0
    return out


def pairwise_adjacency_sums(z: Any, present: Any, power: float, network: str) -> Any:
    """Each gene's :func:`adjacency` to the other genes, summed, of :func:`pairwise_correlation`
    (WGCNA's connectivity with missing values), from blocks of rows of the upper triangle:
    the whole matrix is never held.

    Parameters
    ----------
    z, present : arrays of shape (n_samples, n_genes), float64
        As :func:`pairwise_correlation`.
    power : float
    network : str

    Returns
    -------
    array of shape (n_genes,)
        NaN for a gene that shares fewer than 2 samples with some other gene.
    """
    xp = namespace(z)
    n_genes = z.shape[1]
    squares = z * z
    total = xp.zeros(n_genes, dtype=xp.float64)
    rows_each = max(1, _PAIRWISE_VALUES // max(n_genes, 1))
    for start in range(0, n_genes, rows_each):
        block = slice(start, min(n_genes, start + rows_each))
        later = slice(start, n_genes)
        values = _pairwise_block(
            (z[:, block], present[:, block], squares[:, block]),
            (z[:, later], present[:, later], squares[:, later]),
        )
        m = block.stop - block.start
        index = xp.arange(m)
        values[index, index] = 1.0
        weights = adjacency(values, power, network)
        total[block] += weights.sum(axis=1)  # this block's genes with themselves and later ones
        total[block.stop :] += weights[:, m:].sum(axis=0)  # the later genes with this block's
    return total - 1.0


def _pairwise_block(a: tuple[Any, Any, Any], b: tuple[Any, Any, Any]) -> Any:
    """:func:`pairwise_correlation` of the columns ``a`` with the columns ``b``, each given as
    (values, presence, squared values)."""
    (za, ma, sa), (zb, mb, sb) = a, b
    xp = namespace(za)
    count = ma.T @ mb
    sum_a, sum_b = za.T @ mb, ma.T @ zb
    with np.errstate(invalid="ignore", divide="ignore"):
        shared = xp.where(count > 0, 1.0 / count, xp.nan)
        covariance = za.T @ zb - sum_a * sum_b * shared
        var_a = sa.T @ mb - sum_a * sum_a * shared
        var_b = ma.T @ sb - sum_b * sum_b * shared
        defined = (count > 1) & (var_a > 0) & (var_b > 0)
        return xp.where(
            defined, covariance / xp.sqrt(xp.where(defined, var_a * var_b, 1.0)), xp.nan
        )


_REF_UX = 0.5  # WGCNA's RefUX: the outlier quantiles are moved to ±0.5 before the weights


def spearman_columns(x: Any) -> Any:
    """Unit-length columns whose dot products are Spearman's correlations (R's ``cor(x,
    method = "spearman")``): each column's ranks, ties given their mean rank, centred.

    Parameters
    ----------
    x : array of shape (n_samples, n_genes)
        No missing values.

    Returns
    -------
    array of shape (n_samples, n_genes), float64, on ``x``'s device
    """
    xp = namespace(x)
    ranks = stats.rankdata(np.asarray(to_host(x)), axis=0)  # on the host: CuPy ranks none
    ranks -= ranks.mean(axis=0)
    ranks /= np.sqrt(np.sum(ranks * ranks, axis=0))
    return xp.asarray(ranks)


def bicor_columns(x: Any, max_p_outliers: float = 1.0) -> Any:
    """WGCNA's ``prepareColBicor`` of every column: unit-length columns whose dot products
    are the biweight midcorrelations (``bicor(x, maxPOutliers = max_p_outliers,
    pearsonFallback = "individual")``).

    Each value's deviation from its column's median, weighted by ``(1 - u²)²`` with ``u`` the
    deviation over 9 median absolute deviations (0 beyond ``|u| = 1``); where more than
    ``max_p_outliers`` of a side's values would get weight 0, that side's ``u`` is shrunk so
    that its ``max_p_outliers`` quantile falls at 0.5. A column whose median absolute
    deviation is 0 is centred and scaled as for Pearson's correlation instead.

    Parameters
    ----------
    x : array of shape (n_samples, n_genes)
        No missing values.
    max_p_outliers : float, default 1
        1: no shrinking.

    Returns
    -------
    array of shape (n_samples, n_genes), float64, on ``x``'s device
    """
    xp = namespace(x)
    x = xp.asarray(x, dtype=xp.float64)
    out = xp.empty_like(x)
    columns = max(1, _PRODUCT_VALUES // max(x.shape[0], 1))
    for start in range(0, x.shape[1], columns):
        block = x[:, start : start + columns]
        deviation = block - xp.median(block, axis=0)
        mad = xp.median(xp.abs(deviation), axis=0)
        zero = mad == 0.0
        u = deviation / (9.0 * xp.where(zero, 1.0, mad))
        low = xp.abs(xp.minimum(xp.quantile(u, max_p_outliers, axis=0), -_REF_UX))
        high = xp.maximum(xp.quantile(u, 1.0 - max_p_outliers, axis=0), _REF_UX)
        u = xp.where(u < 0, u * (_REF_UX / low), u * (_REF_UX / high))
        weight = 1.0 - xp.minimum(xp.abs(u), 1.0) ** 2
        robust = deviation * (weight * weight)
        pearson = block - xp.mean(block, axis=0)
        prepared = xp.where(zero, pearson, robust)
        out[:, start : start + columns] = prepared / xp.sqrt(xp.sum(prepared**2, axis=0))
    return out


def _gene_major(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """The compiled pairs' gene-major values (0 where missing) and presence, on the host."""
    host = np.asarray(to_host(values), dtype=np.float64)
    present = np.ascontiguousarray(~np.isnan(host.T))  # gene-major: a pair reads two genes
    return np.where(present, host.T, 0.0), present


def pairwise_bicor(
    values: Any, rows: Any = None, max_p_outliers: float = 1.0, quick: float = 0.0
) -> Any:
    """WGCNA's ``bicor(use = "pairwise.complete.obs")``: each pair of genes' biweight
    midcorrelation over the samples both have, its medians and outlier caps those samples'
    (:func:`bicor_columns` of them). Computed on the host (compiled loops: each pair's medians
    are its own, no product gives them).

    Parameters
    ----------
    values : array of shape (n_samples, n_genes)
        NaN where missing, finite elsewhere.
    rows : array of int, shape (m,), optional
        The genes whose rows are wanted (all by default).
    max_p_outliers : float, default 1
    quick : float, default 0
        WGCNA's ``quick``: a gene is prepared again over a pair's samples only where the pair
        misses more than ``quick × n_samples`` of its samples (else its own column, 0 where it
        misses, is taken); 0 is exact, 1 every gene's own column.

    Returns
    -------
    array of shape (m, n_genes), float64, on ``values``' device
        NaN where a pair shares fewer than 2 samples or one of them is constant over them.
    """
    from ._cpu.shared_samples import bicor_genes, pairwise_bicor_rows, pairwise_bicor_whole

    filled, present = _gene_major(values)
    cap = float(max_p_outliers)
    if rows is None:
        out = pairwise_bicor_whole(filled, present, cap, float(quick))
    else:
        index = np.asarray(to_host(rows), dtype=np.int64)
        genes = bicor_genes(filled, present, cap)
        out = pairwise_bicor_rows(filled, present, genes, index, 0, cap, float(quick))
    return namespace(values).asarray(out)


def pairwise_spearman(values: Any, rows: Any = None) -> Any:
    """R's ``cor(use = "pairwise.complete.obs", method = "spearman")``: each pair of genes'
    Spearman's correlation over the samples both have, ranked again among those samples (ties
    their mean rank; :func:`spearman_columns` of them). Computed on the host.

    Parameters
    ----------
    values : array of shape (n_samples, n_genes)
        NaN where missing, finite elsewhere.
    rows : array of int, shape (m,), optional
        The genes whose rows are wanted (all by default).

    Returns
    -------
    array of shape (m, n_genes), float64, on ``values``' device
        NaN where a pair shares fewer than 2 samples or one of them is constant over them.
    """
    from ._cpu.shared_samples import (
        pairwise_spearman_rows,
        pairwise_spearman_whole,
        spearman_genes,
    )

    filled, present = _gene_major(values)
    if rows is None:
        out = pairwise_spearman_whole(filled, present)
    else:
        index = np.asarray(to_host(rows), dtype=np.int64)
        out = pairwise_spearman_rows(filled, present, spearman_genes(filled, present), index, 0)
    return namespace(values).asarray(out)


def pairwise_bicor_adjacency_sums(
    values: Any, power: float, network: str, max_p_outliers: float = 1.0
) -> np.ndarray:
    """Each gene's :func:`adjacency` to the other genes, summed, of :func:`pairwise_bicor`,
    from blocks of rows of the upper triangle: the whole matrix is never held.

    Parameters
    ----------
    values : array of shape (n_samples, n_genes)
        NaN where missing, finite elsewhere.
    power : float
    network : str
    max_p_outliers : float, default 1

    Returns
    -------
    ndarray of shape (n_genes,), on the host
        NaN for a gene that shares fewer than 2 samples with some other gene.
    """
    from ._cpu.shared_samples import bicor_genes, pairwise_bicor_rows

    filled, present = _gene_major(values)
    genes = bicor_genes(filled, present, float(max_p_outliers))
    n_genes = filled.shape[0]
    total = np.zeros(n_genes)
    rows_each = max(1, _PAIRWISE_VALUES // max(n_genes, 1))
    for start in range(0, n_genes, rows_each):
        stop = min(n_genes, start + rows_each)
        rows = np.arange(start, stop)
        weights = adjacency(
            pairwise_bicor_rows(filled, present, genes, rows, start, float(max_p_outliers), 0.0),
            power,
            network,
        )
        total[start:stop] += weights.sum(
            axis=1
        )  # this block's genes with themselves and later ones
        total[stop:] += weights[:, stop - start :].sum(axis=0)  # the later genes with this block's
    return total - 1.0


def correlation_from_gram(gram: Any) -> Any:
    """Pearson correlations from a co-moment matrix, in place (``gram`` is returned).

    ``c_ij = g_ij / sqrt(g_ii g_jj)`` as R's ``cor``; the diagonal is set to exactly 1.
    """
    xp = namespace(gram)
    root = xp.sqrt(xp.diagonal(gram).copy())
    n = gram.shape[0]
    for rows in _row_blocks(n, n):
        gram[rows] /= root[rows, None]
        gram[rows] /= root[None, :]
    index = xp.arange(n)
    gram[index, index] = 1.0
    return gram


def adjacency(cor: Any, power: float, network: str, *, keep_sign: bool = False) -> Any:
    """WGCNA's soft-thresholded adjacency of correlations (elementwise; any shape).

    "unsigned": ``|c|^β``; "signed": ``((1 + c) / 2)^β``; "signed hybrid": ``c^β`` where
    ``c > 0``, else 0. ``keep_sign`` (unsigned only, for the signed TOM): ``sign(c) |c|^β``.
    """
    xp = namespace(cor)
    if network == "unsigned":
        a = _power(xp.abs(cor), power)
        return a * xp.sign(cor) if keep_sign else a
    if network == "signed":
        return _power((1.0 + cor) / 2.0, power)
    return _power(xp.where(cor > 0.0, cor, 0.0), power)


def adjacency_matrix(cor: Any, power: float, network: str, *, keep_sign: bool = False) -> Any:
    """:func:`adjacency` of a whole genes × genes matrix, a block of rows at a time."""
    xp = namespace(cor)
    out = xp.empty_like(cor)
    for rows in _row_blocks(cor.shape[0], cor.shape[1]):
        out[rows] = adjacency(cor[rows], power, network, keep_sign=keep_sign)
    return out


def adjacency_sums(cor: Any, power: float, network: str) -> Any:
    """Column sums of :func:`adjacency` of a symmetric block of correlations, minus its diagonal
    of ones (WGCNA's connectivity within the block).

    Parameters
    ----------
    cor : array of shape (m, m)

    Returns
    -------
    array of shape (m,)
    """
    xp = namespace(cor)
    total = xp.zeros(cor.shape[1], dtype=xp.float64)
    for rows in _row_blocks(cor.shape[0], cor.shape[1]):
        total += adjacency(cor[rows], power, network).sum(axis=0)
    return total - 1.0


def _power(x: Any, power: float) -> Any:
    """``x ** power``; whole powers by repeated squaring, as R's ``^`` (``R_pow_di``)."""
    if power != int(power) or not 1 <= power <= 64:
        return x**power
    n = int(power)
    result: Any = None
    base = x
    while n:
        if n & 1:
            result = base if result is None else result * base
        n >>= 1
        if n:
            base = base * base
    return x.copy() if result is x else result


def connectivities(cor_rows: Any, start: int, powers: Sequence[float], network: str) -> Any:
    """pickSoftThreshold's connectivity of a block of genes at each power.

    Parameters
    ----------
    cor_rows : array of shape (n_block, n_genes)
        Rows ``start … start + n_block`` of the correlation matrix.
    start : int
    powers : sequence of float, increasing

    Returns
    -------
    array of shape (n_block, n_powers)
        ``Σ_j a_ij - 1`` with ``a_ii = 1``: each power's adjacency is the previous one times
        the base to the power's step, as WGCNA multiplies them.
    """
    xp = namespace(cor_rows)
    rows = cor_rows.shape[0]
    base = adjacency(cor_rows, 1.0, network)
    index = xp.arange(rows)
    base[index, start + index] = 1.0
    out = xp.empty((rows, len(powers)), dtype=xp.float64)
    current = xp.ones_like(base)
    previous = 0.0
    cache: dict[float, Any] = {}
    for i, power in enumerate(powers):
        step = float(power) - previous
        if step not in cache:
            cache[step] = base**step
        current = current * cache[step]
        out[:, i] = current.sum(axis=1) - 1.0
        previous = float(power)
    return out


def _square(adj: Any) -> Any:
    """``adj @ adj`` of a symmetric matrix; on the CPU by BLAS's symmetric rank-k update
    (half the work of a general product, as WGCNA's own dsyrk), its triangle then mirrored."""
    xp = namespace(adj)
    if xp is not np or adj.dtype != np.float64:
        return adj @ adj
    # adjᵀ is adj in Fortran order (no copy); the lower triangle of the Fortran result is the
    # upper triangle of its C-ordered transpose
    out = scipy.linalg.blas.dsyrk(1.0, adj.T, lower=1).T
    n = out.shape[0]
    for rows in _row_blocks(n, n):
        start, stop = rows.start, rows.stop
        out[rows, :start] = out[:start, rows].T  # rows start … stop: upper part known
        upper = np.triu(out[rows, start:stop])
        out[rows, start:stop] = upper + np.triu(upper, 1).T
    return out


def tom_denominator(rows: Any, columns: Any, how: str) -> Any:
    """The TOM's denominator before its ``- |a_ij|``: ``min(k_i, k_j) + 1`` (WGCNA's
    ``TOMDenom = "min"``) or ``(k_i + k_j) / 2 + 1`` ("mean").

    Parameters
    ----------
    rows : array of shape (m,)
        ``k_i + 1`` of the rows' genes.
    columns : array of shape (n,)
        ``k_j + 1`` of the columns' genes.
    how : {"min", "mean"}

    Returns
    -------
    array of shape (m, n)
    """
    xp = namespace(rows)
    if how == "mean":
        return (rows[:, None] + columns[None, :]) / 2.0
    return xp.minimum(rows[:, None], columns[None, :])


def tom_dissimilarity(
    adj: Any, *, signed: bool = False, denominator: str = "min"
) -> tuple[Any, Any]:
    """``1 - TOM`` of an adjacency matrix, as WGCNA's ``TOMsimilarity``.

    Parameters
    ----------
    adj : array of shape (n_genes, n_genes)
        Symmetric, diagonal 1 (signed entries for the signed TOM). Not modified.
    signed : bool
        WGCNA's signed TOM: ``|l_ij + a_ij| / (min(k_i, k_j) + 1 - |a_ij|)``; unsigned without
        the absolute values (``l = A²`` off the diagonal, ``k`` the connectivities).
    denominator : {"min", "mean"}, default "min"
        ``TOMDenom``: ``min(k_i, k_j)`` or ``(k_i + k_j) / 2`` in the denominator.

    Returns
    -------
    dissimilarity : array of shape (n_genes, n_genes)
        ``1 - TOM`` (diagonal 0).
    connectivity : array of shape (n_genes,)
        ``Σ_j |a_ij|`` with ``a_ii = 1``: WGCNA's ``kTotal`` plus 1.
    """
    xp = namespace(adj)
    n = adj.shape[0]
    connectivity = xp.abs(adj).sum(axis=1)
    out = _square(adj)  # with a_ii = 1: l_ij + 2 a_ij
    for rows in _row_blocks(n, n):
        a = adj[rows]
        numerator = out[rows] - a
        absolute = xp.abs(a) if signed else a
        below = tom_denominator(connectivity[rows], connectivity, denominator) - absolute
        if signed:
            numerator = xp.abs(numerator)
        empty = below == 0.0
        tom = numerator / xp.where(empty, 1.0, below)
        out[rows] = 1.0 - xp.where(empty, 0.0, tom)
    index = xp.arange(n)
    out[index, index] = 0.0
    return out, connectivity
