"""Per-group sufficient statistics (count, mean, centred M2) streamed over sample chunks.

Each chunk of samples gives, for every group and gene, the number of values, their mean and
the sum of squared deviations from that mean. Within a chunk, slabs of rows small enough to
stay in the CPU cache are shifted by a provisional per-gene mean ``c`` (the mean of the chunk's
first slab) and summed, with their squares, per group in float64 (two small GEMMs against a
one-hot group matrix); then ``M2 = Σ(x − c)² − n (mean − c)²``, which loses nothing to
cancellation because ``c`` is close to the group means (the "shifted data" algorithm). Slabs and
chunks are merged with the pairwise formula of Chan, Golub and LeVeque (1979)::

    n = n_a + n_b
    delta = mean_b - mean_a
    mean = mean_a + delta * n_b / n
    M2 = M2_a + M2_b + delta² * n_a * n_b / n

in a balanced tree, so the result does not depend on the chunking (to rounding) and a gene with
a large mean and a tiny spread keeps its variance. Everything is written against ``xp``: the
same lines run on NumPy chunks and on CuPy chunks. On the CPU, a compiled loop computes the
same shifted sums in one read of each chunk (:mod:`cohortex.stats._cpu.moments`); the ``xp``
lines stay as its tested reference.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np

from .._backend import namespace, tree_reduce

__all__ = [
    "COMPILED_CPU",
    "SLAB_ELEMENTS",
    "GroupMoments",
    "chunk_moments",
    "concat_genes",
    "group_moments",
    "merge_moments",
]

# Values per slab on the CPU: 131,072 float64 values (1 MB) per temporary fit in L2 caches.
SLAB_ELEMENTS = 131_072
# NumPy chunks go through the compiled loop of ``_cpu.moments`` (one read of each value); the
# ``xp`` slab code below is the reference it is tested against, and the GPU path.
COMPILED_CPU = True


@dataclass
class GroupMoments:
    """Sufficient statistics per group and gene.

    Attributes
    ----------
    count : array of shape (n_groups, n_genes), float64
        Number of values (non-NaN values when NaN are omitted).
    mean : array of shape (n_groups, n_genes), float64
        Group means; 0 where the count is 0, NaN where a NaN propagated.
    m2 : array of shape (n_groups, n_genes), float64
        Sums of squared deviations from the group mean.
    linear_mean : array of shape (n_groups, n_genes), float64, or None
        Group means of ``expm1(x)`` (for fold changes of log1p data), when asked for.
    infinite : array of shape (n_genes,), int, or None
        Number of ±inf values per gene (all samples), when asked for.
    """

    count: Any
    mean: Any
    m2: Any
    linear_mean: Any = None
    infinite: Any = None

    def variance(self, ddof: int = 1) -> Any:
        """Per-group variances, NaN where ``count <= ddof``."""
        xp = namespace(self.m2)
        denominator = self.count - ddof
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp.where(denominator > 0, self.m2 / xp.maximum(denominator, 1), xp.nan)

    def select(self, index: Any) -> GroupMoments:
        """Moments of some groups (an index, slice or list along the group axis)."""
        linear = None if self.linear_mean is None else self.linear_mean[index]
        return GroupMoments(self.count[index], self.mean[index], self.m2[index], linear)

    def pooled(self) -> GroupMoments:
        """Merge every group into one (shape (1, n_genes)), exactly as chunks are merged."""
        result = self.select(slice(0, 1))
        for g in range(1, self.count.shape[0]):
            result = merge_moments(result, self.select(slice(g, g + 1)))
        return result


def chunk_moments(
    block: Any,
    codes: np.ndarray,
    n_groups: int,
    omit_nan: bool,
    linear: bool = False,
    count_infinite: bool = False,
) -> GroupMoments:
    """Group moments of one chunk of samples.

    On NumPy the chunk is processed in slabs of about :data:`SLAB_ELEMENTS` values whose
    float64 temporaries stay in the CPU cache (a whole 1024 × 1024 chunk at once runs ~5×
    slower, from page faults and cache misses); slabs are merged with :func:`merge_moments`.
    On CuPy the chunk is one slab.

    Parameters
    ----------
    block : array of shape (n_chunk_samples, n_genes)
        NumPy or CuPy; any float or integer dtype (computed in float64).
    codes : ndarray of shape (n_chunk_samples,), int
        Group of each sample, ``-1`` for samples left out. A host (NumPy) array.
    n_groups : int
    omit_nan : bool
        Leave NaN values out (per gene); otherwise a NaN makes its group's moments NaN.
    linear : bool, default False
        Also compute the group means of ``expm1(x)``.
    count_infinite : bool, default False
        Also count ±inf values per gene (while the slab is in cache; stores need no check).

    Returns
    -------
    GroupMoments
        Arrays of shape (n_groups, n_genes) on the block's device.
    """
    xp = namespace(block)
    rows = block.shape[0]
    if xp is np:
        rows = max(8, SLAB_ELEMENTS // max(block.shape[1], 1))
    if xp is np and COMPILED_CPU:
        return _compiled_chunk_moments(
            block, codes, n_groups, omit_nan, linear, count_infinite, rows
        )
    shift = _provisional_mean(block[:rows])
    result = None
    for start in range(0, max(block.shape[0], 1), rows):
        part = _slab_moments(
            block[start : start + rows],
            codes[start : start + rows],
            n_groups,
            omit_nan,
            linear,
            count_infinite,
            shift,
        )
        result = part if result is None else merge_moments(result, part)
    assert result is not None
    return result


def _compiled_chunk_moments(
    block: np.ndarray,
    codes: np.ndarray,
    n_groups: int,
    omit_nan: bool,
    linear: bool,
    count_infinite: bool,
    shift_rows: int,
) -> GroupMoments:
    """``chunk_moments`` on the CPU from the compiled shifted sums (one read of the chunk)."""
    from ._cpu.moments import chunk_sums  # numba: imported on the CPU path only

    sums = chunk_sums(
        block,
        codes,
        n_groups,
        shift_rows,
        omit_nan=omit_nan,
        linear=linear,
        count_infinite=count_infinite,
    )
    count, shift = sums["count"], sums["shift"]
    if not omit_nan:
        sizes = np.bincount(codes[codes >= 0], minlength=n_groups).astype(np.float64)
        count = np.repeat(sizes[:n_groups, None], block.shape[1], axis=1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        offset = np.where(count > 0, sums["s1"] / np.maximum(count, 1), 0.0)
        mean = np.where(count > 0, shift + offset, 0.0)
        m2 = np.maximum(sums["s2"] - sums["s1"] * offset, 0.0)
        linear_mean = None
        if linear:
            linear_mean = np.where(count > 0, sums["linear"] / np.maximum(count, 1), 0.0)
    infinite = sums["infinite"] if count_infinite else None
    return GroupMoments(count, mean, m2, linear_mean, infinite)


def _slab_moments(
    block: Any,
    codes: np.ndarray,
    n_groups: int,
    omit_nan: bool,
    linear: bool,
    count_infinite: bool,
    shift: Any,
) -> GroupMoments:
    """Moments of one slab of rows from shifted sums (see the module notes)."""
    xp = namespace(block)
    infinite = xp.sum(xp.isinf(block), axis=0) if count_infinite else None
    keep = codes >= 0
    if not keep.all():  # drop left-out samples: 0 × NaN would still be NaN in the products
        block = block[xp.asarray(np.flatnonzero(keep))]
        codes = codes[keep]
    onehot_host = (codes[None, :] == np.arange(n_groups)[:, None]).astype(np.float64)
    onehot = xp.asarray(onehot_host)
    x = _work_buffer(xp, block.shape)
    # ±inf in the data give inf - inf below; they are counted and reported by the caller
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        xp.subtract(block, shift, out=x)  # float64, shifted by a provisional mean
        if omit_nan:
            missing = xp.isnan(x)
            xp.copyto(x, 0.0, where=missing)  # a masked write, not a boolean index (a sync)
            count = onehot @ (~missing).astype(xp.float64)
        else:
            count = xp.repeat(xp.asarray(onehot_host.sum(axis=1))[:, None], x.shape[1], axis=1)
        sums = onehot @ x
        xp.multiply(x, x, out=x)
        squares = onehot @ x
        offset = xp.where(count > 0, sums / xp.maximum(count, 1), 0.0)
        mean = xp.where(count > 0, shift + offset, 0.0)
        m2 = xp.maximum(squares - sums * offset, 0.0)  # Σ(x - c)² - n (mean - c)²
        linear_mean = None
        if linear:
            values = xp.expm1(block.astype(xp.float64))
            if omit_nan:
                xp.copyto(values, 0.0, where=missing)
            linear_mean = xp.where(count > 0, (onehot @ values) / xp.maximum(count, 1), 0.0)
    return GroupMoments(count, mean, m2, linear_mean, infinite)


def _provisional_mean(block: Any) -> Any:
    """Per-gene mean of the finite values of ``block`` (0 where there are none), float64."""
    xp = namespace(block)
    values = block.astype(xp.float64)
    finite = xp.isfinite(values)
    n = xp.sum(finite, axis=0)
    total = xp.sum(xp.where(finite, values, 0.0), axis=0)
    return xp.where(n > 0, total / xp.maximum(n, 1), 0.0)


_scratch = threading.local()


def _work_buffer(xp: Any, shape: tuple[int, int]) -> Any:
    """A float64 array of ``shape`` for in-place work.

    On the CPU it is kept per thread and reused: a fresh megabyte-sized temporary is mapped
    and page-faulted by the allocator on every call, which costs more than the arithmetic.
    CuPy's memory pool already reuses device memory.
    """
    if xp is not np:
        return xp.empty(shape, dtype=xp.float64)
    rows, columns = shape
    buffer = getattr(_scratch, "buffer", None)
    if buffer is None or buffer.shape[0] < rows or buffer.shape[1] != columns:
        buffer = np.empty(shape)
        _scratch.buffer = buffer
    return buffer[:rows]


def merge_moments(a: GroupMoments, b: GroupMoments) -> GroupMoments:
    """Chan et al.'s pairwise merge of two sets of moments over disjoint samples."""
    xp = namespace(a.count)
    n = a.count + b.count
    delta = b.mean - a.mean
    with np.errstate(divide="ignore", invalid="ignore"):
        weight_b = xp.where(n > 0, b.count / xp.maximum(n, 1), 0.0)
        mean = a.mean + delta * weight_b
        m2 = a.m2 + b.m2 + delta * delta * a.count * weight_b
        linear = None
        if a.linear_mean is not None and b.linear_mean is not None:
            linear = a.linear_mean + (b.linear_mean - a.linear_mean) * weight_b
    infinite = None
    if a.infinite is not None and b.infinite is not None:
        infinite = a.infinite + b.infinite
    return GroupMoments(n, mean, m2, linear, infinite)


