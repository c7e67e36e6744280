"""Kernels of the elastic-net Cox path (glmnet's ``coxnet``): Breslow's partial likelihood of
a linear predictor with the parts of its gradient and Hessian, coordinate descent on a
quadratic model of the genes in play, and every gene's gradient for the strong rule and the
KKT check.

Samples are sorted by stratum, then time from the latest (``stats._cox.RiskSets``): a tied
group's risk set is its stratum's rows up to the group's last row. Genes are rows of ``x``
(n_genes × n_samples, in that sample order, float32 or float64) and enter standardised on the
fly, ``(x − mean) · inv_scale``, so that a float32 store is never copied whole to float64.
"""

from __future__ import annotations

import numba
import numpy as np

from ..._jit import njit

__all__ = [
    "breslow_terms",
    "gene_gradients",
    "implicit_descent",
    "implicit_diagonal",
    "penalised_objective",
    "quadratic_descent",
    "risk_set_sums",
]


@njit(cache=True)
def breslow_terms(  # type: ignore[no-untyped-def]
    eta,
    event,
    weight,
    strata,
    group_starts,
    group_stops,
    group_events,
    rate,
    gradient,
    ratio,
    group_second,
):
    """Breslow's log partial likelihood of ``eta`` (n,), and in place what its gradient and
    Hessian by sample are made of.

    The Hessian of ``−l`` in ``η`` is ``diag(rate) − Σ_g group_second_g · r⁽ᵍ⁾ r⁽ᵍ⁾ᵀ``, with
    ``r⁽ᵍ⁾`` the ratios of group g's risk set (0 elsewhere).

    Parameters
    ----------
    eta, event : ndarray of shape (n,)
        Linear predictor and 0/1 events, in risk-set order.
    weight : ndarray of shape (n,)
        Observation weights (glmnet's, scaled to mean 1; ones without): each sample's
        ``exp(η)`` in the risk sets and its event count by them.
    strata : ndarray of shape (n_strata, 2)
        Each stratum's rows ``[start, stop)``.
    group_starts, group_stops : ndarray of shape (n_groups,)
        The rows of each tied (stratum, time) group holding an event, in row order.
    group_events : ndarray of shape (n_groups,)
        Its events' weights.
    rate, gradient, ratio : ndarray of shape (n,)
        Written: ``r_k Σ_{g ∋ k} d_g / S_g``, ``∂l/∂η_k`` and ``r_k = w_k exp(η_k − shift)``
        (the shift of its stratum).
    group_second : ndarray of shape (n_groups,)
        Written: ``d_g / S_g²``, in the same shifted units.

    Returns
    -------
    float
        The log partial likelihood; −inf (the other outputs unset) where a risk set's sum
        underflows.
    """
    loglik = 0.0
    g = 0
    for s in range(strata.shape[0]):
        start, stop = strata[s, 0], strata[s, 1]
        if stop <= start:
            continue
        shift = eta[start]
        for k in range(start, stop):
            shift = max(shift, eta[k])
        for k in range(start, stop):
            ratio[k] = weight[k] * np.exp(eta[k] - shift)
        first = g
        while g < group_starts.size and group_stops[g] <= stop:
            g += 1
        # each group's risk-set sum, from the latest time (a forward cumulative sum)
        shares = np.empty(g - first)
        total = 0.0
        row = start
        for j in range(first, g):
            while row < group_stops[j]:
                total += ratio[row]
                row += 1
            if not total > 0.0:  # a predictor spread past exp's range: no likelihood
                return -np.inf
            for k in range(group_starts[j], group_stops[j]):
                if event[k] > 0:
                    loglik += weight[k] * eta[k]
            loglik -= group_events[j] * (np.log(total) + shift)
            shares[j - first] = group_events[j] / total
            group_second[j] = shares[j - first] / total  # not d / S²: S² may underflow
        # each row's sum of d/S over the groups whose risk set holds it
        running = 0.0
        j = g - 1
        for k in range(stop - 1, start - 1, -1):
            while j >= first and group_stops[j] > k:
                running += shares[j - first]
                j -= 1
            rate[k] = ratio[k] * running
            gradient[k] = weight[k] * event[k] - rate[k]
    return loglik


