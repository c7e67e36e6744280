"""DESeq2's regularized log transformation, ``rlog``.

Each gene is fitted, sample by sample, by a negative binomial GLM with an intercept and one
coefficient per sample, those coefficients shrunk towards 0 by a Normal prior whose variance
matches the spread of the samples' log fold changes from the gene's mean (the genes weighted
by their precision); the transformed value is intercept + coefficient, on the log2 scale.
Counts of genes with few reads shrink towards their gene's mean, so that they do not dominate
distances between samples as their log counts would.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from .._cohort import CohortLike, as_cohort_dataset, shared_docs
from .._errors import CohortexError, CohortexWarning
from ._deseq import (
    CountData,
    DesignPlan,
    design_plan,
    fit_dispersion_trend,
    fit_glm,
    gene_wise_row_count,
    gene_wise_rows,
    per_tile,
    prepare_counts,
    weighted_quantile,
)

__all__ = ["rlog"]

_FIT_TYPES = ("parametric", "local", "mean")
_BETA_TOL = 1e-4  # rlogData's fitNbinomGLMs(betaTol = 1e-4)
_INTERCEPT_VARIANCE = 1e6  # rlogData's lambda 1e-6 of the intercept (log2 scale)
_TILE_BYTES = 1 << 26  # a tile's coefficient covariances, (n + 1)² per gene
_MANY_SAMPLES = 50  # DESeq2 says "may take a long time" from here on


@shared_docs
def rlog(
    cohort: CohortLike,
    design: str | pd.DataFrame | np.ndarray | None = None,
    *,
    fit_type: str = "parametric",
    size_factors: str | np.ndarray = "ratio",
    lengths: str | np.ndarray | pd.DataFrame | None = "auto",
    norm_factors: str | np.ndarray | pd.DataFrame | None = None,
    beta_prior_variance: float | None = None,
) -> xr.Dataset:
    """DESeq2's regularized log transformation of a counts cohort, ``rlog(dds)``, on the log2
    scale.

    Parameters
    ----------
    {cohort}
        Raw counts (scale ``counts``): whole numbers, no NaN or negative values.
    design : str, DataFrame or array of shape (n_samples, p), optional
        None is DESeq2's ``blind = TRUE`` (the dispersion trend of ``~ 1``); a design is
        ``blind = FALSE`` for a DESeqDataSet of that design.
    fit_type : {{"parametric", "local", "mean"}}, default "parametric"
        The dispersion trend, from every gene, as for :func:`deseq` (the local fit where the
        parametric one fails, with a warning).
    size_factors : {{"ratio", "poscounts"}} or array of shape (n_samples,), default "ratio"
    lengths : "auto", str, array of shape (n_samples, n_genes), DataFrame, DataArray or None
        Average transcript lengths, as for :func:`deseq`: the fits take the counts'
        normalization factors (a ``DESeqDataSetFromTximport``'s ``rlog``).
    norm_factors : str, array of shape (n_samples, n_genes), DataFrame, DataArray, optional
        A normalization factor per count, as for :func:`deseq`.
    beta_prior_variance : float, optional
        The Normal prior's variance of the samples' coefficients (log2); by default DESeq2's:
        the weighted 95 % quantile of the samples' |log2 fold changes| from the gene's mean,
        matched to a Normal's.

    Returns
    -------
    xarray.Dataset
        The cohort with ``expression`` transformed (float64, in memory; scale ``log2``; 0 for
        genes without counts, as DESeq2), ``size_factor`` on ``sample`` and
        ``rlog_intercept`` on ``gene`` (``-inf`` without counts); attrs ``normalization``
        ("rlog"), ``rlog_beta_prior_variance``, ``rlog_blind``, ``normalization_factors``
        (``"size factors"``, ``"lengths"`` or ``"given"``); no ``size_factor`` with
        ``norm_factors``.

    Notes
    -----
    Each gene fits n + 1 coefficients, so the work grows as the cube of the samples: DESeq2
    advises ``vst`` beyond 30 samples, and cohortex warns from 50. Agreement with DESeq2
    1.38 (tests/de/test_rlog.py): 1e-8.
    """
    if fit_type not in _FIT_TYPES:
        raise CohortexError(
            f"The 'fit_type' parameter of rlog() must be one of {_FIT_TYPES}; got {fit_type!r}."
        )
    if beta_prior_variance is not None and not beta_prior_variance > 0:
        raise CohortexError(
            f"The 'beta_prior_variance' parameter of rlog() must be positive; got "
            f"{beta_prior_variance}."
        )
    ds = as_cohort_dataset(cohort)
    if not isinstance(ds, xr.Dataset):
        raise CohortexError("rlog() needs a cohort store or Dataset with an 'expression'.")
    n = ds.sizes.get("sample", 0)
    if n >= _MANY_SAMPLES:
        warnings.warn(
            f"rlog() of {n} samples fits {n + 1} coefficients per gene: it may take long "
            "(DESeq2's advice); vst() is much faster.",
            CohortexWarning,
            stacklevel=2,
        )
    chosen = np.ones((n, 1)) if design is None else design
    data = prepare_counts(
        ds,
        chosen,
        size_factors,
        lengths=lengths,
        norm_factors=norm_factors,
        caller="rlog()",
        min_coefficients=1,
    )
    sf = data.size_factors
    plan = design_plan(data)
    rows = per_tile(
        data, plan, lambda tile, _, plan: gene_wise_rows(tile, plan), gene_wise_row_count(plan)
    )
    base_mean, all_zero = rows[0], rows[1] == 1
    counted = ~all_zero
    trend = fit_dispersion_trend(rows[0][counted], rows[2][counted], fit_type, "rlog()")
    dispersion = np.where(counted, trend.at(np.where(counted, base_mean, 1.0)), np.nan)
    if beta_prior_variance is None:
        beta_prior_variance = _beta_prior_variance(data, base_mean, dispersion)
    # DESeq2's model: an intercept and a column per sample; 1e-6 ridge on the intercept
    model = np.column_stack([np.ones(n), np.eye(n)])
    wide = dataclasses.replace(
        plan, design=model, q=np.zeros((n, n + 1)), start=np.zeros((n + 1, n))
    )
    prior = np.concatenate([[_INTERCEPT_VARIANCE], np.full(n, beta_prior_variance)])
    width = int(max(16, min(4096, _TILE_BYTES // (8 * (n + 1) ** 2))))
    fitted = per_tile(
        data.with_tiles(width),
        wide,
        lambda tile, values, wide: _rlog_tile(tile, values[0], wide, prior),
        n + 1,
        dispersion,
    )
    intercept = np.where(counted, fitted[0], -np.inf)
    values = np.where(counted[None, :], fitted[0][None, :] + fitted[1:], 0.0)
    out = ds.copy()
    out["expression"] = (("sample", "gene"), values)
    if data.per_count_kind != "factors":  # no size factors beside given factors
        out["size_factor"] = ("sample", sf)
    out["rlog_intercept"] = ("gene", intercept)
    out.attrs = {
        **ds.attrs,
        "scale": "log2",
        "normalization": "rlog",
        "rlog_beta_prior_variance": float(beta_prior_variance),
        "rlog_blind": int(design is None),
        "rlog_fit_type": trend.fit_type,
        "normalization_factors": data.factor_source,
    }
    return out


def _rlog_tile(
    tile: np.ndarray, dispersion: np.ndarray, wide: DesignPlan, prior: np.ndarray
) -> np.ndarray:
    """fitNbinomGLMs of rlogData on a tile of counts (n × g): rows intercept, then each
    sample's coefficient (log2); NaN for genes without counts."""
    n = tile.shape[0]
    out = np.full((n + 1, tile.shape[1]), np.nan)
    counted = tile.sum(axis=0) > 0
    if counted.any():
        counts = np.asfortranarray(tile[:, counted])
        wide = wide.of_genes(counted)
        intercept_start = np.concatenate([[True], np.zeros(n, dtype=bool)])
        fit = fit_glm(
            counts,
            wide,
            dispersion[counted],
            prior,
            intercept_start,
            tol=_BETA_TOL,
            optimize=False,
        )
        out[:, counted] = fit.beta
    return out


def _beta_prior_variance(data: CountData, base_mean: np.ndarray, dispersion: np.ndarray) -> float:
    """rlogData's betaPriorVar: matchWeightedUpperQuantileForVariance of the samples' log2
    fold changes ``log2(q + 0.5) − log2(baseMean + 0.5)``, weighted by ``1 / (1/baseMean +
    dispFit)``, over the genes with counts."""
    counted = base_mean > 0
    normalized = np.asarray(data.normalized()[:, counted].compute())
    change = np.log2(normalized + 0.5) - np.log2(base_mean[counted] + 0.5)
    weights = 1.0 / (1.0 / base_mean[counted] + dispersion[counted])
    x = change.ravel()
    w = np.broadcast_to(weights, change.shape).ravel()
    sd = weighted_quantile(np.abs(x), w, 0.95) / stats.norm.ppf(0.975)
    return float(sd**2)
