"""Compiled Gaussian kernel CDFs of GSVA for one block of genes on the CPU (numba).

Why compiled: every value is placed in its gene's distribution by a sum over all samples, n²
table reads per gene (a 1,000-sample cohort of 20,000 genes: 2·10¹⁰). The ``xp`` formulation
in :mod:`cohortex.stats._gsva` builds them as (test tile × samples × genes) temporaries; here
one loop per gene walks its samples in a contiguous row and sums in GSVA's order (sample by
sample, as its C code), so each value's log-odds is GSVA's to the last bit wherever the table
and bandwidth are. The ``xp`` code stays the reference and the GPU path; tests hold the two
equal.
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit

__all__ = ["gaussian_log_odds"]


@njit(nogil=True, cache=True)
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
