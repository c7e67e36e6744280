"""locfit's local fits of one covariate: the local constant fit at the data (edgeR's
``locfitByCol``: ``fitted(locfit(y ~ x, weights, alpha = span, deg = 0))``) and the local
quadratic fit, locfit's default, anywhere (DESeq2's ``predict(locfit(y ~ x, weights), new)``).

locfit (Loader's C code, its defaults) does not fit at every point: it fits at the vertices
of an adaptive tree over ``[min x, max x]`` and interpolates. A cell is split at its middle
while its length exceeds 0.8 times the smaller bandwidth at its two ends; at each vertex the
fit is the tricube-weighted least-squares polynomial of the ``floor(n · span)`` nearest
values (the bandwidth the distance to the furthest of them). With degree 0 the vertices
carry no slopes, so the fitted value at a point is linear between the vertices of its cell;
from degree 1 each vertex carries its fit's slope too, and the value is the cubic Hermite
interpolant of the cell's two ends, continued as a line with the end's slope outside the
tree. A Gaussian fit of full degree holds its global polynomial apart (locfit's parametric
component, the prior-weighted least-squares fit to every point): the vertices carry the local
fits less it and it is added back, which changes nothing within the tree (the Hermite
interpolant is exact on a quadratic) but makes the fit beyond it the global curve plus a line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import CohortexError
from .._jit import njit

__all__ = ["LocalQuadratic", "locfit_constant", "locfit_quadratic"]

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
    vertices, made = _tree(
        float(x.min()),
        float(x.max()),
        lambda at: _vertex_fit(x, columns, prior, at, neighbours),
    )
    order = np.argsort(vertices, kind="stable")
    vertices, fits = vertices[order], np.asarray([f[0] for f in made])[order]
    cell = np.clip(np.searchsorted(vertices, x, side="right") - 1, 0, vertices.size - 2)
    left, right = vertices[cell], vertices[cell + 1]
    width = (right - left)[:, None]
    offset = (x - left)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        fitted = ((width - offset) * fits[cell] + offset * fits[cell + 1]) / width
    fitted = np.where(width == 0, fits[cell], fitted)
    return fitted.reshape(values.shape)


def _tree(
    low: float, high: float, vertex_fit: Callable[[float], tuple[Any, ...]]
) -> tuple[np.ndarray, list[Any]]:
    """locfit's adaptive tree over [low, high]: its vertices (v,, in the order made) and
    ``vertex_fit(vertex)``'s fit at each; ``vertex_fit`` gives the bandwidth first."""
    points = [low, high]
    fits = [vertex_fit(low), vertex_fit(high)]
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
        fits.append(vertex_fit(middle))
        m = len(points) - 1
        stack.append((m, b))  # locfit grows the left half first; the order does not matter
        stack.append((a, m))
    return np.asarray(points), [f[1:] for f in fits]


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


