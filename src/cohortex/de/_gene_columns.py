"""Passes that need every sample of a gene at once: one task per column of tiles.

The block model (a block's samples may lie anywhere among the rows) and the sample weights
(each gene's fit and leverages over all samples) read the matrix this way: every tile is read
once per pass, and a task hands its genes on as many at a time as memory allows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np

from .._backend import namespace, to_host, tree_reduce

__all__ = ["TASK_GENES", "VALUES_PER_BLOCK", "gene_columns", "per_gene"]

# genes per task at most (a column of the store's tiles, or of an in-memory matrix)
TASK_GENES = 1024

# float64 values of the genes × samples handled at once inside a task: ~16 MB, a few copies
VALUES_PER_BLOCK = 2_000_000


def gene_columns(
    arrays: list[da.Array],
    per_block: Callable[..., dict[str, Any]],
    position: np.ndarray | None = None,
    *,
    add: bool = False,
    values_per_gene: int = 1,
) -> dict[str, Any]:
    """``per_block`` of every gene with all its samples, joined along genes or added up.

    One task per column of tiles (at most :data:`TASK_GENES` genes of it), which hands its
    genes to ``per_block`` as many at a time as :data:`VALUES_PER_BLOCK` allows — one float64
    array of shape (n_samples, genes) per array of ``arrays`` (the values, then the weights
    when there are any), each tile's rows put in their place as they are read.

    Parameters
    ----------
    arrays : list of dask arrays of shape (n_samples, n_genes)
        In the same chunks.
    per_block : callable
        ``per_block(y[, w])`` → dict of arrays: per gene along the last axis, or sums.
    position : ndarray of shape (n_samples,), optional
        Each row's place in the arrays ``per_block`` receives; default: rows as they are.
    add : bool, default False
        ``False``: the outputs are per gene and are joined along their last axis. ``True``:
        they are sums, added up over the genes' blocks and the tasks (a balanced tree).
    values_per_gene : int, default 1
        How many float64 values ``per_block`` holds at once per gene and sample, beside the
        inputs (it shrinks the blocks).
    """
    x = arrays[0]  # the weights come in its chunks (weights_for)
    tiles = [a.to_delayed() for a in arrays]
    row_edges = np.cumsum((0, *x.chunks[0]))
    # where each tile's rows go (slices when in place); one key in the graph, not a copy in
    # every task
    rows: list[Any] = [
        slice(a, b) if position is None else position[a:b] for a, b in itertools.pairwise(row_edges)
    ]
    plan = dask.delayed(rows, pure=True)
    column = dask.delayed(_column, pure=True)
    # one key for the function too: a bound method is hashed by pickling its object (an
    # in-memory cohort with it), which every task's key would otherwise do again
    function = dask.delayed(per_block, pure=False)
    per_value = x.shape[0] * (len(arrays) + values_per_gene - 1)
    genes_per_block = max(1, VALUES_PER_BLOCK // max(per_value, 1))
    parts = [
        column(
            [list(t[:, j]) for t in tiles],
            slice(start, min(start + TASK_GENES, width)),
            plan,
            function,
            genes_per_block,
            add,
        )
        for j, width in enumerate(x.chunks[1])
        for start in range(0, width, TASK_GENES)
    ]
    if add:
        (total,) = dask.compute(tree_reduce(parts, _add))
        return total
    (parts,) = dask.compute(parts)
    xp = namespace(next(iter(parts[0].values())))
    return {name: xp.concatenate([part[name] for part in parts], axis=-1) for name in parts[0]}


def _add(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    return {name: first[name] + second[name] for name in first}


def _column(
    tiles: list[list[Any]],
    genes: slice,
    positions: list[Any],
    per_block: Callable[..., dict[str, Any]],
    genes_per_block: int,
    add: bool,
) -> dict[str, Any]:
    xp = namespace(tiles[0][0])
    tiles = [[tile[:, genes] for tile in column] for column in tiles]
    targets = [rows if isinstance(rows, slice) else xp.asarray(rows) for rows in positions]
    n_samples = sum(tile.shape[0] for tile in tiles[0])
    width_all = tiles[0][0].shape[1]
    blocks: dict[str, list[Any]] = {}
    total: dict[str, Any] | None = None
    for start in range(0, width_all, genes_per_block):
        block = slice(start, min(start + genes_per_block, width_all))
        ordered = []
        for column in tiles:
            y = xp.empty((n_samples, block.stop - block.start), dtype=xp.float64)
            for tile, rows in zip(column, targets, strict=True):
                y[rows] = tile[:, block]
            ordered.append(y)
        out = per_block(*ordered)
        if add:
            total = out if total is None else _add(total, out)
            continue
        for name, values in out.items():
            blocks.setdefault(name, []).append(values)
    if add:
        assert total is not None  # a task has at least one gene
        return total
    return {name: xp.concatenate(parts, axis=-1) for name, parts in blocks.items()}


def per_gene(
    counts: da.Array, function: Callable[..., np.ndarray], rows: int, *gene_values: np.ndarray
) -> np.ndarray:
    """``function(tile, [gene_values of the tile's genes])`` over the gene tiles, in
    parallel (numba releases the GIL): its (rows × tile genes) results side by side."""
    aligned = [
        da.from_array(np.asarray(v, dtype=np.float64)[None, :], chunks=(1, counts.chunks[1]))
        for v in gene_values
    ]

    def block(tile: Any, *values: Any) -> np.ndarray:
        if tile.shape[1] == 0:  # a tile that keeps no gene of a selection
            return np.empty((rows, 0))
        host = np.asarray(to_host(tile), dtype=np.float64)
        return function(host, [np.asarray(v)[0] for v in values])

    out = da.map_blocks(
        block,
        counts,
        *aligned,
        chunks=((rows,), counts.chunks[1]),
        dtype=np.float64,
        meta=np.empty((0, 0)),
    )
    return np.asarray(out.compute())
