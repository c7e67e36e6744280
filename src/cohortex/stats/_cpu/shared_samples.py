"""Correlations over the samples each pair of genes both have, where no product of columns
gives them (numba): WGCNA's ``bicor(x, use = "pairwise.complete.obs")`` and R's ``cor(x, use =
"p", method = "spearman")``, which WGCNA's ``adjacency``, ``pickSoftThreshold`` and
``blockwiseModules`` take where values are missing.

A pair's medians, median absolute deviations and outlier quantiles (bicor), or its ranks
(Spearman's), are those of its shared samples: each pair whose samples differ from a gene's
own computes that gene's column again over the shared samples, as WGCNA's
``threadSlowCalcBicor`` (with ``quick = 0``, its default; other values of ``quick``, as
modulePreservation's ``quickCor``, re-prepare a gene only where a pair misses more of its
samples) and R's ``cor`` pair by pair. The twins are ``stats._network.bicor_columns`` and
``spearman_columns`` of the pair's shared samples.

Each gene's samples are sorted once, so a pair's order statistics and ranks are read from its
shared values in order (no selection or sort per pair), with R's type-7 interpolation and
arithmetic. The arrays are gene-major: a pair reads two genes whole.
"""

from __future__ import annotations

import numba
import numpy as np

from ..._jit import njit
from .select import quantile_type7

__all__ = [
    "bicor_genes",
    "bicor_prepare",
    "pairwise_bicor_rows",
    "pairwise_bicor_whole",
    "pairwise_spearman_rows",
    "pairwise_spearman_whole",
    "sorted_samples",
    "spearman_genes",
]

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
def _interpolate(lower, upper, h):  # type: ignore[no-untyped-def]
    """R's type-7 step between two order statistics, as :func:`quantile_type7`."""
    if h == 0.0 or upper == lower:
        return lower
    return (1.0 - h) * lower + h * upper


@njit(nogil=True, cache=True)
def _order_statistic(s, count, quantile):  # type: ignore[no-untyped-def]
    """The type-7 quantile of the sorted ``s[:count]``."""
    position = quantile * (count - 1)
    low = int(np.floor(position))
    return _interpolate(s[low], s[min(low + 1, count - 1)], position - low)


@njit(nogil=True, cache=True)
def _deviation_statistic(s, right, count, median, k):  # type: ignore[no-untyped-def]
    """The k-th smallest (from 0) of ``|s - median|`` for sorted ``s[:count]`` whose first
    value not below the median is ``s[right]``: the k-th of two sorted runs, ``median -
    s[right - 1 - t]`` and ``s[right + t] - median``, by bisection of how many the first
    run gives (a merge's branches cannot be predicted)."""
    above = count - right
    low, high = max(0, k + 1 - above), min(k + 1, right)
    while low < high:
        i = (low + high) // 2
        if median - s[right - 1 - i] < s[right + k - i] - median:
            low = i + 1
        else:
            high = i
    best = -np.inf
    if low > 0:
        best = median - s[right - low]
    if k - low >= 0:
        best = max(best, s[right + k - low] - median)
    return best


@njit(nogil=True, cache=True)
def _shared_scale(x, order, present, a, b, count_a, cap, s):  # type: ignore[no-untyped-def]
    """``prepareColBicor``'s constants of gene a over the samples it shares with gene b, from
    a's values in sorted order (no selection): (count, median, 9 · MAD or 0 where the MAD is
    0, the low and high sides' outlier scales, the mean for Pearson's fallback)."""
    count = 0
    for t in range(count_a):  # a's sorted values, those b has
        k = order[a, t]
        if present[b, k]:
            s[count] = x[a, k]
            count += 1
    if count < 2:
        return count, 0.0, 0.0, 1.0, 1.0, 0.0
    median = _order_statistic(s, count, 0.5)
    # the absolute deviations are two sorted runs, outward from the median on each side
    position = 0.5 * (count - 1)
    wanted = int(np.floor(position))
    h = position - wanted
    right = wanted  # the first value not below the median
    while right < count and s[right] < median:
        right += 1
    while right > 0 and s[right - 1] >= median:
        right -= 1
    lower = _deviation_statistic(s, right, count, median, wanted)
    upper = _deviation_statistic(s, right, count, median, wanted + 1) if h > 0.0 else lower
    mad = _interpolate(lower, upper, h)
    if mad == 0.0:
        mean = 0.0
        for t in range(count):
            mean += s[t]
        return count, median, 0.0, 1.0, 1.0, mean / count
    denominator = 9.0 * mad
    low, high = _REF_UX, _REF_UX
    if cap < 1.0:  # u is increasing in the value: its quantiles are the sorted values'
        for side in range(2):
            position = (cap if side == 0 else 1.0 - cap) * (count - 1)
            index = int(np.floor(position))
            below = (s[index] - median) / denominator
            above = (s[min(index + 1, count - 1)] - median) / denominator
            q = _interpolate(below, above, position - index)
            if side == 0:
                low = abs(min(q, -_REF_UX))
            else:
                high = max(q, _REF_UX)
    return count, median, denominator, low, high, 0.0


