"""Cleveland's (1979) robust locally weighted regression, as R's ``lowess`` and limma's
``weightedLowess`` compute it.

voom's mean–variance trend is ``lowess(x, y, f = 0.5)``; to give limma's weights the smoother
must make the same choices as R's (the classic ``clowess``): the ``ns = ⌊f n + 1e-7⌋`` nearest
points (at least 2), tricube weights with the cut-offs 0.999 h and 0.001 h, a local line
through the weighted centre unless the points are too close (spread ≤ 0.001 of the range),
points within ``delta`` of the last fitted x interpolated, tied x given the same fit, and
``iterations`` robustness passes with bisquare weights of the residuals over six times their
median. limma's ``weightedLowess`` (edgeR's voomLmFit takes it, the genes weighted by their
residual df) is another smoother: spans by a share of the total weight, local fits only at
seeds ``delta`` apart, a weighted median of the residuals. Host only (numba): the input is one
value per gene.
"""

from __future__ import annotations

import numpy as np

from .._errors import CohortexError
from .._jit import njit

__all__ = ["lowess", "tied_means", "weighted_lowess"]


def lowess(
    x: np.ndarray,
    y: np.ndarray,
    f: float = 2.0 / 3.0,
    iterations: int = 3,
    delta: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R's ``lowess(x, y, f, iter, delta)``.

    Parameters
    ----------
    x, y : ndarray of shape (n,)
        Finite values.
    f : float
        The span: the fraction of points in each local fit.
    iterations : int
        Robustness iterations (R's ``iter``).
    delta : float, optional
        Default ``0.01 · (max(x) − min(x))``, as R.

    Returns
    -------
    x_sorted, fitted : ndarray of shape (n,)
        ``x`` in increasing order (stable) and the smooth there, as R's ``list(x, y)``.
    anchors : ndarray of bool, shape (n,)
        The points where a local line was fitted; the smooth is linear between them (the
        points within ``delta`` are interpolated), so they are all an interpolation needs.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise CohortexError("lowess needs two 1-D arrays of the same, non-zero length.")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise CohortexError("lowess needs finite values.")
    if not (np.isfinite(f) and f > 0):
        raise CohortexError(f"lowess: 'f' must be finite and > 0; got {f!r}.")
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    if delta is None:
        delta = 0.01 * (xs[-1] - xs[0])
    fitted = np.empty_like(xs)
    anchors = np.zeros(xs.size, dtype=np.bool_)
    _clowess(xs, ys, float(f), int(iterations), float(delta), fitted, anchors)
    return xs, fitted, anchors


def weighted_lowess(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    span: float = 0.3,
    iterations: int = 4,
    points: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """limma's ``weightedLowess(x, y, weights, span, iterations, npts = points, output.style =
    "lowess")``.

    Each local line is fitted at a seed (the first and last points, and every point more than
    ``delta`` beyond the last seed; ``delta`` as limma picks it for ``points`` seeds) over the
    nearest points whose weights add up to ``span`` of the total, tricube × prior × robustness
    weights; the points between seeds are interpolated. Robustness weights are bisquare in
    the residuals over six times their weighted median.

    Parameters
    ----------
    x, y, weights : ndarray of shape (n,)
        Finite values; weights ≥ 0 (act as frequencies).

    Returns
    -------
    x_sorted, fitted : ndarray of shape (n,)
        ``x`` in increasing order (stable) and the smooth there.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if not (x.shape == y.shape == weights.shape and x.ndim == 1 and x.size > 0):
        raise CohortexError("weighted_lowess needs three 1-D arrays of the same, non-zero length.")
    if not (np.isfinite(x).all() and np.isfinite(y).all() and np.isfinite(weights).all()):
        raise CohortexError("weighted_lowess needs finite values.")
    if weights.min() < 0 or weights.sum() <= 0:
        raise CohortexError("weighted_lowess needs weights >= 0 with a positive total.")
    order = np.argsort(x, kind="stable")
    xs = x[order]
    if points >= xs.size:
        delta = 0.0
    else:  # limma: the smallest spacing that leaves at most `points` clusters
        cumulative = np.cumsum(np.sort(np.diff(xs)))
        clusters = np.arange(points)
        delta = float(np.min(cumulative[cumulative.size - 1 - clusters] / (points - clusters)))
    fitted = np.empty_like(xs)
    _weighted_lowess(xs, y[order], weights[order], float(span), int(iterations), delta, fitted)
    return xs, fitted


def tied_means(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points of sorted ``x`` with tied x merged, their y averaged: what R's
    ``approxfun(x, y, ties = list("ordered", mean))`` interpolates between."""
    unique, start = np.unique(x, return_index=True)
    counts = np.diff(np.append(start, x.size))
    return unique, np.add.reduceat(y, start) / counts


@njit(cache=True)
def _local_fit(
    x: np.ndarray,
    y: np.ndarray,
    at: int,
    left: int,
    right: int,
    w: np.ndarray,
    use_robust: bool,
    robust: np.ndarray,
) -> tuple[float, bool]:
    """The weighted local line at x[at] over points left..right (and ties beyond)."""
    n = x.size
    span = x[n - 1] - x[0]
    xs = x[at]
    h = max(xs - x[left], x[right] - xs)
    h9 = 0.999 * h
    h1 = 0.001 * h
    total = 0.0
    j = left
    while j < n:
        w[j] = 0.0
        r = abs(x[j] - xs)
        if r <= h9:
            if r <= h1:
                w[j] = 1.0
            else:
                q = r / h
                q = 1.0 - q * q * q
                w[j] = q * q * q
            if use_robust:
                w[j] *= robust[j]
            total += w[j]
        elif x[j] > xs:
            break
        j += 1
    last = j - 1
    if total <= 0.0:
        return 0.0, False
    for j in range(left, last + 1):
        w[j] /= total
    if h > 0.0:
        centre = 0.0
        for j in range(left, last + 1):
            centre += w[j] * x[j]
        b = xs - centre
        c = 0.0
        for j in range(left, last + 1):
            c += w[j] * (x[j] - centre) * (x[j] - centre)
        if np.sqrt(c) > 0.001 * span:
            b /= c
            for j in range(left, last + 1):
                w[j] *= b * (x[j] - centre) + 1.0
    value = 0.0
    for j in range(left, last + 1):
        value += w[j] * y[j]
    return value, True


@njit(cache=True)
def _clowess(
    x: np.ndarray,
    y: np.ndarray,
    f: float,
    iterations: int,
    delta: float,
    fitted: np.ndarray,
    anchors: np.ndarray,
) -> None:
    n = x.size
    if n < 2:
        fitted[0] = y[0]
        anchors[0] = True
        return
    ns = max(2, min(n, int(f * n + 1e-7)))
    robust = np.ones(n)
    scratch = np.empty(n)
    residual = np.empty(n)
    for iteration in range(iterations + 1):
        left = 0
        right = ns - 1
        last = -1
        i = 0
        while True:
            if right < n - 1 and x[i] - x[left] > x[right + 1] - x[i]:
                left += 1
                right += 1
                continue
            value, ok = _local_fit(x, y, i, left, right, scratch, iteration > 0, robust)
            fitted[i] = value if ok else y[i]
            anchors[i] = True
            if last < i - 1:
                denominator = x[i] - x[last]
                for j in range(last + 1, i):
                    alpha = (x[j] - x[last]) / denominator
                    fitted[j] = alpha * fitted[i] + (1.0 - alpha) * fitted[last]
            last = i
            cut = x[last] + delta
            i = last + 1
            while i < n:
                if x[i] > cut:
                    break
                if x[i] == x[last]:
                    fitted[i] = fitted[last]
                    last = i
                i += 1
            i = max(last + 1, i - 1)
            if last >= n - 1:
                break
        scale = 0.0
        for k in range(n):
            residual[k] = y[k] - fitted[k]
            scale += abs(residual[k])
        scale /= n
        if iteration == iterations:
            break
        sizes = np.sort(np.abs(residual))
        half = n // 2
        six_mad = 3.0 * (sizes[half] + sizes[n - half - 1]) if n % 2 == 0 else 6.0 * sizes[half]
        if six_mad < 1e-7 * scale:
            break
        c9 = 0.999 * six_mad
        c1 = 0.001 * six_mad
        for k in range(n):
            r = abs(residual[k])
            if r <= c1:
                robust[k] = 1.0
            elif r <= c9:
                q = r / six_mad
                robust[k] = (1.0 - q * q) * (1.0 - q * q)
            else:
                robust[k] = 0.0


_THRESHOLD = 1e-7


@njit(cache=True)
def _weighted_line(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    robust: np.ndarray,
    at: int,
    left: int,
    right: int,
    dist: float,
) -> float:
    """The local line at x[at] over left..right (weighted mean where they do not spread)."""
    total = 0.0
    y_mean = 0.0
    if dist < _THRESHOLD:
        for j in range(left, right + 1):
            total += w[j] * robust[j]
            y_mean += y[j] * w[j] * robust[j]
        return y_mean / total
    x_mean = 0.0
    work = np.empty(right - left + 1)
    for j in range(left, right + 1):
        q = 1.0 - (abs(x[at] - x[j]) / dist) ** 3
        work[j - left] = q * q * q * w[j] * robust[j]
        x_mean += work[j - left] * x[j]
        y_mean += work[j - left] * y[j]
        total += work[j - left]
    x_mean /= total
    y_mean /= total
    var = 0.0
    covar = 0.0
    for j in range(left, right + 1):
        d = x[j] - x_mean
        var += d * d * work[j - left]
        covar += d * (y[j] - y_mean) * work[j - left]
    if var < _THRESHOLD:
        return y_mean
    slope = covar / var
    intercept = y_mean - slope * x_mean
    return slope * x[at] + intercept


@njit(cache=True)
def _weighted_lowess(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    span: float,
    iterations: int,
    delta: float,
    fitted: np.ndarray,
) -> None:
    n = x.size
    seeds = [0]
    for i in range(1, n - 1):
        if x[i] - x[seeds[-1]] > delta:
            seeds.append(i)
    seeds.append(n - 1)
    total_weight = w.sum()
    span_weight = total_weight * span
    sub_range = (x[n - 1] - x[0]) / n
    starts = np.empty(len(seeds), dtype=np.int64)
    ends = np.empty(len(seeds), dtype=np.int64)
    dists = np.empty(len(seeds))
    for k in range(len(seeds)):  # the nearest points holding span_weight, then their ties
        at = seeds[k]
        left = at
        right = at
        current = w[at]
        at_end = at == n - 1
        at_start = at == 0
        furthest = 0.0
        while current < span_weight and not (at_end and at_start):
            if at_end or (not at_start and x[at] - x[left - 1] < x[right + 1] - x[at]):
                left -= 1
                current += w[left]
                at_start = left == 0
                furthest = max(furthest, x[at] - x[left])
            else:
                right += 1
                current += w[right]
                at_end = right == n - 1
                furthest = max(furthest, x[right] - x[at])
        while left > 0 and x[left] == x[left - 1]:
            left -= 1
        while right < n - 1 and x[right] == x[right + 1]:
            right += 1
        starts[k] = left
        ends[k] = right
        dists[k] = furthest
    robust = np.ones(n)
    residual = np.empty(n)
    for _ in range(iterations):
        fitted[0] = _weighted_line(x, y, w, robust, 0, starts[0], ends[0], dists[0])
        last = 0
        for k in range(1, len(seeds)):
            at = seeds[k]
            fitted[at] = _weighted_line(x, y, w, robust, at, starts[k], ends[k], dists[k])
            if at - last > 1:
                gap = x[at] - x[last]
                if gap > _THRESHOLD * sub_range:
                    slope = (fitted[at] - fitted[last]) / gap
                    intercept = fitted[at] - slope * x[at]
                    for j in range(last + 1, at):
                        fitted[j] = slope * x[j] + intercept
                else:
                    for j in range(last + 1, at):
                        fitted[j] = 0.5 * (fitted[at] + fitted[last])
            last = at
        scale = 0.0
        for j in range(n):
            residual[j] = abs(y[j] - fitted[j])
            scale += residual[j]
        scale /= n
        order = np.argsort(residual)
        cumulative = 0.0
        six_mad = 0.0
        half = total_weight / 2.0
        for k in range(n):  # the weighted median of |residual|, times six
            cumulative += w[order[k]]
            if cumulative == half:
                six_mad = 3.0 * (residual[order[k]] + residual[order[k + 1]])
                break
            if cumulative > half:
                six_mad = 6.0 * residual[order[k]]
                break
        if six_mad <= _THRESHOLD * scale:
            break
        for j in range(n):
            if residual[j] < six_mad:
                robust[j] = (1.0 - (residual[j] / six_mad) ** 2) ** 2
            else:
                robust[j] = 0.0
