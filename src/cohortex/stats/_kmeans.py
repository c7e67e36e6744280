"""R's ``kmeans(x, k, iter.max = 10)``: Hartigan & Wong's algorithm (AS 136, as R's kmns.f)
from centres R draws with ``sample.int``.

AS 136 alternates an optimal-transfer pass (each point moved to the cluster that lowers the
within-cluster sum of squares most) with quick-transfer passes (each point tried against its
second-closest cluster only), updating the two centres after every move. Where a point goes
depends on comparisons of running sums, so the port keeps R's order of operations.
"""

from __future__ import annotations

import numpy as np

from .._errors import CohortexError
from .._jit import njit
from ._r_random import RRandom

__all__ = ["KMeans", "hartigan_wong", "kmeans", "starting_centres"]

_BIG = float(np.float32(1e30))  # AS 136's BIG, a single-precision constant in kmns.f


class KMeans:
    """One run of R's kmeans.

    Attributes
    ----------
    cluster : ndarray, shape (m,)
        Each point's cluster, 1 to k.
    converged : bool
        Whether the transfers stopped within ``iter_max`` passes (R warns otherwise).
    """

    def __init__(self, cluster: np.ndarray, converged: bool) -> None:
        self.cluster = cluster
        self.converged = converged


def kmeans(x: np.ndarray, k: int, rng: RRandom, iter_max: int = 10) -> KMeans:
    """``kmeans(x, k, iter.max = iter_max)`` (``nstart = 1``, Hartigan-Wong).

    Parameters
    ----------
    x : ndarray, shape (m, p)
        The points.
    k : int
        The number of clusters, 2 ≤ k < m.
    rng : RRandom
        R's stream, for the starting centres (:func:`starting_centres`).
    iter_max : int, default 10

    Returns
    -------
    KMeans
    """
    return hartigan_wong(x, x[starting_centres(x, k, rng)], iter_max)


def starting_centres(x: np.ndarray, k: int, rng: RRandom) -> np.ndarray:
    """The rows of ``x`` (m × p) that R's kmeans starts from: ``sample.int(m, k)``, drawn
    again from the distinct rows (in their order) where two coincide. Shape (k,), 0-based.

    Rows are compared as R 4's ``duplicated`` and ``unique`` compare a matrix's rows: value
    by value (-0 equal to 0), not as decimals."""
    m = x.shape[0]
    if not 2 <= k < m:
        raise CohortexError(f"kmeans(): the number of clusters must be in [2, {m - 1}]; got {k}.")
    chosen = rng.sample(m, k) - 1
    if len({_row_key(x[i]) for i in chosen}) < k:  # R: any(duplicated(centers))
        first: dict[tuple[float, ...], int] = {}
        for i in range(m):
            first.setdefault(_row_key(x[i]), i)
        distinct = np.fromiter(first.values(), dtype=np.int64)
        if distinct.size < k:
            raise CohortexError("kmeans(): more cluster centres than distinct data points.")
        chosen = distinct[rng.sample(distinct.size, k) - 1]
    return chosen


def _row_key(row: np.ndarray) -> tuple[float, ...]:
    """A row as ``duplicated`` compares it: its values, -0 as 0."""
    return tuple((row + 0.0).tolist())