@dataclass(frozen=True)
class LocalQuadratic:
    """locfit's degree-2 fit: the tree's vertices (sorted) and the fit's value and slope at
    each."""

    vertices: np.ndarray  # (v,)
    values: np.ndarray  # (v,)
    slopes: np.ndarray  # (v,)
    center: float  # the prior-weighted mean of x
    parametric: np.ndarray  # (3,) the global quadratic in x − center (basis 1, u, u²/2)

    def _global(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = x - self.center
        c = self.parametric
        return c[0] + c[1] * u + c[2] * (u * u / 2.0), c[1] + c[2] * u

    def at(self, x: np.ndarray) -> np.ndarray:
        """The fit at ``x`` (any shape): locfit's cubic Hermite interpolation between the
        vertices of each point's cell, a line with the end's slope beyond the tree, of the
        local fits less the global quadratic, which is then added back."""
        points = np.asarray(x, dtype=np.float64)
        flat = points.ravel()
        global_values, global_slopes = self._global(self.vertices)
        values = self.values - global_values
        slopes = self.slopes - global_slopes
        v = self.vertices
        cell = np.clip(np.searchsorted(v, flat, side="right") - 1, 0, v.size - 2)
        left, width = v[cell], v[cell + 1] - v[cell]
        h = (flat - left) / width
        inside = (h >= 0.0) & (h <= 1.0)
        # locfit's hermite2, its operations in its order
        phi1 = np.where(inside, h * h * (3.0 - 2.0 * h), np.where(h > 1.0, 1.0, 0.0))
        phi0 = np.where(inside, 1.0 - phi1, np.where(h < 0.0, 1.0, 0.0))
        phi2 = np.where(inside, h * (1.0 - h) * (1.0 - h), np.where(h < 0.0, h, 0.0)) * width
        phi3 = np.where(inside, h * h * (h - 1.0), np.where(h > 1.0, h - 1.0, 0.0)) * width
        fitted = (
            phi0 * values[cell]
            + phi1 * values[cell + 1]
            + phi2 * slopes[cell]
            + phi3 * slopes[cell + 1]
        )
        return (fitted + self._global(flat)[0]).reshape(points.shape)


def locfit_quadratic(
    x: np.ndarray, y: np.ndarray, span: float = 0.7, weights: np.ndarray | None = None
) -> LocalQuadratic:
    """locfit's default local regression of ``y`` on ``x`` (``locfit(y ~ x, weights,
    alpha = span)``: degree 2, tricube weights, the adaptive tree).

    Parameters
    ----------
    x, y : ndarray of shape (n,)
    span : float, default 0.7
        locfit's ``alpha``: the share of the points in each neighbourhood.
    weights : ndarray of shape (n,), optional
        Prior weights.

    Returns
    -------
    LocalQuadratic
        Its ``at(new_x)`` is ``predict(fit, new_x)``.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    n = x.shape[0]
    prior = np.ones(n) if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
    neighbours = int(n * span + 1e-12)
    if n < 3 or neighbours < 3 or np.ptp(x) == 0.0:
        raise CohortexError(
            f"A local quadratic fit needs at least 3 distinct points in each neighbourhood; got "
            f"{n} points and a span of {span:g}."
        )
    vertices, fits = _tree(
        float(x.min()),
        float(x.max()),
        lambda at: _quadratic_vertex(x, y, prior, at, neighbours),
    )
    order = np.argsort(vertices, kind="stable")
    table = np.asarray(fits)[order]
    center = float(np.cumsum(x * prior)[-1] / np.cumsum(prior)[-1])  # summed in order
    parametric = _gaussian_fit(*_normal_equations(x, y, prior, center, np.inf))
    return LocalQuadratic(vertices[order], table[:, 0], table[:, 1], center, parametric)


def _quadratic_vertex(
    x: np.ndarray, y: np.ndarray, prior: np.ndarray, at: float, neighbours: int
) -> tuple[float, float, float]:
    """The bandwidth, and the value and slope at ``at`` of the tricube-weighted quadratic in
    ``x − at`` (locfit's basis 1, u, u²/2)."""
    distance = np.abs(x - at)
    if neighbours < x.shape[0]:
        bandwidth = float(np.partition(distance, neighbours - 1)[neighbours - 1])
    else:
        bandwidth = float(distance.max()) * neighbours / x.shape[0]
    coefficients = _gaussian_fit(*_normal_equations(x, y, prior, at, bandwidth))
    return bandwidth, float(coefficients[0]), float(coefficients[1])


@njit(nogil=True, cache=True)
def _normal_equations(
    x: np.ndarray, y: np.ndarray, prior: np.ndarray, at: float, bandwidth: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """locfit's Newton start and its first step's equations for the Gaussian fit at ``at``
    (every point at weight 1 with an infinite bandwidth: the global fit): the start (the
    weighted mean), the gradient and X'WX, summed point by point in the data's order, as
    locfit does for unsorted x (for sorted x it visits the points from the nearest outwards,
    which changes only the sums' rounding)."""
    n = x.shape[0]
    weights = np.zeros(n)
    s0 = 0.0
    s1 = 0.0
    for i in range(n):
        if bandwidth == 0.0:  # locfit's: the points at the vertex itself
            if x[i] != at:
                continue
            weights[i] = 1.0
        else:
            u = abs(x[i] - at) / bandwidth
            if u >= 1.0:
                continue
            t = 1.0 - u * u * u
            weights[i] = t * t * t
        s1 += weights[i] * (prior[i] * y[i])
        s0 += weights[i] * prior[i]
    start = np.zeros(3)
    start[0] = s1 / s0
    gradient = np.zeros(3)
    jacobian = np.zeros((3, 3))
    basis = np.zeros(3)
    for i in range(n):
        w = weights[i]
        if w <= 0.0:
            continue
        d = x[i] - at
        basis[0] = 1.0
        basis[1] = d
        basis[2] = d * d / 2.0
        residual = prior[i] * (y[i] - start[0])
        for j in range(3):
            gradient[j] += basis[j] * w * residual
        c = w * prior[i]
        for j in range(3):
            for k in range(3):
                jacobian[j, k] += c * basis[j] * basis[k]
    return start, gradient, jacobian


def _gaussian_fit(start: np.ndarray, gradient: np.ndarray, jacobian: np.ndarray) -> np.ndarray:
    """locfit's Gaussian fit: one Newton step from ``start``, solved through the Jacobi
    eigendecomposition of X'WX scaled to unit diagonal (locfit's ``JAC_EIGD``: rotations stop
    once the off-diagonal is within ~3e-8 of the diagonal, and eigenvalues below 1e-8 of the
    largest are not divided by), so the fit equals locfit's to its rounding rather than to
    an exact solve's."""
    p = start.size
    scale = np.array([0.0 if z <= 0.0 else 1.0 / np.sqrt(z) for z in np.diag(jacobian)])
    scaled = jacobian * (scale[:, None] * scale[None, :])  # locfit's Z[i, j] * (dg[i] dg[j])
    eigenvalues, vectors = _jacobi_eigen(scaled)
    v = gradient * scale
    projected = np.zeros(p)
    for i in range(p):
        for j in range(p):
            projected[i] += vectors[j, i] * v[j]
    tolerance = 1e-8 * eigenvalues.max()
    for i in range(p):
        if eigenvalues[i] > tolerance:
            projected[i] /= eigenvalues[i]
    step = np.zeros(p)
    for i in range(p):
        for j in range(p):
            step[i] += vectors[i, j] * projected[j]
    return start + step * scale


def _jacobi_eigen(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """locfit's ``eig_dec``: cyclic Jacobi rotations (at most 20 sweeps) of a symmetric
    matrix, skipping pairs whose off-diagonal squared is within 1e-15 of the diagonals'
    product; the eigenvalues (the diagonal left) and the eigenvectors (columns)."""
    x = matrix.copy()
    p = x.shape[0]
    vectors = np.eye(p)
    for _ in range(20):
        rotated = False
        for i in range(p):
            for j in range(i + 1, p):
                if x[i, j] ** 2 <= 1e-15 * abs(x[i, i] * x[j, j]):
                    continue
                c = (x[j, j] - x[i, i]) / 2.0
                s = -x[i, j]
                r = np.sqrt(c * c + s * s)
                c /= r
                s = np.sqrt((1.0 - c) / 2.0) * (1.0 if s > 0 else -1.0)
                c = np.sqrt((1.0 + c) / 2.0)
                row_i, row_j = x[i, :].copy(), x[j, :].copy()
                x[i, :], x[j, :] = row_i * c + row_j * s, row_j * c - row_i * s
                col_i, col_j = x[:, i].copy(), x[:, j].copy()
                x[:, i], x[:, j] = col_i * c + col_j * s, col_j * c - col_i * s
                x[i, j] = x[j, i] = 0.0
                vec_i, vec_j = vectors[:, i].copy(), vectors[:, j].copy()
                vectors[:, i], vectors[:, j] = vec_i * c + vec_j * s, vec_j * c - vec_i * s
                rotated = True
        if not rotated:
            break
    return np.diag(x).copy(), vectors
