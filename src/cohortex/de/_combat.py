"""ComBat: empirical-Bayes batch correction (Johnson, Li & Rabinovic 2007), as sva's ``ComBat``
(the parametric prior and the non-parametric one)."""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.array.utils import meta_from_array

from .._backend import dask_on, namespace, resolve_device, to_host
from .._cohort import CohortLike, as_cohort_dataset, shared_docs
from .._errors import CohortexError
from ..stats._cpu.combat_prior import nonparametric_prior
from ._least_squares import design_matrix, least_squares, rows_per_task

__all__ = ["COMBAT_CONVERGENCE", "combat"]

COMBAT_CONVERGENCE = 1e-4  # sva's it.sol: the largest relative change over all genes
_ROWS_PER_CHUNK = 4096


@shared_docs
def combat(
    cohort: CohortLike,
    batch: str | Any,
    *,
    design: str | pd.DataFrame | np.ndarray | None = None,
    mean_only: bool = False,
    ref_batch: str | None = None,
    parametric: bool = True,
    device: str = "auto",
) -> xr.Dataset:
    """Correct batch effects by ComBat's empirical Bayes, as sva's ``ComBat``.

    Each gene is standardised by a linear model of the batches and ``design`` (the effects to
    keep, e.g. ``"~ condition"``); each batch's mean and variance of the standardised values
    are shrunk towards their distributions over the genes (a normal and an inverse-gamma
    prior, sva's ``par.prior = TRUE``) and removed. For combining cohorts whose batches are
    not confounded with the biology the design keeps; for testing, put the batch in
    :func:`fit`'s design instead.

    Parameters
    ----------
    {cohort}
        Values on a continuous scale (log-expression; for counts, normalise first); missing
        values are left out of each gene's fit and moments and stay missing, as in sva.
    batch : str or array of shape (n_samples,)
        A sample variable (or labels) of the batches; each batch's level order as R's
        ``factor`` (sorted labels).
    design : str, DataFrame or array, optional
        sva's ``mod``: effects to keep (an intercept is implied, as in sva).
    mean_only : bool, default False
        Correct the batches' means only (sva's ``mean.only``; forced, as sva does, when a batch
        has a single sample).
    ref_batch : str, optional
        A batch left as it is, the others brought to it (sva's ``ref.batch``).
    parametric : bool, default True
        sva's ``par.prior``: False estimates each gene's batch mean and variance as the other
        genes' estimates averaged with the likelihood of its values as weights (the
        non-parametric prior, for batch effects far from normal; O(genes²) a batch:
        20,000 genes take seconds). Where sva's likelihoods underflow (from about 700
        samples a batch) and its values become NaN, they are computed here in logs.
    {device}

    Returns
    -------
    xarray.Dataset
        The cohort with ``expression`` replaced by the corrected values (float64, lazy).
        Genes constant within a batch are left as they are (as sva). Attrs ``batch_removed``
        (the batch variable) and ``combat_iterations`` (of the parametric prior's
        iteration; 0 for the non-parametric prior).

    Raises
    ------
    CohortexError
        For a single batch, a ``ref_batch`` that is not a batch, and a design confounded with
        the batches.
    """
    on = resolve_device(device)
    ds = as_cohort_dataset(cohort)
    if not isinstance(ds, xr.Dataset) or "expression" not in ds:
        raise CohortexError("combat() needs a cohort store or Dataset with an 'expression'.")
    n = ds.sizes["sample"]
    labels = pd.Series(_batch_labels(ds, batch, n)).astype(str).to_numpy()
    levels = sorted(set(labels))
    if len(levels) < 2:
        raise CohortexError("combat() needs at least two batches.")
    codes = np.searchsorted(levels, labels)
    sizes = np.bincount(codes, minlength=len(levels)).astype(np.float64)
    k = len(levels)
    ref = None
    if ref_batch is not None:
        if str(ref_batch) not in levels:
            raise CohortexError(
                f"ref_batch {ref_batch!r} is not one of the batches: {', '.join(levels)}."
            )
        ref = levels.index(str(ref_batch))
    mean_only = mean_only or bool(np.any(sizes == 1))
    # sva's design: the batches' indicators (the reference's column all ones), then mod
    # without its intercept
    batch_rows = np.eye(k)
    if ref is not None:
        batch_rows[:, ref] = 1.0
    covariates = np.zeros((n, 0))
    if design is not None:
        mod, _, _ = design_matrix(design, ds, n)
        covariates = mod[:, ~np.all(mod == 1.0, axis=0)]
    full = np.column_stack([batch_rows[codes], covariates])
    if np.linalg.matrix_rank(full) < full.shape[1]:
        raise CohortexError(
            "The design is confounded with the batches: ComBat cannot keep its effects apart "
            "(remove the confounded variable from the design)."
        )
    x = dask_on(ds["expression"].transpose("sample", "gene").data, on, (_ROWS_PER_CHUNK, -1))
    x = x.rechunk({0: rows_per_task(x.shape[1]), 1: -1})
    xp = namespace(x._meta)
    fitted = least_squares(x, full, None)
    beta = xp.asarray(fitted.beta)  # (k + q, genes)
    # the batches' mean weighted by their sizes, or the reference batch's: (1, genes)
    grand = beta[ref : ref + 1] if ref is not None else xp.asarray(sizes / n)[None, :] @ beta[:k]
    covariate_effects = beta[k:]  # (q, genes)
    rows = x.chunks[0]
    code_blocks = da.from_array(codes[:, None], chunks=(rows, 1))  # blocks of the rows
    covariate_blocks = da.from_array(covariates, chunks=(rows, -1))
    full_blocks = da.from_array(full, chunks=(rows, -1))
    meta = meta_from_array(x, dtype=np.float64)
    residuals = da.map_blocks(
        _residuals, x, full_blocks, beta, dtype=np.float64, meta=meta
    )  # y − design · B
    standard = da.map_blocks(
        _centred, x, covariate_blocks, covariate_effects, grand, dtype=np.float64, meta=meta
    )  # y − stand.mean
    members = [np.flatnonzero(codes == j) for j in range(k)]  # each batch's samples
    pooled_rows = members[ref] if ref is not None else np.arange(n)
    # least_squares fits gene by gene only where values are missing: then they count as
    # nothing in the sums (sva's Beta.NA and rowVars(na.rm = TRUE))
    missing = fitted.coefficient_sd is not None
    summed = standard
    if missing:
        present = da.isfinite(x).astype(np.float64)
        residuals = da.where(present > 0, residuals, 0.0)
        summed = da.where(present > 0, standard, 0.0)
    moments = {
        "pooled_sum": residuals[pooled_rows].sum(axis=0),
        "pooled_squares": (residuals[pooled_rows] ** 2).sum(axis=0),
        # each batch's sums of y − stand.mean and of its squares: (k, genes)
        "sums": da.stack([summed[m].sum(axis=0) for m in members]),
        "squares": da.stack([(summed[m] ** 2).sum(axis=0) for m in members]),
        "constant": _within_variance_zero(x, codes, sizes),
    }
    if missing:  # each batch's values of each gene, and those of the pooled variance's rows
        moments["counts"] = da.stack([present[m].sum(axis=0) for m in members])
        moments["pooled_count"] = present[pooled_rows].sum(axis=0)
    (found,) = dask.compute(moments)
    host = {name: np.asarray(to_host(v), dtype=np.float64) for name, v in found.items()}
    sums, squares = host["sums"], host["squares"]
    constant = host["constant"].astype(bool)
    if not missing:  # sva: the residuals' mean square
        counts = np.broadcast_to(sizes[:, None], sums.shape)
        pooled = host["pooled_squares"] / pooled_rows.size
    else:  # sva with any missing value, for every gene: rowVars of the residuals
        counts, c = host["counts"], host["pooled_count"]
        with np.errstate(divide="ignore", invalid="ignore"):
            pooled = (host["pooled_squares"] - host["pooled_sum"] ** 2 / c) / (c - 1.0)
    sd = np.sqrt(pooled)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_sums, s_squares = sums / sd, squares / pooled  # of the standardised values
        # each gene's least squares of its standardised values on the batches' columns
        normal = np.einsum("ka,kg,kb->gab", batch_rows, counts, batch_rows)
        gamma_hat = np.linalg.solve(normal, (batch_rows.T @ s_sums).T[:, :, None])[:, :, 0].T
        if mean_only:
            delta_hat = np.ones_like(s_sums)
        else:
            means = s_sums / counts
            delta_hat = (s_squares - counts * means * means) / (counts - 1.0)
    keep = ~constant
    estimates = (gamma_hat[:, keep], delta_hat[:, keep], s_sums[:, keep], s_squares[:, keep])
    if parametric:
        gamma_star, delta_star, iterations = _empirical_bayes(
            *estimates, counts[:, keep], mean_only
        )
    else:
        gamma_star, delta_star = _nonparametric(*estimates, counts[:, keep], mean_only)
        iterations = 0
    if ref is not None:
        gamma_star[ref], delta_star[ref] = 0.0, 1.0
    shift = np.zeros((k, gamma_hat.shape[1]))
    scale = np.ones((k, gamma_hat.shape[1]))
    shift[:, keep] = batch_rows @ gamma_star  # each batch's γ* (the reference's is 0)
    scale[:, keep] = np.sqrt(delta_star)
    corrected = da.map_blocks(
        _adjusted,
        x,
        standard,
        code_blocks,
        xp.asarray(shift),
        xp.asarray(scale),
        xp.asarray(sd),
        xp.asarray(constant),
        -1 if ref is None else ref,
        dtype=np.float64,
        meta=meta,
    )
    out = ds.copy()
    out["expression"] = (("sample", "gene"), corrected)
    name = batch if isinstance(batch, str) else "batch"
    out.attrs = {**ds.attrs, "batch_removed": name, "combat_iterations": int(iterations)}
    return out


