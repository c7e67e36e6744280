"""Compiled rank-sum statistics for one block of genes (CPU, numba), and the run walk they share
with the CUDA kernel ``kernels/rank_sum_walk.cu``.

Why compiled: ranking needs a sort per gene, and NumPy's ``argsort`` plus the tie bookkeeping in
:func:`cohortex.stats._ranks.average_ranks` costs ~10 passes over float64 copies of the block; at
50,000 × 2,000 that was only 1.3× faster than scanpy (now ~28×, benchmarks/RESULTS.md).

Per block: the samples are ordered by group code, so that each group's values are one range of
a gene, and the (samples, genes) block is transposed panel by panel into a per-thread buffer
(``ScratchBuffers``) so that each gene's values are contiguous. For float32 data the same pass
takes each gene's NaN and ±inf counts, its group sums and the range of the order-preserving
integer images of its values (``_image``). Per gene, when every contrast ranks all compared
values (one-vs-rest, or two groups):

* at most 256 distinct values (counts, log1p counts): a small hash table tallies each distinct
  value per group; no sort (``_tally_distinct``, ``_walk_tally``);
* otherwise, when image − lowest image fits in 32 − code bits (practically every positive gene:
  log-normal data span 21–28 bits): 32-bit keys ``(image − low) << code_bits | code`` sorted on
  their value bits by an LSD radix sort of one to three passes (``_narrow_sort``); each key's
  position + 1 is summed by code and values equal to their predecessor are flagged in branch-free
  loops (``_narrow_positions``), and only runs of equal values are then moved to their average
  rank (``_correct_ties``);
* otherwise 64-bit keys (image above, code below) in three 11-bit passes and a walk over runs.

A run of t equal values spans ranks base+1 … base+t, so each of its values has the average rank
base + (t + 1) / 2; a contrast counts only the values of its own two sides in t and base. Pairs
among more groups sort 64-bit keys and walk with a base per contrast (``_walk``); float64 data
sort 64-bit keys in six passes with the codes moved alongside. A gene with NaN is compacted
first (NaN counted per group). Sums of ``expm1`` (log1p data) are taken once per run. -0.0 is
ranked as +0.0 (they compare equal). The plain-NumPy reference for the tests is
:func:`cohortex.stats._ranks.average_ranks`.
"""

from __future__ import annotations

import threading

import numba
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros
from numpy.lib.stride_tricks import as_strided

__all__ = ["ScratchBuffers", "rank_sum_block", "walk_sorted_runs"]

_ROW_PANEL = 512  # rows per transposition panel: 512 × 256 float32 read (512 KB) stay in L2
_GENE_PANEL = 256
_RANK_PANEL = 1024  # genes transposed, then ranked, at a time (blocks are at most this wide)

_TOP = np.uint64(1) << np.uint64(63)
_ALL_64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@numba.njit(nogil=True, cache=True)
def _sortable_keys(values, keys):  # type: ignore[no-untyped-def]
    """Order-preserving unsigned image of float64 values (finite or infinite, no NaN)."""
    bits = values.view(np.uint64)
    for i in range(values.shape[0]):
        b = bits[i]
        keys[i] = ~b if b & _TOP else b | _TOP


@numba.njit(nogil=True, cache=True)
def _radix_sort(keys, payload, keys_tmp, payload_tmp, counts, first_bit, digit_bits):  # type: ignore[no-untyped-def]
    """Sort ``keys`` ascending from bit ``first_bit`` up, carrying ``payload`` along (float64).

    ``counts`` is (passes, 2**digit_bits) scratch. A pass whose digit is the same for every key
    moves nothing and is skipped.
    """
    n = keys.shape[0]
    passes = counts.shape[0]
    mask = np.uint64((1 << digit_bits) - 1)
    counts[:, :] = 0
    for i in range(n):
        k = keys[i]
        for p in range(passes):
            counts[p, (k >> np.uint64(first_bit + p * digit_bits)) & mask] += 1
    src_k, src_p, dst_k, dst_p = keys, payload, keys_tmp, payload_tmp
    moved = 0
    for p in range(passes):
        shift = np.uint64(first_bit + p * digit_bits)
        histogram = counts[p]
        if histogram.max() == n:
            continue
        total = 0
        for b in range(histogram.shape[0]):
            c = histogram[b]
            histogram[b] = total
            total += c
        for i in range(n):
            k = src_k[i]
            digit = (k >> shift) & mask
            position = histogram[digit]
            histogram[digit] = position + 1
            dst_k[position] = k
            dst_p[position] = src_p[i]
        src_k, dst_k = dst_k, src_k
        src_p, dst_p = dst_p, src_p
        moved += 1
    if moved % 2 == 1:  # the sorted keys are in the scratch arrays
        keys[:] = keys_tmp
        payload[:] = payload_tmp


_SIGN_32 = np.uint32(0x80000000)
_LOW_32 = np.uint64(0xFFFFFFFF)
_HIGH_DIGIT_BITS = 11  # 2,048 buckets: three passes over bits 32..64


