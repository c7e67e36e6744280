"""locfit's local constant fit of one covariate, at the data (edgeR's ``locfitByCol``:
``fitted(locfit(y ~ x, weights, alpha = span, deg = 0))``).

locfit (Loader's C code, its defaults) does not fit at every point: it fits at the vertices
of an adaptive tree over ``[min x, max x]`` and interpolates. A cell is split at its middle
while its length exceeds 0.8 times the smaller bandwidth at its two ends; at each vertex the
fit is the tricube-weighted mean of the ``floor(n · span)`` nearest values (the bandwidth
the distance to the furthest of them); with degree 0 the vertices carry no slopes, so the
fitted value at a point is linear between the vertices of its cell.
"""

from __future__ import annotations

import numpy as np

from .._jit import njit

__all__ = ["locfit_constant"]

_CUT = 0.8  # locfit's rbox(cut = 0.8)


def locfit_constant(
    x: np.ndarray, y: np.ndarray, span: float, weights: np.ndarray | None = None
) -> np.ndarray:
    """The degree-0 locfit of each column of ``y`` on ``x``, at the data.

    Parameters
    ----------
    x : ndarray of shape (n,)
    y : ndarray of shape (n,) or (n, m)
        One fit per column, all on the same tree (the bandwidths depend on ``x`` only).
    span : float
        locfit's ``alpha``: the share of the points in each neighbourhood.
    weights : ndarray of shape (n,), optional
        Prior weights.

    Returns
    -------
    ndarray shaped as ``y``
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    values = np.asarray(y, dtype=np.float64)
    columns = np.ascontiguousarray(values.reshape(values.shape[0], -1))
    n = x.shape[0]
    if span * n < 2 or n <= 1:  # edgeR's locfitByCol returns y itself
        return values.copy()
    prior = np.ones(n) if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
    neighbours = int(n * span + 1e-12)
    vertices, fits = _tree(x, columns, prior, neighbours)
    order = np.argsort(vertices, kind="stable")
    vertices, fits = vertices[order], fits[order]
    cell = np.clip(np.searchsorted(vertices, x, side="right") - 1, 0, vertices.size - 2)
    left, right = vertices[cell], vertices[cell + 1]
    width = (right - left)[:, None]
    offset = (x - left)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        fitted = ((width - offset) * fits[cell] + offset * fits[cell + 1]) / width
    fitted = np.where(width == 0, fits[cell], fitted)
    return fitted.reshape(values.shape)


def _tree(
    x: np.ndarray, y: np.ndarray, prior: np.ndarray, neighbours: int
) -> tuple[np.ndarray, np.ndarray]:
    """The tree's vertices (v,) and the fit of every column at each (v × m)."""
    low, high = float(x.min()), float(x.max())
    points = [low, high]
    fits = [_vertex_fit(x, y, prior, low, neighbours), _vertex_fit(x, y, prior, high, neighbours)]
    stack = [(0, 1)]  # cells as (left vertex, right vertex)
    while stack:
        a, b = stack.pop()
        length = points[b] - points[a]
        h_a, h_b = fits[a][0], fits[b][0]
        smallest = min(h for h in (h_a, h_b) if h > 0) if max(h_a, h_b) > 0 else 0.0
        # locfit's atree_split: the cell against the smaller bandwidth of its ends
        score = 2.0 * length / (high - low) if smallest == 0.0 else length / smallest
        if not score > _CUT:
            continue
        middle = (points[a] + points[b]) / 2.0
        points.append(middle)
        fits.append(_vertex_fit(x, y, prior, middle, neighbours))
        m = len(points) - 1
        stack.append((m, b))  # locfit grows the left half first; the order does not matter
        stack.append((a, m))
    return np.asarray(points), np.asarray([f[1] for f in fits])


def _vertex_fit(
    x: np.ndarray, y: np.ndarray, prior: np.ndarray, at: float, neighbours: int
) -> tuple[float, np.ndarray]:
    """The bandwidth and the local constant fit of every column at ``at``."""
    distance = np.abs(x - at)
    if neighbours < x.shape[0]:
        bandwidth = float(np.partition(distance, neighbours - 1)[neighbours - 1])
    else:
        bandwidth = float(distance.max()) * neighbours / x.shape[0]
    return bandwidth, _weighted_mean(distance, bandwidth, y, prior)


@njit(nogil=True, cache=True)
def _weighted_mean(
    distance: np.ndarray, bandwidth: float, y: np.ndarray, prior: np.ndarray
) -> np.ndarray:
    """Σ w·y / Σ w with tricube weights w = (1 − (d/h)³)³ (locfit's, d ≤ h), per column."""
    n, m = y.shape
    total = np.zeros(m)
    weight_sum = 0.0
    for i in range(n):
        if bandwidth == 0.0:
            w = 1.0 if distance[i] == 0.0 else 0.0
        else:
            u = distance[i] / bandwidth
            if u > 1.0:
                continue
            w = 1.0 - u * u * u
            w = w * w * w
        if w <= 0.0:
            continue
        w *= prior[i]
        weight_sum += w
        for j in range(m):
            total[j] += w * y[i, j]
    return total / weight_sum
