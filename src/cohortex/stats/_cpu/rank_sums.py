"""Compiled rank-sum statistics for one block of genes (CPU, numba), and the run walk they share
with the CUDA kernel ``kernels/rank_sum_walk.cu``.

Why compiled: ranking needs a sort per gene, and NumPy's ``argsort`` plus the tie bookkeeping in
:func:`cohortex.stats._ranks.average_ranks` costs ~10 passes over float64 copies of the block
(at 50,000 × 2,000 hardly faster than scanpy; compiled, ~28× it: benchmarks/RESULTS.md).

The strategies live beside this driver: ``panels.py`` (transposition and per-gene scans),
``tally.py`` (few distinct values), ``narrow.py`` (32-bit keys), ``radix.py`` (keys and sorts)
and ``walks.py`` (64-bit keys, pairs among more groups).

Per block: the samples are ordered by group code, so that each group's values are one range of
a gene, and the (samples, genes) block is transposed panel by panel into a per-thread buffer
(``ScratchBuffers``) so that each gene's values are contiguous. For float32 data the same pass
takes each gene's NaN and ±inf counts, its group sums and the range of the order-preserving
integer images of its values (``float_image``). Per gene, when every contrast ranks all compared
values (one-vs-rest, or two groups):

* at most 256 distinct values (counts, log1p counts): a small hash table tallies each distinct
  value per group; no sort (``tally_distinct``, ``walk_tally``);
* otherwise, when image − lowest image fits in 32 − code bits (practically every positive gene:
  log-normal data span 21–28 bits): 32-bit keys ``(image − low) << code_bits | code`` sorted on
  their value bits by an LSD radix sort of one to three passes (``narrow_sort``); each key's
  position + 1 is summed by code and values equal to their predecessor are flagged in branch-free
  loops (``narrow_positions``), and only runs of equal values are then moved to their average
  rank (``correct_ties``);
* otherwise 64-bit keys (image above, code below) in three 11-bit passes and a walk over runs.

A run of t equal values spans ranks base+1 … base+t, so each of its values has the average rank
base + (t + 1) / 2; a contrast counts only the values of its own two sides in t and base. Pairs
among more groups sort 64-bit keys and walk with a base per contrast (``walk``); float64 data
sort 64-bit keys in six passes with the codes moved alongside. A gene with NaN is compacted
first (NaN counted per group). Sums of ``expm1`` (log1p data) are taken once per run. -0.0 is
ranked as +0.0 (they compare equal). The plain-NumPy reference for the tests is
:func:`cohortex.stats._ranks.average_ranks`.
"""

from __future__ import annotations

import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..._jit import njit
from .layout import flat_rows
from .narrow import NARROW_DIGIT_BITS, correct_ties, linear_runs, narrow_positions, narrow_sort
from .panels import compact_float32, compact_values, transpose_rows, transpose_scan
from .radix import (
    float_values,
    radix_sort,
    radix_sort_high32,
    sortable_keys,
    unpack_keys,
    wide_keys,
)
from .tally import TALLY_SLOTS, tally_distinct, walk_tally
from .walks import walk, walk_global, walk_global_packed

__all__ = ["RANK_PANEL", "ScratchBuffers", "block_statistics", "rank_sum_block", "walk_sorted_runs"]


RANK_PANEL = 1024  # genes transposed, then ranked, at a time (blocks are at most this wide)


