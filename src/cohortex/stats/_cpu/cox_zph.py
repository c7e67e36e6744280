"""Compiled terms of the proportional-hazards score test (R's ``cox.zph``, its C ``zph1``).

For each gene's fitted Cox model: the score of the time-interaction terms ``v·g(t)`` at 0 and
the full 2p × 2p information at the fit — risk-set sums over the samples from the latest time,
a tied time's deaths added as Breslow or Efron do. One gene per loop iteration; without the
GIL, so that Dask runs blocks of genes side by side (host code: the statistics are read
from a gene's fitted model, all its samples).
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit

__all__ = ["zph_terms"]


@njit(nogil=True, cache=True)
def zph_terms(  # type: ignore[no-untyped-def]
    x, z, valid, beta, time, stratum, event, time_weight, efron
):
    """The score ``u`` (genes, 2p) and information ``imat`` (genes, 2p, 2p) of zph1.

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_genes)
        Each gene's values in risk-set order (by stratum, the latest time first), 0 where
        missing.
    z : ndarray of shape (n_samples, q)
        The covariates in that order.
    valid : ndarray of shape (n_samples, n_genes), bool
    beta : ndarray of shape (n_genes, p)
        The fitted coefficients, p = 1 + q: the gene's, then the covariates'.
    time, stratum, event : ndarray of shape (n_samples,)
        In that order (float64, int64, float64).
    time_weight : ndarray of shape (n_samples, n_genes)
        g(t) − its mean over the gene's events, at each sample's time.
    efron : bool
    """
    n, n_genes = x.shape
    q = z.shape[1]
    p = 1 + q
    u_all = np.zeros((n_genes, 2 * p))
    imat_all = np.zeros((n_genes, 2 * p, 2 * p))
    for g in range(n_genes):
        v = np.empty(p)
        a = np.zeros(p)
        a2 = np.zeros(p)
        cmat = np.zeros((p, p))
        cmat2 = np.zeros((p, p))
        u = u_all[g]
        imat = imat_all[g]
        shift = -np.inf
        for i in range(n):
            if valid[i, g]:
                eta = beta[g, 0] * x[i, g]
                for k in range(q):
                    eta += beta[g, 1 + k] * z[i, k]
                shift = max(shift, eta)
        denom = 0.0
        i = 0
        while i < n:
            if i == 0 or stratum[i] != stratum[i - 1]:  # a new stratum: empty risk set
                denom = 0.0
                a[:] = 0.0
                cmat[:, :] = 0.0
            stop = i
            while stop < n and time[stop] == time[i] and stratum[stop] == stratum[i]:
                stop += 1
            deaths = 0.0
            denom2 = 0.0
            weight = 0.0
            for j in range(i, stop):
                if not valid[j, g]:
                    continue
                v[0] = x[j, g]
                for k in range(q):
                    v[1 + k] = z[j, k]
                eta = 0.0
                for k in range(p):
                    eta += beta[g, k] * v[k]
                risk = np.exp(eta - shift)
                if event[j] == 0:
                    denom += risk
                    for r in range(p):
                        a[r] += risk * v[r]
                        for c in range(r + 1):
                            cmat[r, c] += risk * v[r] * v[c]
                else:
                    deaths += 1.0
                    weight = time_weight[j, g]
                    denom2 += risk
                    for r in range(p):
                        u[r] += v[r]
                        u[r + p] += weight * v[r]
                        a2[r] += risk * v[r]
                        for c in range(r + 1):
                            cmat2[r, c] += risk * v[r] * v[c]
            if deaths > 0:
                steps = 1 if not efron else int(deaths)
                share = deaths if not efron else 1.0  # each step's deaths
                for _ in range(steps):
                    fraction = 1.0 if not efron else 1.0 / deaths
                    denom += denom2 * fraction
                    for r in range(p):
                        a[r] += a2[r] * fraction
                    for r in range(p):
                        mean = a[r] / denom
                        u[r] -= share * mean
                        u[r + p] -= weight * share * mean
                        for c in range(r + 1):
                            cmat[r, c] += cmat2[r, c] * fraction
                            term = share * (cmat[r, c] - mean * a[c]) / denom
                            imat[c, r] += term
                            imat[c, r + p] += term * weight
                            imat[c + p, r + p] += term * weight * weight
                a2[:] = 0.0
                cmat2[:, :] = 0.0
            i = stop
        for r in range(p):  # the other triangles, as zph1
            for c in range(r):
                imat[r, c] = imat[c, r]
                imat[r, c + p] = imat[c, r + p]
                imat[r + p, c + p] = imat[c + p, r + p]
        for r in range(p):
            for c in range(p):
                imat[r + p, c] = imat[c, r + p]
    return u_all, imat_all
