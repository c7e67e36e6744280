"""Compiled pass of the shared-weights REML of ``arrayWeights`` over one block of genes.

Why compiled: the ``xp`` body (:func:`cohortex.stats._array_weights.shared_pass`) makes about
fifteen float64 sweeps of the block (projections, residuals, squares, their sums); at 50,000
samples a block holds only ten genes, so the GEMMs are skinny and every sweep goes to memory
(26 s a pass at 50,000 × 20,000 on two cores, against 2.9 s to read the store). Here three
sweeps over the block's rows do everything, the block staying in cache. Tests hold the two
equal.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["shared_scores"]


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _scores(y, plain, weighted, root, small, z):  # type: ignore[no-untyped-def]
    n, g = y.shape
    p = plain.shape[1]
    complete = np.ones(g, dtype=np.bool_)
    on_plain = np.zeros((g, p))
    on_weighted = np.zeros((g, p))
    for i in range(n):  # the projections on both bases
        for j in range(g):
            value = y[i, j]
            if not np.isfinite(value):
                complete[j] = False
            for k in range(p):
                on_plain[j, k] += plain[i, k] * value
                on_weighted[j, k] += weighted[i, k] * root[i] * value
    plain_rss = np.zeros(g)
    rss = np.zeros(g)
    for i in range(n):  # the residual sums of squares, unweighted and weighted
        for j in range(g):
            first = y[i, j]
            second = root[i] * y[i, j]
            for k in range(p):
                first -= plain[i, k] * on_plain[j, k]
                second -= weighted[i, k] * on_weighted[j, k]
            plain_rss[j] += first * first
            rss[j] += second * second
    kept = np.zeros(g, dtype=np.bool_)
    inverse_s2 = np.zeros(g)
    genes = 0.0
    incomplete = 0.0
    for j in range(g):
        if not complete[j]:
            incomplete += 1.0
        elif plain_rss[j] / (n - p) >= small:
            kept[j] = True
            inverse_s2[j] = (n - p) / rss[j]
            genes += 1.0
    for i in range(n):  # Σ_genes w r² / s²
        total = 0.0
        for j in range(g):
            if kept[j]:
                second = root[i] * y[i, j]
                for k in range(p):
                    second -= weighted[i, k] * on_weighted[j, k]
                total += second * second * inverse_s2[j]
        z[i] += total
    return genes, incomplete


def shared_scores(
    y: np.ndarray, plain: np.ndarray, weighted: np.ndarray, root: np.ndarray, small: float
) -> dict[str, object]:
    """The sums of :func:`cohortex.stats._array_weights.shared_pass` for a NumPy block.

    Parameters
    ----------
    y : ndarray of shape (n_samples, genes)
    plain, weighted : ndarrays of shape (n_samples, p)
        Orthonormal bases of the design and of ``√w · design``.
    root : ndarray of shape (n_samples,)
    small : float
        The residual variance below which a gene is left out.
    """
    z = np.zeros(y.shape[0])
    genes, incomplete = _scores(
        y,
        np.ascontiguousarray(plain, dtype=np.float64),
        np.ascontiguousarray(weighted, dtype=np.float64),
        np.ascontiguousarray(root, dtype=np.float64),
        small,
        z,
    )
    return {"z": z, "genes": np.float64(genes), "incomplete": np.float64(incomplete)}