@njit(nogil=True, cache=True)
def _robust(value, median, denominator, low, high, mean):  # type: ignore[no-untyped-def]
    """A value's entry of ``prepareColBicor``'s column, before the column's scaling."""
    if denominator == 0.0:  # MAD 0: Pearson's
        return value - mean
    u = (value - median) / denominator
    u *= (_REF_UX / high, _REF_UX / low)[int(u < 0.0)]  # an index, not a branch: u's sign
    u = min(abs(u), 1.0)  # is a coin toss to the processor
    weight = 1.0 - u * u
    return (value - median) * (weight * weight)


@njit(nogil=True, cache=True)
def _pair(x, present, order, own, counts, defined, cap, limit, i, j, s):  # type: ignore[no-untyped-def]
    """The bicor of genes i and j as WGCNA's ``bicor(use = "p", quick)`` with ``limit`` its
    ``quick × n_samples``: a gene whose pair misses more than ``limit`` of the samples it has
    is prepared again over the pair's shared samples, else its own column is taken (0 where it
    misses); a pair of genes each missing at most ``limit`` samples is their own columns'
    product. NaN where undefined (a gene constant over its samples, fewer than 2 shared)."""
    n = x.shape[1]
    if not (defined[i] and defined[j]):
        return np.nan
    if n - counts[i] <= limit and n - counts[j] <= limit:  # their own columns
        total = 0.0
        for k in range(n):
            total += own[i, k] * own[j, k]
        return total
    shared, median_i, scale_i, low_i, high_i, mean_i = _shared_scale(
        x, order, present, i, j, counts[i], cap, s
    )
    if shared < 2:
        return np.nan
    again_i, again_j = counts[i] - shared > limit, counts[j] - shared > limit
    if again_j:
        _, median_j, scale_j, low_j, high_j, mean_j = _shared_scale(
            x, order, present, j, i, counts[j], cap, s
        )
    products, squares_i, squares_j = 0.0, 0.0, 0.0
    for k in range(n):
        if present[i, k] and present[j, k]:
            a = _robust(x[i, k], median_i, scale_i, low_i, high_i, mean_i) if again_i else own[i, k]
            b = _robust(x[j, k], median_j, scale_j, low_j, high_j, mean_j) if again_j else own[j, k]
            products += a * b
            squares_i += a * a
            squares_j += b * b
    if (again_i and squares_i == 0.0) or (again_j and squares_j == 0.0):
        return np.nan
    root_i = np.sqrt(squares_i) if again_i else 1.0  # own columns are of unit length already
    root_j = np.sqrt(squares_j) if again_j else 1.0
    return products / (root_i * root_j)


@njit(nogil=True, cache=True)
def _gather(x, present, g, values, samples):  # type: ignore[no-untyped-def]
    """Gene g's present values into ``values`` and their samples into ``samples``, in sample
    order; returns their count."""
    count = 0
    for k in range(x.shape[1]):
        if present[g, k]:
            values[count] = x[g, k]
            samples[count] = k
            count += 1
    return count


@njit(nogil=True, cache=True)
def sorted_samples(x, present):  # type: ignore[no-untyped-def]
    """Each gene's count of samples, and its samples in increasing order of value (the first
    ``count`` of each row; ties in sample order).

    Returns
    -------
    tuple of (n_genes,) int64 and (n_genes, n_samples) int64 arrays
    """
    genes, n = x.shape
    counts = np.zeros(genes, dtype=np.int64)
    order = np.zeros((genes, n), dtype=np.int64)
    values = np.empty(n)
    samples = np.empty(n, dtype=np.int64)
    for g in range(genes):
        count = _gather(x, present, g, values, samples)
        counts[g] = count
        ranks = np.argsort(values[:count], kind="mergesort")
        for t in range(count):
            order[g, t] = samples[ranks[t]]
    return counts, order


