"""Selection of order statistics in linear time (numba), for the compiled CPU loops that
need a quantile or a trim cut-off of many rows or columns without sorting them."""

from __future__ import annotations

import numpy as np

from ..._jit import njit

__all__ = ["quantile_type7", "select"]


@njit(nogil=True, cache=True)
def select(values, k):  # type: ignore[no-untyped-def]
    """Reorder ``values`` (1-D, no NaN) in place so that ``values[k]`` is its k-th smallest,
    no value before it larger and none after it smaller; return that value.

    Quickselect with median-of-three pivots and three-way partitions (less, equal, greater),
    each a branchless pass: which side a value falls on is data the processor cannot predict
    (numba's ``np.partition`` took 4× as long on random values). Sorted, reversed or constant
    values stay linear; after 2 log₂ n + 8 rounds — values crafted against the pivots — the
    range left is sorted instead, so no input costs more than n log n.
    """
    low, high = 0, values.size  # the k-th smallest lies in values[low:high]
    rounds, limit = 0, 2 * int(np.log2(values.size + 1)) + 8
    while high - low > 16:
        rounds += 1
        if rounds > limit:
            values[low:high].sort()
            return values[k]
        middle = (low + high - 1) // 2
        a, b, c = values[low], values[middle], values[high - 1]
        pivot = max(min(a, b), min(max(a, b), c))
        less = low  # values[low:less] < pivot, values[less:i] ≥ pivot
        for i in range(low, high):
            value = values[i]
            values[i] = values[less]
            values[less] = value
            less += value < pivot
        if k < less:
            high = less
            continue
        equal = less  # values[less:equal] == pivot, values[equal:i] > pivot
        for i in range(less, high):
            value = values[i]
            values[i] = values[equal]
            values[equal] = value
            equal += value <= pivot
        if k < equal:
            return pivot
        low = equal
    for i in range(low + 1, high):  # a short range left: insertion sort
        value = values[i]
        j = i - 1
        while j >= low and values[j] > value:
            values[j + 1] = values[j]
            j -= 1
        values[j + 1] = value
    return values[k]


@njit(nogil=True, cache=True)
def quantile_type7(values, quantile):  # type: ignore[no-untyped-def]
    """R's ``quantile(values, quantile)`` (type 7) of ``values`` (1-D, no NaN, not empty),
    which it reorders; R's arithmetic, ``(1 − h) · x₍ₖ₎ + h · x₍ₖ₊₁₎``."""
    count = values.size
    position = quantile * (count - 1)
    low = int(np.floor(position))
    lower = select(values, low)
    if low + 1 >= count:
        return lower
    upper = values[low + 1]  # the next order statistic: the least value past the low one
    for i in range(low + 2, count):
        if values[i] < upper:
            upper = values[i]
    if upper == lower:
        return lower
    h = position - low
    return (1.0 - h) * lower + h * upper
