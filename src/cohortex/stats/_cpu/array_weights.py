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
give the residual variances and then the leverages and scores. limma's gene-by-gene update
is sequential (each gene's fit takes the weights the previous gene left): compiled, a gene of
a small study costs microseconds instead of the ~120 µs of NumPy and SciPy calls. Tests hold
each equal to its ``xp`` (or NumPy) body.
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit

__all__ = ["gene_by_gene_sweep", "shared_scores", "weighted_scores"]


@njit(nogil=True, cache=True, error_model="numpy")
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


@njit(nogil=True, cache=True)
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


@njit(nogil=True, cache=True, error_model="numpy")
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


@njit(nogil=True, cache=True, error_model="numpy")
def _gene_by_gene(
    y, prior, has_prior, design, basis, sum_to_zero, information, gamma, weights, small
):  # type: ignore[no-untyped-def]
    n, g = y.shape
    p = design.shape[1]
    k = gamma.shape[0]
    used = 0
    a = np.empty((n, p))  # the weighted design's observed rows, reduced in place
    b = np.empty(n)
    rows = np.empty(n, dtype=np.int64)
    kept = np.empty(p, dtype=np.int64)
    r_matrix = np.zeros((p, p))
    d = np.zeros(n)
    h1 = np.zeros(n)
    for j in range(g):
        m = 0
        for i in range(n):
            if np.isfinite(y[i, j]):
                rows[m] = i
                m += 1
        if m <= 2:
            continue
        for t in range(m):
            i = rows[t]
            w = weights[i] * prior[i, j] if has_prior else weights[i]
            root = np.sqrt(w)
            for c in range(p):
                a[t, c] = root * design[i, c]
            b[t] = root * y[i, j]
        # Householder QR, a column left out when what remains of it is below 1e-7 of its
        # norm (R's qr tolerance); R holds the kept columns
        rank = 0
        for c in range(p):
            original = 0.0  # the reflections so far keep the column's length
            for t in range(m):
                original += a[t, c] * a[t, c]
            original = np.sqrt(original)
            norm = 0.0
            for t in range(rank, m):
                norm += a[t, c] * a[t, c]
            norm = np.sqrt(norm)
            if rank >= m or norm <= 1e-7 * original or norm == 0.0:
                continue
            alpha = -norm if a[rank, c] >= 0 else norm
            v0 = a[rank, c] - alpha
            # reflector v = (v0, a[rank+1:, c]); H = I − 2vv'/v'v
            vv = v0 * v0
            for t in range(rank + 1, m):
                vv += a[t, c] * a[t, c]
            for c2 in range(c + 1, p):
                dot = v0 * a[rank, c2]
                for t in range(rank + 1, m):
                    dot += a[t, c] * a[t, c2]
                scale = 2.0 * dot / vv
                a[rank, c2] -= scale * v0
                for t in range(rank + 1, m):
                    a[t, c2] -= scale * a[t, c]
            dot = v0 * b[rank]
            for t in range(rank + 1, m):
                dot += a[t, c] * b[t]
            scale = 2.0 * dot / vv
            b[rank] -= scale * v0
            for t in range(rank + 1, m):
                b[t] -= scale * a[t, c]
            for c2 in range(p):  # R's row of this column: the reduced columns' entries
                r_matrix[rank, c2] = a[rank, c2] if c2 > c else 0.0
            r_matrix[rank, c] = alpha
            kept[rank] = c
            rank += 1
        if m - rank < 2:
            continue
        rss = 0.0
        for t in range(rank, m):
            rss += b[t] * b[t]
        s2 = rss / (m - rank)
        if s2 < small:
            continue
        # coefficients: R β = (Q'b)[:rank], R over the kept columns
        beta = np.zeros(rank)
        for q in range(rank - 1, -1, -1):
            total = b[q]
            for q2 in range(q + 1, rank):
                total -= r_matrix[q, kept[q2]] * beta[q2]
            beta[q] = total / r_matrix[q, kept[q]]
        for i in range(n):
            d[i] = 0.0
            h1[i] = 0.0
        u = np.empty(rank)
        for t in range(m):
            i = rows[t]
            w = weights[i] * prior[i, j] if has_prior else weights[i]
            root = np.sqrt(w)
            fitted = 0.0
            for q in range(rank):
                fitted += root * design[i, kept[q]] * beta[q]
            residual = root * y[i, j] - fitted
            d[i] = residual * residual
            # leverage: |R⁻ᵀ x_i|² of the weighted row over the kept columns
            leverage = 0.0
            for q in range(rank):
                total = root * design[i, kept[q]]
                for q2 in range(q):
                    total -= r_matrix[q2, kept[q]] * u[q2]
                u[q] = total / r_matrix[q, kept[q]]
                leverage += u[q] * u[q]
            h1[i] = 1.0 - leverage
        total_h = 0.0
        for i in range(n):
            total_h += h1[i]
        if sum_to_zero:  # Z2 = [I; −1']
            last = h1[n - 1]
            for q in range(k):
                information[q, q] += h1[q]
            for q in range(k):
                across_q = h1[q] - last
                for q2 in range(k):
                    information[q, q2] += last - across_q * (h1[q2] - last) / total_h
            score = np.empty(k)
            z_last = d[n - 1] / s2 - h1[n - 1]
            for q in range(k):
                score[q] = d[q] / s2 - h1[q] - z_last
        else:
            across = np.zeros(k)
            score = np.zeros(k)
            for i in range(n):
                z = d[i] / s2 - h1[i]
                for q in range(k):
                    across[q] += basis[i, q] * h1[i]
                    score[q] += basis[i, q] * z
            for q in range(k):
                for q2 in range(k):
                    total = 0.0
                    for i in range(n):
                        total += basis[i, q] * h1[i] * basis[i, q2]
                    information[q, q2] += total - across[q] * across[q2] / total_h
        # the information is symmetric positive definite (limma's prior): Cholesky, half LU's
        # work, then the two triangular solves
        factor = np.linalg.cholesky(information)
        step = np.empty(k)
        for q in range(k):
            total = score[q]
            for q2 in range(q):
                total -= factor[q, q2] * step[q2]
            step[q] = total / factor[q, q]
        for q in range(k - 1, -1, -1):
            total = step[q]
            for q2 in range(q + 1, k):
                total -= factor[q2, q] * step[q2]
            step[q] = total / factor[q, q]
        for q in range(k):
            gamma[q] += step[q]
        if sum_to_zero:
            total = 0.0
            for q in range(k):
                weights[q] = np.exp(-gamma[q])
                total += gamma[q]
            weights[n - 1] = np.exp(total)
        else:
            for i in range(n):
                total = 0.0
                for q in range(k):
                    total += basis[i, q] * gamma[q]
                weights[i] = np.exp(-total)
        used += 1
    return used


def gene_by_gene_sweep(
    y: np.ndarray,
    prior: np.ndarray | None,
    design: np.ndarray,
    basis: np.ndarray,
    sum_to_zero: bool,
    information: np.ndarray,
    gamma: np.ndarray,
    weights: np.ndarray,
    small: float,
) -> int:
    """limma's gene-by-gene update over the genes of ``y`` (n × g, NaN missing), in order;
    ``information``, ``gamma`` and ``weights`` are updated in place. Returns the genes used.
    """
    y = np.ascontiguousarray(y, dtype=np.float64)
    has_prior = prior is not None
    prior = np.ascontiguousarray(prior if has_prior else np.ones((1, 1)), dtype=np.float64)
    return int(
        _gene_by_gene(
            y,
            prior,
            has_prior,
            np.ascontiguousarray(design, dtype=np.float64),
            np.ascontiguousarray(basis, dtype=np.float64),
            sum_to_zero,
            information,
            gamma,
            weights,
            small,
        )
    )