@njit(nogil=True, cache=True)
def bicor_genes(x, present, cap):  # type: ignore[no-untyped-def]
    """What every pair reads of its genes, made once: each gene prepared over its own samples
    (0 where missing); its count of samples; whether that column is defined (not so for a
    gene constant over them: no pair takes it); and :func:`sorted_samples`' order. Arrays
    gene-major, as :func:`pairwise_bicor_whole`'s.

    Returns
    -------
    tuple of (n_genes, n_samples) float64, (n_genes,) int64, (n_genes,) bool and
    (n_genes, n_samples) int64 arrays
    """
    genes, n = x.shape
    counts, order = sorted_samples(x, present)
    own = np.zeros((genes, n))
    defined = np.zeros(genes, dtype=np.bool_)
    values, prepared, scratch = np.empty(n), np.empty(n), np.empty(n)
    samples = np.empty(n, dtype=np.int64)
    for g in range(genes):
        count = _gather(x, present, g, values, samples)
        defined[g] = bicor_prepare(values, count, cap, prepared, scratch)
        if defined[g]:
            for t in range(count):
                own[g, samples[t]] = prepared[t]
    return own, counts, defined, order


@njit(nogil=True, cache=True)
def _upper_row(x, present, order, own, counts, defined, cap, limit, i, out, s):  # type: ignore[no-untyped-def]
    """Row i of the upper triangle, mirrored into column i."""
    out[i, i] = 1.0
    for j in range(i + 1, x.shape[0]):
        value = _pair(x, present, order, own, counts, defined, cap, limit, i, j, s)
        out[i, j] = value
        out[j, i] = value


