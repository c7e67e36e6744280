"""Sample variance weights by REML (Ritchie et al. 2006), as limma's ``arrayWeights``.

Each sample's (or group's) variance is ``σ²_g / w_i`` with ``log w`` in a space of
sum-zero vectors: every one (a weight per sample, limma's ``contr.sum``) or those spanned by a
centred variance design. Fisher scoring on the genes' REML likelihoods, with limma's prior of
``prior_n`` genes at ``w = 1``. Arrays in, arrays out (NumPy or CuPy).

limma writes the information in the coordinates of its variance design ``Z2``; the step
``Z2 (Z2' M Z2)⁻¹ Z2' z`` depends only on the space, so here it is taken in whichever
coordinates are cheapest: an orthonormal basis of a variance design (k × k systems), or, for a
weight per sample, the bordered system ``M x − z = c·1, Σx = 0`` on all n samples, dense or
(with one fit shared by every gene) as a diagonal plus a matrix of rank p(p + 1)/2 + 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg

from .._backend import namespace

__all__ = [
    "SMALL_VARIANCE",
    "GeneByGene",
    "VarianceSpace",
    "gene_by_gene_start",
    "gene_by_gene_update",
    "leverage_products",
    "newton_step",
    "shared_pass",
    "variance_space",
    "weighted_pass",
]

# limma leaves out genes whose residual variance is below this (constant genes)
SMALL_VARIANCE = 1e-15


@dataclass
class VarianceSpace:
    """The log-weights' space.

    Attributes
    ----------
    basis : ndarray of shape (n_samples, rank) or None
        An orthonormal basis of the centred variance design; None for every sum-zero vector
        (a weight per sample).
    rank : int
        Its dimension (limma's number of ``gam`` parameters).
    """

    basis: np.ndarray | None
    rank: int

    def project(self, values: Any) -> Any:
        """``basis' values`` for values of shape (n_samples, m); the values themselves
        when every sum-zero direction is in the space."""
        if self.basis is None:
            return values
        xp = namespace(values)
        return xp.asarray(self.basis).T @ values


def variance_space(var_design: np.ndarray | None, n_samples: int) -> VarianceSpace:
    """The space of a variance design (n_samples × m; centred here, as limma centres it),
    or of a weight per sample (None)."""
    if var_design is None:
        return VarianceSpace(None, n_samples - 1)
    centred = var_design - var_design.mean(axis=0)
    u, singular, _ = np.linalg.svd(centred, full_matrices=False)
    # R's qr() keeps columns down to a relative size of 1e-7
    rank = int(np.sum(singular > 1e-7 * max(singular.max(initial=0.0), 1e-300)))
    return VarianceSpace(u[:, :rank], rank)


def leverage_products(q: Any) -> Any:
    """limma's ``Q2``: the products of the columns of ``q`` two by two (the off-diagonal ones
    times √2), so that ``Q2 Q2' = H ∘ H`` for the hat matrix ``H = q q'``.

    ``q`` has shape (..., p); the result (..., p(p + 1)/2).
    """
    xp = namespace(q)
    p = q.shape[-1]
    columns = []
    for k in range(p):
        columns.append(q[..., k] * q[..., k])
    for k in range(p):
        for j in range(k + 1, p):
            columns.append(np.sqrt(2.0) * q[..., k] * q[..., j])
    return xp.stack(columns, axis=-1)


def shared_pass(
    y: Any, plain: Any, weighted: Any, root: Any, *, compiled: bool = True
) -> dict[str, Any]:
    """One block of genes fitted with the shared sample weights ``w``.

    Parameters
    ----------
    y : array of shape (n_samples, genes), float64
    plain, weighted : arrays of shape (n_samples, p)
        Orthonormal bases of the design and of ``√w · design`` (on ``y``'s device).
    root : array of shape (n_samples,)
        ``√w``.

    Returns
    -------
    dict
        ``z``: ``Σ w r² / s²`` over the genes (n_samples,); ``genes``: how many genes count
        (those whose unweighted residual variance is at least :data:`SMALL_VARIANCE`, the
        genes limma keeps on its first iteration); ``incomplete``: how many genes have a
        missing or infinite value (left out, as limma's REML leaves them out).

    NumPy blocks go through the compiled loop of ``_cpu.array_weights`` unless
    ``compiled=False``.
    """
    xp = namespace(y)
    if compiled and xp is np:
        from ._cpu.array_weights import shared_scores  # numba: CPU only

        return shared_scores(y, plain, weighted, root, SMALL_VARIANCE)
    n, p = plain.shape
    complete = xp.all(xp.isfinite(y), axis=0)
    y = y[:, complete]
    first = y - plain @ (plain.T @ y)
    kept = xp.sum(first * first, axis=0) / (n - p) >= SMALL_VARIANCE
    scaled = root[:, None] * y[:, kept]
    residual = scaled - weighted @ (weighted.T @ scaled)  # √w r
    squared = residual * residual
    s2 = xp.sum(squared, axis=0) / (n - p)
    return {
        "z": xp.sum(squared / s2, axis=1),
        "genes": xp.sum(kept, dtype=xp.float64),
        "incomplete": xp.sum(~complete, dtype=xp.float64),
    }


def weighted_pass(
    y: Any,
    prior: Any,
    design: Any,
    w: Any,
    space: VarianceSpace,
    *,
    dense: bool = True,
    compiled: bool = True,
) -> dict[str, Any]:
    """One block of genes, each fitted with its own weights ``w · prior`` (limma's
    ``.arrayWeightsPrWtsREML``, one iteration's sums).

    Parameters
    ----------
    y, prior : arrays of shape (n_samples, genes), float64
        Values and precision weights (> 0); genes with a missing value or a weight ≤ 0 are
        left out (limma's REML leaves out such genes).
    design : array of shape (n_samples, p)
    w : array of shape (n_samples,)
    space : VarianceSpace
        (design, weights and basis on ``y``'s device)
    dense : bool, default True
        Whether to sum the information's dense part (see Returns).

    Returns
    -------
    dict
        ``information`` (m × m, m = n_samples or the space's rank; only when ``dense``): the
        projected ``Σ H∘H − a a'/s`` over the genes; ``diagonal`` (n_samples,):
        ``Σ (1 − 2h)``; ``leverage_squares`` (n_samples,): ``Σ h²``, the diagonal of
        ``Σ H∘H``;
        ``z`` (n_samples,): ``Σ (w·prior·r²/s² − (1 − h))`` over the genes with
        ``s² > SMALL_VARIANCE``; ``genes``: how many genes count, ``incomplete``: how many
        do not; ``invalid``: how many weights are NaN, negative or infinite.

    NumPy blocks go through the compiled loop of ``_cpu.array_weights`` when the information
    is not ``dense``, unless ``compiled=False``.
    """
    xp = namespace(y)
    if compiled and not dense and xp is np:
        from ._cpu.array_weights import weighted_scores  # numba: CPU only

        return weighted_scores(y, prior, np.asarray(design), np.asarray(w), SMALL_VARIANCE)
    n, p = design.shape
    invalid = xp.sum(xp.isnan(prior) | (prior < 0) | xp.isinf(prior), dtype=xp.float64)
    complete = xp.all(xp.isfinite(y) & (prior > 0) & xp.isfinite(prior), axis=0)
    y, prior = y[:, complete], prior[:, complete]
    x = xp.asarray(design)
    weight = xp.asarray(w)[:, None] * prior  # (n × g)
    cross = xp.einsum("ij,ik,ig->gjk", x, x, weight)  # X'WX per gene (g × p × p)
    lower = xp.linalg.cholesky(cross)
    lower_inverse = xp.linalg.inv(lower)
    root = xp.sqrt(weight)
    # q = √W X L⁻ᵀ (n × g × p): orthonormal columns, H = q q'
    q = root[:, :, None] * xp.einsum("ij,gkj->igk", x, lower_inverse)
    beta = xp.einsum("igk,ig->gk", q, root * y)  # coefficients in the q basis
    residual = root * y - xp.einsum("igk,gk->ig", q, beta)  # √w r
    squared = residual * residual
    s2 = xp.sum(squared, axis=0) / (n - p)
    h = xp.sum(q * q, axis=2)
    varies = s2 > SMALL_VARIANCE
    with np.errstate(divide="ignore", invalid="ignore"):
        score = xp.where(varies[None, :], squared / s2 - (1.0 - h), 0.0)
    sums: dict[str, Any] = {}
    if dense:
        q2 = leverage_products(q)  # (n × g × p2)
        a = (1.0 - 2.0 * h) + xp.einsum("igc,gc->ig", q2, xp.sum(q2, axis=0))  # A 1 per gene
        scaled_a = a / xp.sqrt(xp.sum(a, axis=0))
        products = space.project(q2.reshape(n, -1))
        projected_a = space.project(scaled_a)
        sums["information"] = products @ products.T - projected_a @ projected_a.T
    return {
        **sums,
        "diagonal": xp.sum(1.0 - 2.0 * h, axis=1),
        "leverage_squares": xp.sum(h * h, axis=1),
        "z": xp.sum(score, axis=1),
        "genes": xp.sum(complete, dtype=xp.float64),
        "incomplete": xp.sum(~complete, dtype=xp.float64),
        "invalid": invalid,
    }


def newton_step(
    space: VarianceSpace,
    z: Any,
    diagonal: Any,
    information: Any | None = None,
    low_rank: tuple[Any, Any] | None = None,
) -> tuple[Any, float]:
    """The scoring step of the log-weights and ``z' x`` (limma's ``dl' gamstep``).

    The information is ``M = diag(diagonal) + information`` (dense, projected as
    :meth:`VarianceSpace.project` projects), ``diag(diagonal) + U diag(s) U'`` with
    ``low_rank = (U, s)`` (n_samples × r, r), unprojected, or ``diag(diagonal)`` alone.
    The step ``x`` (n_samples,) lies in the space and solves ``P(M x − z) = 0`` for the
    projection P onto it; the new log-weights are ``log w − x``.
    """
    xp = namespace(z)
    n = z.shape[0]
    if space.basis is not None:
        basis = xp.asarray(space.basis)
        matrix = (basis.T * diagonal) @ basis
        if information is not None:
            matrix = matrix + information
        if low_rank is not None:
            projected = basis.T @ low_rank[0]
            matrix = matrix + (projected * low_rank[1]) @ projected.T
        x = basis @ xp.linalg.solve(matrix, basis.T @ z)
        return x, float(z @ x)
    if information is not None:  # dense, bordered by the sum-zero constraint
        bordered = xp.zeros((n + 1, n + 1))
        bordered[:n, :n] = information
        bordered[xp.arange(n), xp.arange(n)] += diagonal
        bordered[:n, n] = 1.0
        bordered[n, :n] = 1.0
        right = xp.concatenate([z, xp.zeros(1)])
        x = xp.linalg.solve(bordered, right)[:n]
        return x, float(z @ x)
    if low_rank is None:

        def solve(v: Any) -> Any:
            return v / diagonal

    else:
        u, s = low_rank  # Woodbury: M⁻¹v = D⁻¹v − D⁻¹U (S⁻¹ + U'D⁻¹U)⁻¹ U'D⁻¹v
        scaled_u = u / diagonal[:, None]
        core = xp.diag(1.0 / s) + u.T @ scaled_u

        def solve(v: Any) -> Any:
            return v / diagonal - scaled_u @ xp.linalg.solve(core, u.T @ (v / diagonal))

    from_z, from_one = solve(z), solve(xp.ones(n))
    x = from_z - (xp.sum(from_z) / xp.sum(from_one)) * from_one
    return x, float(z @ x)


@dataclass
class GeneByGene:
    """limma's ``.arrayWeightsGeneByGene``: the log-weights, updated after each gene.

    One Newton step per gene on the information accumulated so far, in limma's coordinates
    ``Z2`` (``contr.sum`` for a weight per sample, whose products are taken from their
    structure; else a basis of the variance space). Sequential over the genes and on the
    host: each step solves a k × k system (k = n − 1 for a weight per sample).

    Attributes
    ----------
    basis : ndarray of shape (n_samples, k)
    information : ndarray of shape (k, k): limma's ``info2``
    gamma : ndarray of shape (k,): ``log w = −basis @ gamma``
    weights : ndarray of shape (n_samples,)
    sum_to_zero : bool: ``basis`` is ``contr.sum(n_samples)``
    genes : int: the genes that updated the weights
    """

    basis: np.ndarray
    information: np.ndarray
    gamma: np.ndarray
    weights: np.ndarray
    sum_to_zero: bool
    genes: int = 0


def gene_by_gene_start(space: VarianceSpace, n_samples: int, prior_n: float) -> GeneByGene:
    """Weights of 1 and limma's prior information ``prior_n · Z2'Z2``."""
    if space.basis is None:
        k = n_samples - 1
        basis = np.vstack([np.eye(k), -np.ones((1, k))])  # R's contr.sum(n)
        information = prior_n * (np.eye(k) + 1.0)  # Z2'Z2 = I + 11'
    else:
        basis = np.asarray(space.basis, dtype=np.float64)
        information = prior_n * (basis.T @ basis)
    k = basis.shape[1]
    return GeneByGene(basis, information, np.zeros(k), np.ones(n_samples), space.basis is None)


def gene_by_gene_update(
    state: GeneByGene,
    y: np.ndarray,
    prior: np.ndarray | None,
    design: np.ndarray,
    *,
    compiled: bool = True,
) -> None:
    """The genes of ``y`` (n_samples × g, host, in order; NaN missing) update ``state``.

    ``prior``: their precision weights (n_samples × g; every weight > 0, a missing value
    where limma set one for a weight of 0), or None. As limma, a gene is passed over when it
    has at most two observations, fewer than two residual df or a residual variance below
    :data:`SMALL_VARIANCE`. The compiled loop of ``_cpu.array_weights`` does the work unless
    ``compiled=False`` (this body, with NumPy and SciPy, is its reference).
    """
    if compiled:
        from ._cpu.array_weights import gene_by_gene_sweep  # numba: CPU only

        state.genes += gene_by_gene_sweep(
            y,
            prior,
            design,
            state.basis,
            state.sum_to_zero,
            state.information,
            state.gamma,
            state.weights,
            SMALL_VARIANCE,
        )
        return
    n = y.shape[0]
    for j in range(y.shape[1]):
        values = y[:, j]
        w = state.weights if prior is None else state.weights * prior[:, j]
        observed = np.isfinite(values)
        if int(observed.sum()) <= 2:
            continue
        root = np.sqrt(w[observed])
        q, r, _ = linalg.qr(root[:, None] * design[observed], mode="economic", pivoting=True)
        diagonal = np.abs(np.diag(r))
        rank = int(np.sum(diagonal > 1e-7 * max(diagonal.max(initial=0.0), 1e-300)))
        if int(observed.sum()) - rank < 2:
            continue
        q = q[:, :rank]
        weighted = root * values[observed]
        residual = weighted - q @ (q.T @ weighted)  # √w times lm.wfit's residuals
        s2 = float(residual @ residual) / (int(observed.sum()) - rank)
        if s2 < SMALL_VARIANCE:
            continue
        d, h1 = np.zeros(n), np.zeros(n)
        d[observed] = residual * residual
        h1[observed] = 1.0 - np.sum(q * q, axis=1)
        total = float(h1.sum())
        if state.sum_to_zero:  # Z2 = [I; −1']: Z2'h and Z2' diag(h) Z2 from the structure
            across = h1[:-1] - h1[-1]
            state.information[np.diag_indices(n - 1)] += h1[:-1]
            state.information += h1[-1] - np.outer(across, across) / total
        else:
            across = state.basis.T @ h1
            state.information += state.basis.T @ (h1[:, None] * state.basis)
            state.information -= np.outer(across, across) / total
        score = state.basis.T @ (d / s2 - h1)
        state.gamma += linalg.solve(state.information, score, assume_a="pos")
        state.weights = np.exp(-(state.basis @ state.gamma))
        state.genes += 1
