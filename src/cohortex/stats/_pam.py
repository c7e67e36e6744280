"""Partitioning around medoids, as R's ``cluster::pam(d, k, diss = TRUE)`` (its original BUILD
and SWAP, ``pamonce = FALSE``; cluster 2.1.4's ``bswap`` and ``cstat``), on the host.

The same comparisons in the same order as the C code: BUILD takes the last object of largest
gain, SWAP the first (medoid, object) pair of lowest cost change and stops when no change is
below ``-16 ε |total|``; objects join their nearest medoid, the first at ties.
"""

from __future__ import annotations

import numpy as np

from .._jit import njit

__all__ = ["pam_clusters"]


def pam_clusters(dissimilarity: np.ndarray, k: int) -> np.ndarray:
    """Each object's cluster by PAM.

    Parameters
    ----------
    dissimilarity : ndarray of shape (n, n)
        Symmetric; its diagonal is read as 0.
    k : int
        1 ≤ k < n.

    Returns
    -------
    ndarray of int64, shape (n,)
        0 … k - 1, numbered by first appearance (as R's ``clustering``).
    """
    d = np.ascontiguousarray(dissimilarity, dtype=np.float64).copy()
    np.fill_diagonal(d, 0.0)
    return _pam(d, int(k))


@njit(cache=True)
def _pam(d: np.ndarray, k: int) -> np.ndarray:  # pragma: no cover - compiled
    n = d.shape[0]
    largest = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            if largest < d[i, j]:
                largest = d[i, j]
    s = largest * 1.1 + 1.0  # above every dissimilarity
    medoid = np.zeros(n, dtype=np.bool_)
    nearest = np.full(n, s)
    second = np.full(n, s)
    # BUILD: each new medoid the object that lowers the others' distances most
    for _ in range(k):
        best_gain = 0.0
        chosen = -1
        for i in range(n):
            if not medoid[i]:
                gain = 0.0
                for j in range(n):
                    change = nearest[j] - d[i, j]
                    if change > 0.0:
                        gain += change
                if best_gain <= gain:
                    best_gain = gain
                    chosen = i
        medoid[chosen] = True
        for j in range(n):
            if nearest[j] > d[chosen, j]:
                nearest[j] = d[chosen, j]
    total = 0.0
    for j in range(n):
        total += nearest[j]
    # SWAP: the exchange of a medoid and an object that lowers the total most, while any does
    tolerance = 16.0 * np.finfo(np.float64).eps
    while k > 1:
        for j in range(n):
            nearest[j] = s
            second[j] = s
            for i in range(n):
                if medoid[i]:
                    if nearest[j] > d[i, j]:
                        second[j] = nearest[j]
                        nearest[j] = d[i, j]
                    elif second[j] > d[i, j]:
                        second[j] = d[i, j]
        best = 1.0
        best_in, best_out = -1, -1
        for h in range(n):
            if medoid[h]:
                continue
            for i in range(n):
                if not medoid[i]:
                    continue
                change = 0.0
                for j in range(n):
                    if d[i, j] == nearest[j]:
                        small = d[h, j] if second[j] > d[h, j] else second[j]
                        change += -nearest[j] + small
                    elif d[h, j] < nearest[j]:
                        change += -nearest[j] + d[h, j]
                if best > change:
                    best = change
                    best_in, best_out = h, i
        if best < -tolerance * abs(total):
            medoid[best_in] = True
            medoid[best_out] = False
            total += best
        else:
            break
    # each object to its nearest medoid (the first at ties), clusters by first appearance
    owner = np.empty(n, dtype=np.int64)
    for j in range(n):
        if medoid[j]:
            owner[j] = j
        else:
            closest = s
            which = -1
            for m in range(n):
                if medoid[m] and closest > d[m, j]:
                    closest = d[m, j]
                    which = m
            owner[j] = which
    number = np.full(n, -1, dtype=np.int64)
    labels = np.empty(n, dtype=np.int64)
    count = 0
    for j in range(n):
        if number[owner[j]] < 0:
            number[owner[j]] = count
            count += 1
        labels[j] = number[owner[j]]
    return labels
