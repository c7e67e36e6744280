"""Huber M-estimation of a linear model per gene: MASS's ``rlm`` with its defaults, as limma's
``lmFit(method = "robust")`` calls it gene by gene (``mrlm``).

Each gene starts from least squares on its observed samples (precision weights multiply the
rows by their square roots, rlm's ``wt.method = "inv.var"``). Then, at most 20 times: the
scale is the residuals' median absolute value over 0.6745, each sample's weight Huber's
``min(1, 1.345 / |residual / scale|)``, and the weighted least-squares fit is redone; the
steps stop once the residuals move by at most 10⁻⁴ of their norm. limma keeps the last fit's
coefficients, ``sqrt(diag((X'WX)⁻¹))`` of its weights and the scale as sigma.

Host only (numba), a gene at a time: the weights differ from gene to gene.
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import njit

__all__ = ["huber_fits"]

_HUBER_K = 1.345  # psi.huber's k
_MAD_CONSTANT = 0.6745  # rlm's MAD scale: median(|r|) / 0.6745
_MAX_STEPS = 20  # rlm's maxit
_TOLERANCE = 1e-4  # rlm's acc on the residuals' relative change


def huber_fits(values: np.ndarray, design: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Every gene's robust fit.

    Parameters
    ----------
    values : ndarray, shape (n, g)
        NaN where missing.
    design : ndarray, shape (n, p)
    weights : ndarray, shape (n, g), optional
        Precision weights; a weight ≤ 0 leaves the value out.

    Returns
    -------
    ndarray, shape (2p + 4, g)
        Rows: the p coefficients, their p ``sqrt(diag((X'WX)⁻¹))``, the scale (sigma), the
        residual df (observed samples − p), 1 where the steps converged, and 1 where the
        observed samples' design is singular (rlm stops there; the gene is left NaN). A gene
        with no more observed samples than coefficients is NaN with df 0, as limma leaves it.
    """
    p = design.shape[1]
    out = np.full((2 * p + 4, values.shape[1]), np.nan)
    use = np.ones_like(values) if weights is None else np.asarray(weights, dtype=np.float64)
    _fits(np.asarray(values, dtype=np.float64), np.asarray(design, dtype=np.float64), use, out)
    return out


@njit(nogil=True, cache=True)
def _weighted_fit(x, y, w, coef, resid, r):  # type: ignore[no-untyped-def]
    """lm.wfit(x, y, w): the coefficients, the residuals y − x·coef and R of the QR of
    sqrt(w)·x (in ``r``)."""
    m, p = x.shape
    xw = np.empty((m, p))
    yw = np.empty(m)
    for i in range(m):
        root = math.sqrt(w[i])
        yw[i] = y[i] * root
        for j in range(p):
            xw[i, j] = x[i, j] * root
    q, r_ = np.linalg.qr(xw)
    qty = np.zeros(p)  # Q'y, summed over the rows in order
    for i in range(m):
        for j in range(p):
            qty[j] += q[i, j] * yw[i]
    for j in range(p - 1, -1, -1):
        s = qty[j]
        for k in range(j + 1, p):
            s -= r_[j, k] * coef[k]
        coef[j] = s / r_[j, j]
    for i in range(m):
        fitted = 0.0
        for j in range(p):
            fitted += x[i, j] * coef[j]
        resid[i] = y[i] - fitted
    r[:, :] = r_


@njit(nogil=True, cache=True)
def _fits(values, design, weights, out):  # type: ignore[no-untyped-def]
    n, p = design.shape
    for g in range(values.shape[1]):
        m = 0
        for i in range(n):
            if math.isfinite(values[i, g]) and weights[i, g] > 0:
                m += 1
        out[2 * p + 1, g] = 0.0
        if m <= p:  # mrlm: no fit without more observations than coefficients
            continue
        x = np.empty((m, p))
        y = np.empty(m)
        row = 0
        for i in range(n):
            if math.isfinite(values[i, g]) and weights[i, g] > 0:
                root = math.sqrt(weights[i, g])  # wt.method "inv.var"
                y[row] = values[i, g] * root
                for j in range(p):
                    x[row, j] = design[i, j] * root
                row += 1
        singular = np.linalg.matrix_rank(x) < p
        out[2 * p + 3, g] = 1.0 if singular else 0.0
        if singular:
            continue
        coef = np.empty(p)
        resid = np.empty(m)
        r = np.empty((p, p))
        w = np.ones(m)
        _weighted_fit(x, y, w, coef, resid, r)
        old = np.empty(m)
        absolute = np.empty(m)
        scale = 0.0
        done = False
        for _ in range(_MAX_STEPS):
            for i in range(m):
                old[i] = resid[i]
                absolute[i] = abs(resid[i])
            scale = np.median(absolute) / _MAD_CONSTANT
            if scale == 0.0:
                done = True
                break
            for i in range(m):  # psi.huber: min(1, k / |u|)
                u = abs(resid[i] / scale)
                w[i] = 1.0 if u <= _HUBER_K else _HUBER_K / u
            _weighted_fit(x, y, w, coef, resid, r)
            change = 0.0
            size = 0.0
            for i in range(m):
                change += (old[i] - resid[i]) ** 2
                size += old[i] ** 2
            if math.sqrt(change / max(1e-20, size)) <= _TOLERANCE:
                done = True
                break
        r_inverse = np.linalg.inv(r)
        for j in range(p):
            out[j, g] = coef[j]
            total = 0.0
            for k in range(p):
                total += r_inverse[j, k] ** 2
            out[p + j, g] = math.sqrt(total)
        out[2 * p, g] = scale
        out[2 * p + 1, g] = m - p
        out[2 * p + 2, g] = 1.0 if done else 0.0
