"""Harrell's concordance of a risk score with survival (R's ``survival::concordance``):
every comparable pair counted, each weighted by the time weight of its earlier event (1 for
Harrell's C, R's ``timewt``) and by the two samples' case weights (1 without), and each
sample's share of them (the influence that gives R's infinitesimal-jackknife variance), in
O(n log n).

A pair is comparable when the earlier time is an event; a censored time tied with an event
counts as the later one. Its category: concordant (the earlier event has the higher risk),
discordant, tied on risk; two events at one time are tied on time (and on both when their
risks tie too). Two sweeps over the times with a Fenwick tree of the risks' ranks: from the
latest time down, each event against the later samples; from the earliest up, each sample
against the earlier events.
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit

__all__ = ["gene_concordance", "pair_counts"]


def pair_counts(
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    weight: np.ndarray | None = None,
    case_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of one stratum by category and each sample's count of them.

    Parameters
    ----------
    time, event, risk : ndarray of shape (n,)
        Follow-up times, 0/1 event indicators and risk scores (finite).
    weight : ndarray of shape (n,), optional
        Each event's time weight, the same for events at one time (read for events only);
        default 1: every pair counts once.
    case_weight : ndarray of shape (n,), optional
        Each sample's case weight (R's ``weights``): a pair counts the product of its two
        samples'; default 1.

    Returns
    -------
    counts : ndarray of shape (5,)
        Concordant, discordant, tied on risk, tied on time, tied on both (R's ``count``).
    influence : ndarray of shape (n, 5)
        Each sample's pairs by category, each pair weighted by the other sample's case
        weight (R's ``influence = 2``).
    """
    counts = np.zeros(5)
    influence = np.zeros((time.size, 5))
    _stratum(
        np.ascontiguousarray(time, dtype=np.float64),
        np.ascontiguousarray(event, dtype=np.float64),
        np.ascontiguousarray(risk, dtype=np.float64),
        np.ones(time.size) if weight is None else np.ascontiguousarray(weight, dtype=np.float64),
        _ones_or(case_weight, time.size),
        np.argsort(time, kind="stable"),
        counts,
        influence,
    )
    return counts, influence


