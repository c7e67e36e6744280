"""ComBat's non-parametric prior (sva's ``int.eprior``): each gene's batch effects averaged
over the other genes' estimates, each weighted by its likelihood of the gene's values.

The likelihood of gene i's n standardised values under gene k's mean g and variance d needs
only the values' sum and sum of squares: Σ(x − g)² = Σx² − 2gΣx + ng². sva computes it from
the values, and the likelihood itself, which underflows to 0 (and its result to NaN) from
about 700 samples a batch; here in logs, scaled by each gene's largest, so that it stays
finite where sva's is not. O(genes²) a batch, genes side by side in threads.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..._jit import njit

__all__ = ["nonparametric_prior"]


def nonparametric_prior(
    gamma_hat: np.ndarray,
    delta_hat: np.ndarray,
    sums: np.ndarray,
    squares: np.ndarray,
    counts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """sva's ``int.eprior`` of one batch: γ* and δ* of every gene (both (n_genes,)).

    Parameters
    ----------
    gamma_hat, delta_hat : ndarray of shape (n_genes,)
        Each gene's batch mean and variance of its standardised values.
    sums, squares : ndarray of shape (n_genes,)
        Each gene's sum and sum of squares of its standardised values in the batch.
    counts : ndarray of shape (n_genes,)
        Each gene's number of values in the batch.
    """
    g, d, s1, s2, n = (
        np.ascontiguousarray(a, dtype=np.float64)
        for a in (gamma_hat, delta_hat, sums, squares, counts)
    )
    gamma_star = np.empty(g.size)
    delta_star = np.empty(g.size)
    _prior(g, d, s1, s2, n, gamma_star, delta_star)
    return gamma_star, delta_star


@njit(parallel=True, nogil=True, cache=True)
def _prior(g, d, s1, s2, n, gamma_star, delta_star):  # type: ignore[no-untyped-def]
    genes = g.size
    log_scale = np.log(2.0 * math.pi * d)  # a gene's normalising constant, per value
    for i in numba.prange(genes):
        best = -np.inf  # the largest log likelihood of gene i's values, over the others
        for k in range(genes):
            if k != i:
                sum2 = s2[i] - 2.0 * g[k] * s1[i] + n[i] * g[k] * g[k]
                value = -0.5 * n[i] * log_scale[k] - sum2 / (2.0 * d[k])
                if value > best:  # a NaN (sva: a likelihood of NaN counts as 0) never is
                    best = value
        weighted_g = 0.0
        weighted_d = 0.0
        total = 0.0
        if best > -np.inf:
            for k in range(genes):
                if k != i:
                    sum2 = s2[i] - 2.0 * g[k] * s1[i] + n[i] * g[k] * g[k]
                    value = -0.5 * n[i] * log_scale[k] - sum2 / (2.0 * d[k])
                    if value == value:
                        weight = np.exp(value - best)
                        weighted_g += g[k] * weight
                        weighted_d += d[k] * weight
                        total += weight
        gamma_star[i] = weighted_g / total if total > 0 else np.nan
        delta_star[i] = weighted_d / total if total > 0 else np.nan
