"""Normalisation as a lazy derived layer: a new Dataset whose ``expression`` is a Dask graph
over the original one. Nothing is computed or written until the result is used; library sizes,
size factors and reference quantiles are parts of that graph, computed once per use.
"""

from __future__ import annotations

import os
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.array.utils import meta_from_array

from ._backend import namespace
from ._cohort import CohortLike
from ._errors import CohortexError
from .stats._ranks import average_ranks
from .store import open_cohort

__all__ = ["METHODS", "normalize"]

METHODS = ("log_cpm", "log1p", "log2", "quantile", "median_ratio")
_NEEDS_LINEAR = ("log_cpm", "log1p", "log2", "median_ratio")
_NEW_SCALE = {"log_cpm": "log2", "log1p": "log1p", "log2": "log2", "median_ratio": "counts"}


def normalize(
    cohort: CohortLike, method: str = "log_cpm", *, prior_count: float = 1.0
) -> xr.Dataset:
    """Normalise a cohort lazily.

    Parameters
    ----------
    cohort : path or xarray.Dataset
        A cohort store or an opened cohort (``expression(sample, gene)`` and a ``scale``).
    method : {"log_cpm", "log1p", "log2", "quantile", "median_ratio"}, default "log_cpm"
        * ``"log_cpm"``: ``log2(x / library_size · 10⁶ + prior_count)``, library size = the
          sample's total (NaN ignored). Scale becomes ``log2``.
        * ``"log1p"``: ``ln(1 + x)`` (scanpy's ``log1p``). Scale becomes ``log1p``.
        * ``"log2"``: ``log2(x + prior_count)``. Scale becomes ``log2``.
        * ``"median_ratio"``: DESeq2's size factors (Anders & Huber 2010): with
          ``g_j = mean_i log x_ij`` over samples for each gene j, the size factor of sample i
          is ``exp(median_j (log x_ij − g_j))`` over the genes with every count positive and
          ``x_ij > 0``; values are divided by it. Scale stays ``counts``.
        * ``"quantile"``: quantile normalisation (Bolstad et al. 2003) as limma's
          ``normalizeQuantiles``: the reference distribution is the mean, over samples, of each
          sample's sorted values; each value is replaced by the reference quantile at its rank,
          tied values by the linear interpolation of the reference at their average rank (so
          ties stay tied, as in limma). Any scale; it is kept. NaN values are refused.
        The log and ratio methods need raw data (scale ``counts`` or ``linear``).
    prior_count : float, default 1.0
        Offset added before the logarithm in ``log_cpm`` and ``log2``.

    Returns
    -------
    xarray.Dataset
        A copy with the new lazy ``expression``; attrs ``scale`` updated and
        ``normalization`` naming the method.
    """
    if method not in METHODS:
        raise CohortexError(
            f"The 'method' parameter of normalize() must be one of "
            f"{', '.join(repr(m) for m in METHODS)}; got {method!r}."
        )
    ds = open_cohort(cohort) if isinstance(cohort, str | os.PathLike) else cohort
    if "expression" not in ds:
        raise CohortexError("The Dataset given as 'cohort' has no 'expression' variable.")
    scale = ds.attrs.get("scale", "log2")
    if method in _NEEDS_LINEAR and scale not in ("counts", "linear"):
        raise CohortexError(
            f"normalize(method={method!r}) needs raw values (scale 'counts' or 'linear'); this "
            f"cohort's scale is {scale!r}."
        )
    expression = ds["expression"].transpose("sample", "gene")
    x = expression.data
    if not isinstance(x, da.Array):
        x = da.from_array(x, chunks=(1024, -1), asarray=False)
    if method == "log2":
        y = da.log2(x + prior_count)
    elif method == "log1p":
        y = da.log1p(x)
    elif method == "log_cpm":
        library = da.nansum(x, axis=1, dtype=np.float64)
        y = da.log2(x / library[:, None].astype(x.dtype) * 1e6 + prior_count)
    elif method == "median_ratio":
        y = x / _size_factors(x)[:, None].astype(x.dtype)
    else:
        y = _quantile(x)
    out = ds.copy()
    out["expression"] = (("sample", "gene"), y.astype(np.float32))
    out.attrs = {**ds.attrs, "scale": _NEW_SCALE.get(method, scale), "normalization": method}
    return out


def _size_factors(x: da.Array) -> da.Array:
    """DESeq2's median-of-ratios size factors, shape (n_samples,)."""
    logs = da.map_blocks(_log, x, dtype=np.float64)
    log_geomeans = logs.mean(axis=0)  # -inf for genes with a zero count
    rows = logs.rechunk({1: -1})  # each sample's genes in one block, for the median
    return rows.map_blocks(
        _block_size_factors,
        log_geomeans,
        drop_axis=1,
        dtype=np.float64,
        meta=meta_from_array(x, ndim=1, dtype=np.float64),  # on the chunks' device
    )


def _log(block: Any) -> Any:
    """Natural log in float64; zero counts give -inf (they drop out of the medians)."""
    xp = namespace(block)
    with np.errstate(divide="ignore"):
        return xp.log(block.astype(xp.float64))


def _block_size_factors(logs: Any, log_geomeans: Any) -> Any:
    xp = namespace(logs)
    usable = xp.isfinite(log_geomeans)[None, :] & xp.isfinite(logs)
    with np.errstate(invalid="ignore"):
        ratios = xp.where(usable, logs - log_geomeans[None, :], xp.nan)
    return xp.exp(xp.nanmedian(ratios, axis=1))


def _quantile(x: da.Array) -> da.Array:
    rows = x.rechunk({1: -1})  # each sample's genes in one block, to sort
    reference = (
        rows.map_blocks(
            _sorted_sum,
            drop_axis=0,
            new_axis=0,
            chunks=((1,) * rows.numblocks[0], (x.shape[1],)),
            dtype=np.float64,
        ).sum(axis=0)
        / x.shape[0]
    )
    return rows.map_blocks(_to_reference, reference, dtype=np.float64).rechunk(x.chunks)


def _sorted_sum(block: Any) -> Any:
    xp = namespace(block)
    if bool(xp.isnan(block).any()):  # runs inside a task, on one block
        raise CohortexError(
            "normalize(method='quantile') does not accept NaN values; impute or drop them first."
        )
    return xp.sort(block.astype(xp.float64), axis=1).sum(axis=0, keepdims=True)


# Values per slab of samples ranked at once: each slab's float64 temporaries stay ~16 MB
_QUANTILE_SLAB_VALUES = 1 << 21


def _to_reference(block: Any, reference: Any) -> Any:
    """Each value → the reference at its average rank (interpolated between neighbours).

    Slabs of samples are ranked together (one batched sort each, not a loop over samples).
    """
    xp = namespace(block)
    n = block.shape[1]
    out = xp.empty(block.shape, dtype=xp.float64)
    positions = xp.arange(n, dtype=xp.float64)
    rows = max(1, _QUANTILE_SLAB_VALUES // max(n, 1))
    for start in range(0, block.shape[0], rows):
        ranks, _, _ = average_ranks(block[start : start + rows].astype(xp.float64))
        # 0-based average rank of each value's tie block
        out[start : start + rows] = xp.interp(ranks - 1.0, positions, reference)
    return out
