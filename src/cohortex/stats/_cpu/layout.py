"""A block's rows as one flat, read-only view: one compiled signature for every layout."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["flat_rows"]


def flat_rows(block: np.ndarray) -> tuple[np.ndarray, int]:
    """A read-only 1-D view of ``block`` from its first value to its last, and its row stride.

    numba compiles a function once per type of its arguments, and a contiguous block, a view of
    a wider matrix and a read-only array are three types of 2-D array: handed over as this one
    flat type, every block shares one compiled ``block_statistics`` per dtype (each ~17 s on
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
