"""R's ``smooth.spline(x, y, df=...)`` for a few distinct points, on the host.

Storey's π0 smoother (the default of the R package qvalue) fits a cubic smoothing spline with
3 equivalent degrees of freedom to π0(λ) over 19 values of λ. Its result depends on how R
finds the smoothing parameter, not only on the target df, so this follows R's ``sbart``
exactly:

* ``x`` scaled to [0, 1]; cubic B-splines on the knots ``x`` (every point a knot, which R does
  for fewer than 50 points) with the end knots repeated three times;
* for a parameter ``spar``, ``λ = r · 256^(3 spar − 1)`` with ``r = tr(X'WX) / tr(Σ)`` over
  the inner diagonal entries (R leaves out the first two and the last three), ``Σ`` R's
  Gram matrix of the basis' second derivatives (with R's 0.333 for 1/3); coefficients
  solve ``(X'WX + λΣ) c = X'Wy``;
* ``spar`` minimises ``3 + (df − df(spar))²`` over [−1.5, 1.5] by the Forsythe–Malcolm–Moler
  form of Brent's golden-section/parabolic search, tolerance 1e-4 and 2e-8 as R's
  ``control.spar``; the fitted values are those of the last spar evaluated, as R returns them.

Leverages (whose sum is df) come from the inverse of the small dense system: with at most a
few dozen points a dense solve equals R's banded Cholesky to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import BSpline

from .._errors import CohortexError

__all__ = ["SmoothingSpline", "smooth_spline"]

_GOLDEN = (3.0 - np.sqrt(5.0)) / 2.0


@dataclass
class SmoothingSpline:
    """A fitted smoothing spline.

    Attributes
    ----------
    fitted : ndarray of shape (n,)
        The spline at the input points (R's ``predict(fit, x)$y``).
    df : float
        Equivalent degrees of freedom reached (sum of the leverages).
    spar, lambda_ : float
        R's ``spar`` and ``lambda``.
    iterations : int
    """

    fitted: np.ndarray
    df: float
    spar: float
    lambda_: float
    iterations: int


def smooth_spline(
    x: np.ndarray,
    y: np.ndarray,
    df: float,
    *,
    low: float = -1.5,
    high: float = 1.5,
    tol: float = 1e-4,
    eps: float = 2e-8,
    max_iterations: int = 500,
) -> SmoothingSpline:
    """Fit R's ``smooth.spline(x, y, df=df)`` (unit weights, distinct ``x``).

    Parameters
    ----------
    x, y : ndarray of shape (n,)
        4 ≤ n < 50 distinct, finite points (more would need R's thinned knots).
    df : float
        Target equivalent degrees of freedom, 1 < df ≤ n.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.size
    if not 4 <= n < 50 or y.shape != x.shape:
        raise CohortexError(f"smooth_spline needs 4 to 49 points; got {n}.")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise CohortexError("smooth_spline needs finite values.")
    if not 1 < df <= n:
        raise CohortexError(f"smooth_spline needs 1 < df <= {n}; got {df}.")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if np.any(np.diff(x) <= 0):
        raise CohortexError("smooth_spline needs distinct x values.")
    xbar = (x - x[0]) / (x[-1] - x[0])
    knots = np.concatenate([np.repeat(xbar[0], 3), xbar, np.repeat(xbar[-1], 3)])
    basis = BSpline.design_matrix(xbar, knots, 3).toarray()  # (n, n + 2)
    xtx = basis.T @ basis
    xty = basis.T @ y
    gram = _second_derivative_gram(knots, basis.shape[1])
    inner = slice(2, basis.shape[1] - 3)
    ratio = np.trace(xtx[inner, inner]) / np.trace(gram[inner, inner])

    def evaluate(spar: float) -> tuple[float, float, np.ndarray, float]:
        lam = ratio * 16.0 ** (spar * 6.0 - 2.0)
        inverse = np.linalg.inv(xtx + lam * gram)
        fitted = basis @ (inverse @ xty)
        leverage = np.einsum("ij,jk,ik->i", basis, inverse, basis)
        reached = float(leverage.sum())
        return 3.0 + (df - reached) ** 2, lam, fitted, reached

    a, b = low, high
    v = w = x_best = a + _GOLDEN * (b - a)
    e = d = 0.0
    fx, lam, fitted, reached = evaluate(x_best)
    fv = fw = fx
    iterations = 0
    while True:
        middle = (a + b) / 2.0
        tol1 = eps * abs(x_best) + tol / 3.0
        tol2 = 2.0 * tol1
        iterations += 1
        if abs(x_best - middle) <= tol2 - (b - a) / 2.0 or iterations > max_iterations:
            break
        golden = abs(e) <= tol1 or max(fx, fv, fw) >= 1e100
        if not golden:  # try a parabola through x, w, v
            r = (x_best - w) * (fx - fv)
            q = (x_best - v) * (fx - fw)
            p = (x_best - v) * q - (x_best - w) * r
            q = 2.0 * (q - r)
            if q > 0:
                p = -p
            q = abs(q)
            r, e = e, d
            if (
                abs(p) >= abs(0.5 * q * r)
                or q == 0.0
                or p <= q * (a - x_best)
                or p >= q * (b - x_best)
            ):
                golden = True
            else:
                d = p / q
                u = x_best + d
                if u - a < tol2 or b - u < tol2:  # not too close to the ends
                    d = tol1 if middle - x_best >= 0 else -tol1
        if golden:
            e = (a - x_best) if x_best >= middle else (b - x_best)
            d = _GOLDEN * e
        step = d if abs(d) >= tol1 else (tol1 if d >= 0 else -tol1)
        u = x_best + step
        fu, lam, fitted, reached = evaluate(u)
        if not np.isfinite(fu):
            fu = 2e100
        if fu <= fx:
            if u >= x_best:
                a = x_best
            else:
                b = x_best
            v, fv, w, fw, x_best, fx = w, fw, x_best, fx, u, fu
        else:
            if u < x_best:
                a = u
            else:
                b = u
            if fu <= fw or w == x_best:
                v, fv, w, fw = w, fw, u, fu
            elif fu <= fv or v in (x_best, w):
                v, fv = u, fu
    result = np.empty(n)
    result[order] = fitted
    return SmoothingSpline(result, reached, x_best, lam, iterations)


def _second_derivative_gram(knots: np.ndarray, n_basis: int) -> np.ndarray:
    """R's penalty matrix ``Σ[i, j] ≈ ∫ B_i'' B_j''`` (``sgram``).

    On each knot interval of length h the second derivatives are linear, ``a + b s`` for s in
    [0, 1]; the integral is ``h (a_i a_j + (a_i b_j + b_i a_j) / 2 + b_i b_j / 3)``, but R
    writes the last weight as 0.333, and so must we to find R's smoothing parameter.
    """
    left, right = knots[:-1], knots[1:]
    spans = right > left
    second = np.empty((2, int(spans.sum()), n_basis))
    for j in range(n_basis):
        unit = np.zeros(n_basis)
        unit[j] = 1.0
        curvature = BSpline(knots, unit, 3).derivative(2)
        second[0, :, j] = curvature(left[spans])
        second[1, :, j] = curvature(right[spans])
    a, b = second[0], second[1] - second[0]
    h = (right - left)[spans][:, None]
    cross = (a * h).T @ b
    return (a * h).T @ a + (cross + cross.T) * 0.5 + (b * h).T @ b * 0.333


def natural_spline_basis(x: np.ndarray, df: int, at: np.ndarray | None = None) -> np.ndarray:
    """A basis of R's ``splines::ns(x, df, intercept = TRUE)`` space, evaluated at ``at``.

    Natural cubic splines with boundary knots at the range of ``x`` and ``df − 2`` inner knots
    at its quantiles (R's type 7); any basis of that space gives the same least-squares fit,
    so this one is the cubic B-splines on those knots restricted to zero second derivative at
    both boundaries. Beyond the boundaries the splines continue linearly, as R's ``predict``.

    Parameters
    ----------
    x : ndarray of shape (n,)
        Where the knots come from.
    df : int
        Dimension of the space, at least 2.
    at : ndarray of shape (m,), optional
        Where to evaluate the basis (default: ``x``).

    Returns
    -------
    ndarray of shape (m, df)
    """
    x = np.asarray(x, dtype=np.float64)
    at = x if at is None else np.asarray(at, dtype=np.float64)
    low, high = float(np.min(x)), float(np.max(x))
    inner = np.quantile(x, np.linspace(0.0, 1.0, df)[1:-1]) if df > 2 else np.empty(0)
    knots = np.sort(np.concatenate([np.repeat([low, high], 4), inner]))
    n_basis = knots.size - 4
    splines = [BSpline(knots, np.eye(n_basis)[j], 3) for j in range(n_basis)]
    boundary = np.array([low, high])
    curvature = np.array([s.derivative(2)(boundary) for s in splines]).T  # (2, n_basis)
    _, _, vt = np.linalg.svd(curvature)
    null = vt[2:].T  # (n_basis, df): combinations with no curvature at the boundaries
    inside = np.clip(at, low, high)
    values = BSpline.design_matrix(inside, knots, 3).toarray()
    slopes = np.array([s.derivative(1)(inside) for s in splines]).T
    values = values + slopes * (at - inside)[:, None]  # linear beyond the boundaries
    return values @ null
