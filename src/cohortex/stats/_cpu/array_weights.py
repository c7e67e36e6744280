"""Compiled passes of ``arrayWeights``' REML over one block of genes: every gene sharing the
sample weights, and (for many samples, where the information's diagonal is all that is
summed) each gene with its own precision weights.

Why compiled: the ``xp`` body (:func:`cohortex.stats._array_weights.shared_pass`) makes about
fifteen float64 sweeps of the block (projections, residuals, squares, their sums); at 50,000
samples a block holds only ten genes, so the GEMMs are skinny and every sweep goes to memory
(26 s a pass at 50,000 × 20,000 on two cores, against 2.9 s to read the store). Here three
sweeps over the block's rows do everything, the block staying in cache. With precision
weights the ``xp`` body (:func:`cohortex.stats._array_weights.weighted_pass`) builds per gene a
Cholesky factor, an orthonormal basis and the residuals as (samples × genes × p) arrays; here
X'WX and X'Wy are summed in one sweep, each gene's small system is solved, and two sweeps
give the residual variances and then the leverages and scores. Tests hold each equal to its
``xp`` body.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["shared_scores", "weighted_scores"]


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


@numba.njit(nogil=True, cache=True)
def _complete(y, prior):  # type: ignore[no-untyped-def]
    """Which genes have every value finite and every weight positive and finite, and how many
    weights are NaN, negative or infinite."""
    n, g = y.shape
    complete = np.ones(g, dtype=np.bool_)
    invalid = 0.0
    for i in range(n):
        for j in range(g):
            weight = prior[i, j]
            if np.isnan(weight) or weight < 0 or np.isinf(weight):
                invalid += 1.0
            if not (np.isfinite(y[i, j]) and weight > 0 and np.isfinite(weight)):
                complete[j] = False
    return complete, invalid


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _weighted(y, prior, design, w, small, diagonal, leverage_squares, z):  # type: ignore[no-untyped-def]
    n, g = y.shape
    p = design.shape[1]
    gram = np.zeros((p, p, g))  # X'WX per gene, lower triangle, genes along memory
    right = np.zeros((p, g))  # X'Wy
    for i in range(n):
        for j in range(g):
            weight = w[i] * prior[i, j]
            for k in range(p):
                scaled = weight * design[i, k]
                right[k, j] += scaled * y[i, j]
                for m in range(k + 1):
                    gram[k, m, j] += scaled * design[i, m]
    inverse = np.empty((p, p, g))
    beta = np.zeros((p, g))
    matrix = np.empty((p, p))
    for j in range(g):
        for k in range(p):
            for m in range(k + 1):
                matrix[k, m] = gram[k, m, j]
                matrix[m, k] = gram[k, m, j]
        solved = np.linalg.inv(matrix)
        for k in range(p):
            for m in range(p):
                inverse[k, m, j] = solved[k, m]
                beta[k, j] += solved[k, m] * right[m, j]
    rss = np.zeros(g)
    for i in range(n):
        for j in range(g):
            residual = y[i, j]
            for k in range(p):
                residual -= design[i, k] * beta[k, j]
            rss[j] += w[i] * prior[i, j] * residual * residual
    inverse_s2 = np.zeros(g)
    varies = np.zeros(g)
    for j in range(g):
        if rss[j] / (n - p) > small:
            inverse_s2[j] = (n - p) / rss[j]
            varies[j] = 1.0
    for i in range(n):
        ones = 0.0
        squares = 0.0
        score = 0.0
        for j in range(g):
            weight = w[i] * prior[i, j]
            residual = y[i, j]
            quadratic = 0.0  # x' (X'WX)⁻¹ x
            for k in range(p):
                residual -= design[i, k] * beta[k, j]
                for m in range(p):
                    quadratic += design[i, k] * inverse[k, m, j] * design[i, m]
            h = weight * quadratic
            ones += 1.0 - 2.0 * h
            squares += h * h
            score += varies[j] * (weight * residual * residual * inverse_s2[j] - (1.0 - h))
        diagonal[i] += ones
        leverage_squares[i] += squares
        z[i] += score


def weighted_scores(
    y: np.ndarray, prior: np.ndarray, design: np.ndarray, w: np.ndarray, small: float
) -> dict[str, object]:
    """The sums of :func:`cohortex.stats._array_weights.weighted_pass` without the dense
    information, for a NumPy block.

    Parameters
    ----------
    y, prior : ndarrays of shape (n_samples, genes)
        Values and precision weights.
    design : ndarray of shape (n_samples, p)
    w : ndarray of shape (n_samples,)
        The sample weights.
    small : float
        The residual variance at or below which a gene's scores are left out.
    """
    y = np.ascontiguousarray(y, dtype=np.float64)
    prior = np.ascontiguousarray(prior, dtype=np.float64)
    complete, invalid = _complete(y, prior)
    used = int(complete.sum())
    if used < complete.size:  # a gene with a missing value or a zero weight is left out
        y = np.ascontiguousarray(y[:, complete])
        prior = np.ascontiguousarray(prior[:, complete])
    n = y.shape[0]
    diagonal, leverage_squares, z = np.zeros(n), np.zeros(n), np.zeros(n)
    if used:
        _weighted(
            y,
            prior,
            np.ascontiguousarray(design, dtype=np.float64),
            np.ascontiguousarray(w, dtype=np.float64),
            small,
            diagonal,
            leverage_squares,
            z,
        )
    return {
        "diagonal": diagonal,
        "leverage_squares": leverage_squares,
        "z": z,
        "genes": np.float64(used),
        "incomplete": np.float64(complete.size - used),
        "invalid": np.float64(invalid),
    }
