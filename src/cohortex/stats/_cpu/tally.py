"""Rank sums of a gene with few distinct values (counts, log1p counts): a small hash table
tallies each distinct value per group; no sort."""

from __future__ import annotations

import numpy as np

from ..._jit import njit
from .radix import float_image, value_of_image

__all__ = ["EMPTY_32", "TALLY_LIMIT", "TALLY_SLOTS", "tally_distinct", "walk_tally"]


EMPTY_32 = np.uint32(0xFFFFFFFF)  # the image of a NaN: never that of a value that is ranked


TALLY_SLOTS = 1024  # hash slots (a power of two)


TALLY_LIMIT = 256  # at most this many distinct values per gene (load factor ≤ 1/4)


@njit(nogil=True, cache=True)
def tally_distinct(bits, bounds, slot_keys, slot_counts):  # type: ignore[no-untyped-def]
    """Count the values of each distinct float32 value per group code, in a small hash table.

    Returns the number of distinct values, or -1 as soon as there are more than
    ``TALLY_LIMIT`` (then the caller sorts instead). ``bits`` are float32 bit patterns (no
    NaN) ordered by group code (``bounds``); the table holds their images. ``slot_keys``
    (``TALLY_SLOTS``,) and ``slot_counts`` (``TALLY_SLOTS``, n_levels) are scratch, reset here.
    """
    slot_keys[:] = EMPTY_32
    slot_counts[:, :] = 0
    mask = np.uint32(TALLY_SLOTS - 1)
    distinct = 0
    for g in range(bounds.shape[0] - 1):
        for i in range(bounds[g], bounds[g + 1]):
            b = float_image(bits[i])
            slot = ((b * np.uint32(2654435761)) >> np.uint32(22)) & mask  # Fibonacci hashing
            while True:
                key = slot_keys[slot]
                if key == b:
                    break
                if key == EMPTY_32:
                    if distinct == TALLY_LIMIT:
                        return -1
                    slot_keys[slot] = b
                    distinct += 1
                    break
                slot = (slot + np.uint32(1)) & mask
            slot_counts[slot, g] += 1
    return distinct


@njit(nogil=True, cache=True)
def walk_tally(slot_keys, slot_counts, linear, gene, rank_level, out_tie, out_linear, scratch32):  # type: ignore[no-untyped-def]
    """``walk_global`` over the distinct values of a tally instead of a sorted gene.

    Each distinct value is one run: its t values share the average rank base + (t + 1) / 2.
    ``scratch32`` is a one-element float32 array used to decode a value for ``expm1``.
    """
    bits = scratch32.view(np.uint32)
    occupied = np.flatnonzero(slot_keys != EMPTY_32)
    order = np.argsort(slot_keys[occupied])  # images sort as their values; ≤ TALLY_LIMIT
    n_levels = slot_counts.shape[1]
    base = 0.0
    tie = 0.0
    for o in range(order.shape[0]):
        slot = occupied[order[o]]
        t = 0
        for g in range(n_levels):
            t += slot_counts[slot, g]
        average = base + (t + 1) * 0.5
        lifted = 0.0
        if linear:
            bits[0] = value_of_image(slot_keys[slot])
            lifted = np.expm1(np.float64(scratch32[0]))
        for g in range(n_levels):
            c = slot_counts[slot, g]
            if c > 0:
                rank_level[g] += c * average
                if linear:
                    out_linear[g, gene] += c * lifted
        if t > 1:
            tf = float(t)
            tie += tf * tf * tf - tf
        base += t
    out_tie[gene] = tie
