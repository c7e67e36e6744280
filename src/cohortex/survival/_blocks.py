"""Blocks of genes that hold every sample, fitted one task each, on the cohort's device."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dask

from .._backend import Device, dask_on, namespace

__all__ = ["BLOCK_BYTES", "map_gene_blocks"]

# float64 (samples × genes) temporaries a block of genes may hold at once
BLOCK_BYTES = 256 * 2**20


def map_gene_blocks(
    matrix: Any,
    device: Device,
    arrays_per_gene: int,
    function: Callable[..., dict[str, Any]],
    *args: Any,
) -> dict[str, Any]:
    """``function(block, *args)`` over blocks of genes × all samples; columns concatenated.

    Parameters
    ----------
    matrix : NumPy, CuPy or Dask array of shape (n_samples, n_genes)
    device : {"cpu", "gpu"}
    arrays_per_gene : int
        float64 (n_samples,) temporaries ``function`` holds per gene: sets the block width.
    function : callable
        Returns a dict of arrays of shape (block genes,).

    Returns
    -------
    dict of arrays of shape (n_genes,), on the device.
    """
    n_samples = matrix.shape[0]
    width = int(max(1, min(4096, BLOCK_BYTES // (8 * n_samples * arrays_per_gene))))
    x = dask_on(matrix, device, (4096, 4096)).rechunk({0: -1, 1: width})
    task = dask.delayed(function, pure=True)
    parts = dask.compute(
        *[task(block, *args) for block in x.to_delayed()[0]],
        # a GPU holds one block's temporaries at a time
        scheduler="threads" if device == "cpu" else "synchronous",
    )
    xp = namespace(parts[0][next(iter(parts[0]))])
    return {name: xp.concatenate([part[name] for part in parts]) for name in parts[0]}