def _empirical_bayes(
    gamma_hat: np.ndarray,
    delta_hat: np.ndarray,
    s_sums: np.ndarray,
    s_squares: np.ndarray,
    counts: np.ndarray,
    mean_only: bool,
) -> tuple[np.ndarray, np.ndarray, int]:
    """sva's parametric priors and ``it.sol`` for every batch (rows) and gene (its values in
    the batch ``counts``): γ*, δ*, iterations."""
    gamma_bar = gamma_hat.mean(axis=1, keepdims=True)
    t2 = gamma_hat.var(axis=1, ddof=1, keepdims=True)
    if mean_only:  # sva's postmean(γ̂, γ̄, 1, 1, τ²)
        return (t2 * gamma_hat + gamma_bar) / (t2 + 1.0), np.ones_like(gamma_hat), 0
    m = delta_hat.mean(axis=1, keepdims=True)
    s2 = delta_hat.var(axis=1, ddof=1, keepdims=True)
    a = (2.0 * s2 + m * m) / s2
    b = (m * s2 + m**3) / s2
    n = counts
    gamma_star = np.empty_like(gamma_hat)
    delta_star = np.empty_like(delta_hat)
    most = 0
    for j in range(gamma_hat.shape[0]):  # sva iterates each batch until all its genes settle
        g_old, d_old = gamma_hat[j], delta_hat[j]
        change, count = 1.0, 0
        while change > COMBAT_CONVERGENCE:
            g_new = (t2[j] * n[j] * gamma_hat[j] + d_old * gamma_bar[j]) / (t2[j] * n[j] + d_old)
            sum2 = s_squares[j] - 2.0 * g_new * s_sums[j] + n[j] * g_new * g_new
            d_new = (0.5 * sum2 + b[j]) / (n[j] / 2.0 + a[j] - 1.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                change = float(
                    np.nanmax(
                        np.concatenate(
                            [np.abs(g_new - g_old) / g_old, np.abs(d_new - d_old) / d_old]
                        )
                    )
                )
            g_old, d_old = g_new, d_new
            count += 1
        gamma_star[j], delta_star[j] = g_new, d_new
        most = max(most, count)
    return gamma_star, delta_star, most


def _nonparametric(
    gamma_hat: np.ndarray,
    delta_hat: np.ndarray,
    s_sums: np.ndarray,
    s_squares: np.ndarray,
    counts: np.ndarray,
    mean_only: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """sva's non-parametric priors (``int.eprior``) for every batch (rows) and gene: γ*, δ*
    (δ̂ taken as 1 for the means only, as sva)."""
    gamma_star = np.empty_like(gamma_hat)
    delta_star = np.empty_like(delta_hat)
    for j in range(gamma_hat.shape[0]):
        variance = np.ones_like(delta_hat[j]) if mean_only else delta_hat[j]
        gamma_star[j], delta_star[j] = nonparametric_prior(
            gamma_hat[j], variance, s_sums[j], s_squares[j], counts[j]
        )
    return gamma_star, delta_star


def _residuals(block: Any, design: Any, beta: Any) -> Any:
    xp = namespace(block)
    return block.astype(xp.float64) - xp.asarray(design) @ beta


def _centred(block: Any, covariates: Any, effects: Any, grand: Any) -> Any:
    xp = namespace(block)
    return block.astype(xp.float64) - grand - xp.asarray(covariates) @ effects


def _batch_labels(ds: xr.Dataset, batch: Any, n: int) -> np.ndarray:
    """The batch of every sample: a sample variable by name, or the labels themselves."""
    if isinstance(batch, str):
        if batch not in ds or ds[batch].dims != ("sample",):
            variables = [str(v) for v in ds.data_vars if ds[v].dims == ("sample",)]
            raise CohortexError(
                f"{batch!r} is not a sample variable. Sample variables: "
                f"{', '.join(variables) or '(none)'}."
            )
        values = np.asarray(to_host(ds[batch].values))
    else:
        values = np.asarray(batch)
    if values.shape != (n,):
        raise CohortexError(f"The batches need one label per sample ({n}); got {values.shape}.")
    if pd.isna(values).any():
        raise CohortexError("The batch labels have missing values.")
    return values


def _within_variance_zero(x: da.Array, codes: np.ndarray, sizes: np.ndarray) -> Any:
    """Genes constant within a batch of more than one sample (sva leaves them as they are):
    each batch's largest and smallest value equal."""
    flags = []
    for j in range(sizes.size):
        if sizes[j] < 2:
            continue
        values = x[np.flatnonzero(codes == j)]
        flags.append(values.max(axis=0) == values.min(axis=0))
    if not flags:
        return da.zeros(x.shape[1], dtype=bool)
    return da.stack(flags).any(axis=0)


def _adjusted(
    block: Any,
    standard: Any,
    codes: Any,
    shift: Any,
    scale: Any,
    sd: Any,
    untouched: Any,
    ref: int,
) -> Any:
    """The corrected values of one block: (y − stand.mean)/sd, less the batch's γ*, over
    √δ*, back on the gene's scale; the reference batch and the untouched genes as they
    are."""
    xp = namespace(block)
    rows = xp.asarray(np.asarray(codes)[:, 0])
    stand_mean = block.astype(xp.float64) - standard
    corrected = ((standard / sd) - shift[rows]) / scale[rows] * sd + stand_mean
    keep = untouched[None, :] | (rows == ref)[:, None]
    return xp.where(keep, block.astype(xp.float64), corrected)