@numba.njit(nogil=True, cache=True)
def _image(bits):  # type: ignore[no-untyped-def]
    """Order-preserving unsigned image of a float32 bit pattern (not NaN); −0.0 maps as +0.0.

    Negative values have every bit flipped, others only the sign bit, without a branch.
    """
    bits = np.uint32(0) if bits == _SIGN_32 else bits
    return bits ^ (np.uint32(np.int32(bits) >> np.int32(31)) | _SIGN_32)


@numba.njit(nogil=True, cache=True)
def _value_of_image(image):  # type: ignore[no-untyped-def]
    """The float32 bit pattern whose order-preserving image is ``image``."""
    return image ^ _SIGN_32 if image & _SIGN_32 else ~image


@numba.njit(nogil=True, cache=True)
def _wide_keys(bits, bounds, keys):  # type: ignore[no-untyped-def]
    """64-bit keys: a value's image in the high 32 bits, its group code in the low 32.

    ``bits`` (float32 bit patterns, no NaN) are ordered by group: those of code g are
    ``bits[bounds[g]:bounds[g + 1]]``.
    """
    for g in range(bounds.shape[0] - 1):
        code = np.uint64(g)
        for i in range(bounds[g], bounds[g + 1]):
            keys[i] = (np.uint64(_image(bits[i])) << np.uint64(32)) | code


@numba.njit(nogil=True, cache=True)
def _unpack_keys(keys, codes, values32, values):  # type: ignore[no-untyped-def]
    """Codes and float values back from sorted 64-bit keys, the inverse of ``_wide_keys``."""
    bits = values32.view(np.uint32)
    for i in range(keys.shape[0]):
        k = keys[i]
        codes[i] = np.int32(k & _LOW_32)
        bits[i] = _value_of_image(np.uint32(k >> np.uint64(32)))
        values[i] = np.float64(values32[i])


@numba.njit(nogil=True, cache=True)
def _digit_histograms(keys, c0, c1, c2):  # type: ignore[no-untyped-def]
    """Counts of the three 11-bit digits of bits 32..64 of every key, in one read."""
    c0[:] = 0
    c1[:] = 0
    c2[:] = 0
    for i in range(keys.shape[0]):
        k = keys[i]
        c0[(k >> np.uint64(32)) & np.uint64(2047)] += 1
        c1[(k >> np.uint64(43)) & np.uint64(2047)] += 1
        c2[(k >> np.uint64(54)) & np.uint64(2047)] += 1


@numba.njit(nogil=True, cache=True)
def _scatter(source, target, starts, shift, mask):  # type: ignore[no-untyped-def]
    """One stable counting-sort pass on the digit ``(key >> shift) & mask``.

    ``starts`` (one count per digit value) is turned into first positions and consumed. Shift
    and mask of the keys' own unsigned type, and unsigned counts, keep the loop free of
    conversions and wraparound code.
    """
    total = 0
    for b in range(starts.shape[0]):  # counts → first positions
        c = starts[b]
        starts[b] = total
        total += c
    for i in range(source.shape[0]):
        k = source[i]
        digit = (k >> shift) & mask
        position = starts[digit]
        starts[digit] = position + 1
        target[position] = k


@numba.njit(nogil=True, cache=True)
def _radix_sort_high32(keys, keys_tmp, c0, c1, c2):  # type: ignore[no-untyped-def]
    """Sort packed keys by their high 32 bits (LSD, stable; skips passes no digit varies in)."""
    n = keys.shape[0]
    _digit_histograms(keys, c0, c1, c2)
    source, target = keys, keys_tmp
    moved = 0
    for p in range(3):
        counts = c0 if p == 0 else (c1 if p == 1 else c2)
        if counts.max() == n:
            continue
        _scatter(source, target, counts, np.uint64(32 + 11 * p), np.uint64(2047))
        source, target = target, source
        moved += 1
    if moved % 2 == 1:  # the sorted keys are in the scratch array
        keys[:] = keys_tmp


@numba.njit(nogil=True, cache=True)
def _walk_global(keys, codes, values, linear, gene, rank_level, out_tie, out_linear):  # type: ignore[no-untyped-def]
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


