"""A block transposed panel by panel into per-gene rows (each gene's values contiguous), taking
each float32 gene's NaN and ±inf counts, image range and group sums while the panel is in
cache; a gene with NaN is compacted first."""

from __future__ import annotations

import numpy as np

from ..._jit import njit
from .radix import float_image

__all__ = [
    "GENE_PANEL",
    "ROW_PANEL",
    "compact_float32",
    "compact_values",
    "segment_scan",
    "segment_sum",
    "transpose_panel",
    "transpose_rows",
    "transpose_scan",
]


ROW_PANEL = 512  # rows per transposition panel: 512 × 256 float32 read (512 KB) stay in L2


GENE_PANEL = 256


@njit(nogil=True, cache=True)
def compact_float32(row, bounds, values32, level_sum, level_count, level_nan, kept):  # type: ignore[no-untyped-def]
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
            k = float_image(bits[m])
            low = min(low, k)
            high = max(high, k)
            m += 1
        level_sum[g] = total
        level_count[g] = m - kept[g]
        level_nan[g] = nan
    kept[bounds.shape[0] - 1] = m
    return low, high, infinite


@njit(nogil=True, cache=True)
def compact_values(row, bounds, values, codes, level_sum, level_count, level_nan, kept):  # type: ignore[no-untyped-def]
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


@njit(nogil=True, cache=True)
def transpose_panel(block, rows, out, i0, i1, g0, g1):  # type: ignore[no-untyped-def]
    """``out[g, i] = block[rows[i], g]`` for rows ``i0:i1`` and genes ``g0:g1``.

    Four genes at a time: each row index is read once for four values of one cache line, and
    four output rows are written contiguously (~40 % less time per value than one gene at a
    time on a 50,000 × 512 view of a 20,000-gene matrix).
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


@njit(nogil=True, cache=True)
def transpose_rows(block, rows, out):  # type: ignore[no-untyped-def]
    """``out[:] = block[rows].T`` (out C-contiguous, (n_genes, n_rows)), panel by panel.

    Panels of 512 rows × 256 genes: what they read stays in L2 while each gene's 512 values
    are gathered and written contiguously (10× faster than ``np.ascontiguousarray(block.T)``
    here; 30 % faster than copying row by row in 64-row panels, measured interleaved).
    """
    n_rows = rows.shape[0]
    n_genes = block.shape[1]
    for i0 in range(0, n_rows, ROW_PANEL):
        i1 = min(i0 + ROW_PANEL, n_rows)
        for g0 in range(0, n_genes, GENE_PANEL):
            transpose_panel(block, rows, out, i0, i1, g0, min(g0 + GENE_PANEL, n_genes))


@njit(nogil=True, cache=True)
def segment_scan(values):  # type: ignore[no-untyped-def]
    """Numbers of NaN and ±inf in float32 ``values``, and the lowest and highest ``image``."""
    bits = values.view(np.uint32)
    nan = 0
    infinite = 0
    low = np.uint32(0xFFFFFFFF)
    high = np.uint32(0)
    for i in range(values.shape[0]):
        v = values[i]
        nan += v != v
        infinite += np.abs(v) == np.inf
        image = float_image(bits[i])
        low = min(low, image)
        high = max(high, image)
    return nan, infinite, low, high


@njit(nogil=True, cache=True, fastmath={"reassoc"})
def segment_sum(values):  # type: ignore[no-untyped-def]
    """Sum of float32 ``values`` in float64 (reassociated: the compiler vectorises it)."""
    total = 0.0
    for i in range(values.shape[0]):
        total += np.float64(values[i])
    return total


@njit(nogil=True, cache=True)
def transpose_scan(block, rows, bounds, out, low, high, nan, infinite, sums):  # type: ignore[no-untyped-def]
    """``transpose_rows`` for float32 blocks, taking each gene's statistics on the way.

    Per gene: the lowest and highest image of its values (``image``), its numbers of NaN and
    ±inf, and each group's sum (``sums``, (n_levels, n_genes), float64), read from each panel
    of the transposed copy while it is still in cache (``segment_scan``, ``segment_sum``: flat
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
    for i0 in range(0, n_rows, ROW_PANEL):
        i1 = min(i0 + ROW_PANEL, n_rows)
        for g0 in range(0, n_genes, GENE_PANEL):
            g1 = min(g0 + GENE_PANEL, n_genes)
            transpose_panel(block, rows, out, i0, i1, g0, g1)
            for g in range(g0, g1):  # the panel's statistics while it is in cache
                gene_nan, gene_infinite, gene_low, gene_high = segment_scan(out[g, i0:i1])
                nan[g] += gene_nan
                infinite[g] += gene_infinite
                low[g] = min(low[g], gene_low)
                high[g] = max(high[g], gene_high)
                for c in range(n_levels):
                    start = max(bounds[c], i0)
                    stop = min(bounds[c + 1], i1)
                    if start < stop:
                        sums[c, g] += segment_sum(out[g, start:stop])
