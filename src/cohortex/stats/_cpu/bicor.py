"""WGCNA's biweight midcorrelation over the samples each pair of genes both have (numba):
``bicor(x, use = "pairwise.complete.obs")``, the correlation blockwiseModules and
``adjacency(corFnc = "bicor")`` take where values are missing.

A pair's medians, median absolute deviations and outlier quantiles are those of its shared
samples, so no product of prepared columns gives them: each pair whose samples differ from a
gene's own prepares that gene's column again over the shared samples, as WGCNA's
``threadSlowCalcBicor`` (with its default ``quick = 0``). The twin is
``stats._network.bicor_columns`` of the pair's shared samples.
"""

from __future__ import annotations

import numba
import numpy as np

from ..._jit import njit
from .select import quantile_type7

__all__ = ["bicor_prepare", "pairwise_bicor_rows", "pairwise_bicor_whole"]

_REF_UX = 0.5  # WGCNA's RefUX: the outlier quantiles are moved to ±0.5 before the weights


@njit(nogil=True, cache=True)
def bicor_prepare(values, count, cap, out, scratch):  # type: ignore[no-untyped-def]
    """WGCNA's ``prepareColBicor`` of ``values[:count]`` into ``out[:count]``: unit length,
    their dot products the biweight midcorrelations; a column whose median absolute
    deviation is 0 centred and scaled as Pearson's (``pearsonFallback = "individual"``).
    Returns False where the column is constant (R's NA). ``scratch`` holds ``count`` values.
    """
    if count == 0:
        return False
    for k in range(count):
        scratch[k] = values[k]
    median = quantile_type7(scratch[:count], 0.5)
    for k in range(count):
        scratch[k] = abs(values[k] - median)
    mad = quantile_type7(scratch[:count], 0.5)
    total = 0.0
    if mad == 0.0:
        mean = 0.0
        for k in range(count):
            mean += values[k]
        mean /= count
        for k in range(count):
            out[k] = values[k] - mean
            total += out[k] * out[k]
    else:
        denominator = 9.0 * mad
        low, high = _REF_UX, _REF_UX
        if cap < 1.0:
            for k in range(count):
                scratch[k] = (values[k] - median) / denominator
            low = abs(min(quantile_type7(scratch[:count], cap), -_REF_UX))
            for k in range(count):
                scratch[k] = (values[k] - median) / denominator
            high = max(quantile_type7(scratch[:count], 1.0 - cap), _REF_UX)
        for k in range(count):
            u = (values[k] - median) / denominator
            u = u * (_REF_UX / low) if u < 0.0 else u * (_REF_UX / high)
            u = min(abs(u), 1.0)
            weight = 1.0 - u * u
            out[k] = (values[k] - median) * (weight * weight)
            total += out[k] * out[k]
    if total == 0.0:
        return False
    root = np.sqrt(total)
    for k in range(count):
        out[k] /= root
    return True


@njit(nogil=True, cache=True)
def _pair(x, present, own, counts, cap, i, j, buffers):  # type: ignore[no-untyped-def]
    """The bicor of genes i and j over their shared samples (NaN where undefined)."""
    n = x.shape[0]
    if counts[i] == n and counts[j] == n:  # no missing values: the genes' own columns
        total = 0.0
        for k in range(n):
            total += own[k, i] * own[k, j]
        return total
    a, b, prepared_a, prepared_b, scratch = buffers
    shared = 0
    for k in range(n):
        if present[k, i] and present[k, j]:
            a[shared] = x[k, i]
            b[shared] = x[k, j]
            shared += 1
    if shared < 2:
        return np.nan
    if shared == counts[i] and shared == counts[j]:  # the same samples: their own columns
        total = 0.0
        for k in range(n):
            total += own[k, i] * own[k, j]
        return total
    if not (
        bicor_prepare(a, shared, cap, prepared_a, scratch)
        and bicor_prepare(b, shared, cap, prepared_b, scratch)
    ):
        return np.nan
    total = 0.0
    for k in range(shared):
        total += prepared_a[k] * prepared_b[k]
    return total


@njit(nogil=True, cache=True)
def _own_columns(x, present, cap):  # type: ignore[no-untyped-def]
    """Each gene prepared over its own samples (0 where missing), and its count of samples:
    -1 for a gene constant over them, so that no pair takes its column."""
    n, genes = x.shape
    own = np.zeros((n, genes))
    counts = np.zeros(genes, dtype=np.int64)
    values, prepared, scratch = np.empty(n), np.empty(n), np.empty(n)
    for g in range(genes):
        count = 0
        for k in range(n):
            if present[k, g]:
                values[count] = x[k, g]
                count += 1
        counts[g] = count
        if not bicor_prepare(values, count, cap, prepared, scratch):
            counts[g] = -1
            continue
        used = 0
        for k in range(n):
            if present[k, g]:
                own[k, g] = prepared[used]
                used += 1
    return own, counts


@njit(nogil=True, cache=True)
def _buffers(n):  # type: ignore[no-untyped-def]
    return np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)


@njit(nogil=True, cache=True)
def _upper_row(x, present, own, counts, cap, i, out, buffers):  # type: ignore[no-untyped-def]
    """Row i of the upper triangle, mirrored into column i."""
    out[i, i] = 1.0
    for j in range(i + 1, x.shape[1]):
        value = _pair(x, present, own, counts, cap, i, j, buffers)
        out[i, j] = value
        out[j, i] = value


@njit(parallel=True, nogil=True, cache=True)
def pairwise_bicor_whole(x, present, cap):  # type: ignore[no-untyped-def]
    """The genes × genes bicor over each pair's shared samples, diagonal 1.

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_genes), float64
        Any value where missing.
    present : ndarray of shape (n_samples, n_genes), bool
    cap : float
        ``maxPOutliers``.

    Returns
    -------
    ndarray of shape (n_genes, n_genes), float64
        NaN where a pair shares fewer than 2 samples or a gene is constant over them.
    """
    genes = x.shape[1]
    own, counts = _own_columns(x, present, cap)
    out = np.empty((genes, genes))
    for p in numba.prange((genes + 1) // 2):  # rows p and genes-1-p: genes-1 pairs each
        buffers = _buffers(x.shape[0])
        _upper_row(x, present, own, counts, cap, p, out, buffers)
        if genes - 1 - p != p:
            _upper_row(x, present, own, counts, cap, genes - 1 - p, out, buffers)
    return out


@njit(parallel=True, nogil=True, cache=True)
def pairwise_bicor_rows(x, present, rows, cap):  # type: ignore[no-untyped-def]
    """:func:`pairwise_bicor_whole`'s rows ``rows`` (ndarray of int, shape (m,)): an array
    of shape (m, n_genes), 1 at each row's own gene."""
    genes = x.shape[1]
    own, counts = _own_columns(x, present, cap)
    out = np.empty((rows.shape[0], genes))
    for r in numba.prange(rows.shape[0]):
        buffers = _buffers(x.shape[0])
        i = rows[r]
        for j in range(genes):
            out[r, j] = 1.0 if j == i else _pair(x, present, own, counts, cap, i, j, buffers)
    return out