def concat_genes(parts: list[GroupMoments]) -> GroupMoments:
    """Moments of consecutive blocks of genes, joined along genes."""
    xp = namespace(parts[0].count)
    linear = infinite = None
    if parts[0].linear_mean is not None:
        linear = xp.concatenate([p.linear_mean for p in parts], axis=1)
    if parts[0].infinite is not None:
        infinite = xp.concatenate([p.infinite for p in parts])
    return GroupMoments(
        xp.concatenate([p.count for p in parts], axis=1),
        xp.concatenate([p.mean for p in parts], axis=1),
        xp.concatenate([p.m2 for p in parts], axis=1),
        linear,
        infinite,
    )


def group_moments(
    x: Any,
    codes: np.ndarray,
    n_groups: int,
    *,
    omit_nan: bool,
    linear: bool = False,
    count_infinite: bool = False,
) -> Any:
    """Group moments of a whole (samples × genes) Dask array, as one lazy pass over its chunks.

    Parameters
    ----------
    x : dask.array.Array of shape (n_samples, n_genes)
        NumPy or CuPy chunks.
    codes : ndarray of shape (n_samples,), int
        Group of each sample (``-1``: left out), on the host.
    n_groups : int
    omit_nan, linear, count_infinite : bool
        As for :func:`chunk_moments`.

    Returns
    -------
    dask.delayed.Delayed
        Computes to a :class:`GroupMoments` of shape (n_groups, n_genes) on the chunks' device.
        Compute it together with other reductions of ``x`` to read the chunks once.
    """
    blocks = x.to_delayed()
    row_edges = np.cumsum((0, *x.chunks[0]))
    per_gene_block = []
    moments = dask.delayed(chunk_moments, pure=True)
    for j in range(blocks.shape[1]):
        leaves = [
            moments(
                blocks[i, j],
                codes[row_edges[i] : row_edges[i + 1]],
                n_groups,
                omit_nan,
                linear,
                count_infinite,
            )
            for i in range(blocks.shape[0])
        ]
        per_gene_block.append(tree_reduce(leaves, merge_moments))
    return dask.delayed(concat_genes)(per_gene_block)
