"""edgeR's ``maximizeInterpolant``: where a cubic spline through a curve's values on a grid
is largest.

R's ``fmm`` spline (Forsythe, Malcolm and Moler: the end conditions from cubics through the
first and last four points) through each row; the maximum is sought only in the two segments
beside the largest grid value, from the roots of their derivatives, as edgeR's C++ does.
"""

from __future__ import annotations

import numpy as np

from .._jit import njit

__all__ = ["fmm_spline", "maximize_interpolant"]


def maximize_interpolant(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The abscissa of each row's spline maximum.

    Parameters
    ----------
    x : ndarray of shape (n_points,)
        The grid, increasing.
    y : ndarray of shape (n_rows, n_points)

    Returns
    -------
    ndarray of shape (n_rows,)
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(np.atleast_2d(y), dtype=np.float64)
    out = np.empty(y.shape[0])
    _maximize(x, y, out)
    return out


@njit(nogil=True, cache=True)
def fmm_spline(x: np.ndarray, y: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> None:
    """R's ``fmm_spline`` (stats/src/splines.c), 0-based: y + b·t + c·t² + d·t³ on each
    segment, t from its left end."""
    n = x.shape[0]
    if n < 3:
        b[0] = (y[1] - y[0]) / (x[1] - x[0])
        b[1] = b[0]
        c[0] = c[1] = d[0] = d[1] = 0.0
        return
    nm1 = n - 1
    d[0] = x[1] - x[0]
    c[1] = (y[1] - y[0]) / d[0]
    for i in range(1, nm1):
        d[i] = x[i + 1] - x[i]
        b[i] = 2.0 * (d[i - 1] + d[i])
        c[i + 1] = (y[i + 1] - y[i]) / d[i]
        c[i] = c[i + 1] - c[i]
    b[0] = -d[0]
    b[nm1] = -d[n - 2]
    c[0] = c[nm1] = 0.0
    if n > 3:
        c[0] = c[2] / (x[3] - x[1]) - c[1] / (x[2] - x[0])
        c[nm1] = c[n - 2] / (x[nm1] - x[n - 3]) - c[n - 3] / (x[n - 2] - x[n - 4])
        c[0] = c[0] * d[0] * d[0] / (x[3] - x[0])
        c[nm1] = -c[nm1] * d[n - 2] * d[n - 2] / (x[nm1] - x[n - 4])
    for i in range(1, n):
        t = d[i - 1] / b[i - 1]
        b[i] = b[i] - t * d[i - 1]
        c[i] = c[i] - t * c[i - 1]
    c[nm1] = c[nm1] / b[nm1]
    for i in range(n - 2, -1, -1):
        c[i] = (c[i] - d[i] * c[i + 1]) / b[i]
    b[nm1] = (y[nm1] - y[n - 2]) / d[n - 2] + d[n - 2] * (c[n - 2] + 2.0 * c[nm1])
    for i in range(nm1):
        b[i] = (y[i + 1] - y[i]) / d[i] - d[i] * (c[i + 1] + 2.0 * c[i])
        d[i] = (c[i + 1] - c[i]) / d[i]
        c[i] = 3.0 * c[i]
    c[nm1] = 3.0 * c[nm1]
    d[nm1] = d[n - 2]


@njit(nogil=True, cache=True)
def _segment_maximum(b: float, c: float, d: float, width: float) -> float:
    """The smaller root of the segment's derivative 3d·t² + 2c·t + b when it lies inside
    (0, width), else NaN (edgeR's quad_solver and its choice of root)."""
    a2 = 3.0 * d
    b2 = 2.0 * c
    back = b2 * b2 - 4.0 * a2 * b
    if back < 0:
        return np.nan
    front = -b2 / (2.0 * a2)
    root = front - np.sqrt(back) / (2.0 * a2)
    if root > 0 and root < width:
        return root
    return np.nan


@njit(nogil=True, cache=True)
def _maximize(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    n = x.shape[0]
    b = np.empty(n)
    c = np.empty(n)
    d = np.empty(n)
    for row in range(y.shape[0]):
        values = y[row]
        at = 0
        for i in range(1, n):
            if values[i] > values[at]:
                at = i
        best = values[at]
        x_max = x[at]
        fmm_spline(x, values, b, c, d)
        if at > 0:
            root = _segment_maximum(b[at - 1], c[at - 1], d[at - 1], x[at] - x[at - 1])
            if not np.isnan(root):
                value = ((d[at - 1] * root + c[at - 1]) * root + b[at - 1]) * root + values[at - 1]
                if value > best:
                    best = value
                    x_max = root + x[at - 1]
        if at < n - 1:
            root = _segment_maximum(b[at], c[at], d[at], x[at + 1] - x[at])
            if not np.isnan(root):
                value = ((d[at] * root + c[at]) * root + b[at]) * root + values[at]
                if value > best:
                    best = value
                    x_max = root + x[at]
        out[row] = x_max
