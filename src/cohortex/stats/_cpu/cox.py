"""Compiled Cox partial-likelihood terms of many genes (numba), the CPU twin of
:func:`cohortex.stats._cox.cox_terms`.

Why compiled: the ``xp`` body builds ``w``, ``w v`` and ``w v vᵀ`` as (samples × genes) float64
arrays and takes a cumulative sum of each (about fifteen passes over the block per Newton
step). Here one pass over the samples, sorted from the latest time, adds each sample into
per-gene risk-set accumulators (genes along contiguous memory) and, at the last sample of each
tied time with an event, adds that time's terms — Efron's r/d steps included. A first pass finds
each gene's largest linear predictor, the shift that keeps ``exp`` finite, as the ``xp`` body.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["cox_terms_compiled"]


@numba.njit(nogil=True, cache=True)
def _terms(  # type: ignore[no-untyped-def]
    first,
    per_gene,
    shared,
    valid,
    beta,
    event,
    stratum_starts,
    group_stops,
    efron,
    loglik,
    score,
    information,
):
    n, n_genes = valid.shape
    q = shared.shape[1]
    p = 1 + q
    v = np.empty(p)
    shift = np.full(n_genes, -np.inf)
    for i in range(n):
        for g in range(n_genes):
            if valid[i, g]:
                eta = beta[g, 0] * first[i, g if per_gene else 0]
                for k in range(q):
                    eta += beta[g, 1 + k] * shared[i, k]
                if eta > shift[g]:
                    shift[g] = eta
    for g in range(n_genes):
        if not np.isfinite(shift[g]):
            shift[g] = 0.0
    risk0 = np.zeros(n_genes)
    risk1 = np.zeros((p, n_genes))
    risk2 = np.zeros((p, p, n_genes))
    tie0 = np.zeros(n_genes)
    tie1 = np.zeros((p, n_genes))
    tie2 = np.zeros((p, p, n_genes))
    deaths = np.zeros(n_genes)
    s1 = np.empty(p)
    stratum = 0
    group = 0
    for i in range(n):
        if stratum < stratum_starts.size and i == stratum_starts[stratum]:
            risk0[:] = 0.0
            risk1[:] = 0.0
            risk2[:] = 0.0
            stratum += 1
        is_event = event[i] > 0
        for g in range(n_genes):
            if not valid[i, g]:
                continue
            v[0] = first[i, g if per_gene else 0]
            for k in range(q):
                v[1 + k] = shared[i, k]
            eta = 0.0
            for a in range(p):
                eta += beta[g, a] * v[a]
            w = np.exp(eta - shift[g])
            risk0[g] += w
            for a in range(p):
                risk1[a, g] += w * v[a]
                for b in range(a, p):
                    risk2[a, b, g] += w * v[a] * v[b]
            if is_event:
                deaths[g] += 1.0
                loglik[g] += eta - shift[g]
                tie0[g] += w
                for a in range(p):
                    score[g, a] += v[a]
                    tie1[a, g] += w * v[a]
                    for b in range(a, p):
                        tie2[a, b, g] += w * v[a] * v[b]
        if group < group_stops.size and i == group_stops[group] - 1:
            group += 1
            for g in range(n_genes):
                d = deaths[g]
                if d == 0:
                    continue
                rounds = int(d) if efron else 1
                times = 1.0 if efron else d
                for r in range(rounds):
                    f = r / d if efron else 0.0
                    s0 = risk0[g] - f * tie0[g]
                    loglik[g] -= times * np.log(s0)
                    for a in range(p):
                        s1[a] = (risk1[a, g] - f * tie1[a, g]) / s0
                        score[g, a] -= times * s1[a]
                    for a in range(p):
                        for b in range(a, p):
                            s2 = (risk2[a, b, g] - f * tie2[a, b, g]) / s0
                            term = times * (s2 - s1[a] * s1[b])
                            information[g, a, b] += term
                            if a != b:
                                information[g, b, a] += term
                deaths[g] = 0.0
                tie0[g] = 0.0
                for a in range(p):
                    tie1[a, g] = 0.0
                    for b in range(a, p):
                        tie2[a, b, g] = 0.0


@numba.njit(nogil=True, cache=True)
def _terms_gene_only(  # type: ignore[no-untyped-def]
    x, valid, beta, event, stratum_starts, group_stops, efron, loglik, score, information
):
    """:func:`_terms` for a model of the gene alone (p = 1, no covariates), the default: the
    sums are scalars per gene, so each sample's update is a few multiply-adds along the genes
    with masks as selects, which the compiler keeps in registers and vectorises."""
    n, n_genes = x.shape
    b = beta[:, 0].copy()
    shift = np.full(n_genes, -np.inf)
    for i in range(n):
        for g in range(n_genes):
            eta = b[g] * x[i, g] if valid[i, g] else -np.inf
            shift[g] = max(shift[g], eta)
    for g in range(n_genes):
        if not np.isfinite(shift[g]):
            shift[g] = 0.0
    risk0 = np.zeros(n_genes)
    risk1 = np.zeros(n_genes)
    risk2 = np.zeros(n_genes)
    tie0 = np.zeros(n_genes)
    tie1 = np.zeros(n_genes)
    tie2 = np.zeros(n_genes)
    deaths = np.zeros(n_genes)
    stratum = 0
    group = 0
    for i in range(n):
        if stratum < stratum_starts.size and i == stratum_starts[stratum]:
            risk0[:] = 0.0
            risk1[:] = 0.0
            risk2[:] = 0.0
            stratum += 1
        if event[i] > 0:
            for g in range(n_genes):
                v = x[i, g]
                eta = b[g] * v - shift[g]
                # a select, not a product: exp of a left-out sample may overflow
                w = np.exp(eta) if valid[i, g] else 0.0
                counted = 1.0 if valid[i, g] else 0.0
                wv = w * v
                risk0[g] += w
                risk1[g] += wv
                risk2[g] += wv * v
                tie0[g] += w
                tie1[g] += wv
                tie2[g] += wv * v
                deaths[g] += counted
                loglik[g] += eta * counted
                score[g, 0] += v * counted
        else:
            for g in range(n_genes):
                v = x[i, g]
                w = np.exp(b[g] * v - shift[g]) if valid[i, g] else 0.0
                wv = w * v
                risk0[g] += w
                risk1[g] += wv
                risk2[g] += wv * v
        if group < group_stops.size and i == group_stops[group] - 1:
            group += 1
            for g in range(n_genes):
                d = deaths[g]
                if d == 0:
                    continue
                rounds = int(d) if efron else 1
                times = 1.0 if efron else d
                for r in range(rounds):
                    f = r / d if efron else 0.0
                    s0 = risk0[g] - f * tie0[g]
                    loglik[g] -= times * np.log(s0)
                    s1 = (risk1[g] - f * tie1[g]) / s0
                    score[g, 0] -= times * s1
                    s2 = (risk2[g] - f * tie2[g]) / s0
                    information[g, 0, 0] += times * (s2 - s1 * s1)
                deaths[g] = 0.0
                tie0[g] = 0.0
                tie1[g] = 0.0
                tie2[g] = 0.0


def cox_terms_compiled(
    first: np.ndarray,
    shared: np.ndarray,
    valid: np.ndarray,
    beta: np.ndarray,
    event: np.ndarray,
    stratum_starts: np.ndarray,
    group_stops: np.ndarray,
    efron: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log partial likelihood, score and information of every gene at ``beta``.

    Parameters
    ----------
    first : ndarray of shape (n_samples, n_genes) or (n_samples, 1)
        The first variable: each gene's values (or one shared column), rows sorted by
        stratum and from the latest time.
    shared : ndarray of shape (n_samples, q)
        The other variables (covariates), the same for every gene.
    valid : ndarray of shape (n_samples, n_genes), bool
    beta : ndarray of shape (n_genes, 1 + q)
    event : ndarray of shape (n_samples,)
    stratum_starts : ndarray of int64
        First row of each stratum.
    group_stops : ndarray of int64
        One past the last row of each tied time that holds an event, ascending.
    efron : bool

    Returns
    -------
    loglik : (n_genes,), score : (n_genes, 1 + q), information : (n_genes, 1 + q, 1 + q)
    """
    n_genes = valid.shape[1]
    p = beta.shape[1]
    loglik = np.zeros(n_genes)
    score = np.zeros((n_genes, p))
    information = np.zeros((n_genes, p, p))
    if p == 1 and first.shape[1] == n_genes:
        _terms_gene_only(
            np.ascontiguousarray(first, dtype=np.float64),
            np.ascontiguousarray(valid),
            np.ascontiguousarray(beta, dtype=np.float64),
            np.ascontiguousarray(event, dtype=np.float64),
            np.asarray(stratum_starts, dtype=np.int64),
            np.asarray(group_stops, dtype=np.int64),
            bool(efron),
            loglik,
            score,
            information,
        )
        return loglik, score, information
    _terms(
        np.ascontiguousarray(first, dtype=np.float64),
        first.shape[1] == n_genes,
        np.ascontiguousarray(shared, dtype=np.float64).reshape(first.shape[0], p - 1),
        np.ascontiguousarray(valid),
        np.ascontiguousarray(beta, dtype=np.float64),
        np.ascontiguousarray(event, dtype=np.float64),
        np.asarray(stratum_starts, dtype=np.int64),
        np.asarray(group_stops, dtype=np.int64),
        bool(efron),
        loglik,
        score,
        information,
    )
    return loglik, score, information
