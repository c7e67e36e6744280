"""Rank sums of a gene whose value images span at most 32 − code bits: 32-bit keys
``(image − low) << code_bits | code`` sorted on their value bits, ranks from positions, and
only runs of equal values moved to their average rank."""

from __future__ import annotations

import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from ..._jit import njit
from .radix import ALL_64, float_image, scatter, value_of_image

__all__ = [
    "NARROW_DIGIT_BITS",
    "close_run",
    "correct_ties",
    "linear_runs",
    "narrow_keys",
    "narrow_positions",
    "narrow_sort",
]


NARROW_DIGIT_BITS = 12  # at most 4,096 buckets per pass of the narrow sort


@njit(nogil=True, cache=True)
def narrow_keys(bits, low, code_bits, code, keys):  # type: ignore[no-untyped-def]
    """``keys[i] = (float_image(bits[i]) − low) << code_bits | code`` for one group's values.

    A flat loop of its own, so that the compiler vectorises it (inside ``narrow_sort``'s loop
    over groups it does not; ~10× per value).
    """
    for i in range(bits.shape[0]):
        keys[i] = ((float_image(bits[i]) - low) << code_bits) | code


@njit(nogil=True, cache=True)
def narrow_sort(bits, bounds, low, value_bits, code_bits, keys, keys_tmp, counts):  # type: ignore[no-untyped-def]
    """Sort 32-bit keys ``(image − low) << code_bits | code`` of float32 bit patterns.

    ``bits`` (no NaN) are ordered by group code (``bounds``); ``low`` is at most their lowest
    image and ``value_bits`` (1 … 32 − ``code_bits``) the bits of their highest image − low.
    Only the value bits are sorted, in one to three LSD passes of equal width ≤ 12 bits; the
    order of equal values is their order in ``bits``, hence by code. The sorted keys end in
    ``keys``; ``counts`` is (3, 4096) uint32 scratch (unsigned: no wraparound code on indexing).
    """
    m = bits.shape[0]
    passes = (value_bits + NARROW_DIGIT_BITS - 1) // NARROW_DIGIT_BITS
    width = (value_bits + passes - 1) // passes
    mask = np.uint32((1 << width) - 1)
    cb = np.uint32(code_bits)
    s1 = np.uint32(code_bits + width)
    s2 = np.uint32(code_bits + 2 * width)
    source = keys if passes % 2 == 0 else keys_tmp  # so that the last pass writes into keys
    for g in range(bounds.shape[0] - 1):
        start, stop = bounds[g], bounds[g + 1]
        narrow_keys(bits[start:stop], low, cb, np.uint32(g), source[start:stop])
    # the histograms in a loop of their own: fused into the key loop above, they keep it from
    # being vectorised
    counts[:, :] = 0
    first, second, third = counts[0], counts[1], counts[2]
    if passes <= 2:  # the common case (≤ 24 value bits): two histograms, not three
        for i in range(m):
            k = source[i]
            first[(k >> cb) & mask] += 1
            second[(k >> s1) & mask] += 1
    else:
        for i in range(m):
            k = source[i]
            first[(k >> cb) & mask] += 1
            second[(k >> s1) & mask] += 1
            third[(k >> s2) & mask] += 1
    target = keys_tmp if passes % 2 == 0 else keys
    for p in range(passes):
        shift = np.uint32(code_bits + p * width)
        scatter(source[:m], target[:m], counts[p, : 1 << width], shift, mask)
        source, target = target, source


@njit(nogil=True, cache=True)
def narrow_positions(keys, code_bits, positions, equal_flags):  # type: ignore[no-untyped-def]
    """Each sorted narrow key's position + 1 summed by code; flags of values equal to the last.

    ``positions`` (2**code_bits,) is added to; ``equal_flags`` (≥ m + 8,) uint8 gets 1 where a
    value equals its predecessor, 0 elsewhere (also the 8 entries past the end). Returns the
    number of such values. Two groups take the branch-free loops the compiler vectorises.
    """
    m = keys.shape[0]
    cb = np.uint32(code_bits)
    if code_bits == 1:
        ones = 0
        for i in range(m):
            ones += (i + 1) * np.int64(keys[i] & np.uint32(1))
        positions[1] += ones
        positions[0] += m * (m + 1) // 2 - ones
    else:
        code_mask = np.uint32((1 << code_bits) - 1)
        for i in range(m):
            positions[keys[i] & code_mask] += i + 1
    equal = 0
    equal_flags[0] = 0
    for i in range(1, m):
        e = np.uint8((keys[i] >> cb) == (keys[i - 1] >> cb))
        equal_flags[i] = e
        equal += e
    equal_flags[m : m + 8] = 0
    return equal


@njit(nogil=True, cache=True)
def close_run(keys, start, stop, code_bits, rank_level):  # type: ignore[no-untyped-def]
    """Move a run of equal values from their positions + 1 to their average rank; t³ − t."""
    code_mask = np.uint32((1 << code_bits) - 1)
    t = stop - start
    average = start + (t + 1) * 0.5
    for q in range(start, stop):
        rank_level[keys[q] & code_mask] += average - (q + 1)
    tf = float(t)
    return tf * tf * tf - tf


@njit(nogil=True, cache=True)
def correct_ties(keys, equal_flags, code_bits, rank_level):  # type: ignore[no-untyped-def]
    """Average ranks for the runs of equal values in sorted narrow keys; returns Σ (t³ − t).

    ``rank_level`` (n_levels,) holds the positions + 1 by code (``narrow_positions``).
    ``equal_flags`` (from ``narrow_positions``: 0 in the 8 entries past the end) is read as
    64-bit words, most of them zero; in a word that is not, the first flagged value is found by
    counting trailing zero bits, not by a branch per value.
    """
    m = keys.shape[0]
    words = equal_flags.view(np.uint64)
    n_words = (m + 7) // 8
    tie = 0.0
    w = 0
    word = words[0] if n_words > 0 else np.uint64(0)
    while True:
        while word == 0:
            w += 1
            if w >= n_words:
                return tie
            word = words[w]
        first = 8 * w + (np.int64(trailing_zeros(word)) >> 3)  # equal to its predecessor
        stop = first + 1
        while equal_flags[stop]:  # 0 past the end: every run stops by m
            stop += 1
        tie += close_run(keys, first - 1, stop, code_bits, rank_level)
        # go on after the run: the word holding stop without its flags below stop
        w = stop >> 3
        if w >= n_words:
            return tie
        word = words[w] & (ALL_64 << np.uint64(8 * (stop & 7)))


@njit(nogil=True, cache=True)
def linear_runs(keys, code_bits, low, gene, out_linear, scratch32):  # type: ignore[no-untyped-def]
    """Sums of ``expm1`` of the values by code from sorted narrow keys (one ``expm1`` a run)."""
    bits = scratch32.view(np.uint32)
    m = keys.shape[0]
    cb = np.uint32(code_bits)
    code_mask = np.uint32((1 << code_bits) - 1)
    start = 0
    while start < m:
        value = keys[start] >> cb
        bits[0] = value_of_image(value + low)
        lifted = np.expm1(np.float64(scratch32[0]))
        stop = start
        while stop < m and keys[stop] >> cb == value:
            out_linear[keys[stop] & code_mask, gene] += lifted
            stop += 1
        start = stop