@numba.njit(nogil=True, cache=True)
def _walk_global_packed(keys, linear, gene, rank_level, out_tie, out_linear, scratch32):  # type: ignore[no-untyped-def]
    """``_walk_global`` straight on sorted packed keys (no unpacking: a smaller cache footprint).

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
            bits[0] = _value_of_image(np.uint32(high))
            lifted = np.expm1(np.float64(scratch32[0]))
        if t > 1:
            tf = float(t)
            tie += tf * tf * tf - tf
        for i in range(start, stop):
            code = np.int64(keys[i] & _LOW_32)
            rank_level[code] += average
            if linear:
                out_linear[code, gene] += lifted
        start = stop
    out_tie[gene] = tie


_EMPTY_32 = np.uint32(0xFFFFFFFF)  # the image of a NaN: never that of a value that is ranked
_TALLY_SLOTS = 1024  # hash slots (a power of two)
_TALLY_LIMIT = 256  # at most this many distinct values per gene (load factor ≤ 1/4)


@numba.njit(nogil=True, cache=True)
def _tally_distinct(bits, bounds, slot_keys, slot_counts):  # type: ignore[no-untyped-def]
    """Count the values of each distinct float32 value per group code, in a small hash table.

    Returns the number of distinct values, or -1 as soon as there are more than
    ``_TALLY_LIMIT`` (then the caller sorts instead). ``bits`` are float32 bit patterns (no
    NaN) ordered by group code (``bounds``); the table holds their images. ``slot_keys``
    (``_TALLY_SLOTS``,) and ``slot_counts`` (``_TALLY_SLOTS``, n_levels) are scratch, reset here.
    """
    slot_keys[:] = _EMPTY_32
    slot_counts[:, :] = 0
    mask = np.uint32(_TALLY_SLOTS - 1)
    distinct = 0
    for g in range(bounds.shape[0] - 1):
        for i in range(bounds[g], bounds[g + 1]):
            b = _image(bits[i])
            slot = ((b * np.uint32(2654435761)) >> np.uint32(22)) & mask  # Fibonacci hashing
            while True:
                key = slot_keys[slot]
                if key == b:
                    break
                if key == _EMPTY_32:
                    if distinct == _TALLY_LIMIT:
                        return -1
                    slot_keys[slot] = b
                    distinct += 1
                    break
                slot = (slot + np.uint32(1)) & mask
            slot_counts[slot, g] += 1
    return distinct


@numba.njit(nogil=True, cache=True)
def _walk_tally(slot_keys, slot_counts, linear, gene, rank_level, out_tie, out_linear, scratch32):  # type: ignore[no-untyped-def]
    """``_walk_global`` over the distinct values of a tally instead of a sorted gene.

    Each distinct value is one run: its t values share the average rank base + (t + 1) / 2.
    ``scratch32`` is a one-element float32 array used to decode a value for ``expm1``.
    """
    bits = scratch32.view(np.uint32)
    occupied = np.flatnonzero(slot_keys != _EMPTY_32)
    order = np.argsort(slot_keys[occupied])  # images sort as their values; ≤ _TALLY_LIMIT
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
            bits[0] = _value_of_image(slot_keys[slot])
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


_NARROW_DIGIT_BITS = 12  # at most 4,096 buckets per pass of the narrow sort


@numba.njit(nogil=True, cache=True)
def _narrow_keys(bits, low, code_bits, code, keys):  # type: ignore[no-untyped-def]
    """``keys[i] = (_image(bits[i]) − low) << code_bits | code`` for one group's values.

    A flat loop of its own: inside ``_narrow_sort``'s loop over groups the compiler did not
    vectorise it (1.9 → 0.2 ns per value).
    """
    for i in range(bits.shape[0]):
        keys[i] = ((_image(bits[i]) - low) << code_bits) | code


@numba.njit(nogil=True, cache=True)
def _narrow_sort(bits, bounds, low, value_bits, code_bits, keys, keys_tmp, counts):  # type: ignore[no-untyped-def]
    """Sort 32-bit keys ``(image − low) << code_bits | code`` of float32 bit patterns.

    ``bits`` (no NaN) are ordered by group code (``bounds``); ``low`` is at most their lowest
    image and ``value_bits`` (1 … 32 − ``code_bits``) the bits of their highest image − low.
    Only the value bits are sorted, in one to three LSD passes of equal width ≤ 12 bits; the
    order of equal values is their order in ``bits``, hence by code. The sorted keys end in
    ``keys``; ``counts`` is (3, 4096) uint32 scratch (unsigned: no wraparound code on indexing).
    """
    m = bits.shape[0]
    passes = (value_bits + _NARROW_DIGIT_BITS - 1) // _NARROW_DIGIT_BITS
    width = (value_bits + passes - 1) // passes
    mask = np.uint32((1 << width) - 1)
    cb = np.uint32(code_bits)
    s1 = np.uint32(code_bits + width)
    s2 = np.uint32(code_bits + 2 * width)
    source = keys if passes % 2 == 0 else keys_tmp  # so that the last pass writes into keys
    for g in range(bounds.shape[0] - 1):
        start, stop = bounds[g], bounds[g + 1]
        _narrow_keys(bits[start:stop], low, cb, np.uint32(g), source[start:stop])
    # the histograms in a loop of their own: fused into the key loop above, they kept it from
    # being vectorised (2.2 → 0.9 ns per value)
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
        _scatter(source[:m], target[:m], counts[p, : 1 << width], shift, mask)
        source, target = target, source


@numba.njit(nogil=True, cache=True)
def _narrow_positions(keys, code_bits, positions, equal_flags):  # type: ignore[no-untyped-def]
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


@numba.njit(nogil=True, cache=True)
def _close_run(keys, start, stop, code_bits, rank_level):  # type: ignore[no-untyped-def]
    """Move a run of equal values from their positions + 1 to their average rank; t³ − t."""
    code_mask = np.uint32((1 << code_bits) - 1)
    t = stop - start
    average = start + (t + 1) * 0.5
    for q in range(start, stop):
        rank_level[keys[q] & code_mask] += average - (q + 1)
    tf = float(t)
    return tf * tf * tf - tf


@numba.njit(nogil=True, cache=True)
def _correct_ties(keys, equal_flags, code_bits, rank_level):  # type: ignore[no-untyped-def]
    """Average ranks for the runs of equal values in sorted narrow keys; returns Σ (t³ − t).

    ``rank_level`` (n_levels,) holds the positions + 1 by code (``_narrow_positions``).
    ``equal_flags`` (from ``_narrow_positions``: 0 in the 8 entries past the end) is read as
    64-bit words, most of them zero; in a word that is not, the first flagged value is found by
    counting trailing zero bits, not by a branch per value (15 → 11 µs a gene of 50,000 untied
    log-normal values with ~500 ties, in cache).
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
        tie += _close_run(keys, first - 1, stop, code_bits, rank_level)
        # go on after the run: the word holding stop without its flags below stop
        w = stop >> 3
        if w >= n_words:
            return tie
        word = words[w] & (_ALL_64 << np.uint64(8 * (stop & 7)))


