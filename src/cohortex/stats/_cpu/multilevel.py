"""Adaptive multilevel splitting for small GSEA p-values (fgsea's ``EsRuler``), compiled.

Korotkevich et al. (2021, bioRxiv 060012): ``sample_size`` random gene sets of one size are
scored by their positive enrichment score; the lower half's scores are recorded, the upper half
is duplicated, and every set then walks by a Markov chain (swap one member for a random
non-member, kept only while the set's positive score stays above the median just recorded)
until the chain has made ``sample_size × k`` moves. Each level halves the probability mass, so
``P(ES ≥ x)`` for the level where ``x`` falls is a product of ``1/2`` steps, estimated without
bias from the order statistics of the recorded scores.

Why compiled and host-only: each chain is sequential (a move depends on the set the previous
move left), so there is no batched ``xp`` body of which this would be the twin, and the work —
a short scan per move — is branchy and small. Sets of different sizes run in parallel threads
(the function releases the GIL).
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit

__all__ = ["es_ruler"]


@njit(nogil=True, cache=True)
def _scores(ranks, members, k):  # type: ignore[no-untyped-def]
    """Positive score and whether the standard (largest deviation) score is above zero."""
    n = ranks.size
    total = 0.0
    for i in range(k):
        total += ranks[members[i]]
    equal = total <= 0.0  # a set of genes whose statistic is 0: each hit counts the same
    q2 = 1.0 / k if equal else 1.0 / total
    q1 = 1.0 / (n - k)
    cumulative = 0.0
    top = 0.0
    bottom = 0.0
    for i in range(k):
        misses = (members[i] - i) * q1
        below = cumulative * q2 - misses
        if below < bottom:
            bottom = below
        cumulative += 1.0 if equal else ranks[members[i]]
        above = cumulative * q2 - misses
        if above > top:
            top = above
    return top, top > -bottom and top > 0.0


@njit(nogil=True, cache=True)
def _reaches(ranks, members, k, total, bound):  # type: ignore[no-untyped-def]
    """Whether the running sum of the set rises strictly above ``bound`` (early exit)."""
    n = ranks.size
    equal = total <= 0.0
    q2 = 1.0 / k if equal else 1.0 / total
    q1 = 1.0 / (n - k)
    cumulative = 0.0
    for i in range(k):
        cumulative += 1.0 if equal else ranks[members[i]]
        if cumulative * q2 - (members[i] - i) * q1 > bound:
            return True
    return False


@njit(nogil=True, cache=True)
def _record(ranks, samples, k, scores, corrector, filled):  # type: ignore[no-untyped-def]
    """Record the lower half's scores (ascending) and how many sets above each have a positive
    standard score; replace the lower half by copies of the upper half and the median."""
    sample_size = samples.shape[0]
    positive = np.empty(sample_size)
    above_zero = np.empty(sample_size, dtype=np.bool_)
    for s in range(sample_size):
        positive[s], above_zero[s] = _scores(ranks, samples[s], k)
    order = np.argsort(positive, kind="mergesort")
    remaining = 0
    for s in range(sample_size):
        if above_zero[s]:
            remaining += 1
    half = (sample_size + 1) // 2
    for j in range(half):
        scores[filled + j] = positive[order[j]]
        if above_zero[order[j]]:
            remaining -= 1
        corrector[filled + j] = remaining
    previous = samples.copy()
    row = 0
    j = 0
    while 2 * j < sample_size - 2:
        for _ in range(2):
            samples[row] = previous[order[sample_size - 1 - j]]
            row += 1
        j += 1
    samples[row] = previous[order[sample_size >> 1]]
    return filled + half


@njit(nogil=True, cache=True)
def _perturb(ranks, members, k, total, bound):  # type: ignore[no-untyped-def]
    """``max(1, k/10)`` proposed swaps of one chain; returns the moves made and the new total."""
    n = ranks.size
    moves = 0
    for _ in range(max(1, int(k * 0.1))):
        old_index = np.random.randint(0, k)
        old = members[old_index]
        new = np.random.randint(0, n)
        at = np.searchsorted(members[:k], new)
        if at < k and members[at] == new:
            if new == old:
                moves += 1
            continue
        # remove old, insert new, keeping the members sorted
        if at > old_index:
            members[old_index : at - 1] = members[old_index + 1 : at].copy()
            members[at - 1] = new
        else:
            members[at + 1 : old_index + 1] = members[at:old_index].copy()
            members[at] = new
        candidate = total - ranks[old] + ranks[new]
        if _reaches(ranks, members, k, candidate, bound):
            total = candidate
            moves += 1
            continue
        # undo
        where = at - 1 if at > old_index else at
        if where > old_index:
            members[old_index + 1 : where + 1] = members[old_index:where].copy()
        else:
            members[where:old_index] = members[where + 1 : old_index + 1].copy()
        members[old_index] = old
    return moves, total


@njit(nogil=True, cache=True)
def es_ruler(ranks, k, sample_size, target, seed, max_levels):  # type: ignore[no-untyped-def]
    """Scores of the multilevel ruler for sets of size ``k``, up to ``target``.

    Parameters
    ----------
    ranks : ndarray of shape (n_genes,), float64
        ``|statistic|^weight`` in the order in which the positive score is taken.
    k : int
        The set size.
    sample_size : int
        Odd number of chains (fgsea's ``sampleSize``, 101).
    target : float
        The largest positive score to be given a p-value.
    seed : int
    max_levels : int
        Stop after this many levels (from fgsea's ``eps``).

    Returns
    -------
    scores : ndarray of shape (n_recorded,)
        Ascending recorded positive scores, ``(sample_size + 1) / 2`` per level.
    corrector : ndarray of shape (n_recorded,), int
        For each recorded score, how many of the sets above it had a positive standard score.
    """
    np.random.seed(seed)
    n = ranks.size
    half = (sample_size + 1) // 2
    capacity = half * (max_levels + 2)
    scores = np.empty(capacity)
    corrector = np.empty(capacity, dtype=np.int64)
    samples = np.empty((sample_size, k), dtype=np.int64)
    used = np.zeros(n, dtype=np.bool_)
    for s in range(sample_size):
        chosen = 0
        while chosen < k:
            x = np.random.randint(0, n)
            if not used[x]:
                used[x] = True
                samples[s, chosen] = x
                chosen += 1
        for i in range(k):
            used[samples[s, i]] = False
        samples[s].sort()
    filled = _record(ranks, samples, k, scores, corrector, 0)
    levels = 1
    totals = np.empty(sample_size)
    while scores[filled - 1] <= target - 1e-10 and levels <= max_levels:
        bound = scores[filled - 1]
        for s in range(sample_size):
            totals[s] = ranks[samples[s]].sum()
        moves = 0
        attempts = 0
        # near the largest score any set can reach, moves become rare: stop trying after a
        # hundred times the moves wanted, and the next level decides whether the median rose
        while moves < sample_size * k and attempts < 100 * sample_size * k:
            for s in range(sample_size):
                made, totals[s] = _perturb(ranks, samples[s], k, totals[s], bound)
                moves += made
                attempts += max(1, int(k * 0.1))
        filled = _record(ranks, samples, k, scores, corrector, filled)
        levels += 1
        if scores[filled - 1] <= bound:  # the median no longer rises
            break
    return scores[:filled], corrector[:filled]