@njit(cache=True)
def _threshold(z, h, l1, l2):  # type: ignore[no-untyped-def]
    """One coefficient's minimum of ``−z β + h/2 β² + l1 |β| + l2/2 β²``."""
    if z > l1:
        return (z - l1) / (h + l2)
    if z < -l1:
        return (z + l1) / (h + l2)
    return 0.0


@njit(cache=True)
def quadratic_descent(hessian, score, beta, factor, l1, l2, tolerance, max_cycles):  # type: ignore[no-untyped-def]
    """Cycles of coordinate descent on ``−scoreᵀΔ + ½ ΔᵀHΔ + Σ_j f_j (l1 |β_j| + l2/2 β_j²)``
    with ``Δ = β − β₀`` and ``H`` symmetric (``beta`` holds β₀ and is updated in place;
    ``factor`` holds each coefficient's penalty factor f_j), until a cycle over all of them
    moves none by more than ``tolerance / sqrt(H_jj)``; between such cycles, only the
    nonzero ones are cycled until they settle.

    Returns
    -------
    int
        The cycles run (``max_cycles`` + 1 when it did not converge).
    """
    m = beta.size
    moved = np.zeros(m)  # H Δ
    every = True
    for cycle in range(max_cycles):
        largest = 0.0
        for j in range(m):
            h = hessian[j, j]
            if h <= 0.0 or (not every and beta[j] == 0.0):
                continue
            old = beta[j]
            f = factor[j]
            new = _threshold(score[j] - moved[j] + h * old, h, l1 * f, l2 * f)
            step = new - old
            if step != 0.0:
                beta[j] = new
                for i in range(m):  # H is symmetric: its row j, read contiguously
                    moved[i] += hessian[j, i] * step
                largest = max(largest, abs(step) * np.sqrt(h))
        if largest < tolerance:
            if every:
                return cycle + 1
            every = True  # the nonzero ones settled: one cycle over all confirms it
        else:
            every = False  # settle the nonzero ones first (glmnet's active-set cycles)
    return max_cycles + 1


@njit(cache=True)
def risk_set_sums(values, ratio, strata, group_stops, out):  # type: ignore[no-untyped-def]
    """``out[g] = Σ_{k in group g's risk set} ratio_k · values[k]``: one pass down the rows.

    Parameters
    ----------
    values : ndarray of shape (n, m)
        Rows in risk-set order (C-contiguous: each row's m values are summed together).
    ratio : ndarray of shape (n,)
    strata, group_stops
        As :func:`breslow_terms`.
    out : ndarray of shape (n_groups, m)
        Written.
    """
    m = values.shape[1]
    running = np.empty(m)
    g = 0
    for s in range(strata.shape[0]):
        start, stop = strata[s, 0], strata[s, 1]
        running[:] = 0.0
        row = start
        while g < group_stops.size and group_stops[g] <= stop:
            while row < group_stops[g]:
                weight = ratio[row]
                for i in range(m):
                    running[i] += weight * values[row, i]
                row += 1
            out[g, :] = running
            g += 1


@njit(cache=True)
def _risk_product(values, ratio, strata, group_stops, group_second, scratch, out):  # type: ignore[no-untyped-def]
    """``out = Σ_g c_g r⁽ᵍ⁾ (r⁽ᵍ⁾ · values)``: the risk sets' share of the information times
    a vector (n,), by cumulative sums; ``scratch`` holds one value per group."""
    g = 0
    for s in range(strata.shape[0]):
        start, stop = strata[s, 0], strata[s, 1]
        first = g
        while g < group_stops.size and group_stops[g] <= stop:
            g += 1
        total = 0.0
        row = start
        for j in range(first, g):
            while row < group_stops[j]:
                total += ratio[row] * values[row]
                row += 1
            scratch[j] = group_second[j] * total
        running = 0.0
        j = g - 1
        for k in range(stop - 1, start - 1, -1):
            while j >= first and group_stops[j] > k:
                running += scratch[j]
                j -= 1
            out[k] = ratio[k] * running