def gene_concordance(
    time: np.ndarray,
    event: np.ndarray,
    strata: np.ndarray,
    risk: np.ndarray,
    valid: np.ndarray,
    case_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Harrell's C and its standard error of each column of ``risk`` (each gene's model),
    within strata, over the samples ``valid`` in that column.

    Parameters
    ----------
    time, event : ndarray of shape (n_samples,)
    strata : ndarray of int of shape (n_samples,)
    risk : ndarray of shape (n_samples, n_genes)
    valid : ndarray of bool of shape (n_samples, n_genes)
    case_weight : ndarray of shape (n_samples,), optional
        Case weights (default 1), as :func:`pair_counts`'.

    Returns
    -------
    concordance, std_err : ndarray of shape (n_genes,)
        NaN for a gene without a comparable pair.
    """
    concordance = np.empty(risk.shape[1])
    std_err = np.empty(risk.shape[1])
    _genes(
        np.ascontiguousarray(time, dtype=np.float64),
        np.ascontiguousarray(event, dtype=np.float64),
        np.ascontiguousarray(strata, dtype=np.int64),
        np.argsort(time, kind="stable"),  # one sort by time for all genes
        np.asfortranarray(risk, dtype=np.float64),
        np.asfortranarray(valid),
        _ones_or(case_weight, time.size),
        concordance,
        std_err,
    )
    return concordance, std_err


def _ones_or(case_weight: np.ndarray | None, n: int) -> np.ndarray:
    return np.ones(n) if case_weight is None else np.ascontiguousarray(case_weight, np.float64)


@njit(nogil=True, cache=True)
def _genes(  # type: ignore[no-untyped-def]
    time, event, strata, by_time, risk, valid, case, concordance, std_err
):
    n, genes = risk.shape
    levels = np.unique(strata)
    influence = np.zeros((n, 5))
    counts = np.zeros(5)
    ones = np.ones(n)
    sorted_strata = strata[by_time]
    for g in range(genes):
        influence[:] = 0.0
        counts[:] = 0.0
        present = valid[by_time, g]
        for level in levels:
            rows = by_time[present & (sorted_strata == level)]
            if rows.size > 1:
                _stratum(time, event, risk[:, g], ones, case, rows, counts, influence)
        pairs = counts[0] + counts[1] + counts[2]
        if pairs == 0.0:
            concordance[g] = np.nan
            std_err[g] = np.nan
            continue
        somers_d = (counts[0] - counts[1]) / pairs
        total = 0.0
        for i in range(n):
            dfbeta = case[i] * (
                (influence[i, 0] - influence[i, 1]) / pairs
                - somers_d / pairs * (influence[i, 0] + influence[i, 1] + influence[i, 2])
            )
            total += dfbeta * dfbeta
        concordance[g] = (somers_d + 1.0) / 2.0
        std_err[g] = np.sqrt(total / 4.0)


@njit(nogil=True, cache=True)
def _stratum(time, event, risk, weight, case, rows, counts, influence):  # type: ignore[no-untyped-def]
    """Adds the pairs among ``rows`` (sorted by time) to ``counts`` (5,) and each row's to
    ``influence``."""
    values = risk[rows]
    by_risk = np.argsort(values)
    rank = np.empty(rows.size, dtype=np.int64)  # dense ranks of the risks
    current = -1
    for k in range(rows.size):
        if k == 0 or values[by_risk[k]] != values[by_risk[k - 1]]:
            current += 1
        rank[by_risk[k]] = current
    _sweep(
        time[rows],
        event[rows],
        weight[rows],
        case[rows],
        rank,
        current + 1,
        counts,
        influence,
        rows,
    )


@njit(nogil=True, cache=True)
def _add(tree: np.ndarray, rank: int, weight: float) -> None:
    i = rank + 1
    while i < tree.size:
        tree[i] += weight
        i += i & -i


@njit(nogil=True, cache=True)
def _below(tree: np.ndarray, rank: int) -> float:
    """The weight of the ranks below ``rank`` that the tree holds."""
    total = 0.0
    i = rank
    while i > 0:
        total += tree[i]
        i -= i & -i
    return total


@njit(nogil=True, cache=True)
def _sweep(time, event, weight, case, rank, n_ranks, counts, influence, order):  # type: ignore[no-untyped-def]
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
                _add(tree, rank[j], case[j])
                held += case[j]
        for j in range(start, end):
            if event[j] == 1.0:
                lower = _below(tree, rank[j])
                same = _below(tree, rank[j] + 1) - lower
                higher = held - lower - same
                w = weight[j]
                both = w * case[j]
                counts[0] += both * lower  # the event's risk above the later sample's
                counts[1] += both * higher
                counts[2] += both * same
                influence[order[j], 0] += w * lower
                influence[order[j], 1] += w * higher
                influence[order[j], 2] += w * same
        events = 0
        tied_weight = 0.0
        for j in range(start, end):
            if event[j] == 1.0:
                _add(tree, rank[j], case[j])
                held += case[j]
                events += 1
                tied_weight += case[j]
        # events tied in time: on risk too (tied on both) or not, each pair by the other
        # event's case weight
        if events > 1:
            ranks = np.empty(events, dtype=np.int64)
            cases = np.empty(events)
            m = 0
            for j in range(start, end):
                if event[j] == 1.0:
                    ranks[m] = rank[j]
                    cases[m] = case[j]
                    m += 1
            by_rank = np.argsort(ranks)
            ranks = ranks[by_rank]
            running = np.concatenate((np.zeros(1), np.cumsum(cases[by_rank])))
            for j in range(start, end):
                if event[j] == 1.0:
                    low = np.searchsorted(ranks, rank[j])
                    high = np.searchsorted(ranks, rank[j], side="right")
                    same = running[high] - running[low] - case[j]
                    other = tied_weight - case[j] - same
                    w = weight[j]
                    influence[order[j], 3] += w * other
                    influence[order[j], 4] += w * same
                    counts[3] += w * case[j] * other / 2.0
                    counts[4] += w * case[j] * same / 2.0
        end = start
    # from the earliest time up: each sample against the events before it (earlier times, and
    # for a censored sample the events at its own time), the tree holding the events' weights
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
                _add(tree, rank[j], weight[j] * case[j])
                held += weight[j] * case[j]
        for j in range(begin, stop):
            if event[j] == 0.0:
                _tally(tree, held, rank[j], influence, order[j])
        begin = stop


@njit(nogil=True, cache=True)
def _tally(tree, held, rank, influence, sample):  # type: ignore[no-untyped-def]
    """A later sample's pairs with the earlier events the tree holds."""
    lower = _below(tree, rank)
    same = _below(tree, rank + 1) - lower
    higher = held - lower - same
    influence[sample, 0] += higher  # the earlier event's risk above this sample's
    influence[sample, 1] += lower
    influence[sample, 2] += same
