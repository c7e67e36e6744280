"""The pairs of a paired test, gathered where the matrix's tiles lie: one task per column of
tiles computes both sides' moments and hands the pairs' differences, a block of genes at a
time, to the test's own statistic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np

from .._backend import namespace
from ..stats._moments import GroupMoments, chunk_moments, concat_genes, merge_moments
from ._gene_columns import TASK_GENES, VALUES_PER_BLOCK

__all__ = ["pair_columns"]


def pair_columns(
    x: da.Array,
    group_rows: np.ndarray,
    reference_rows: np.ndarray,
    per_block: Callable[[Any], dict[str, Any]],
    *,
    omit_nan: bool,
    linear: bool,
    count_infinite: bool,
) -> tuple[GroupMoments, dict[str, Any]]:
    """Both sides' moments and ``per_block`` of the pairs' differences, for every gene.

    Each column of ``x``'s tiles (at most ``TASK_GENES`` of its genes, as every pass that
    holds all samples of a gene) is one task: it takes the moments of the two sides from each
    tile (as :func:`cohortex.stats.group_moments` would) and gathers the pairs' rows from the
    tiles into float64 differences ``group - reference``, as many genes at a time as
    ``VALUES_PER_BLOCK`` allows, which it passes to ``per_block``. Every tile is read once;
    Dask's row indexing of the two sides, aligned and rechunked into blocks of all pairs,
    cost as much as the test itself.

    Parameters
    ----------
    x : dask.array.Array of shape (n_samples, n_genes)
        NumPy or CuPy tiles.
    group_rows, reference_rows : ndarray of shape (n_pairs,)
        The two samples of each pair.
    per_block : callable
        Takes the differences of a block of genes, an array of shape (n_pairs, block_genes),
        and returns a dict of arrays of shape (..., block_genes) (genes last).
    omit_nan, linear, count_infinite : bool
        As for :func:`cohortex.stats.chunk_moments`.

    Returns
    -------
    moments : GroupMoments
        Of shape (2, n_genes): the group's side, then the reference's.
    columns : dict of arrays
        ``per_block``'s arrays, joined along genes.
    """
    row_edges = np.cumsum((0, *x.chunks[0]))
    codes = np.full(x.shape[0], -1, dtype=np.int64)
    codes[group_rows], codes[reference_rows] = 0, 1
    # where each pair's two samples lie: (tile, row in the tile) for either side
    locations = []
    for rows in (group_rows, reference_rows):
        tile = np.searchsorted(row_edges, rows, side="right") - 1
        locations.append((tile, rows - row_edges[tile]))
    # one key in the graph, not a copy in every task (what a cluster would ship)
    plan = dask.delayed((row_edges, codes, locations), pure=True)
    column = dask.delayed(_column, pure=True)
    genes_per_block = max(1, VALUES_PER_BLOCK // max(group_rows.size, 1))
    tiles = x.to_delayed()
    parts = [
        column(
            list(tiles[:, j]),
            slice(start, min(start + TASK_GENES, width)),
            plan,
            per_block,
            genes_per_block,
            omit_nan,
            linear,
            count_infinite,
        )
        for j, width in enumerate(x.chunks[1])
        for start in range(0, width, TASK_GENES)
    ]
    (parts,) = dask.compute(parts)
    xp = namespace(parts[0][0].count)
    columns = {
        name: xp.concatenate([part[1][name] for part in parts], axis=-1) for name in parts[0][1]
    }
    return concat_genes([part[0] for part in parts]), columns


def _column(
    tiles: list[Any],
    genes: slice,
    plan: tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]],
    per_block: Callable[[Any], dict[str, Any]],
    genes_per_block: int,
    omit_nan: bool,
    linear: bool,
    count_infinite: bool,
) -> tuple[GroupMoments, dict[str, Any]]:
    """One column of tiles (its ``genes``): the sides' moments and ``per_block`` of its pairs'
    differences.

    ``plan``: the row edges of the tiles, each sample's side (0, 1 or -1: in no pair) and,
    per side, each pair's tile and row in it.
    """
    row_edges, codes, locations = plan
    tiles = [tile[:, genes] for tile in tiles]
    xp = namespace(tiles[0])
    leaves = [
        chunk_moments(
            tile,
            codes[row_edges[i] : row_edges[i + 1]],
            2,
            omit_nan,
            linear,
            count_infinite,
        )
        for i, tile in enumerate(tiles)
    ]
    while len(leaves) > 1:  # a balanced tree, as group_moments merges tiles
        merged = [merge_moments(leaves[i], leaves[i + 1]) for i in range(0, len(leaves) - 1, 2)]
        leaves = merged + ([leaves[-1]] if len(leaves) % 2 else [])
    # per tile, the pairs whose sample lies in it and that sample's row there
    gathers = []
    for tile_of_pair, row_in_tile in locations:
        per_tile = []
        for i in np.unique(tile_of_pair):
            pairs = np.flatnonzero(tile_of_pair == i)
            per_tile.append((int(i), xp.asarray(pairs), xp.asarray(row_in_tile[pairs])))
        gathers.append(per_tile)
    n_pairs, n_genes = locations[0][0].size, tiles[0].shape[1]
    blocks: dict[str, list[Any]] = {}
    for start in range(0, n_genes, genes_per_block):
        block = slice(start, min(start + genes_per_block, n_genes))
        width = block.stop - block.start
        sides = []
        for per_tile in gathers:
            side = xp.empty((n_pairs, width), dtype=xp.float64)
            for i, pairs, rows in per_tile:
                side[pairs] = tiles[i][rows, block]
            sides.append(side)
        for name, values in per_block(sides[0] - sides[1]).items():
            blocks.setdefault(name, []).append(values)
    return leaves[0], {name: xp.concatenate(parts, axis=-1) for name, parts in blocks.items()}
