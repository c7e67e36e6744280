"""Compiled GSVA for the CPU (numba): the Gaussian kernel CDFs of a block of genes, and the
walks of a band of samples.

Why compiled: every value is placed in its gene's distribution by a sum over all samples, n²
table reads per gene (a 1,000-sample cohort of 20,000 genes: 2·10¹⁰). The ``xp`` formulation
in :mod:`cohortex.stats._gsva` builds them as (test tile × samples × genes) temporaries; here
one loop per gene walks its samples in a contiguous row and sums in GSVA's order (sample by
sample, as its C code), so each value's log-odds is GSVA's to the last bit wherever the table
and bandwidth are. The walks: the ``xp`` code pads each set to its bucket's width and sorts
(samples × sets × width) at once; here one sweep down each sample's order moves the walks of
the sets that hold each gene (no sort per set, no padding). The ``xp`` code stays the
reference and the GPU path; tests hold the two equal.
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit

__all__ = ["gaussian_log_odds", "gsva_walks"]


@njit(nogil=True, cache=True, error_model="numpy")  # x/0 is ±inf or NaN, as GSVA's C
def _gene_log_odds(values, bandwidth, table, table_max, steps, out):  # type: ignore[no-untyped-def]
    n = values.size
    for j in range(n):
        y = values[j]
        left_tail = 0.0
        for i in range(n):
            v = (y - values[i]) / bandwidth
            if v < -table_max:
                cdf = 0.0
            elif v > table_max:
                cdf = 1.0
            else:
                cdf = table[int(abs(v) / table_max * steps)]
                if v < 0:
                    cdf = 1.0 - cdf
            left_tail += cdf
        left_tail = left_tail / n
        out[j] = -1.0 * np.log((1.0 - left_tail) / left_tail)


@njit(nogil=True, cache=True)
def _block_log_odds(genes, bandwidth, table, table_max, steps, out):  # type: ignore[no-untyped-def]
    for g in range(genes.shape[0]):
        _gene_log_odds(genes[g], bandwidth[g], table, table_max, steps, out[g])


def gaussian_log_odds(
    block: np.ndarray, bandwidth: np.ndarray, table: np.ndarray, table_max: float, steps: int
) -> np.ndarray:
    """:func:`cohortex.stats._gsva.kernel_log_odds` with the Gaussian kernel, each sample
    placed among all of them.

    Parameters
    ----------
    block : ndarray of shape (n_samples, n_genes)
    bandwidth : ndarray of shape (n_genes,), float64
    table : ndarray of shape (steps + 1,), float64
        Φ on [0, table_max].
    table_max : float
    steps : int

    Returns
    -------
    ndarray of shape (n_samples, n_genes), float64
    """
    genes = np.ascontiguousarray(np.asarray(block, dtype=np.float64).T)
    out = np.empty_like(genes)
    _block_log_odds(
        genes, np.ascontiguousarray(bandwidth, dtype=np.float64), table, table_max, steps, out
    )
    return out.T


@njit(nogil=True, cache=True, error_model="numpy")  # x/0 is ±inf or NaN, as GSVA's C
def _walks(log_odds, indptr, members, gene_indptr, gene_sets, tau, max_diff, abs_ranking, out):  # type: ignore[no-untyped-def]
    n_rows, n_genes = log_odds.shape
    n_sets = indptr.size - 1
    weights = np.empty(n_genes, dtype=np.float64)
    total = np.empty(n_sets, dtype=np.float64)
    cumulative = np.empty(n_sets, dtype=np.float64)
    highest = np.empty(n_sets, dtype=np.float64)
    lowest = np.empty(n_sets, dtype=np.float64)
    passed = np.empty(n_sets, dtype=np.int64)
    for r in range(n_rows):
        order = np.argsort(-log_odds[r], kind="mergesort")  # stable: R's order, ties in gene order
        for p in range(n_genes):
            score = abs(float(n_genes - p) - n_genes / 2)
            weights[order[p]] = score if tau == 1.0 else score**tau
        for s in range(n_sets):
            t = 0.0
            for m in range(indptr[s], indptr[s + 1]):
                t += weights[members[m]]
            total[s] = t
            cumulative[s] = highest[s] = lowest[s] = 0.0
            passed[s] = 0
        # down the order once: each gene moves the walks of the sets that hold it
        for p in range(n_genes):
            gene = order[p]
            for i in range(gene_indptr[gene], gene_indptr[gene + 1]):
                s = gene_sets[i]
                outside = max(n_genes - (indptr[s + 1] - indptr[s]), 1)  # 0 for a set of all
                fall = float(p - passed[s]) / float(outside)
                # comparisons as GSVA's: a NaN walk (after a 0/0 step) sets no extreme
                if cumulative[s] - fall < lowest[s]:
                    lowest[s] = cumulative[s] - fall
                cumulative[s] += weights[gene] / total[s]
                if cumulative[s] - fall > highest[s]:
                    highest[s] = cumulative[s] - fall
                passed[s] += 1
        for s in range(n_sets):
            if max_diff:
                out[r, s] = highest[s] - lowest[s] if abs_ranking else highest[s] + lowest[s]
            else:
                out[r, s] = highest[s] if highest[s] > abs(lowest[s]) else lowest[s]


def gsva_walks(
    log_odds: np.ndarray,
    indptr: np.ndarray,
    members: np.ndarray,
    tau: float,
    max_diff: bool,
    abs_ranking: bool,
) -> np.ndarray:
    """:func:`cohortex.stats._gsva.gsva_walks` for some samples, one sample and set at a time.

    Parameters
    ----------
    log_odds : ndarray of shape (n_samples, n_genes), float64
    indptr : ndarray of shape (n_sets + 1,), int64
        Each set's slice of ``members``.
    members : ndarray of shape (n_members,), int64
        The sets' gene columns, concatenated.
    tau, max_diff, abs_ranking
        As for the ``xp`` function.

    Returns
    -------
    ndarray of shape (n_samples, n_sets), float64
    """
    out = np.empty((log_odds.shape[0], indptr.size - 1), dtype=np.float64)
    n_genes = log_odds.shape[1]
    # the sets of each gene (the transpose of the membership)
    set_of_member = np.repeat(np.arange(indptr.size - 1, dtype=np.int64), np.diff(indptr))
    by_gene = np.argsort(members, kind="stable")
    gene_indptr = np.concatenate([[0], np.cumsum(np.bincount(members, minlength=n_genes))])
    _walks(
        np.ascontiguousarray(log_odds, dtype=np.float64),
        indptr,
        members,
        gene_indptr.astype(np.int64),
        set_of_member[by_gene],
        float(tau),
        bool(max_diff),
        bool(abs_ranking),
        out,
    )
    return out
