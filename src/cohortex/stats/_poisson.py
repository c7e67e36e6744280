"""edgeR's Poisson fit, ``glmFit(y, design, lib.size =, dispersion = 0, prior.count = 0)``.

edgeR's voomLmFit takes it to find the exact zeros of rows with zero counts: the counts of
zero whose fitted value is below 1e-4. Which zeros those are depends on how far the fit went
towards a fitted value of 0, so the fit makes edgeR's choices: a one-way layout (as many
distinct design rows as columns) has its closed form, each group's ``log(Σy / Σlib)``; any
other design edgeR's Levenberg-damped Fisher scoring (``mglmLevenberg``: the start from the
row's overall rate, damping from 10⁻⁶ of the largest information, the deviance with edgeR's
1e-8 guard, a stop when the step's score falls below 1e-6, at most 250 iterations). Host
only (numba): the rows are the few with zeros, each a loop over its samples.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["poisson_basis", "poisson_coefficients"]

_MAX_ITERATIONS = 250
_TOLERANCE = 1e-6


def poisson_basis(design: np.ndarray) -> np.ndarray:
    """The basis of the Poisson fit's log means (n_samples × q): the group indicators of a
    one-way layout, else ``design`` itself."""
    groups = _one_way_groups(np.asarray(design, dtype=np.float64))
    return design if groups is None else groups


def _one_way_groups(design: np.ndarray) -> np.ndarray | None:
    """The group indicators (n_samples × p) when ``design`` is a one-way layout (edgeR's
    ``designAsFactor``: as many distinct rows as columns), else None."""
    rows, group = np.unique(design, axis=0, return_inverse=True)
    if rows.shape[0] != design.shape[1]:
        return None
    return (group.ravel()[:, None] == np.arange(rows.shape[0])[None, :]).astype(np.float64)


def poisson_coefficients(counts: np.ndarray, design: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The Poisson fit's coefficients on :func:`poisson_basis` (q × n_genes).

    Parameters
    ----------
    counts : ndarray of shape (n_samples, n_genes)
    design : ndarray of shape (n_samples, p)
        Of full rank.
    offsets : ndarray of shape (n_samples,)
        ``log(library size)``.

    Returns
    -------
    ndarray of shape (q, n_genes)
        The fitted means are ``exp(poisson_basis(design) @ coefficients + offsets)``. A group
        of a one-way layout with no count has -1e8 (edgeR's floor: a fitted 0), a gene with
        no count under another design NaN (edgeR: NA coefficients, fitted 0).
    """
    counts = np.asarray(counts, dtype=np.float64)
    design = np.asarray(design, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.float64)
    groups = _one_way_groups(design)
    if groups is not None:  # edgeR's mglmOneWay, Poisson: each group's log(Σy / Σlib)
        library = groups.T @ np.exp(offsets)
        with np.errstate(divide="ignore"):
            rates = np.log((groups.T @ counts) / library[:, None])
        return np.maximum(rates, -1e8)
    start = _null_start(counts, design, offsets)
    coefficients = np.empty((design.shape[1], counts.shape[1]))
    _levenberg(
        np.asfortranarray(counts), design, offsets, start, _MAX_ITERATIONS, _TOLERANCE, coefficients
    )
    return coefficients


def _null_start(counts: np.ndarray, design: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """edgeR's ``start.method = "null"``: the least-squares coefficients of each row's overall
    log rate ``log(Σy / Σlib)``, the same in every sample (p × genes)."""
    with np.errstate(divide="ignore"):
        rate = np.log(counts.sum(axis=0) / np.exp(offsets).sum())
    ones = np.linalg.lstsq(design, np.ones(design.shape[0]), rcond=None)[0]
    return ones[:, None] * rate[None, :]


@numba.njit(nogil=True, cache=True)
def _mean_and_deviance(
    y: np.ndarray, design: np.ndarray, offsets: np.ndarray, beta: np.ndarray, mu: np.ndarray
) -> float:
    """``mu = exp(design @ beta + offsets)`` in place, and edgeR's Poisson deviance (each
    value and mean guarded by 1e-8)."""
    n, p = design.shape
    total = 0.0
    for i in range(n):
        eta = offsets[i]
        for k in range(p):
            eta += design[i, k] * beta[k]
        mu[i] = np.exp(eta)
        yi = y[i] + 1e-8
        mi = mu[i] + 1e-8
        total += max(2.0 * (yi * np.log(yi / mi) - (yi - mi)), 0.0)
    return total


@numba.njit(nogil=True, cache=True)
def _levenberg(
    counts: np.ndarray,
    design: np.ndarray,
    offsets: np.ndarray,
    start: np.ndarray,
    max_iterations: int,
    tolerance: float,
    out: np.ndarray,
) -> None:
    n, p = design.shape
    mu = np.empty(n)
    trial_mu = np.empty(n)
    info = np.empty((p, p))
    score = np.empty(p)
    for g in range(counts.shape[1]):
        y = counts[:, g]
        if y.max() < 1e-10:  # edgeR: NA coefficients, fitted values 0
            out[:, g] = np.nan
            continue
        beta = start[:, g].copy()
        deviance = _mean_and_deviance(y, design, offsets, beta, mu)
        largest_info = -1.0
        damping = 0.0
        for iteration in range(1, max_iterations + 1):
            info[:] = 0.0  # X'WX and the score X'(y − mu), one pass over the samples
            score[:] = 0.0
            for i in range(n):
                weight = mu[i]
                residual = y[i] - weight
                for a in range(p):
                    xa = design[i, a]
                    score[a] += xa * residual
                    for b in range(a + 1):
                        info[a, b] += xa * design[i, b] * weight
            for a in range(p):
                for b in range(a):
                    info[b, a] = info[a, b]
                largest_info = max(largest_info, info[a, a])
            if iteration == 1:
                damping = max(largest_info * 1e-6, 1e-13)
            failed = False
            low = False
            attempts = 0
            step = np.linalg.solve(np.eye(p), score)  # typed as the solves below
            while True:
                attempts += 1
                while True:  # raise the damping until the information factorises
                    damped = info.copy()
                    for k in range(p):
                        damped[k, k] += damping
                    if _positive_definite(damped):
                        break
                    damping = damping * 10.0 if damping > 0 else 1e-100
                step = np.linalg.solve(damped, score)
                trial = beta + step
                trial_deviance = _mean_and_deviance(y, design, offsets, trial, trial_mu)
                low = trial_deviance / y.max() < 1e-13
                if trial_deviance <= deviance or low:
                    beta = trial
                    mu[:] = trial_mu
                    deviance = trial_deviance
                    break
                damping = damping * 2.0 if damping > 0 else 1e-100
                if damping / largest_info > 1e13:
                    failed = True
                    break
            if failed or low or np.dot(score, step) < tolerance:
                break
            if attempts == 1:
                damping /= 10.0
        out[:, g] = beta


@numba.njit(nogil=True, cache=True)
def _positive_definite(matrix: np.ndarray) -> bool:
    """Whether a Cholesky factorisation succeeds (LAPACK's dpotrf: every pivot > 0)."""
    p = matrix.shape[0]
    lower = np.zeros((p, p))
    for j in range(p):
        s = matrix[j, j]
        for k in range(j):
            s -= lower[j, k] * lower[j, k]
        if not s > 0.0:
            return False
        lower[j, j] = np.sqrt(s)
        for i in range(j + 1, p):
            t = matrix[i, j]
            for k in range(j):
                t -= lower[i, k] * lower[j, k]
            lower[i, j] = t / lower[j, j]
    return True