@njit(nogil=True, cache=True)
def block_statistics(  # type: ignore[no-untyped-def]
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
    # the (samples, genes) block back from its flat view (see ``flat_rows``)
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
    narrow_counts = np.empty((3, 1 << NARROW_DIGIT_BITS), dtype=np.uint32)
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
    slot_keys = np.empty(TALLY_SLOTS, dtype=np.uint32)
    slot_counts = np.zeros((TALLY_SLOTS, n_levels), dtype=np.int64)
    keys = np.empty(n_rows, dtype=np.uint64)
    keys_tmp = np.empty(n_rows, dtype=np.uint64)
    codes = np.empty(n_rows, dtype=np.int32)
    codes_tmp = np.empty(n_rows, dtype=np.int32)
    run_counts = np.zeros(n_levels, dtype=np.int64)
    base = np.empty(group_of.shape[0], dtype=np.float64)
    for p0 in range(0, n_genes, RANK_PANEL):
        # up to RANK_PANEL genes at a time (the width of the transposition buffer)
        p1 = min(p0 + RANK_PANEL, n_genes)
        if packed:
            transpose_scan(
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
            transpose_rows(block[:, p0:p1], rows, by_gene)
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
                    low, high, infinite = compact_float32(
                        row, bounds, values32, level_sum, level_count, level_nan, kept
                    )
                    kept_bits = values32.view(np.uint32)
            else:
                infinite = compact_values(
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
                if tally_distinct(kept_bits[:m], kept, slot_keys, slot_counts) >= 0:
                    # few distinct values (counts, log1p counts; also a gene of one value, which
                    # the sorts below do not take): tallied, no sort
                    walk_tally(
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
                    narrow_sort(
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
                    equal = narrow_positions(narrow[:m], code_bits, positions, equal_flags)
                    for g in range(n_levels):
                        rank_level[g] = positions[g]
                    shared_tie[gene] = (
                        correct_ties(narrow[:m], equal_flags, code_bits, rank_level)
                        if equal > 0
                        else 0.0
                    )
                    if linear:
                        linear_runs(narrow[:m], code_bits, low, gene, out_linear, scratch32)
                else:
                    wide_keys(kept_bits[:m], kept, keys)
                    radix_sort_high32(keys[:m], keys_tmp[:m], c0, c1, c2)
                    walk_global_packed(
                        keys[:m], linear, gene, rank_level, shared_tie, out_linear, scratch32
                    )
                for j in range(n_contrasts):
                    out_rank_sum[j, gene] = rank_level[group_of[j]]
                    out_tie[j, gene] = shared_tie[gene]
                continue
            if packed:  # pairs among more groups: sorted values and codes for walk
                wide_keys(kept_bits[:m], kept, keys)
                radix_sort_high32(keys[:m], keys_tmp[:m], c0, c1, c2)
                unpack_keys(keys[:m], codes[:m], values32[:m], values[:m])
            else:
                sortable_keys(values[:m], keys[:m])
                radix_sort(keys[:m], codes[:m], keys_tmp[:m], codes_tmp[:m], counts, 0, 11)
                float_values(keys[:m], values[:m])
            if global_ranks:
                rank_level[:] = 0.0
                walk_global(  # equal values ⇔ equal keys; values are in sorted order
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
            walk(
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


def warm_up(dtype: np.dtype) -> None:
    """Compile (or load from the disk cache) the rank-sum loops for ``dtype``: a tiny block
    with ties, so that the whole call graph of one signature is built."""
    block = np.array([[1.0, 2.0], [1.0, 3.0], [2.0, 3.0], [5.0, 1.0]], dtype=dtype)
    codes = np.array([0, 0, 1, 1], dtype=np.int64)
    rank_sum_block(
        block, codes, np.array([0]), np.array([1]), 2, linear=False, scratch=ScratchBuffers()
    )


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
    flat_block, row_stride = flat_rows(block)
    block_statistics(
        flat_block,
        row_stride,
        block.shape[0],
        n_genes,
        (scratch or ScratchBuffers()).get((min(RANK_PANEL, n_genes), len(rows)), block.dtype),
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


def walk_sorted_runs(
    sorted_values: np.ndarray, sorted_codes: np.ndarray, n_levels: int, *, linear: bool
) -> dict[str, np.ndarray]:
    """CPU twin of ``kernels/rank_sum_walk.cu``: rank sums by group from pre-sorted genes.

    The GPU path sorts each gene with CuPy and runs that kernel, one thread per gene; this is
    the same walk (``walk_global``) over the same inputs, for the tests that hold the two equal.

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
        walk_global(row, codes[gene, :valid], row, linear, gene, level, tie_term, linear_sum)
        rank_level[:, gene] = level
    return {"rank_level": rank_level, "tie_term": tie_term, "linear_sum": linear_sum}
