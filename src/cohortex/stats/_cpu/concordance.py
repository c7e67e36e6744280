"""Harrell's concordance of a risk score with survival (R's ``survival::concordance``,
``timewt = "n"``): every comparable pair counted, and each sample's share of them (the
influence that gives R's infinitesimal-jackknife variance), in O(n log n).

A pair is comparable when the earlier time is an event; a censored time tied with an event
counts as the later one. Its category: concordant (the earlier event has the higher risk),
discordant, tied on risk; two events at one time are tied on time (and on both when their
risks tie too). Two sweeps over the times with a Fenwick tree of the risks' ranks: from the
latest time down, each event against the later samples; from the earliest up, each sample
against the earlier events.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["pair_counts"]


def pair_counts(
    time: np.ndarray, event: np.ndarray, risk: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of one stratum by category and each sample's count of them.

    Parameters
    ----------
    time, event, risk : ndarray of shape (n,)
        Follow-up times, 0/1 event indicators and risk scores (finite).

    Returns
    -------
    counts : ndarray of shape (5,)
        Concordant, discordant, tied on risk, tied on time, tied on both (R's ``count``).
    influence : ndarray of shape (n, 5)
        Each sample's pairs by category (R's ``influence = 2``).
    """
    order = np.lexsort((risk, time))  # by time, then risk
    _, ranks = np.unique(risk, return_inverse=True)
    counts = np.zeros(5)
    influence = np.zeros((time.size, 5))
    _sweep(
        np.ascontiguousarray(time[order], dtype=np.float64),
        np.ascontiguousarray(event[order], dtype=np.float64),
        np.ascontiguousarray(ranks.ravel()[order], dtype=np.int64),
        int(ranks.max()) + 1 if ranks.size else 0,
        counts,
        influence,
        order.astype(np.int64),
    )
    return counts, influence


@numba.njit(nogil=True, cache=True)
def _add(tree: np.ndarray, rank: int) -> None:
    i = rank + 1
    while i < tree.size:
        tree[i] += 1.0
        i += i & -i


@numba.njit(nogil=True, cache=True)
def _below(tree: np.ndarray, rank: int) -> float:
    """How many ranks below ``rank`` the tree holds."""
    total = 0.0
    i = rank
    while i > 0:
        total += tree[i]
        i -= i & -i
    return total


@numba.njit(nogil=True, cache=True)
def _sweep(time, event, rank, n_ranks, counts, influence, order):  # type: ignore[no-untyped-def]
    n = time.size
    tree = np.zeros(n_ranks + 1)
    held = 0.0
    # from the latest time down: each event against the samples after it (later times, and
    # censored samples at its own time)
    end = n
    while end > 0:
        start = end - 1
        while start > 0 and time[start - 1] == time[end - 1]:
            start -= 1
        for j in range(start, end):
            if event[j] == 0.0:
                _add(tree, rank[j])
                held += 1.0
        for j in range(start, end):
            if event[j] == 1.0:
                lower = _below(tree, rank[j])
                same = _below(tree, rank[j] + 1) - lower
                higher = held - lower - same
                counts[0] += lower  # the event's risk above the later sample's
                counts[1] += higher
                counts[2] += same
                influence[order[j], 0] += lower
                influence[order[j], 1] += higher
                influence[order[j], 2] += same
        for j in range(start, end):
            if event[j] == 1.0:
                _add(tree, rank[j])
                held += 1.0
        # events tied in time (the group is sorted by risk: equal risks are neighbours)
        events = 0.0
        for j in range(start, end):
            events += event[j]
        j = start
        while j < end:
            k = j
            tied = 0.0
            while k < end and rank[k] == rank[j]:
                tied += event[k]
                k += 1
            for m in range(j, k):
                if event[m] == 1.0:
                    influence[order[m], 3] += events - tied
                    influence[order[m], 4] += tied - 1.0
            counts[4] += tied * (tied - 1.0) / 2.0
            counts[3] += tied * (events - tied) / 2.0
            j = k
        end = start
    # from the earliest time up: each sample against the events before it (earlier times, and
    # for a censored sample the events at its own time)
    tree[:] = 0.0
    held = 0.0
    begin = 0
    while begin < n:
        stop = begin + 1
        while stop < n and time[stop] == time[begin]:
            stop += 1
        for j in range(begin, stop):
            if event[j] == 1.0:
                _tally(tree, held, rank[j], influence, order[j])
        for j in range(begin, stop):
            if event[j] == 1.0:
                _add(tree, rank[j])
                held += 1.0
        for j in range(begin, stop):
            if event[j] == 0.0:
                _tally(tree, held, rank[j], influence, order[j])
        begin = stop


@numba.njit(nogil=True, cache=True)
def _tally(tree, held, rank, influence, sample):  # type: ignore[no-untyped-def]
    """A later sample's pairs with the earlier events the tree holds."""
    lower = _below(tree, rank)
    same = _below(tree, rank + 1) - lower
    higher = held - lower - same
    influence[sample, 0] += higher  # the earlier event's risk above this sample's
    influence[sample, 1] += lower
    influence[sample, 2] += same
