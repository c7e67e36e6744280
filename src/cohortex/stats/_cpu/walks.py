"""Walks over sorted 64-bit keys that give each run of ties its average rank: one ranking of
all compared values for every contrast, or a base per contrast for pairs among more groups."""

from __future__ import annotations

import numpy as np

from ..._jit import njit
from .radix import LOW_32, value_of_image

__all__ = ["walk", "walk_global", "walk_global_packed"]


@njit(nogil=True, cache=True)
def walk_global(keys, codes, values, linear, gene, rank_level, out_tie, out_linear):  # type: ignore[no-untyped-def]
    """The run walk when every contrast ranks all the values (one-vs-rest, or two groups).

    Adds each value's average rank into ``rank_level`` (n_levels,) by group code (and, for
    ``linear``, ``expm1`` of it into ``out_linear``, once per run); the shared tie term goes to
    ``out_tie[gene]``.
    """
    n = keys.shape[0]
    tie = 0.0
    start = 0
    while start < n:
        stop = start + 1
        while stop < n and keys[stop] == keys[start]:
            stop += 1
        t = stop - start
        average = start + (t + 1) * 0.5
        if t == 1:
            code = codes[start]
            rank_level[code] += average
            if linear:
                out_linear[code, gene] += np.expm1(values[start])
        else:
            tf = float(t)
            tie += tf * tf * tf - tf
            lifted = np.expm1(values[start]) if linear else 0.0
            for i in range(start, stop):
                code = codes[i]
                rank_level[code] += average
                if linear:
                    out_linear[code, gene] += lifted
        start = stop
    out_tie[gene] = tie


@njit(nogil=True, cache=True)
def walk_global_packed(keys, linear, gene, rank_level, out_tie, out_linear, scratch32):  # type: ignore[no-untyped-def]
    """``walk_global`` straight on sorted packed keys (no unpacking: a smaller cache footprint).

    ``scratch32`` is a one-element float32 array used to decode a run's value for ``expm1``.
    """
    bits = scratch32.view(np.uint32)
    n = keys.shape[0]
    tie = 0.0
    start = 0
    while start < n:
        high = keys[start] >> np.uint64(32)
        stop = start + 1
        while stop < n and (keys[stop] >> np.uint64(32)) == high:
            stop += 1
        t = stop - start
        average = start + (t + 1) * 0.5
        lifted = 0.0
        if linear:
            bits[0] = value_of_image(np.uint32(high))
            lifted = np.expm1(np.float64(scratch32[0]))
        if t > 1:
            tf = float(t)
            tie += tf * tf * tf - tf
        for i in range(start, stop):
            code = np.int64(keys[i] & LOW_32)
            rank_level[code] += average
            if linear:
                out_linear[code, gene] += lifted
        start = stop
    out_tie[gene] = tie


@njit(nogil=True, cache=True)
def walk(  # type: ignore[no-untyped-def]
    keys,
    codes,
    values,
    group_of,
    reference_of,
    linear,
    gene,
    run_counts,
    base,
    out_rank_sum,
    out_tie,
    out_linear,
):
    """Rank sums and tie terms of every contrast from one gene's sorted keys and codes.

    ``keys`` only need to be equal exactly where the values are equal (the values themselves
    serve on the NumPy twin). ``run_counts`` (n_levels,) must be zero on entry and is left zero.
    """
    n = keys.shape[0]
    n_contrasts = group_of.shape[0]
    base[:] = 0.0
    start = 0
    while start < n:
        stop = start + 1
        while stop < n and keys[stop] == keys[start]:
            stop += 1
        for i in range(start, stop):
            run_counts[codes[i]] += 1
        run_total = stop - start
        for j in range(n_contrasts):
            in_group = run_counts[group_of[j]]
            reference = reference_of[j]
            t = run_total if reference < 0 else in_group + run_counts[reference]
            if t == 0:
                continue
            if in_group > 0:
                out_rank_sum[j, gene] += in_group * (base[j] + (t + 1) / 2.0)
            if t > 1:
                tf = float(t)
                out_tie[j, gene] += tf * tf * tf - tf
            base[j] += t
        lifted = np.expm1(values[start]) if linear else 0.0
        for i in range(start, stop):  # expm1 sums once per code and run; leaves counts zero
            code = codes[i]
            c = run_counts[code]
            if c > 0:
                if linear:
                    out_linear[code, gene] += c * lifted
                run_counts[code] = 0
        start = stop
