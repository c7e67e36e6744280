"""edgeR's ``filterByExpr``: the genes with enough counts to be worth testing."""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from scipy import linalg

from ._backend import as_device_dask, dask_on, namespace, resolve_device, to_host
from ._cohort import CohortLike, as_cohort_matrix, shared_docs
from ._errors import CohortexError
from ._normalize import resolve_factors
from .de._least_squares import design_matrix, sample_codes

__all__ = ["filter_by_expr"]

# edgeR's tolerance on both cut-offs
_TOLERANCE = 1e-14


@shared_docs
def filter_by_expr(
    cohort: CohortLike,
    design: str | pd.DataFrame | np.ndarray | None = None,
    *,
    group: str | Any = None,
    norm_factors: str | Any | None = None,
    min_count: float = 10.0,
    min_total_count: float = 15.0,
    large_n: float = 10.0,
    min_prop: float = 0.7,
    device: str = "auto",
) -> xr.DataArray:
    """The genes to keep for a count model, as edgeR's ``filterByExpr``.

    A gene is kept when it reaches ``min_count`` reads (as counts per million at the median
    library size) in at least as many samples as the smallest group, and ``min_total_count``
    reads over all samples. The smallest group is the smallest level of ``group``, else
    ``1 / max(leverage)`` of ``design`` (with an intercept, as R's ``hat``), else every
    sample; above ``large_n`` only ``min_prop`` of the samples beyond it are needed. Keep
    the genes before :func:`cohortex.de.voom` or :func:`cohortex.norm_factors`, as
    ``dge[keep, , keep.lib.sizes = FALSE]``: ``open_cohort(store, genes=keep)`` (each stored
    tile read once), or ``cohort.isel(gene=keep.values)`` for a Dataset in memory.

    Parameters
    ----------
    {cohort}
        Raw counts (scale ``counts``), no NaN.
    design : str, DataFrame or array of shape (n_samples, n_coefficients), optional
        The linear model to be fitted (as for :func:`cohortex.de.fit`).
    group : str or array of shape (n_samples,), optional
        A sample variable naming each sample's group, or the labels; it takes precedence
        over ``design``, as in edgeR.
    norm_factors : {{"tmm", "upperquartile", "rle", "none"}} or array, optional
        Normalisation factors of the library sizes (a DGEList after ``calcNormFactors``);
        default none, as ``filterByExpr(DGEList(counts))``.
    min_count : float, default 10
        Reads a sample of median library size needs; other samples the same counts per
        million.
    min_total_count : float, default 15
        Reads a gene needs over all samples.
    large_n : float, default 10
        Samples of the smallest group beyond which only ``min_prop`` of the rest count.
    min_prop : float, default 0.7
        The fraction of the smallest group beyond ``large_n`` that needs the count.
    {device}

    Returns
    -------
    xarray.DataArray of shape (n_genes,)
        Boolean ``keep`` on ``gene``. Attrs: ``min_sample_size`` (the samples a gene needs
        above the cut-off), ``cpm_cutoff``, ``n_kept``.
    """
    for name, value, low in (
        ("min_count", min_count, 0.0),
        ("min_total_count", min_total_count, 0.0),
        ("large_n", large_n, 0.0),
    ):
        if not (isinstance(value, int | float) and np.isfinite(value) and value >= low):
            raise CohortexError(f"The {name!r} parameter must be a number >= 0; got {value!r}.")
    if not (isinstance(min_prop, int | float) and 0 <= min_prop <= 1):
        raise CohortexError(f"The 'min_prop' parameter must be in [0, 1]; got {min_prop!r}.")
    data = as_cohort_matrix(cohort)
    if data.dataset is not None and data.dataset.attrs.get("scale") not in ("counts", None):
        raise CohortexError(
            "filter_by_expr() needs raw counts (scale 'counts'); this cohort's scale is "
            f"{data.dataset.attrs.get('scale')!r}."
        )
    n_samples = data.matrix.shape[0]
    smallest = _smallest_group(design, group, data, n_samples)
    if smallest > large_n:
        smallest = large_n + (smallest - large_n) * min_prop
    x = dask_on(data.matrix, resolve_device(device), (2048, -1))
    library, expressed, lowest, nan_count = dask.compute(
        da.sum(x, axis=1, dtype=np.float64), da.any(x > 0, axis=0), da.min(x), da.isnan(x).sum()
    )
    if int(to_host(nan_count)) or float(to_host(lowest)) < 0:
        raise CohortexError("filter_by_expr() needs counts >= 0 and no NaN.")
    library = np.asarray(to_host(library), dtype=np.float64)
    if norm_factors is not None:
        if data.dataset is None:
            raise CohortexError("'norm_factors' need a cohort (a store or Dataset).")
        expressed = np.asarray(to_host(expressed))
        library = library * resolve_factors(data.dataset, norm_factors, library, expressed)
    if not (library > 0).all():
        raise CohortexError("filter_by_expr() needs every sample to have counts (a library > 0).")
    cutoff = min_count / float(np.median(library)) * 1e6
    # edgeR's cpm(): count · (10⁶ / library), compared with the cut-off as R compares them
    per_million = da.from_array(1e6 / library, chunks=(x.chunks[0],))[:, None]
    if namespace(x) is not np:
        per_million = as_device_dask(per_million)
    above, totals = dask.compute(
        da.sum(x.astype(np.float64) * per_million >= cutoff, axis=0),
        da.sum(x, axis=0, dtype=np.float64),
    )
    keep = (np.asarray(to_host(above)) >= smallest - _TOLERANCE) & (
        np.asarray(to_host(totals)) >= min_total_count - _TOLERANCE
    )
    return xr.DataArray(
        keep,
        dims="gene",
        coords={"gene": data.gene_ids},
        name="keep",
        attrs={
            "min_sample_size": float(smallest),
            "cpm_cutoff": float(cutoff),
            "n_kept": int(keep.sum()),
        },
    )


def _smallest_group(design: Any, group: Any, data: Any, n_samples: int) -> float:
    """edgeR's ``MinSampleSize``: of ``group``, else of ``design``'s leverages, else all."""
    if group is not None:
        codes, _ = sample_codes(group, data, n_samples, "group")
        return float(np.bincount(codes).min())
    if design is None:
        return float(n_samples)
    x_design, _, _ = design_matrix(design, data.dataset, n_samples)
    # R's hat(design): an intercept column added, the leverages of the rank's columns
    augmented = np.column_stack([np.ones(n_samples), x_design])
    q, r, _ = linalg.qr(augmented, mode="economic", pivoting=True)
    diagonal = np.abs(np.diag(r))
    rank = int(np.sum(diagonal > 1e-7 * max(diagonal.max(initial=0.0), 1e-300)))
    leverages = np.sum(q[:, :rank] ** 2, axis=1)
    return float(1.0 / leverages.max())
