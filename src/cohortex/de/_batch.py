"""limma's ``removeBatchEffect``: expression with batch effects and covariates fitted out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.array.utils import meta_from_array

from .._backend import dask_on, namespace, resolve_device, to_host
from .._cohort import CohortLike, as_cohort_dataset, as_cohort_matrix, shared_docs
from .._errors import CohortexError
from ._least_squares import (
    check_design,
    design_matrix,
    least_squares,
    rows_per_task,
    sample_weights_of,
    weights_for,
)

__all__ = ["remove_batch_effect"]

_ROWS_PER_CHUNK = 2048


@shared_docs
def remove_batch_effect(
    cohort: CohortLike,
    batch: str | Sequence[str],
    *,
    covariates: Sequence[str] = (),
    design: str | pd.DataFrame | np.ndarray | None = None,
    weights: Any = None,
    device: str = "auto",
) -> xr.Dataset:
    """Remove batch effects from expression values, as limma's ``removeBatchEffect``.

    A linear model of ``design`` (default: an intercept) plus the batches (sum-to-zero
    contrasts, as limma) and the numeric ``covariates`` is fitted to every gene; the fitted
    batch and covariate effects are subtracted. For plots and clustering, not for testing:
    for that, put the batch in :func:`fit`'s design.

    Parameters
    ----------
    {cohort}
    batch : str or sequence of str
        One or two sample variables holding batches (limma's ``batch`` and ``batch2``).
    covariates : sequence of str
        Numeric sample variables to fit out.
    design : str, DataFrame or array, optional
        The effects to keep (as for :func:`fit`), e.g. ``"~ condition"``.
    weights : array of shape (n_samples, n_genes) or (n_samples,), optional
        Precision weights of the fit, as for :func:`fit` (default: the cohort's ``weights``
        variable, as a :func:`voom` result has: limma's ``removeBatchEffect(v, ...)`` fits
        with an EList's weights too). The corrected values are the unweighted ones less the
        weighted fit's effects.
    {device}

    Returns
    -------
    xarray.Dataset
        The cohort with ``expression`` replaced by a lazy corrected layer (float64); attrs
        ``batch_removed`` names what was fitted out.
    """
    on = resolve_device(device)
    ds = as_cohort_dataset(cohort)
    if not isinstance(ds, xr.Dataset) or "expression" not in ds:
        raise CohortexError(
            "remove_batch_effect() needs a cohort store or Dataset with an 'expression'."
        )
    batches = [batch] if isinstance(batch, str) else list(batch)
    if len(batches) > 2 or not (batches or covariates):
        raise CohortexError(
            "remove_batch_effect() takes one or two batch variables and any covariates; got "
            f"{len(batches)} batch variables and {len(covariates)} covariates."
        )
    n_samples = ds.sizes["sample"]
    columns = [_sum_to_zero(ds, name) for name in batches]
    for name in covariates:
        values = _variable(ds, name).astype(np.float64)
        if not np.isfinite(values).all():
            raise CohortexError(f"The covariate {name!r} has missing values.")
        columns.append(values[:, None])
    removed = np.concatenate(columns, axis=1)
    if design is None:
        kept, names = np.ones((n_samples, 1)), ["(Intercept)"]
    else:
        kept, names, _ = design_matrix(design, ds, n_samples)
    full = np.concatenate([kept, removed], axis=1)
    check_design(full, [*names, *(f"batch{j}" for j in range(removed.shape[1]))])
    x = dask_on(ds["expression"].transpose("sample", "gene").data, on, (_ROWS_PER_CHUNK, -1))
    x = x.rechunk({0: rows_per_task(x.shape[1]), 1: -1})
    given = weights_for(weights, as_cohort_matrix(ds), x)
    per_sample = sample_weights_of(weights, n_samples)
    fitted = least_squares(x, full, given if per_sample is None else per_sample)
    xp = namespace(fitted.beta)
    effects = fitted.beta[kept.shape[1] :]
    effects = xp.where(xp.isnan(effects), 0.0, effects)  # as limma: NA effects count as 0
    corrected = da.map_blocks(
        _subtract,
        x,
        da.from_array(removed, chunks=(x.chunks[0], -1)),
        effects,
        dtype=np.float64,
        meta=meta_from_array(x, dtype=np.float64),
    )
    out = ds.copy()
    out["expression"] = (("sample", "gene"), corrected)
    out.attrs = {**ds.attrs, "batch_removed": ", ".join([*batches, *covariates])}
    return out


def _subtract(block: Any, removed: Any, effects: Any) -> Any:
    xp = namespace(block)
    return block.astype(xp.float64) - xp.asarray(removed) @ effects


def _variable(ds: xr.Dataset, name: str) -> np.ndarray:
    if name not in ds or ds[name].dims != ("sample",):
        variables = [str(v) for v in ds.data_vars if ds[v].dims == ("sample",)]
        raise CohortexError(
            f"{name!r} is not a sample variable. Sample variables: "
            f"{', '.join(variables) or '(none)'}."
        )
    return np.asarray(to_host(ds[name].values))


def _sum_to_zero(ds: xr.Dataset, name: str) -> np.ndarray:
    """R's ``model.matrix(~batch)`` with ``contr.sum`` contrasts, without the intercept."""
    values = pd.Series(_variable(ds, name)).astype(str)
    if (values == "").any():
        raise CohortexError(f"The batch variable {name!r} has missing labels.")
    levels = sorted(values.unique())
    if len(levels) < 2:
        raise CohortexError(f"The batch variable {name!r} has a single batch.")
    codes = values.map({level: i for i, level in enumerate(levels)}).to_numpy()
    contrasts = np.vstack([np.eye(len(levels) - 1), -np.ones((1, len(levels) - 1))])
    return contrasts[codes]
