"""A Cholesky factor kept up to date as variables enter and leave a symmetric positive
definite system (an active set's equations), each change and each solve in O(k²) where
factoring anew costs O(k³).

The factor is upper triangular, ``A = RᵀR``, held in the leading k × k block of a square
C-ordered array, so that every loop below walks rows of ``R``. The kernels are numba loops,
not LAPACK calls: scipy's LAPACK brings a second BLAS thread pool that fights numpy's.
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit

__all__ = ["CholeskyFactor"]

# a pivot below this share of its variable's diagonal: (nearly) a combination of the others
_PIVOT = 1e-13


@njit(cache=True)
def _forward(upper, k, right, out):  # type: ignore[no-untyped-def]
    """``out = R⁻ᵀ right`` for ``R = upper[:k, :k]``."""
    for i in range(k):
        out[i] = right[i]
    for j in range(k):
        out[j] /= upper[j, j]
        value = out[j]
        for i in range(j + 1, k):
            out[i] -= upper[j, i] * value


@njit(cache=True)
def _backward(upper, k, right, out):  # type: ignore[no-untyped-def]
    """``out = R⁻¹ right`` for ``R = upper[:k, :k]``."""
    for i in range(k - 1, -1, -1):
        total = right[i]
        for j in range(i + 1, k):
            total -= upper[i, j] * out[j]
        out[i] = total / upper[i, i]


@njit(cache=True)
def _append(upper, k, column, diagonal, scratch):  # type: ignore[no-untyped-def]
    """Extend the factor of A (k × k) by one variable with ``column = A[:k, new]`` and
    ``diagonal = A[new, new]``; False (the factor unchanged) where the new pivot is not
    clearly positive: the variable is (nearly) a combination of the others."""
    _forward(upper, k, column, scratch)
    pivot = diagonal
    for i in range(k):
        pivot -= scratch[i] * scratch[i]
    if not pivot > _PIVOT * abs(diagonal):
        return False
    for i in range(k):
        upper[i, k] = scratch[i]
    upper[k, k] = np.sqrt(pivot)
    return True


@njit(cache=True)
def _quadratic(upper, k, vector):  # type: ignore[no-untyped-def]
    """``|R v|²`` for ``R = upper[:k, :k]``."""
    total = 0.0
    for i in range(k):
        row = 0.0
        for j in range(i, k):
            row += upper[i, j] * vector[j]
        total += row * row
    return total


@njit(cache=True)
def _remove(upper, k, position, scratch):  # type: ignore[no-untyped-def]
    """Drop variable ``position`` from the factor of A (k × k): the rows above keep their
    entries less that column; the block below, ``R₃₃``, becomes the factor of
    ``R₃₃ᵀR₃₃ + r r ᵀ`` with ``r`` the dropped row's tail (a rank-one update by rotations)."""
    tail = k - position - 1
    for i in range(tail):
        scratch[i] = upper[position, position + 1 + i]
    for row in range(position):
        for col in range(position, k - 1):
            upper[row, col] = upper[row, col + 1]
    for row in range(position, k - 1):
        for col in range(position, k - 1):
            upper[row, col] = upper[row + 1, col + 1]
    for j in range(tail):
        at = position + j
        a = upper[at, at]
        b = scratch[j]
        radius = np.hypot(a, b)
        cos, sin = radius / a, b / a
        upper[at, at] = radius
        for i in range(j + 1, tail):
            col = position + i
            upper[at, col] = (upper[at, col] + sin * scratch[i]) / cos
            scratch[i] = cos * scratch[i] - sin * upper[at, col]


class CholeskyFactor:
    """The Cholesky factor of ``A[members][:, members]`` for a symmetric positive definite
    ``A`` of shape (m, m), updated as members are appended and removed.

    Parameters
    ----------
    capacity : int
        The most members it will hold (m).
    """

    def __init__(self, capacity: int) -> None:
        self.upper = np.zeros((capacity, capacity))
        self.members: list[int] = []
        self._scratch = np.empty(capacity)

    @classmethod
    def of(cls, block: np.ndarray, members: np.ndarray, capacity: int) -> CholeskyFactor | None:
        """The factor of ``block = A[members][:, members]`` by LAPACK (O(k³) once); None
        where ``block`` is singular or nearly so (a pivot as :meth:`append` refuses)."""
        try:
            lower = np.linalg.cholesky(block)
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.diag(lower) ** 2 > _PIVOT * np.abs(np.diag(block))):
            return None
        factor = cls(capacity)
        k = len(members)
        factor.upper[:k, :k] = lower.T
        factor.members = [int(j) for j in members]
        return factor

    @property
    def size(self) -> int:
        return len(self.members)

    def append(self, member: int, column: np.ndarray, diagonal: float) -> bool:
        """Add ``member`` with ``column = A[members, member]`` (in the members' order) and
        ``diagonal = A[member, member]``; False, and nothing added, where A restricted to
        the members with it is singular or nearly so."""
        added = bool(
            _append(self.upper, self.size, np.ascontiguousarray(column), diagonal, self._scratch)
        )
        if added:
            self.members.append(member)
        return added

    def remove(self, member: int) -> None:
        """Drop ``member``."""
        position = self.members.index(member)
        _remove(self.upper, self.size, position, self._scratch)
        del self.members[position]

    def solve(self, right: np.ndarray) -> np.ndarray:
        """``x`` with ``A[members][:, members] x = right`` (right in the members' order)."""
        k = self.size
        middle, out = np.empty(k), np.empty(k)
        _forward(self.upper, k, np.ascontiguousarray(right, dtype=np.float64), middle)
        _backward(self.upper, k, middle, out)
        return out

    def quadratic(self, vector: np.ndarray) -> float:
        """``vᵀ A[members][:, members] v`` as ``|R v|²``."""
        return float(
            _quadratic(self.upper, self.size, np.ascontiguousarray(vector, dtype=np.float64))
        )