@numba.njit(nogil=True, cache=True)
def _linear_runs(keys, code_bits, low, gene, out_linear, scratch32):  # type: ignore[no-untyped-def]
    """Sums of ``expm1`` of the values by code from sorted narrow keys (one ``expm1`` a run)."""
    bits = scratch32.view(np.uint32)
    m = keys.shape[0]
    cb = np.uint32(code_bits)
    code_mask = np.uint32((1 << code_bits) - 1)
    start = 0
    while start < m:
        value = keys[start] >> cb
        bits[0] = _value_of_image(value + low)
        lifted = np.expm1(np.float64(scratch32[0]))
        stop = start
        while stop < m and keys[stop] >> cb == value:
            out_linear[keys[stop] & code_mask, gene] += lifted
            stop += 1
        start = stop


@numba.njit(nogil=True, cache=True)
def _compact_float32(row, bounds, values32, level_sum, level_count, level_nan, kept):  # type: ignore[no-untyped-def]
    """A float32 gene with NaN: its other values into ``values32``, NaN counted per group.

    ``kept`` (n_levels + 1,) receives the group bounds of the kept values. Returns (lowest
    image, highest image, number of ±inf).
    """
    bits = values32.view(np.uint32)
    low = np.uint32(0xFFFFFFFF)
    high = np.uint32(0)
    infinite = 0
    m = 0
    for g in range(bounds.shape[0] - 1):
        kept[g] = m
        total = 0.0
        nan = 0
        for i in range(bounds[g], bounds[g + 1]):
            v = row[i]
            if v != v:
                nan += 1
                continue
            total += np.float64(v)
            infinite += np.isinf(v)
            values32[m] = v
            k = _image(bits[m])
            low = min(low, k)
            high = max(high, k)
            m += 1
        level_sum[g] = total
        level_count[g] = m - kept[g]
        level_nan[g] = nan
    kept[bounds.shape[0] - 1] = m
    return low, high, infinite


@numba.njit(nogil=True, cache=True)
def _compact_values(row, bounds, values, codes, level_sum, level_count, level_nan, kept):  # type: ignore[no-untyped-def]
    """float64 genes: the kept values (−0.0 as +0.0) and their codes; returns the ±inf count."""
    infinite = 0
    m = 0
    for g in range(bounds.shape[0] - 1):
        kept[g] = m
        total = 0.0
        nan = 0
        for i in range(bounds[g], bounds[g + 1]):
            v = np.float64(row[i])
            if np.isnan(v):
                nan += 1
                continue
            total += v
            infinite += np.isinf(v)
            values[m] = v + 0.0  # -0.0 + 0.0 is +0.0: one key for both zeros
            codes[m] = g
            m += 1
        level_sum[g] = total
        level_count[g] = m - kept[g]
        level_nan[g] = nan
    kept[bounds.shape[0] - 1] = m
    return infinite


