"""Rank statistics for the Wilcoxon rank-sum (Mann–Whitney U) test, on ``xp``.

Ranks are taken per gene over the samples of a comparison, ties getting the average of the
ranks they span, exactly as ``scipy.stats.rankdata(method="average")``; the tie correction
``Σ (t³ − t)`` over tie blocks of size ``t`` comes from the same sorted pass. NaN values are
ranked last and left out (they get rank NaN and do not count in n).

The Wilcoxon test does not rank with ``average_ranks``: the CPU ranks in the compiled loop of
:mod:`cohortex.stats._cpu.rank_sums` and the GPU in ``kernels/rank_sum_walk.cu``, and the tests hold
both to it. Quantile normalisation ranks each sample's genes with it.

The normal approximation follows ``scipy.stats.mannwhitneyu(method="asymptotic",
use_continuity=True)``::

    U = max(U1, n1 n2 − U1),   σ² = n1 n2 / 12 · ((n + 1) − Σ(t³ − t) / (n (n − 1)))
    z = (U − n1 n2 / 2 − 1/2) / σ,   p = min(1, erfc(z / √2))

and the exact two-sided p-value (no ties, ``min(n1, n2) <= 8``, scipy's ``method="auto"``
rule) sums the null distribution of U, the coefficients of the Gaussian binomial
``[n1 + n2 choose n1]_q``, in exact integer arithmetic.
"""

from __future__ import annotations

import functools
from typing import Any

from .._backend import namespace
from ._scan import running_max, running_min

__all__ = ["EXACT_MAX_SMALLER_GROUP", "average_ranks", "exact_two_sided_p", "exact_upper_p"]

EXACT_MAX_SMALLER_GROUP = 8  # scipy's method="auto": exact when a group has ≤ 8 samples


def average_ranks(x: Any) -> tuple[Any, Any, Any]:
    """Average ranks along the last axis.

    Parameters
    ----------
    x : array of shape (n_genes, n_samples)
        NumPy or CuPy, float.

    Returns
    -------
    ranks : array of shape (n_genes, n_samples), float64
        1-based average ranks among the non-NaN values of each row; NaN where ``x`` is NaN.
    tie_term : array of shape (n_genes,), float64
        ``Σ (t³ − t)`` over the tie blocks of each row.
    n_valid : array of shape (n_genes,), float64
        Number of non-NaN values per row.
    """
    xp = namespace(x)
    n = x.shape[-1]
    order = xp.argsort(x, axis=-1)  # NaN sort last
    ordered = xp.take_along_axis(x, order, axis=-1)
    valid = ~xp.isnan(ordered)
    starts_run = xp.ones(ordered.shape, dtype=bool)
    starts_run[:, 1:] = ordered[:, 1:] != ordered[:, :-1]  # NaN != NaN: each NaN its own run
    ends_run = xp.ones(ordered.shape, dtype=bool)
    ends_run[:, :-1] = starts_run[:, 1:]
    position = xp.broadcast_to(xp.arange(n), ordered.shape)
    first = running_max(xp.where(starts_run, position, 0))
    last = running_min(xp.where(ends_run, position, n), reverse=True)
    average = (first + last) / 2.0 + 1.0
    size = (last - first + 1).astype(xp.float64)
    tie_term = xp.sum(xp.where(starts_run & valid, size**3 - size, 0.0), axis=-1)
    ranks = xp.empty(ordered.shape, dtype=xp.float64)
    ranks[xp.arange(ordered.shape[0])[:, None], order] = xp.where(valid, average, xp.nan)
    return ranks, tie_term, xp.sum(valid, axis=-1).astype(xp.float64)


@functools.cache
def _u_counts(n1: int, n2: int) -> tuple[int, ...]:
    """Null counts of U for groups of n1 and n2 (the Gaussian binomial's coefficients)."""
    small, large = min(n1, n2), max(n1, n2)
    # [large + small choose small]_q = Π_{i=1..small} (1 − q^{large+i}) / (1 − q^i), built one
    # factor at a time; every intermediate is itself a Gaussian binomial (non-negative).
    counts = [1]
    for i in range(1, small + 1):
        degree = len(counts) - 1 + large
        product = counts + [0] * large
        for u in range(degree, large + i - 1, -1):  # multiply by (1 − q^{large+i})
            product[u] -= product[u - large - i]
        for u in range(i, degree + 1):  # divide by (1 − q^i): a running sum with stride i
            product[u] += product[u - i]
        counts = product
    return tuple(counts)


def exact_upper_p(u: float, n1: int, n2: int) -> float:
    """Exact ``P(U ≥ u)`` under the null (no ties): scipy's one-sided ``"exact"``."""
    counts = _u_counts(int(n1), int(n2))
    return min(1.0, sum(counts[max(round(u), 0) :]) / sum(counts))


def exact_two_sided_p(u: float, n1: int, n2: int) -> float:
    """Exact two-sided p-value of ``U = max(U1, U2)`` (no ties), as scipy's ``"exact"``."""
    return min(1.0, 2 * exact_upper_p(u, n1, n2))
