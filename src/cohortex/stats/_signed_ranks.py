"""The Wilcoxon signed-rank test of paired differences, on ``xp``, as ``scipy.stats.wilcoxon``.

Per gene, over the pairs' differences ``d`` (zeros left out, Wilcoxon's ``zero_method="wilcox"``;
NaN left out)::

    W+ = Σ rank(|d|) over d > 0,   n = number of non-zero differences
    σ² = (n (n + 1) (2n + 1) − Σ (t³ − t) / 2) / 24,   z = (W+ − n (n + 1) / 4) / σ

with average ranks for ties. p-values follow scipy's ``method="auto"`` per gene: the exact null
distribution of W+ (the coefficients of ``Π (1 + q^i)``) when there are at most 50 pairs and no
ties or zero differences; with ties or zeros and at most 13 pairs, the exact permutation test
over every sign flip (scipy's ``PermutationMethod`` is exhaustive there); otherwise the normal
approximation without continuity correction.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import numpy as np

from .._backend import namespace, to_host
from ._pvalues import normal_two_sided_upper, normal_upper
from ._ranks import average_ranks

__all__ = [
    "EXACT_MAX_PAIRS",
    "PERMUTATION_MAX_PAIRS",
    "signed_rank_pvalues",
    "signed_rank_sums",
]

EXACT_MAX_PAIRS = 50  # scipy's "auto": the exact null distribution up to 50 pairs
PERMUTATION_MAX_PAIRS = 13  # with ties or zeros: all 2**n sign flips (≤ 8192) up to 13


def signed_rank_sums(d: Any, *, compiled: bool = True) -> dict[str, Any]:
    """Signed-rank statistics of every gene's paired differences.

    Parameters
    ----------
    d : array of shape (n_genes, n_pairs)
        Differences (NumPy or CuPy, float64); NaN for a pair left out.
    compiled : bool, default True
        On the CPU, the compiled twin (:mod:`cohortex.stats._cpu.signed_ranks`): one sort
        and one walk per gene instead of (genes × pairs) rank and tie arrays.

    Returns
    -------
    dict of arrays of shape (n_genes,)
        ``w_plus`` (W+), ``n_nonzero``, ``n_pairs`` (non-NaN differences, zeros included),
        ``tie_term`` (Σ t³ − t over ties of |d|), ``z`` (normal approximation), and
        ``ranks`` of shape (n_genes, n_pairs) (NaN where left out) — from the compiled twin
        only where the permutation p-values can need them (at most
        :data:`PERMUTATION_MAX_PAIRS` pairs), None otherwise.
    """
    xp = namespace(d)
    if compiled and xp is np:
        from ._cpu.signed_ranks import signed_rank_sums_compiled  # numba: CPU only

        sums = signed_rank_sums_compiled(d, want_ranks=d.shape[-1] <= PERMUTATION_MAX_PAIRS)
    else:
        valid = ~xp.isnan(d)
        nonzero = valid & (d != 0)
        ranks, tie_term, n_nonzero = average_ranks(xp.where(nonzero, xp.abs(d), xp.nan))
        sums = {
            "w_plus": xp.sum(xp.where(nonzero & (d > 0), ranks, 0.0), axis=-1),
            "n_nonzero": n_nonzero,
            "n_pairs": xp.sum(valid, axis=-1).astype(xp.float64),
            "tie_term": tie_term,
            "ranks": ranks,
        }
    n, tie_term = sums["n_nonzero"], sums["tie_term"]
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = xp.sqrt((n * (n + 1.0) * (2.0 * n + 1.0) - tie_term / 2.0) / 24.0)
        sums["z"] = (sums["w_plus"] - n * (n + 1.0) / 4.0) / sigma
    return sums


def signed_rank_pvalues(sums: dict[str, Any], alternative: str) -> Any:
    """p-values of :func:`signed_rank_sums`' statistics, by scipy's ``method="auto"`` rule.

    ``alternative``: ``"greater"`` when the differences tend to be positive, ``"less"``,
    or ``"two-sided"``. Returns an array of shape (n_genes,) on the statistics' device.
    """
    xp = namespace(sums["z"])
    z = sums["z"]
    if alternative == "two-sided":
        pvalue = xp.minimum(normal_two_sided_upper(xp.abs(z)), 1.0)
    else:
        pvalue = normal_upper(z if alternative == "greater" else -z)
    pvalue = xp.where(sums["n_nonzero"] > 0, pvalue, xp.nan)
    n_pairs, n_nonzero = to_host(sums["n_pairs"]), to_host(sums["n_nonzero"])
    ties_or_zeros = (to_host(sums["tie_term"]) > 0) | (n_nonzero < n_pairs)
    exact = (n_nonzero > 0) & ~ties_or_zeros & (n_pairs <= EXACT_MAX_PAIRS)
    permuted = (n_nonzero > 0) & ties_or_zeros & (n_pairs <= PERMUTATION_MAX_PAIRS)
    if not (exact.any() or permuted.any()):
        return pvalue
    pvalue = to_host(pvalue).copy()
    w_plus = to_host(sums["w_plus"])
    for gene in np.flatnonzero(exact):
        pvalue[gene] = _exact_p(int(np.rint(w_plus[gene])), int(n_nonzero[gene]), alternative)
    if permuted.any():
        ranks = to_host(sums["ranks"][xp.asarray(np.flatnonzero(permuted))])
        pvalue[permuted] = _permutation_p(ranks, w_plus[permuted], alternative)
    return xp.asarray(pvalue)


@functools.cache
def _w_counts(n: int) -> tuple[int, ...]:
    """Null counts of W+ for n pairs: the coefficients of Π_{i=1..n} (1 + q^i)."""
    counts = [1]
    for i in range(1, n + 1):
        shifted = [0] * i + counts
        counts = [a + b for a, b in itertools.zip_longest(counts, shifted, fillvalue=0)]
    return tuple(counts)


def _exact_p(w_plus: int, n: int, alternative: str) -> float:
    counts = _w_counts(n)
    total = 2**n
    upper = sum(counts[w_plus:]) / total  # P(W+ ≥ w)
    lower = sum(counts[: w_plus + 1]) / total  # P(W+ ≤ w)
    if alternative == "greater":
        return upper
    if alternative == "less":
        return lower
    return min(1.0, 2.0 * min(upper, lower))


def _permutation_p(ranks: np.ndarray, w_plus: np.ndarray, alternative: str) -> np.ndarray:
    """Exact p over every sign flip of the non-zero differences, per gene.

    ``ranks``: (genes, pairs), NaN for zero or missing differences. Ranks are multiples of ½,
    so twice them are integers and the comparisons with the observed W+ are exact.
    """
    doubled = np.where(np.isnan(ranks), 0, np.rint(2.0 * ranks)).astype(np.int64)
    # the non-zero ranks first: a gene has at most PERMUTATION_MAX_PAIRS of them
    doubled = -np.sort(-doubled, axis=1)[:, :PERMUTATION_MAX_PAIRS]
    n = doubled.shape[1]
    signs = (np.arange(2**n)[:, None] >> np.arange(n)) & 1  # (2**n, n): every subset
    observed = np.rint(2.0 * w_plus).astype(np.int64)
    upper, lower = np.empty(len(observed)), np.empty(len(observed))
    for start in range(0, len(observed), 512):  # (2**n, 512) sums at a time: ≤ 32 MB
        part = slice(start, start + 512)
        null = signs @ doubled[part].T  # twice W+ of each sign flip
        upper[part] = np.mean(null >= observed[part], axis=0)
        lower[part] = np.mean(null <= observed[part], axis=0)
    if alternative == "greater":
        return upper
    if alternative == "less":
        return lower
    return np.minimum(1.0, 2.0 * np.minimum(upper, lower))
