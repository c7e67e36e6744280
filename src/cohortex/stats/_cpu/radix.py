"""Order-preserving integer images of floats, the keys built from them, and the LSD radix
sorts over those keys (shared by the narrow and wide strategies of the rank sums)."""

from __future__ import annotations

import numpy as np

from ..._jit import njit

__all__ = [
    "ALL_64",
    "HIGH_DIGIT_BITS",
    "LOW_32",
    "SIGN_32",
    "TOP",
    "digit_histograms",
    "float_image",
    "float_values",
    "radix_sort",
    "radix_sort_high32",
    "scatter",
    "sortable_keys",
    "unpack_keys",
    "value_of_image",
    "wide_keys",
]


TOP = np.uint64(1) << np.uint64(63)


ALL_64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(nogil=True, cache=True)
def sortable_keys(values, keys):  # type: ignore[no-untyped-def]
    """Order-preserving unsigned image of float64 values (finite or infinite, no NaN)."""
    bits = values.view(np.uint64)
    for i in range(values.shape[0]):
        b = bits[i]
        keys[i] = ~b if b & TOP else b | TOP


@njit(nogil=True, cache=True)
def radix_sort(keys, payload, keys_tmp, payload_tmp, counts, first_bit, digit_bits):  # type: ignore[no-untyped-def]
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


SIGN_32 = np.uint32(0x80000000)


LOW_32 = np.uint64(0xFFFFFFFF)


HIGH_DIGIT_BITS = 11  # 2,048 buckets: three passes over bits 32..64


@njit(nogil=True, cache=True)
def float_image(bits):  # type: ignore[no-untyped-def]
    """Order-preserving unsigned image of a float32 bit pattern (not NaN); −0.0 maps as +0.0.

    Negative values have every bit flipped, others only the sign bit, without a branch.
    """
    bits = np.uint32(0) if bits == SIGN_32 else bits
    return bits ^ (np.uint32(np.int32(bits) >> np.int32(31)) | SIGN_32)


@njit(nogil=True, cache=True)
def value_of_image(image):  # type: ignore[no-untyped-def]
    """The float32 bit pattern whose order-preserving image is ``image``."""
    return image ^ SIGN_32 if image & SIGN_32 else ~image


@njit(nogil=True, cache=True)
def wide_keys(bits, bounds, keys):  # type: ignore[no-untyped-def]
    """64-bit keys: a value's image in the high 32 bits, its group code in the low 32.

    ``bits`` (float32 bit patterns, no NaN) are ordered by group: those of code g are
    ``bits[bounds[g]:bounds[g + 1]]``.
    """
    for g in range(bounds.shape[0] - 1):
        code = np.uint64(g)
        for i in range(bounds[g], bounds[g + 1]):
            keys[i] = (np.uint64(float_image(bits[i])) << np.uint64(32)) | code


@njit(nogil=True, cache=True)
def unpack_keys(keys, codes, values32, values):  # type: ignore[no-untyped-def]
    """Codes and float values back from sorted 64-bit keys, the inverse of ``wide_keys``."""
    bits = values32.view(np.uint32)
    for i in range(keys.shape[0]):
        k = keys[i]
        codes[i] = np.int32(k & LOW_32)
        bits[i] = value_of_image(np.uint32(k >> np.uint64(32)))
        values[i] = np.float64(values32[i])


@njit(nogil=True, cache=True)
def digit_histograms(keys, c0, c1, c2):  # type: ignore[no-untyped-def]
    """Counts of the three 11-bit digits of bits 32..64 of every key, in one read."""
    c0[:] = 0
    c1[:] = 0
    c2[:] = 0
    for i in range(keys.shape[0]):
        k = keys[i]
        c0[(k >> np.uint64(32)) & np.uint64(2047)] += 1
        c1[(k >> np.uint64(43)) & np.uint64(2047)] += 1
        c2[(k >> np.uint64(54)) & np.uint64(2047)] += 1


@njit(nogil=True, cache=True)
def scatter(source, target, starts, shift, mask):  # type: ignore[no-untyped-def]
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


@njit(nogil=True, cache=True)
def radix_sort_high32(keys, keys_tmp, c0, c1, c2):  # type: ignore[no-untyped-def]
    """Sort packed keys by their high 32 bits (LSD, stable; skips passes no digit varies in)."""
    n = keys.shape[0]
    digit_histograms(keys, c0, c1, c2)
    source, target = keys, keys_tmp
    moved = 0
    for p in range(3):
        counts = c0 if p == 0 else (c1 if p == 1 else c2)
        if counts.max() == n:
            continue
        scatter(source, target, counts, np.uint64(32 + 11 * p), np.uint64(2047))
        source, target = target, source
        moved += 1
    if moved % 2 == 1:  # the sorted keys are in the scratch array
        keys[:] = keys_tmp


@njit(nogil=True, cache=True)
def float_values(keys, values):  # type: ignore[no-untyped-def]
    """Inverse of ``sortable_keys``."""
    bits = values.view(np.uint64)
    for i in range(keys.shape[0]):
        k = keys[i]
        bits[i] = k ^ TOP if k & TOP else ~k