@numba.njit(nogil=True, cache=True)
def _walk(  # type: ignore[no-untyped-def]
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


@numba.njit(nogil=True, cache=True)
def _transpose_panel(block, rows, out, i0, i1, g0, g1):  # type: ignore[no-untyped-def]
    """``out[g, i] = block[rows[i], g]`` for rows ``i0:i1`` and genes ``g0:g1``.

    Four genes at a time: each row index is read once for four values of one cache line, and
    four output rows are written contiguously (1.4 → 0.85 ns per value against one gene at a
    time, measured on a 50,000 × 512 view of a 20,000-gene matrix).
    """
    g = g0
    while g + 4 <= g1:
        for i in range(i0, i1):  # contiguous writes (30 % faster than rows outside)
            r = rows[i]
            out[g, i] = block[r, g]
            out[g + 1, i] = block[r, g + 1]
            out[g + 2, i] = block[r, g + 2]
            out[g + 3, i] = block[r, g + 3]
        g += 4
    while g < g1:
        for i in range(i0, i1):
            out[g, i] = block[rows[i], g]
        g += 1


@numba.njit(nogil=True, cache=True)
def _transpose_rows(block, rows, out):  # type: ignore[no-untyped-def]
    """``out[:] = block[rows].T`` (out C-contiguous, (n_genes, n_rows)), panel by panel.

    Panels of 512 rows × 256 genes: what they read stays in L2 while each gene's 512 values
    are gathered and written contiguously (10× faster than ``np.ascontiguousarray(block.T)``
    here; 30 % faster than copying row by row in 64-row panels, measured interleaved).
    """
    n_rows = rows.shape[0]
    n_genes = block.shape[1]
    for i0 in range(0, n_rows, _ROW_PANEL):
        i1 = min(i0 + _ROW_PANEL, n_rows)
        for g0 in range(0, n_genes, _GENE_PANEL):
            _transpose_panel(block, rows, out, i0, i1, g0, min(g0 + _GENE_PANEL, n_genes))


@numba.njit(nogil=True, cache=True)
def _segment_scan(values):  # type: ignore[no-untyped-def]
    """Numbers of NaN and ±inf in float32 ``values``, and the lowest and highest ``_image``."""
    bits = values.view(np.uint32)
    nan = 0
    infinite = 0
    low = np.uint32(0xFFFFFFFF)
    high = np.uint32(0)
    for i in range(values.shape[0]):
        v = values[i]
        nan += v != v
        infinite += np.abs(v) == np.inf
        image = _image(bits[i])
        low = min(low, image)
        high = max(high, image)
    return nan, infinite, low, high


@numba.njit(nogil=True, cache=True, fastmath={"reassoc"})
def _segment_sum(values):  # type: ignore[no-untyped-def]
    """Sum of float32 ``values`` in float64 (reassociated: the compiler vectorises it)."""
    total = 0.0
    for i in range(values.shape[0]):
        total += np.float64(values[i])
    return total


@numba.njit(nogil=True, cache=True)
def _transpose_scan(block, rows, bounds, out, low, high, nan, infinite, sums):  # type: ignore[no-untyped-def]
    """``_transpose_rows`` for float32 blocks, taking each gene's statistics on the way.

    Per gene: the lowest and highest image of its values (``_image``), its numbers of NaN and
    ±inf, and each group's sum (``sums``, (n_levels, n_genes), float64), read from each panel
    of the transposed copy while it is still in cache (``_segment_scan``, ``_segment_sum``: flat
    loops of their own, which the compiler vectorises; inline here it did not). Images and sums
    are not valid for a gene holding NaN (the caller compacts those genes).
    """
    n_rows = rows.shape[0]
    n_genes = block.shape[1]
    n_levels = bounds.shape[0] - 1
    low[:] = np.uint32(0xFFFFFFFF)
    high[:] = 0
    nan[:] = 0
    infinite[:] = 0
    sums[:, :] = 0.0
    for i0 in range(0, n_rows, _ROW_PANEL):
        i1 = min(i0 + _ROW_PANEL, n_rows)
        for g0 in range(0, n_genes, _GENE_PANEL):
            g1 = min(g0 + _GENE_PANEL, n_genes)
            _transpose_panel(block, rows, out, i0, i1, g0, g1)
            for g in range(g0, g1):  # the panel's statistics while it is in cache
                gene_nan, gene_infinite, gene_low, gene_high = _segment_scan(out[g, i0:i1])
                nan[g] += gene_nan
                infinite[g] += gene_infinite
                low[g] = min(low[g], gene_low)
                high[g] = max(high[g], gene_high)
                for c in range(n_levels):
                    start = max(bounds[c], i0)
                    stop = min(bounds[c + 1], i1)
                    if start < stop:
                        sums[c, g] += _segment_sum(out[g, start:stop])


@numba.njit(nogil=True, cache=True)
def _block_statistics(  # type: ignore[no-untyped-def]
    flat_block,
    row_stride,
    n_block_rows,
    n_genes,
    by_gene,
    rows,
    bounds,
    group_of,
    reference_of,
    linear,
    packed,
    global_ranks,
    out_rank_sum,
    out_tie,
    out_count,
    out_sum,
    out_linear,
    out_nan,
    out_infinite,
):
    # the (samples, genes) block back from its flat view (see ``_flat_rows``)
    itemsize = flat_block.itemsize
    block = as_strided(
        flat_block, shape=(n_block_rows, n_genes), strides=(row_stride * itemsize, itemsize)
    )
    n_rows = rows.shape[0]
    n_levels = out_count.shape[0]
    n_contrasts = group_of.shape[0]
    code_bits = 1  # bits of a group code below a narrow key's value bits
    while (1 << code_bits) < n_levels:
        code_bits += 1
    c0 = np.empty(2048, dtype=np.int64)
    c1 = np.empty(2048, dtype=np.int64)
    c2 = np.empty(2048, dtype=np.int64)
    counts = np.empty((6, 2048), dtype=np.int64)  # float64: six 11-bit passes
    narrow_counts = np.empty((3, 1 << _NARROW_DIGIT_BITS), dtype=np.uint32)
    positions = np.zeros(1 << code_bits, dtype=np.int64)
    rank_level = np.zeros(n_levels, dtype=np.float64)
    level_sum = np.zeros(n_levels, dtype=np.float64)
    level_count = np.zeros(n_levels, dtype=np.int64)
    level_nan = np.zeros(n_levels, dtype=np.int64)
    kept = np.empty(n_levels + 1, dtype=np.int64)
    shared_tie = np.zeros(n_genes, dtype=np.float64)
    gene_low = np.empty(n_genes, dtype=np.uint32)
    gene_high = np.empty(n_genes, dtype=np.uint32)
    gene_nan = np.empty(n_genes, dtype=np.int64)
    gene_infinite = np.empty(n_genes, dtype=np.int64)
    gene_sums = np.empty((n_levels, n_genes), dtype=np.float64)
    values = np.empty(n_rows, dtype=np.float64)
    values32 = np.empty(n_rows, dtype=np.float32)
    row_bits = np.empty(0, dtype=np.uint32)  # float32 genes' bits; float64 genes use values
    equal_flags = np.zeros((n_rows // 8 + 2) * 8, dtype=np.uint8)  # whole 64-bit words
    narrow = np.empty(n_rows, dtype=np.uint32)
    narrow_tmp = np.empty(n_rows, dtype=np.uint32)
    scratch32 = np.empty(1, dtype=np.float32)
    slot_keys = np.empty(_TALLY_SLOTS, dtype=np.uint32)
    slot_counts = np.zeros((_TALLY_SLOTS, n_levels), dtype=np.int64)
    keys = np.empty(n_rows, dtype=np.uint64)
    keys_tmp = np.empty(n_rows, dtype=np.uint64)
    codes = np.empty(n_rows, dtype=np.int32)
    codes_tmp = np.empty(n_rows, dtype=np.int32)
    run_counts = np.zeros(n_levels, dtype=np.int64)
    base = np.empty(group_of.shape[0], dtype=np.float64)
    for p0 in range(0, n_genes, _RANK_PANEL):
        # up to _RANK_PANEL genes at a time (the width of the transposition buffer)
        p1 = min(p0 + _RANK_PANEL, n_genes)
        if packed:
            _transpose_scan(
                block[:, p0:p1],
                rows,
                bounds,
                by_gene,
                gene_low[p0:p1],
                gene_high[p0:p1],
                gene_nan[p0:p1],
                gene_infinite[p0:p1],
                gene_sums[:, p0:p1],
            )
        else:
            _transpose_rows(block[:, p0:p1], rows, by_gene)
        for gene in range(p0, p1):
            row = by_gene[gene - p0]
            # 1. the kept values of the gene, ordered by group code (kept[g] … kept[g + 1])
            low = np.uint32(0)
            high = np.uint32(0)
            kept_bits = row_bits
            if packed:
                if gene_nan[gene] == 0:
                    low, high, infinite = gene_low[gene], gene_high[gene], gene_infinite[gene]
                    kept[:] = bounds
                    for g in range(n_levels):
                        level_sum[g] = gene_sums[g, gene]
                        level_count[g] = bounds[g + 1] - bounds[g]
                    level_nan[:] = 0
                    kept_bits = row.view(np.uint32)
                else:
                    low, high, infinite = _compact_float32(
                        row, bounds, values32, level_sum, level_count, level_nan, kept
                    )
                    kept_bits = values32.view(np.uint32)
            else:
                infinite = _compact_values(
                    row, bounds, values, codes, level_sum, level_count, level_nan, kept
                )
            m = kept[n_levels]
            out_infinite[gene] = infinite
            out_sum[:, gene] = level_sum
            out_count[:, gene] = level_count
            out_nan[:, gene] = level_nan
            # 2. rank them
            if packed and global_ranks:  # one ranking of all compared values serves every contrast
                rank_level[:] = 0.0
                value_bits = 0
                while value_bits < 32 and ((high - low) >> np.uint32(value_bits)) != 0:
                    value_bits += 1
                if _tally_distinct(kept_bits[:m], kept, slot_keys, slot_counts) >= 0:
                    # few distinct values (counts, log1p counts; also a gene of one value, which
                    # the sorts below do not take): tallied, no sort
                    _walk_tally(
                        slot_keys,
                        slot_counts,
                        linear,
                        gene,
                        rank_level,
                        shared_tie,
                        out_linear,
                        scratch32,
                    )
                elif value_bits + code_bits <= 32:
                    # the values span few enough images for 32-bit keys with the code below
                    _narrow_sort(
                        kept_bits[:m],
                        kept,
                        low,
                        value_bits,
                        code_bits,
                        narrow,
                        narrow_tmp,
                        narrow_counts,
                    )
                    positions[:] = 0
                    equal = _narrow_positions(narrow[:m], code_bits, positions, equal_flags)
                    for g in range(n_levels):
                        rank_level[g] = positions[g]
                    shared_tie[gene] = (
                        _correct_ties(narrow[:m], equal_flags, code_bits, rank_level)
                        if equal > 0
                        else 0.0
                    )
                    if linear:
                        _linear_runs(narrow[:m], code_bits, low, gene, out_linear, scratch32)
                else:
                    _wide_keys(kept_bits[:m], kept, keys)
                    _radix_sort_high32(keys[:m], keys_tmp[:m], c0, c1, c2)
                    _walk_global_packed(
                        keys[:m], linear, gene, rank_level, shared_tie, out_linear, scratch32
                    )
                for j in range(n_contrasts):
                    out_rank_sum[j, gene] = rank_level[group_of[j]]
                    out_tie[j, gene] = shared_tie[gene]
                continue
            if packed:  # pairs among more groups: sorted values and codes for _walk
                _wide_keys(kept_bits[:m], kept, keys)
                _radix_sort_high32(keys[:m], keys_tmp[:m], c0, c1, c2)
                _unpack_keys(keys[:m], codes[:m], values32[:m], values[:m])
            else:
                _sortable_keys(values[:m], keys[:m])
                _radix_sort(keys[:m], codes[:m], keys_tmp[:m], codes_tmp[:m], counts, 0, 11)
                _float_values(keys[:m], values[:m])
            if global_ranks:
                rank_level[:] = 0.0
                _walk_global(  # equal values ⇔ equal keys; values are in sorted order
                    values[:m],
                    codes[:m],
                    values[:m],
                    linear,
                    gene,
                    rank_level,
                    shared_tie,
                    out_linear,
                )
                for j in range(n_contrasts):
                    out_rank_sum[j, gene] = rank_level[group_of[j]]
                    out_tie[j, gene] = shared_tie[gene]
                continue
            _walk(
                values[:m],
                codes[:m],
                values[:m],
                group_of,
                reference_of,
                linear,
                gene,
                run_counts,
                base,
                out_rank_sum,
                out_tie,
                out_linear,
            )


@numba.njit(nogil=True, cache=True)
def _float_values(keys, values):  # type: ignore[no-untyped-def]
    """Inverse of ``_sortable_keys``."""
    bits = values.view(np.uint64)
    for i in range(keys.shape[0]):
        k = keys[i]
        bits[i] = k ^ _TOP if k & _TOP else ~k


class ScratchBuffers:
    """One reusable buffer per thread for the transposed copies of successive blocks.

    A fresh 100 MB buffer costs its page faults on every block (6 % of the whole Wilcoxon test
    at 50,000 × 20,000 with two threads); the buffers live as long as this object, one per
    thread that asked.
    """

    def __init__(self) -> None:
        self._buffers: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def get(self, shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
        """A C-contiguous array of ``shape`` and ``dtype`` owned by the calling thread."""
        size = shape[0] * shape[1]
        thread = threading.get_ident()
        with self._lock:
            buffer = self._buffers.get(thread)
            if buffer is None or buffer.dtype != dtype or buffer.size < size:
                # allocated by NumPy, which asks for huge pages (numba's allocator does not)
                buffer = np.empty(size, dtype=dtype)
                self._buffers[thread] = buffer
        return buffer[:size].reshape(shape)

    def __dask_tokenize__(self) -> int:
        return id(self)

    def __reduce__(self) -> tuple[type, tuple[()]]:
        # sent to other processes (dask.distributed) it arrives empty: buffers stay local
        return (ScratchBuffers, ())


def rank_sum_block(
    block: np.ndarray,
    codes: np.ndarray,
    group_of: np.ndarray,
    reference_of: np.ndarray,
    n_levels: int,
    *,
    linear: bool,
    scratch: ScratchBuffers | None = None,
) -> dict[str, np.ndarray]:
    """Rank-sum statistics of every contrast for one block of genes holding every sample.

    Parameters
    ----------
    block : ndarray of shape (n_samples, n_genes), float32 or float64
    codes : ndarray of shape (n_samples,), int
        Group code of each sample, ``-1`` for samples outside every comparison.
    group_of, reference_of : ndarray of shape (n_contrasts,), int
        The group code of each contrast and its reference code (``-1``: every other group).
    n_levels : int
        Number of group codes.
    linear : bool
        Also sum ``expm1`` of the values per group (log1p data, for fold changes).
    scratch : ScratchBuffers, optional
        Where the transposed copy of the block is kept between calls of the same thread.

    Returns
    -------
    dict of ndarrays
        ``rank_sum`` and ``tie_term`` of shape (n_contrasts, n_genes): the group side's sum of
        average ranks and ``Σ (t³ − t)`` over the tie runs of the contrast's samples (NaN left
        out); ``count``, ``sum``, ``linear_sum`` and ``nan`` of shape (n_levels, n_genes) per
        group code; ``infinite`` of shape (n_genes,).
    """
    if block.dtype not in (np.float32, np.float64):
        block = block.astype(np.float64)
    rows = np.flatnonzero(codes >= 0)
    # rows ordered by group code: every group's values are one contiguous range of a gene
    rows = rows[np.argsort(codes[rows], kind="stable")].astype(np.int64)
    row_codes = codes[rows]
    bounds = np.searchsorted(row_codes, np.arange(n_levels + 1)).astype(np.int64)
    # float32 data leave the low 32 bits of a 64-bit key for the group code
    packed = block.dtype == np.float32
    # every contrast ranks all compared values: one-vs-rest, or only two groups compared
    global_ranks = bool(np.all(np.asarray(reference_of) < 0)) or len(np.unique(row_codes)) <= 2
    n_contrasts, n_genes = len(group_of), block.shape[1]
    out = {
        "rank_sum": np.zeros((n_contrasts, n_genes)),
        "tie_term": np.zeros((n_contrasts, n_genes)),
        "count": np.zeros((n_levels, n_genes), dtype=np.int64),
        "sum": np.zeros((n_levels, n_genes)),
        "linear_sum": np.zeros((n_levels, n_genes)),
        "nan": np.zeros((n_levels, n_genes), dtype=np.int64),
        "infinite": np.zeros(n_genes, dtype=np.int64),
    }
    flat_block, row_stride = _flat_rows(block)
    _block_statistics(
        flat_block,
        row_stride,
        block.shape[0],
        n_genes,
        (scratch or ScratchBuffers()).get((min(_RANK_PANEL, n_genes), len(rows)), block.dtype),
        rows,
        bounds,
        np.asarray(group_of, dtype=np.int64),
        np.asarray(reference_of, dtype=np.int64),
        linear,
        packed,
        global_ranks,
        out["rank_sum"],
        out["tie_term"],
        out["count"],
        out["sum"],
        out["linear_sum"],
        out["nan"],
        out["infinite"],
    )
    return out


def _flat_rows(block: np.ndarray) -> tuple[np.ndarray, int]:
    """A read-only 1-D view of ``block`` from its first value to its last, and its row stride.

    numba compiles a function once per type of its arguments, and a contiguous block, a view of
    a wider matrix and a read-only array are three types of 2-D array: handed over as this one
    flat type, every block shares one compiled ``_block_statistics`` per dtype (each ~17 s on
    first use after installation). Blocks whose rows are not runs of adjacent values (columns
    not contiguous, rows overlapping or in reverse) are copied first.

    Returns
    -------
    flat : ndarray of shape (row_stride * (n_rows - 1) + n_genes,), read-only
        Value ``[r, g]`` of the block is ``flat[r * row_stride + g]``.
    row_stride : int
        Elements from one row's start to the next.
    """
    n_rows, n_genes = block.shape
    itemsize = block.itemsize
    row_step, column_step = block.strides
    rows_are_runs = (column_step == itemsize or n_genes <= 1) and (
        n_rows <= 1 or (row_step % itemsize == 0 and row_step >= n_genes * itemsize)
    )
    if not rows_are_runs:
        block = np.ascontiguousarray(block)
        row_step = block.strides[0]
    row_stride = row_step // itemsize if n_rows > 1 else n_genes
    length = (n_rows - 1) * row_stride + n_genes if n_rows and n_genes else 0
    flat = as_strided(block, shape=(length,), strides=(itemsize,), writeable=False)
    return flat, row_stride


def walk_sorted_runs(
    sorted_values: np.ndarray, sorted_codes: np.ndarray, n_levels: int, *, linear: bool
) -> dict[str, np.ndarray]:
    """CPU twin of ``kernels/rank_sum_walk.cu``: rank sums by group from pre-sorted genes.

    The GPU path sorts each gene with CuPy and runs that kernel, one thread per gene; this is
    the same walk (``_walk_global``) over the same inputs, for the tests that hold the two equal.

    Parameters
    ----------
    sorted_values : ndarray of shape (n_genes, n_values), float
        Each gene's values in ascending order, NaN (left out) at the end of the row.
    sorted_codes : ndarray of shape (n_genes, n_values), int
        The group code (0 … n_levels − 1) of each sorted value.
    n_levels : int
        Number of group codes.
    linear : bool
        Also sum ``expm1`` of the values per group.

    Returns
    -------
    dict of ndarrays
        ``rank_level`` (n_levels, n_genes): each group's sum of average ranks among all the
        gene's non-NaN values; ``tie_term`` (n_genes,): ``Σ (t³ − t)`` over its tie runs;
        ``linear_sum`` (n_levels, n_genes).
    """
    n_genes = sorted_values.shape[0]
    values = np.ascontiguousarray(sorted_values, dtype=np.float64)
    codes = np.ascontiguousarray(sorted_codes, dtype=np.int32)
    rank_level = np.zeros((n_levels, n_genes))
    tie_term = np.zeros(n_genes)
    linear_sum = np.zeros((n_levels, n_genes))
    level = np.zeros(n_levels)
    for gene in range(n_genes):
        valid = int(np.sum(~np.isnan(values[gene])))
        level[:] = 0.0
        row = values[gene, :valid]
        _walk_global(row, codes[gene, :valid], row, linear, gene, level, tie_term, linear_sum)
        rank_level[:, gene] = level
    return {"rank_level": rank_level, "tie_term": tie_term, "linear_sum": linear_sum}
