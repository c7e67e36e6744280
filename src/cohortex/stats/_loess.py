"""R's ``loess(y ~ x, span = , degree = )`` in one dimension with its defaults (family
"gaussian", surface "interpolate", cell 0.2), and ``predict`` at new points.

R's loess (Cleveland, Grosse & Shyu's dloess) fits its local regressions only at the vertices
of a k-d tree and interpolates between them. The tree starts from the data's range widened by
0.5 % on each side and splits a cell at its median point (ties go with the upper half) until a
cell holds at most ``floor(n * span * cell)`` points. At each vertex the local fit is the
least-squares polynomial of ``degree`` in the ``floor(n * span)`` nearest points, tricube
weighted by distance over the farthest one's; its value and slope are kept. Between two
vertices the fit is the cubic Hermite interpolant of those values and slopes.

Each vertex's least squares are solved here by an SVD of the equilibrated design, as dloess
solves them (QR, then the SVD of R): the two agree to rounding.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .._errors import CohortexError, CohortexWarning

__all__ = ["Loess", "loess"]

_CELL = 0.2  # loess.control(cell = 0.2)


@dataclass(frozen=True)
class Loess:
    """A one-dimensional loess fit: the tree's vertices and each vertex's local fit.

    Attributes
    ----------
    vertices : ndarray, shape (v,)
        Ascending; the first and last bound the fit.
    values, slopes : ndarray, shape (v,)
        The local fit's value and first derivative at each vertex.
    """

    vertices: np.ndarray
    values: np.ndarray
    slopes: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``predict(fit, x)``: shape (m,); NaN outside the vertices' range, as R's NA."""
        x = np.asarray(x, dtype=np.float64)
        cell = np.clip(np.searchsorted(self.vertices, x, side="left"), 1, self.vertices.size - 1)
        low, high = self.vertices[cell - 1], self.vertices[cell]
        width = high - low
        h = (x - low) / width
        # dloess's Hermite basis, in its order of operations
        phi0 = (1 - h) * (1 - h) * (1 + 2 * h)
        phi1 = h * h * (3 - 2 * h)
        psi0 = h * (1 - h) * (1 - h)
        psi1 = h * h * (h - 1)
        fitted = (
            phi0 * self.values[cell - 1]
            + phi1 * self.values[cell]
            + (psi0 * self.slopes[cell - 1] + psi1 * self.slopes[cell]) * width
        )
        outside = (x < self.vertices[0]) | (x > self.vertices[-1])
        return np.where(outside, np.nan, fitted)


def loess(x: np.ndarray, y: np.ndarray, span: float = 0.75, degree: int = 2) -> Loess:
    """``loess(y ~ x, span = span, degree = degree)``.

    Parameters
    ----------
    x, y : ndarray, shape (n,)
        Finite.
    span : float
        The share of the points in each local fit.
    degree : {1, 2}
        The local polynomials' degree.

    Returns
    -------
    Loess
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.size
    if y.shape != x.shape or x.ndim != 1 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise CohortexError("loess() takes x and y of one equal length, all finite.")
    if degree not in (1, 2):
        raise CohortexError(f"loess()'s degree is 1 or 2; got {degree!r}.")
    nearest = min(n, math.floor(n * span))
    if nearest <= degree + 1:
        raise CohortexError(
            f"loess(span={span}) puts {nearest} of the {n} points in each local fit; the "
            f"degree-{degree} fit needs more than {degree + 1}: make the span bigger."
        )
    vertices = _vertices(np.sort(x), math.floor(n * (span * _CELL)), max(200, n))
    fits = np.array([_local_fit(x, y, vertex, nearest, span, degree) for vertex in vertices])
    return Loess(vertices=vertices, values=fits[:, 0], slopes=fits[:, 1])


def _vertices(ordered: np.ndarray, per_cell: int, max_vertices: int) -> np.ndarray:
    """The k-d tree's vertices (dloess's ehg126 and ehg124 in one dimension), ascending.

    Cells are split breadth first, as dloess splits them, so that its limits on the numbers
    of cells and vertices (both ``max(200, n)``) stop the same splits."""
    low, high = float(ordered[0]), float(ordered[-1])
    margin = 0.005 * max(high - low, 1e-10 * max(abs(low), abs(high)) + 1e-30)
    vertices = [low - margin, high + margin]
    cells = [(1, ordered.size, low - margin, high + margin)]  # 1-based point ranges
    p = 0
    while p < len(cells):
        lo, up, left, right = cells[p]
        p += 1
        if up - lo + 1 <= per_cell or right - left <= 0.0:
            continue
        if max_vertices < len(cells) + 2 or max_vertices < len(vertices) + 1:
            continue
        m = (lo + up) // 2
        offset = 0
        while lo <= m + offset < up:  # the split moves to the nearest gap between values
            if ordered[m + offset - 1] == ordered[m + offset]:
                offset = -offset
                if offset >= 0:
                    offset += 1
            else:
                m += offset
                break
        split = float(ordered[m - 1])
        if split in (left, right):
            continue
        vertices.append(split)
        cells.append((lo, m, left, split))
        cells.append((m + 1, up, split, right))
    return np.sort(np.array(vertices))


def _local_fit(
    x: np.ndarray, y: np.ndarray, at: float, nearest: int, span: float, degree: int
) -> tuple[float, float]:
    """The value and slope at ``at`` of the tricube-weighted least-squares polynomial in the
    ``nearest`` closest points (dloess's ehg127)."""
    dist = (x - at) ** 2
    order = np.argpartition(dist, nearest - 1)[:nearest]
    rho = dist[order].max() * max(1.0, span)
    if rho <= 0:
        raise CohortexError("loess(): a neighbourhood of zero width; make the span bigger.")
    ratio = np.sqrt(dist[order] / rho)
    weight = np.sqrt((1 - ratio * ratio * ratio) ** 3)
    offset = x[order] - at
    design = np.column_stack([weight * offset**j for j in range(degree + 1)])
    norms = np.sqrt((design**2).sum(axis=0))
    norms[norms == 0] = 1.0
    u, sigma, vt = np.linalg.svd(design / norms, full_matrices=False)
    tolerance = sigma[0] * (100 * np.finfo(np.float64).eps)
    if sigma[-1] <= tolerance:
        warnings.warn(
            f"loess(): the local fit at {at:.5g} is singular; a pseudoinverse is used, as R's.",
            CohortexWarning,
            stacklevel=3,
        )
    keep = sigma > tolerance
    gamma = np.where(keep, (u.T @ (weight * y[order])) / np.where(keep, sigma, 1.0), 0.0)
    coefficients = (vt.T @ gamma) / norms
    return float(coefficients[0]), float(coefficients[1])