def hartigan_wong(x: np.ndarray, centres: np.ndarray, iter_max: int = 10) -> KMeans:
    """AS 136 from the given starting ``centres`` (k × p) on the points ``x`` (m × p); it
    releases the GIL, so that several fits can run on threads."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    cluster = np.empty(x.shape[0], dtype=np.int64)
    fault = _kmns(x, np.array(centres, dtype=np.float64), iter_max, 50 * x.shape[0], cluster)
    if fault == 1:
        raise CohortexError("kmeans(): empty cluster: try a better set of initial centres.")
    return KMeans(cluster=cluster + 1, converged=fault == 0)


@njit(nogil=True, cache=True)
def _kmns(a, c, iterations, max_quick_steps, ic1):  # type: ignore[no-untyped-def]
    """AS 136's KMNS: ``ic1`` (m,) receives each point's cluster (0-based); ``c`` (k × p)
    the starts, then the centres. Returns R's ifault: 0, 1 (an empty cluster), 2 (not
    converged) or 4 (the quick-transfer steps exceeded)."""
    m, n = a.shape
    k = c.shape[0]
    ic2 = np.empty(m, dtype=np.int64)
    nc = np.zeros(k, dtype=np.int64)
    an1 = np.empty(k)
    an2 = np.empty(k)
    ncp = np.empty(k, dtype=np.int64)
    d = np.zeros(m)
    itran = np.empty(k, dtype=np.int64)
    live = np.zeros(k, dtype=np.int64)
    dt = np.empty(2)
    for i in range(m):
        ic1[i] = 0
        ic2[i] = 1
        for il in range(2):
            dt[il] = _distance_below(a, i, c, il, np.inf)
        if dt[0] > dt[1]:
            ic1[i] = 1
            ic2[i] = 0
            dt[0], dt[1] = dt[1], dt[0]
        for ll in range(2, k):
            db = _distance_below(a, i, c, ll, dt[1])
            if db < 0.0:
                continue
            if db >= dt[0]:
                dt[1] = db
                ic2[i] = ll
            else:
                dt[1] = dt[0]
                ic2[i] = ic1[i]
                dt[0] = db
                ic1[i] = ll
    for ll in range(k):
        for j in range(n):
            c[ll, j] = 0.0
    for i in range(m):
        ll = ic1[i]
        nc[ll] += 1
        for j in range(n):
            c[ll, j] = c[ll, j] + a[i, j]
    for ll in range(k):
        if nc[ll] == 0:
            return 1
        aa = float(nc[ll])
        for j in range(n):
            c[ll, j] = c[ll, j] / aa
        an2[ll] = aa / (aa + 1.0)
        an1[ll] = _BIG
        if aa > 1.0:
            an1[ll] = aa / (aa - 1.0)
        itran[ll] = 1
        ncp[ll] = -1
    indx = np.zeros(1, dtype=np.int64)
    quick = np.array([max_quick_steps])
    fault = 2
    for _ in range(iterations):
        _optra(a, c, ic1, ic2, nc, an1, an2, ncp, d, itran, live, indx)
        if indx[0] == m:
            fault = 0
            break
        _qtran(a, c, ic1, ic2, nc, an1, an2, ncp, d, itran, indx, quick)
        if quick[0] < 0:
            fault = 4
            break
        if k == 2:
            fault = 0
            break
        for ll in range(k):
            ncp[ll] = 0
    return fault


@njit(nogil=True, cache=True)
def _distance_below(a, i, c, ll, limit):  # type: ignore[no-untyped-def]
    """The squared distance of point i to centre ll, summed over the dimensions in order, or
    -1 as soon as the running sum reaches ``limit`` (AS 136's early exits)."""
    total = 0.0
    for j in range(a.shape[1]):
        diff = a[i, j] - c[ll, j]
        total = total + diff * diff
        if total >= limit and limit < np.inf:
            return -1.0
    return total


@njit(nogil=True, cache=True)
def _transfer(a, c, i, l1, l2, nc, an1, an2, ic1, ic2):  # type: ignore[no-untyped-def]
    """Move point i from cluster l1 to l2: both centres, sizes and AN1/AN2 (AS 136)."""
    n = a.shape[1]
    al1 = float(nc[l1])
    alw = al1 - 1.0
    al2 = float(nc[l2])
    alt = al2 + 1.0
    for j in range(n):
        c[l1, j] = (c[l1, j] * al1 - a[i, j]) / alw
        c[l2, j] = (c[l2, j] * al2 + a[i, j]) / alt
    nc[l1] -= 1
    nc[l2] += 1
    an2[l1] = alw / al1
    an1[l1] = _BIG
    if alw > 1.0:
        an1[l1] = alw / (alw - 1.0)
    an1[l2] = alt / al2
    an2[l2] = alt / (alt + 1.0)
    ic1[i] = l2
    ic2[i] = l1


@njit(nogil=True, cache=True)
def _optra(a, c, ic1, ic2, nc, an1, an2, ncp, d, itran, live, indx):  # type: ignore[no-untyped-def]
    """AS 136.1, the optimal-transfer stage. Steps (``ncp``, ``live``) count points from 1,
    as in the Fortran."""
    m = a.shape[0]
    k = c.shape[0]
    for ll in range(k):
        if itran[ll] == 1:
            live[ll] = m + 1
    for i0 in range(m):
        i = i0 + 1  # the step, 1-based
        indx[0] += 1
        l1 = ic1[i0]
        if nc[l1] != 1:
            if ncp[l1] != 0:
                d[i0] = _distance_below(a, i0, c, l1, np.inf) * an1[l1]
            l2 = ic2[i0]
            second = l2
            r2 = _distance_below(a, i0, c, l2, np.inf) * an2[l2]
            for ll in range(k):
                if ll in (l1, second) or (i >= live[l1] and i >= live[ll]):
                    continue
                dc = _distance_below(a, i0, c, ll, r2 / an2[ll])
                if dc >= 0.0:
                    r2 = dc * an2[ll]
                    l2 = ll
            if r2 >= d[i0]:
                ic2[i0] = l2
            else:
                indx[0] = 0
                live[l1] = m + i
                live[l2] = m + i
                ncp[l1] = i
                ncp[l2] = i
                _transfer(a, c, i0, l1, l2, nc, an1, an2, ic1, ic2)
        if indx[0] == m:
            return
    for ll in range(k):
        itran[ll] = 0
        live[ll] = live[ll] - m


@njit(nogil=True, cache=True)
def _qtran(a, c, ic1, ic2, nc, an1, an2, ncp, d, itran, indx, quick):  # type: ignore[no-untyped-def]
    """AS 136.2, the quick-transfer stage; ``quick[0]`` becomes -1 past its step limit."""
    m = a.shape[0]
    icoun = 0
    istep = 0
    while True:
        for i0 in range(m):
            icoun += 1
            istep += 1
            if istep >= quick[0]:
                quick[0] = -1
                return
            l1 = ic1[i0]
            l2 = ic2[i0]
            if nc[l1] != 1:
                if istep <= ncp[l1]:
                    d[i0] = _distance_below(a, i0, c, l1, np.inf) * an1[l1]
                # a transfer only where either cluster changed in the last m steps
                moved = istep < ncp[l1] or istep < ncp[l2]
                if moved and _distance_below(a, i0, c, l2, d[i0] / an2[l2]) >= 0.0:
                    icoun = 0
                    indx[0] = 0
                    itran[l1] = 1
                    itran[l2] = 1
                    ncp[l1] = istep + m
                    ncp[l2] = istep + m
                    _transfer(a, c, i0, l1, l2, nc, an1, an2, ic1, ic2)
            if icoun == m:
                return