@njit(cache=True, parallel=True)
def implicit_diagonal(  # type: ignore[no-untyped-def]
    x, mean, inv_scale, genes, rate, ratio, strata, group_stops, group_second, out
):
    """``out[j] = x̃_jᵀ (diag(rate) − Σ_g c_g r⁽ᵍ⁾ r⁽ᵍ⁾ᵀ) x̃_j / n`` of each of ``genes``: the
    information's diagonal, without forming it."""
    n = rate.size
    for position in numba.prange(genes.size):
        j = genes[position]
        column = (x[j].astype(np.float64) - mean[j]) * inv_scale[j]
        product = np.empty(n)
        scratch = np.empty(group_stops.size)
        _risk_product(column, ratio, strata, group_stops, group_second, scratch, product)
        total = 0.0
        for k in range(n):
            total += column[k] * (rate[k] * column[k] - product[k])
        out[j] = total / n


@njit(cache=True)
def implicit_descent(  # type: ignore[no-untyped-def]
    x,
    mean,
    inv_scale,
    genes,
    beta,
    score,
    diagonal,
    factor,
    rate,
    ratio,
    strata,
    group_stops,
    group_second,
    moved,
    curved,
    l1,
    l2,
    tolerance,
    max_cycles,
):
    """:func:`quadratic_descent` without forming the information ``H`` (for many genes in
    play): ``moved = X̃Δ`` and ``curved`` its risk-set share are kept, so that a coefficient's
    ``(HΔ)_j = x̃_jᵀ (rate ∘ moved − curved) / n`` costs O(n). ``score``, ``diagonal`` and
    ``factor`` are indexed by gene; ``beta``, ``moved`` and ``curved`` are updated in place.

    Returns
    -------
    int
        The cycles run (``max_cycles`` + 1 when it did not converge).
    """
    n = rate.size
    column = np.empty(n)
    product = np.empty(n)
    scratch = np.empty(group_stops.size)
    every = True
    for cycle in range(max_cycles):
        largest = 0.0
        for position in range(genes.size):
            j = genes[position]
            h = diagonal[j]
            if h <= 0.0 or (not every and beta[j] == 0.0):
                continue
            m, scale = mean[j], inv_scale[j]
            row = x[j]
            slope = 0.0
            for k in range(n):
                column[k] = (row[k] - m) * scale
                slope += column[k] * (rate[k] * moved[k] - curved[k])
            old = beta[j]
            f = factor[j]
            new = _threshold(score[j] - slope / n + h * old, h, l1 * f, l2 * f)
            step = new - old
            if step != 0.0:
                beta[j] = new
                _risk_product(column, ratio, strata, group_stops, group_second, scratch, product)
                for k in range(n):
                    moved[k] += step * column[k]
                    curved[k] += step * product[k]
                largest = max(largest, abs(step) * np.sqrt(h))
        if largest < tolerance:
            if every:
                return cycle + 1
            every = True
        else:
            every = False
    return max_cycles + 1


@njit(cache=True)
def _standard_dot(row, mean, inv_scale, values):  # type: ignore[no-untyped-def]
    total = 0.0
    for k in range(values.size):
        total += (row[k] - mean) * values[k]
    return total * inv_scale


@njit(cache=True, parallel=True)
def gene_gradients(x, mean, inv_scale, gradient, out):  # type: ignore[no-untyped-def]
    """``out[j] = (1/n) Σ_k x̃_kj ∂l/∂η_k``: every gene's gradient of the mean log partial
    likelihood (standardised), for the strong rule and the KKT check."""
    n = gradient.size
    for j in numba.prange(x.shape[0]):
        out[j] = _standard_dot(x[j], mean[j], inv_scale[j], gradient) / n


def penalised_objective(
    loglik: float, n: int, beta: np.ndarray, factor: np.ndarray, l1: float, l2: float
) -> float:
    """``−l/n + Σ_j f_j (l1 |β_j| + l2/2 β_j²)``: what the path minimises at one penalty
    (``factor``: each coefficient's penalty factor f_j)."""
    return (
        -loglik / n + l1 * float(factor @ np.abs(beta)) + 0.5 * l2 * float(factor @ (beta * beta))
    )
