"""limma's ``vooma``: precision weights for log-expression from its mean–variance trend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._backend import dask_on, resolve_device, to_host
from .._cohort import CohortLike, as_cohort_dataset, as_cohort_matrix, shared_docs
from .._errors import CohortexError
from ..stats._lowess import lowess, tied_means
from ._block_model import block_least_squares
from ._gene_columns import TASK_GENES
from ._least_squares import (
    check_design,
    check_residual_df,
    design_matrix,
    fit_tiles,
    least_squares,
    sample_codes,
)
from ._voom import trend_weights

__all__ = ["vooma"]

_ROWS_PER_CHUNK = 2048


@shared_docs
def vooma(
    cohort: CohortLike,
    design: str | pd.DataFrame | np.ndarray,
    *,
    block: str | Any = None,
    correlation: float | None = None,
    span: float | None = None,
    device: str = "auto",
) -> xr.Dataset:
    """Precision weights for log-expression values, as limma's ``vooma(y, design)``.

    voom's idea for data that are not counts (microarrays, proteomics, log-intensities): an
    ordinary fit of ``design`` (limma's block fit with ``block`` and ``correlation``) gives
    each gene's mean and residual standard deviation; R's ``lowess`` through ``sqrt(sd)``
    against the mean is the trend, and each observation's weight is ``1 / trend(fitted
    value)⁴``. Pass the result to :func:`fit` with the same design: it uses the weights.

    Parameters
    ----------
    {cohort}
        Log-expression values (not counts: use :func:`voom`), complete (no NaN).
    design : str, DataFrame or array of shape (n_samples, n_coefficients)
        As for :func:`fit`.
    block : str or array of shape (n_samples,), optional
        Samples correlated within blocks, with their ``correlation`` (both or neither).
    correlation : float, optional
    span : float, optional
        The lowess span; default limma's ``0.3 + 0.7 · (10 / n_genes)^½`` (1 up to 10 genes).
    {device}

    Returns
    -------
    xarray.Dataset
        The cohort with ``weights`` (sample, gene; float64, lazy), ``vooma_mean`` and
        ``vooma_sqrt_sd`` on ``gene`` (the trend's points), ``trend_x`` and ``trend_y`` on
        ``trend`` (the lowess curve); attrs ``normalization`` ``"vooma"`` and ``span``.
    """
    on = resolve_device(device)
    ds = as_cohort_dataset(cohort)
    if not isinstance(ds, xr.Dataset) or "expression" not in ds:
        raise CohortexError("vooma() needs a cohort store or Dataset with an 'expression'.")
    if ds.attrs.get("scale") == "counts":
        raise CohortexError(
            "vooma() is for log-expression; this cohort holds counts: use voom (or normalize "
            "first)."
        )
    values = fit_tiles(
        dask_on(ds["expression"].transpose("sample", "gene").data, on, (_ROWS_PER_CHUNK, -1))
    )
    n_samples, n_genes = values.shape
    x_design, names, _ = design_matrix(design, ds, n_samples)
    check_design(x_design, names)
    check_residual_df(x_design)
    if (block is None) != (correlation is None):
        raise CohortexError("vooma's 'block' and 'correlation' go together.")
    if span is None:
        span = 1.0 if n_genes <= 10 else 0.3 + 0.7 * (10.0 / n_genes) ** 0.5
    if not (np.isfinite(span) and 0 < span <= 1):
        raise CohortexError(f"vooma's 'span' must be in (0, 1]; got {span!r}.")
    if block is None:
        fitted = least_squares(values, x_design, None)
    else:
        if not (isinstance(correlation, int | float | np.floating) and -1 < correlation < 1):
            raise CohortexError(
                f"The 'correlation' parameter must be in (-1, 1); got {correlation!r}."
            )
        codes, _ = sample_codes(block, as_cohort_matrix(ds), n_samples, "block")
        tiles = values.rechunk({0: _ROWS_PER_CHUNK, 1: TASK_GENES})
        fitted = block_least_squares(tiles, x_design, codes, float(correlation))
    if fitted.coefficient_sd is not None:  # fitted gene by gene: missing values
        raise CohortexError("vooma() needs complete values; the cohort has missing values.")
    sx = np.asarray(to_host(fitted.average), dtype=np.float64)
    sy = np.sqrt(np.sqrt(np.asarray(to_host(fitted.s2), dtype=np.float64)))
    curve_x, curve_y, anchors = lowess(sx, sy, f=span)
    knots_x, knots_y = tied_means(curve_x[anchors], curve_y[anchors])
    weights = trend_weights(values, x_design, fitted.beta, np.zeros(n_samples), knots_x, knots_y)
    out = ds.copy()
    out["weights"] = (("sample", "gene"), weights)
    out["vooma_mean"] = ("gene", sx)
    out["vooma_sqrt_sd"] = ("gene", sy)
    out["trend_x"] = ("trend", curve_x)
    out["trend_y"] = ("trend", curve_y)
    out.attrs = {**ds.attrs, "normalization": "vooma", "span": float(span)}
    return out
