"""R's ``smooth.spline`` on the host: a target df (qvalue's π0 smoother) or generalised
cross-validation (sva's ``edge.lfdr``), then ``predict`` at new points.

The result depends on how R finds the smoothing parameter, not only on the criterion, so this
follows R's ``sbart`` exactly:

* ``x`` scaled to [0, 1]; cubic B-splines on the knots (every point for fewer than 50 points,
  else R's ``.nknots.smspl`` of them, picked by R's ``seq.int`` indices) with the end knots
  repeated three times;
* for a parameter ``spar``, ``λ = r · 256^(3 spar − 1)`` with ``r = tr(X'WX) / tr(Σ)`` over
  the inner diagonal entries (R leaves out the first two and the last three), ``Σ`` R's
  Gram matrix of the basis' second derivatives (with R's 0.333 for 1/3); coefficients
  solve ``(X'WX + λΣ) c = X'Wy``;
* ``spar`` minimises the criterion — ``3 + (df − df(spar))²`` for a target df, else GCV's
  ``(RSS / n) / (1 − df(spar) / n)²`` — over [−1.5, 1.5] by the Forsythe–Malcolm–Moler
  form of Brent's golden-section/parabolic search, tolerance 1e-4 and 2e-8 as R's
  ``control.spar``; the fit is that of the last spar evaluated, as R returns it.

Leverages (whose sum is df) come from the inverse of the small dense system (at most ~200
basis functions): it equals R's banded Cholesky to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import BSpline

from .._errors import CohortexError

__all__ = ["SmoothingSpline", "r_sequence", "smooth_spline"]

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
    coefficients : ndarray of shape (n_knots + 2,)
        The B-spline coefficients on ``knots`` (R's ``fit$fit$coef``).
    knots : ndarray of shape (n_knots + 6,)
        On the scaled axis, ``(x − low) / span``.
    low, span : float
        The smallest input ``x`` and the range of ``x``.
    """

    fitted: np.ndarray
    df: float
    spar: float
    lambda_: float
    iterations: int
    coefficients: np.ndarray
    knots: np.ndarray
    low: float
    span: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The spline at ``x`` (R's ``predict(fit, x)$y``): linear beyond the range.

        Parameters
        ----------
        x : ndarray of shape (m,)

        Returns
        -------
        ndarray of shape (m,)
        """
        scaled = (np.asarray(x, dtype=np.float64) - self.low) / self.span
        spline = BSpline(self.knots, self.coefficients, 3)
        inside = np.clip(scaled, 0.0, 1.0)
        values = spline(inside)
        outside = scaled != inside
        if outside.any():  # R continues from the end value with the end slope
            ends = spline(np.array([0.0, 1.0]))
            slopes = spline.derivative(1)(np.array([0.0, 1.0]))
            right = scaled > 1.0
            values[outside] = np.where(
                right[outside],
                ends[1] + slopes[1] * (scaled[outside] - 1.0),
                ends[0] + slopes[0] * scaled[outside],
            )
        return np.asarray(values, dtype=np.float64)


def smooth_spline(
    x: np.ndarray,
    y: np.ndarray,
    df: float | None = None,
    *,
    low: float = -1.5,
    high: float = 1.5,
    tol: float = 1e-4,
    eps: float = 2e-8,
    max_iterations: int = 500,
) -> SmoothingSpline:
    """Fit R's ``smooth.spline(x, y, df=df)``, or with GCV where ``df`` is None.

    Parameters
    ----------
    x, y : ndarray of shape (n,)
        At least 4 distinct, finite points (unit weights).
    df : float, optional
        Target equivalent degrees of freedom, 1 < df ≤ n; None chooses the smoothing by
        generalised cross-validation, R's default.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.size
    if n < 4 or y.shape != x.shape:
        raise CohortexError(f"smooth_spline needs at least 4 points; got {n}.")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise CohortexError("smooth_spline needs finite values.")
    if df is not None and not 1 < df <= n:
        raise CohortexError(f"smooth_spline needs 1 < df <= {n}; got {df}.")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if np.any(np.diff(x) <= 0):
        raise CohortexError("smooth_spline needs distinct x values.")
    span = x[-1] - x[0]
    xbar = (x - x[0]) / span
    # R's knots: xbar[seq.int(1, n, length.out = nknots)], its real indices truncated
    inner = xbar if n < 50 else xbar[r_sequence(1.0, float(n), _n_knots(n)).astype(np.int64) - 1]
    knots = np.concatenate([np.repeat(xbar[0], 3), inner, np.repeat(xbar[-1], 3)])
    sparse = BSpline.design_matrix(xbar, knots, 3)  # CSR, four B-splines a point
    basis = sparse.toarray()  # (n, n_knots + 2)
    columns = sparse.indices.reshape(n, 4)
    values = sparse.data.reshape(n, 4)
    xtx = basis.T @ basis
    xty = basis.T @ y
    gram = _second_derivative_gram(knots, basis.shape[1])
    middle_entries = slice(2, basis.shape[1] - 3)
    ratio = np.trace(xtx[middle_entries, middle_entries]) / np.trace(
        gram[middle_entries, middle_entries]
    )

    def evaluate(spar: float) -> tuple[float, float, np.ndarray, np.ndarray, float]:
        lam = ratio * 16.0 ** (spar * 6.0 - 2.0)
        inverse = np.linalg.inv(xtx + lam * gram)
        coefficients = inverse @ xty
        fitted = basis @ coefficients
        # x_i' inverse x_i over each point's four B-splines (sslvrg's banded leverages)
        block = inverse[columns[:, :, None], columns[:, None, :]]  # (n, 4, 4)
        leverage = np.einsum("ia,iab,ib->i", values, block, values)
        reached = float(leverage.sum())
        if df is not None:
            criterion = 3.0 + (df - reached) ** 2
        else:  # sslvrg's GCV with unit weights
            rss = float(np.sum((y - fitted) ** 2))
            criterion = (rss / n) / (1.0 - reached / n) ** 2
        return criterion, lam, coefficients, fitted, reached

    a, b = low, high
    v = w = x_best = a + _GOLDEN * (b - a)
    e = d = 0.0
    fx, lam, coefficients, fitted, reached = evaluate(x_best)
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
        fu, lam, coefficients, fitted, reached = evaluate(u)
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
    return SmoothingSpline(
        result, reached, x_best, lam, iterations, coefficients, knots, float(x[0]), float(span)
    )


def r_sequence(start: float, stop: float, length: int) -> np.ndarray:
    """R's ``seq.int(start, stop, length.out = length)``, bit for bit.

    R fills the first half forwards from ``start`` and the second backwards from ``stop``, so
    that both ends are exact; where its values are truncated to indices, so must ours be.

    Returns
    -------
    ndarray of shape (length,)
    """
    out = np.empty(length)
    if length > 0:
        out[0] = start
    if length > 1:
        out[-1] = stop
    if length > 2:
        step = (stop - start) / (length - 1)
        i = np.arange(1, length - 1)
        out[1:-1] = np.where(i < length // 2, start + i * step, stop - (length - 1 - i) * step)
    return out


def _n_knots(n: int) -> int:
    """R's ``.nknots.smspl(n)``: how many of n ≥ 50 points are knots."""
    a1, a2, a3, a4 = np.log2(50.0), np.log2(100.0), np.log2(140.0), np.log2(200.0)
    if n < 200:
        value = 2.0 ** (a1 + (a2 - a1) * (n - 50) / 150)
    elif n < 800:
        value = 2.0 ** (a2 + (a3 - a2) * (n - 200) / 600)
    elif n < 3200:
        value = 2.0 ** (a3 + (a4 - a3) * (n - 800) / 2400)
    else:
        value = 200.0 + (n - 3200) ** 0.2
    return int(value)


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