@njit(parallel=True, nogil=True, cache=True)
def pairwise_bicor_whole(x, present, cap, quick):  # type: ignore[no-untyped-def]
    """The genes × genes bicor over each pair's shared samples, diagonal 1.

    Parameters
    ----------
    x : ndarray of shape (n_genes, n_samples), float64
        Gene-major (each gene's samples contiguous: every pair reads two genes whole).
        Finite where present, any value where missing.
    present : ndarray of shape (n_genes, n_samples), bool
    cap : float
        ``maxPOutliers``.
    quick : float
        ``quick``: 0 prepares each gene again over every pair's shared samples where they
        are fewer than its own; 1 takes every gene's own column (see :func:`_pair`).

    Returns
    -------
    ndarray of shape (n_genes, n_genes), float64
        NaN where a pair shares fewer than 2 samples or a gene is constant over them.
    """
    genes = x.shape[0]
    own, counts, defined, order = bicor_genes(x, present, cap)
    limit = int(quick * x.shape[1])  # WGCNA's maxDiffNA
    out = np.empty((genes, genes))
    for p in numba.prange((genes + 1) // 2):  # rows p and genes-1-p: genes-1 pairs each
        s = np.empty(x.shape[1])
        _upper_row(x, present, order, own, counts, defined, cap, limit, p, out, s)
        if genes - 1 - p != p:
            _upper_row(x, present, order, own, counts, defined, cap, limit, genes - 1 - p, out, s)
    return out


@njit(parallel=True, nogil=True, cache=True)
def pairwise_bicor_rows(x, present, genes, rows, first, cap, quick):  # type: ignore[no-untyped-def]
    """:func:`pairwise_bicor_whole`'s rows ``rows`` (ndarray of int, shape (m,)) from column
    ``first`` on, given :func:`bicor_genes` ``genes``: an array of shape (m, n_genes - first),
    1 at each row's own gene."""
    own, counts, defined, order = genes
    limit = int(quick * x.shape[1])
    out = np.empty((rows.shape[0], x.shape[0] - first))
    for r in numba.prange(rows.shape[0]):
        s = np.empty(x.shape[1])
        i = rows[r]
        for j in range(first, x.shape[0]):
            out[r, j - first] = (
                1.0
                if j == i
                else _pair(x, present, order, own, counts, defined, cap, limit, i, j, s)
            )
    return out


@njit(nogil=True, cache=True)
def _shared_ranks(x, order, present, a, b, count_a, ranks, samples):  # type: ignore[no-untyped-def]
    """Gene a's ranks among the samples it shares with gene b (all of a's where b < 0), ties
    given their mean rank (R's ``rank``), written at those samples in ``ranks``; the shared
    samples in ``samples``. Returns their count."""
    count = 0
    for t in range(count_a):
        k = order[a, t]
        if b < 0 or present[b, k]:
            samples[count] = k
            count += 1
    start = 0
    while start < count:
        stop = start + 1
        while stop < count and x[a, samples[stop]] == x[a, samples[start]]:
            stop += 1
        rank = 0.5 * (start + 1 + stop)  # the mean of ranks start + 1 … stop
        for t in range(start, stop):
            ranks[samples[t]] = rank
        start = stop
    return count


@njit(nogil=True, cache=True)
def spearman_genes(x, present):  # type: ignore[no-untyped-def]
    """:func:`bicor_genes` for Spearman's correlation: each gene's ranks over its own samples,
    centred and of unit length (0 where missing)."""
    genes, n = x.shape
    counts, order = sorted_samples(x, present)
    own = np.zeros((genes, n))
    defined = np.zeros(genes, dtype=np.bool_)
    ranks = np.empty(n)
    samples = np.empty(n, dtype=np.int64)
    for g in range(genes):
        count = _shared_ranks(x, order, present, g, -1, counts[g], ranks, samples)
        centre, total = 0.5 * (count + 1), 0.0
        for t in range(count):
            k = samples[t]
            own[g, k] = ranks[k] - centre
            total += own[g, k] * own[g, k]
        defined[g] = total > 0.0
        if defined[g]:
            root = np.sqrt(total)
            for t in range(count):
                own[g, samples[t]] /= root
    return own, counts, defined, order


@njit(nogil=True, cache=True)
def _spearman_pair(x, present, order, own, counts, defined, i, j, buffers):  # type: ignore[no-untyped-def]
    """Spearman's correlation of genes i and j over their shared samples (NaN where
    undefined)."""
    n = x.shape[1]
    both = defined[i] and defined[j]
    ranks_i, ranks_j, samples = buffers
    if both and counts[i] == n and counts[j] == n:  # no missing values: their own columns
        total = 0.0
        for k in range(n):
            total += own[i, k] * own[j, k]
        return total
    shared = _shared_ranks(x, order, present, i, j, counts[i], ranks_i, samples)
    if shared < 2:
        return np.nan
    if both and shared == counts[i] and shared == counts[j]:  # the same samples: own columns
        total = 0.0
        for k in range(n):
            total += own[i, k] * own[j, k]
        return total
    _shared_ranks(x, order, present, j, i, counts[j], ranks_j, samples)
    centre = 0.5 * (shared + 1)
    products, squares_i, squares_j = 0.0, 0.0, 0.0
    for t in range(shared):  # the shared samples (in j's order)
        k = samples[t]
        a, b = ranks_i[k] - centre, ranks_j[k] - centre
        products += a * b
        squares_i += a * a
        squares_j += b * b
    if squares_i == 0.0 or squares_j == 0.0:
        return np.nan
    return products / (np.sqrt(squares_i) * np.sqrt(squares_j))


@njit(nogil=True, cache=True)
def _spearman_upper_row(x, present, genes, i, out, buffers):  # type: ignore[no-untyped-def]
    """Row i of the upper triangle, mirrored into column i."""
    own, counts, defined, order = genes
    out[i, i] = 1.0
    for j in range(i + 1, x.shape[0]):
        value = _spearman_pair(x, present, order, own, counts, defined, i, j, buffers)
        out[i, j] = value
        out[j, i] = value


@njit(parallel=True, nogil=True, cache=True)
def pairwise_spearman_whole(x, present):  # type: ignore[no-untyped-def]
    """:func:`pairwise_bicor_whole` for Spearman's correlation (R's ``cor(use = "p", method
    = "spearman")``: each pair's shared samples ranked again)."""
    n_genes, n = x.shape
    genes = spearman_genes(x, present)
    out = np.empty((n_genes, n_genes))
    for p in numba.prange((n_genes + 1) // 2):  # rows p and n_genes-1-p: n_genes-1 pairs each
        buffers = (np.empty(n), np.empty(n), np.empty(n, dtype=np.int64))
        _spearman_upper_row(x, present, genes, p, out, buffers)
        if n_genes - 1 - p != p:
            _spearman_upper_row(x, present, genes, n_genes - 1 - p, out, buffers)
    return out


@njit(parallel=True, nogil=True, cache=True)
def pairwise_spearman_rows(x, present, genes, rows, first):  # type: ignore[no-untyped-def]
    """:func:`pairwise_bicor_rows` for Spearman's correlation, given :func:`spearman_genes`
    ``genes``."""
    own, counts, defined, order = genes
    n = x.shape[1]
    out = np.empty((rows.shape[0], x.shape[0] - first))
    for r in numba.prange(rows.shape[0]):
        buffers = (np.empty(n), np.empty(n), np.empty(n, dtype=np.int64))
        i = rows[r]
        for j in range(first, x.shape[0]):
            out[r, j - first] = (
                1.0
                if j == i
                else _spearman_pair(x, present, order, own, counts, defined, i, j, buffers)
            )
    return out
