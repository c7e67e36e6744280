"""Compiled Cox partial-likelihood terms of many genes (numba), the CPU twin of
:func:`cohortex.stats._cox.cox_terms`.

Why compiled: the ``xp`` body builds ``w``, ``w v`` and ``w v vᵀ`` as (samples × genes) float64
arrays and takes a cumulative sum of each (about fifteen passes over the block per Newton
step). Here one pass over the samples, sorted from the latest time, adds each sample into
per-gene risk-set accumulators and, at the last sample of each tied time with an event, adds
that time's terms — Efron's r/d steps included. Every update runs along the genes, one sum at a
time, with masks as selects: the compiler vectorises all but ``exp`` and ``log``. A first pass
finds each gene's largest linear predictor, the shift that keeps ``exp`` finite, as the ``xp``
body.
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit

__all__ = ["cox_terms_compiled"]


@njit(nogil=True, cache=True)
def _linear_predictor(first, per_gene, shared, coefficients, i, own, eta):  # type: ignore[no-untyped-def]
    """Sample ``i``'s first variable per gene into ``own`` and ``eta[g]`` = β_g · v;
    ``coefficients`` is β transposed, (p, n_genes), so that every loop runs along memory."""
    n_genes = eta.size
    if per_gene:
        for g in range(n_genes):
            own[g] = first[i, g]
    else:
        value = first[i, 0]
        for g in range(n_genes):
            own[g] = value
    for g in range(n_genes):
        eta[g] = coefficients[0, g] * own[g]
    for k in range(shared.shape[1]):
        value = shared[i, k]
        for g in range(n_genes):
            eta[g] += coefficients[1 + k, g] * value


@njit(nogil=True, cache=True)
def _accumulate(w, own, shared_row, sum0, sum1, sum2):  # type: ignore[no-untyped-def]
    """Add one sample's ``w``, ``w v`` and ``w v vᵀ`` (upper triangle) to every gene's sums;
    ``v`` is the gene's own value, then the covariates shared by all genes."""
    n_genes = w.size
    p = 1 + shared_row.size
    for g in range(n_genes):
        sum0[g] += w[g]
        sum1[0, g] += w[g] * own[g]
        sum2[0, 0, g] += w[g] * own[g] * own[g]
    for a in range(1, p):
        value = shared_row[a - 1]
        for g in range(n_genes):
            sum1[a, g] += w[g] * value
            sum2[0, a, g] += w[g] * own[g] * value
        for b in range(a, p):
            product = value * shared_row[b - 1]
            for g in range(n_genes):
                sum2[a, b, g] += w[g] * product


# x/0 is ±inf or NaN, as in the xp body: a step whose exp(η) underflows in a risk set gives a
# non-finite likelihood there, which Newton–Raphson halves (Python's rule would raise)
@njit(nogil=True, cache=True, error_model="numpy")
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
    coefficients = np.ascontiguousarray(beta.T)
    eta = np.empty(n_genes)
    own = np.empty(n_genes)
    shift = np.full(n_genes, -np.inf)
    for i in range(n):
        _linear_predictor(first, per_gene, shared, coefficients, i, own, eta)
        for g in range(n_genes):
            if valid[i, g] and eta[g] > shift[g]:
                shift[g] = eta[g]
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
    w = np.empty(n_genes)
    # score and information gene-last while summing (the callers' layout is gene-first)
    score_sums = np.zeros((p, n_genes))
    information_sums = np.zeros((p, p, n_genes))
    weight = np.empty(n_genes)
    fraction = np.empty(n_genes)
    total = np.empty(n_genes)
    mean = np.empty((p, n_genes))
    stratum = 0
    group = 0
    for i in range(n):
        if stratum < stratum_starts.size and i == stratum_starts[stratum]:
            risk0[:] = 0.0
            risk1[:] = 0.0
            risk2[:] = 0.0
            stratum += 1
        _linear_predictor(first, per_gene, shared, coefficients, i, own, eta)
        for g in range(n_genes):
            # a select, not a product: exp of a left-out sample may overflow
            w[g] = np.exp(eta[g] - shift[g]) if valid[i, g] else 0.0
        _accumulate(w, own, shared[i], risk0, risk1, risk2)
        if event[i] > 0:
            _accumulate(w, own, shared[i], tie0, tie1, tie2)
            for g in range(n_genes):
                counted = 1.0 if valid[i, g] else 0.0
                deaths[g] += counted
                loglik[g] += (eta[g] - shift[g]) * counted
                score_sums[0, g] += own[g] * counted
            for k in range(q):
                value = shared[i, k]
                for g in range(n_genes):
                    score_sums[1 + k, g] += value * (1.0 if valid[i, g] else 0.0)
        if group < group_stops.size and i == group_stops[group] - 1:
            group += 1
            rounds = 1
            if efron:  # the r-th of a gene's d tied events sees its risk set less r/d of theirs
                for g in range(n_genes):
                    rounds = max(rounds, int(deaths[g]))
            for r in range(rounds):
                for g in range(n_genes):
                    d = deaths[g]
                    active = d > r
                    fraction[g] = r / d if active and efron else 0.0
                    weight[g] = (1.0 if efron else d) if active else 0.0
                    # divided by, not multiplied by its inverse: a risk set's sum can be
                    # subnormal (a steep coefficient), its inverse then overflows
                    total[g] = risk0[g] - fraction[g] * tie0[g] if active else 1.0
                    loglik[g] -= weight[g] * np.log(total[g])
                for a in range(p):
                    for g in range(n_genes):
                        mean[a, g] = (risk1[a, g] - fraction[g] * tie1[a, g]) / total[g]
                        score_sums[a, g] -= weight[g] * mean[a, g]
                for a in range(p):
                    for b in range(a, p):
                        for g in range(n_genes):
                            second = (risk2[a, b, g] - fraction[g] * tie2[a, b, g]) / total[g]
                            information_sums[a, b, g] += weight[g] * (
                                second - mean[a, g] * mean[b, g]
                            )
            deaths[:] = 0.0
            tie0[:] = 0.0
            tie1[:] = 0.0
            tie2[:] = 0.0
    for g in range(n_genes):
        for a in range(p):
            score[g, a] += score_sums[a, g]
            for b in range(a, p):
                information[g, a, b] += information_sums[a, b, g]
                if a != b:
                    information[g, b, a] += information_sums[a, b, g]


@njit(nogil=True, cache=True, error_model="numpy")  # as _terms
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
    values = np.ascontiguousarray(first, dtype=np.float64)
    masks = np.ascontiguousarray(valid)
    rest = (
        np.ascontiguousarray(beta, dtype=np.float64),
        np.ascontiguousarray(event, dtype=np.float64),
        np.asarray(stratum_starts, dtype=np.int64),
        np.asarray(group_stops, dtype=np.int64),
        bool(efron),
        loglik,
        score,
        information,
    )
    if p == 1 and first.shape[1] == n_genes:
        _terms_gene_only(values, masks, *rest)
    else:
        covariates = np.ascontiguousarray(shared, dtype=np.float64).reshape(first.shape[0], p - 1)
        _terms(values, first.shape[1] == n_genes, covariates, masks, *rest)
    return loglik, score, information
