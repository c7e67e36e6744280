"""DESeq2's variance-stabilizing transformation: ``vst`` and
``varianceStabilizingTransformation``.

The dispersion trend of (a subset of) the genes, from DESeq2's gene-wise estimates
(:mod:`cohortex.de._deseq`), gives the transformation: in closed form for the parametric and
the mean trends; for the local trend, DESeq2's numerical integral of 1 / sd over a grid of
1,000 counts, through R's fmm spline, scaled to log2 at the genes' 95th and 99.9th
percentile means. It is applied to the normalised counts lazily, tile by tile, as
:func:`cohortex.normalize`'s layers are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.array.utils import meta_from_array

from .._backend import namespace
from .._cohort import CohortLike, as_cohort_dataset, shared_docs
from .._errors import CohortexError
from ..stats._spline_maximum import fmm_spline
from ._deseq import (
    CountData,
    DispersionTrend,
    design_plan,
    fit_dispersion_trend,
    gene_wise_row_count,
    gene_wise_rows,
    per_tile,
    prepare_counts,
)

__all__ = ["vst"]

_FIT_TYPES = ("parametric", "local", "mean")
_GRID = 1000  # getVarianceStabilizedData's grid of counts for the local trend
_AUTO_GENES = 1000  # vst's default subset


@shared_docs
def vst(
    cohort: CohortLike,
    design: str | pd.DataFrame | np.ndarray | None = None,
    *,
    nsub: int | str | None = 1000,
    fit_type: str = "parametric",
    size_factors: str | np.ndarray = "ratio",
    lengths: str | np.ndarray | pd.DataFrame | None = "auto",
    norm_factors: str | np.ndarray | pd.DataFrame | None = None,
) -> xr.Dataset:
    """DESeq2's variance-stabilizing transformation of a counts cohort, on the log2 scale:
    ``vst(dds)`` (or ``varianceStabilizingTransformation(dds)`` with ``nsub=None``).

    The genes' dispersion trend (``asymptDisp + extraPois / mean``) makes the variance of
    the transformed counts about constant over the mean: what PCA, clustering and
    distances between samples want from RNA-seq counts.

    Parameters
    ----------
    {cohort}
        Raw counts (scale ``counts``): whole numbers, no NaN or negative values.
    design : str, DataFrame or array of shape (n_samples, p), optional
        None is DESeq2's ``blind = TRUE`` (the dispersions of ``~ 1``); a design is
        ``blind = FALSE`` for a DESeqDataSet of that design (the dispersions within its
        groups, so that the design's differences do not count as noise).
    nsub : int, "auto" or None, default 1000
        The trend from this many genes with mean normalised count above 5, evenly spread
        over their means, as ``vst``; None takes every gene
        (``varianceStabilizingTransformation``); "auto" is 1000 where the cohort has that
        many such genes, else every gene (what ``normalize(method="vst")`` takes).
    fit_type : {{"parametric", "local", "mean"}}, default "parametric"
        The trend, as for :func:`deseq` (the local fit where the parametric one fails, with
        a warning); ``"mean"``'s transformation is ``(2 asinh √(α q) − log α − log 4) /
        log 2``, the local trend's DESeq2's numerical integral (its grid up to the largest
        normalised count, read in the pass that takes the means).
    size_factors : {{"ratio", "poscounts"}} or array of shape (n_samples,), default "ratio"
    lengths : "auto", str, array of shape (n_samples, n_genes), DataFrame, DataArray or None
        Average transcript lengths, as for :func:`deseq`: the counts are normalised by
        their normalization factors (a ``DESeqDataSetFromTximport``'s ``vst``), on the host
        where the factors are made (the layer's chunks are NumPy's then).
    norm_factors : str, array of shape (n_samples, n_genes), DataFrame, DataArray, optional
        A normalization factor per count, as for :func:`deseq` (on the host too).

    Returns
    -------
    xarray.Dataset
        The cohort with ``expression`` transformed (float64, lazy; scale ``log2``) and
        ``size_factor`` on ``sample`` (not with ``norm_factors``); attrs ``normalization``
        ("vst"), the trend's coefficients, ``normalization_factors`` (``"size factors"``,
        ``"lengths"`` or ``"given"``).
    """
    if fit_type not in _FIT_TYPES:
        raise CohortexError(f"vst()'s 'fit_type' must be one of {_FIT_TYPES}; got {fit_type!r}.")
    ds = as_cohort_dataset(cohort)
    if not isinstance(ds, xr.Dataset):
        raise CohortexError("vst() needs a cohort store or Dataset with an 'expression'.")
    n_samples = ds.sizes.get("sample", 0)
    chosen = np.ones((n_samples, 1)) if design is None else design
    data = prepare_counts(
        ds,
        chosen,
        size_factors,
        lengths=lengths,
        norm_factors=norm_factors,
        caller="vst()",
        min_coefficients=1,
    )
    sf = data.size_factors
    normalized_counts = data.normalized()
    # the largest normalised count (the local trend's grid) in the same pass as the means
    means, largest = da.compute(normalized_counts.mean(axis=0), normalized_counts.max())
    base_mean = np.asarray(means, dtype=np.float64)
    genes = np.arange(base_mean.size)
    if nsub == "auto":
        nsub = _AUTO_GENES if np.count_nonzero(base_mean > 5) >= _AUTO_GENES else None
    subset = data
    if nsub is not None:
        genes = _subset(base_mean, nsub)
        subset = data.of_genes(np.sort(genes))
    plan = design_plan(subset)
    rows = per_tile(
        subset,
        plan,
        lambda tile, _, plan: gene_wise_rows(tile, plan),
        gene_wise_row_count(plan),
    )
    counted = rows[1] == 0
    trend = fit_dispersion_trend(rows[0][counted], rows[2][counted], fit_type, "vst()")
    transform: DispersionTrend | _Integral = trend
    if trend.fit_type == "local":
        transform = _integral(data, trend, base_mean, float(largest))
    if data.per_count is None:  # on the counts' device
        factors = da.from_array(sf[:, None], chunks=(data.counts.chunks[0], 1))
        normalized = da.map_blocks(
            _normalize,
            data.counts,
            factors,
            dtype=np.float64,
            meta=meta_from_array(data.counts, dtype=np.float64),
        )
    else:  # the normalization factors are the host's
        normalized = data.normalized()
    values = normalized.map_blocks(_transform, transform, dtype=np.float64)
    out = ds.copy()
    out["expression"] = (("sample", "gene"), values.rechunk(_original_chunks(ds)))
    if data.per_count_kind != "factors":  # no size factors beside given factors
        out["size_factor"] = ("sample", sf)
    attrs: dict[str, Any] = {
        **ds.attrs,
        "scale": "log2",
        "normalization": "vst",
        "vst_fit_type": trend.fit_type,
        "vst_genes": int(genes.size),
        "vst_blind": int(design is None),
        "normalization_factors": data.factor_source,
    }
    attrs.update(trend.attrs())
    out.attrs = attrs
    return out


def _subset(base_mean: np.ndarray, nsub: Any) -> np.ndarray:
    """vst's genes: of those with mean normalised count above 5, in order of their means,
    the ``round(seq(1, n, length = nsub))``-th (R's rounding, half to even)."""
    if not (isinstance(nsub, (int, np.integer)) and nsub >= 2):
        raise CohortexError(
            f"vst()'s 'nsub' must be an integer >= 2, 'auto' or None; got {nsub!r}."
        )
    eligible = np.flatnonzero(base_mean > 5)
    if base_mean.size < nsub or eligible.size < nsub:
        raise CohortexError(
            f"vst() takes its trend from {nsub} genes with a mean normalised count above 5; "
            f"this cohort has {eligible.size}. Pass nsub=None "
            "(varianceStabilizingTransformation: every gene) or a smaller nsub."
        )
    order = eligible[np.argsort(base_mean[eligible], kind="stable")]
    n = order.size
    steps = (n - 1) / (nsub - 1)
    positions = np.concatenate([[1.0], 1.0 + np.arange(1, nsub - 1) * steps, [float(n)]])
    return order[np.round(positions).astype(np.int64) - 1]


def _normalize(block: Any, factors: np.ndarray) -> Any:
    """A block of counts (samples × genes) over the samples' size factors, on its device."""
    xp = namespace(block)
    return block.astype(xp.float64) / xp.asarray(factors)


@dataclass(frozen=True)
class _Integral:
    """The local trend's transformation: ``eta · spline(asinh(q)) + xi``, the spline R's fmm
    through the cumulative integral (``y + b·t + c·t² + d·t³`` from each knot)."""

    knots: np.ndarray  # (m,) asinh of the grid's midpoints
    coefficients: np.ndarray  # (4, m): y, b, c, d
    eta: float
    xi: float


def _integral(
    data: CountData, trend: DispersionTrend, base_mean: np.ndarray, largest: float
) -> _Integral:
    """getVarianceStabilizedData's local branch: the trapezoid integral of 1 / √(α(x) x² +
    xim · x) over ``sinh`` of 1,000 even steps of asinh up to the largest normalised count
    (xim the mean inverse size factor, or of ``exp(colMeans(log(factors)))`` with
    normalization factors), its fmm spline over asinh, scaled so that the genes' 95th and
    99.9th percentile means map to their log2."""
    if data.per_count is None:
        sf = data.size_factors
    else:
        n = data.counts.shape[0]
        log_factors = da.map_blocks(
            lambda tile: np.log(data.factors_of(tile[n:])),
            data.tiles(),
            chunks=data.counts.chunks,
            dtype=np.float64,
            meta=np.empty((0, 0)),
        )
        sf = np.exp(np.asarray(log_factors.mean(axis=1).compute(), dtype=np.float64))
    grid = np.sinh(np.linspace(0.0, np.arcsinh(largest), _GRID))[1:]
    variance = trend.at(grid) * grid**2 + np.mean(1.0 / sf) * grid
    integrand = 1.0 / np.sqrt(variance)
    knots = np.arcsinh((grid[1:] + grid[:-1]) / 2.0)
    steps = np.diff(grid) * (integrand[1:] + integrand[:-1]) / 2.0
    values = np.cumsum(steps.astype(np.longdouble)).astype(np.float64)  # R's, in long double
    b, c, d = np.zeros(knots.size), np.zeros(knots.size), np.zeros(knots.size)
    fmm_spline(knots, values, b, c, d)
    coefficients = np.vstack([values, b, c, d])
    h1, h2 = np.quantile(base_mean, [0.95, 0.999])
    if not h1 > 0:
        raise CohortexError(
            "vst()'s local trend scales its transformation at the genes' 95th percentile "
            "mean count, which is 0 here; filter the genes without counts first."
        )
    at_h = _spline_at(np, knots, coefficients, np.arcsinh(np.array([h1, h2])))
    eta = (math.log2(h2) - math.log2(h1)) / (at_h[1] - at_h[0])
    xi = math.log2(h1) - eta * at_h[0]
    return _Integral(knots, coefficients, float(eta), float(xi))


def _spline_at(xp: Any, knots: Any, coefficients: Any, u: Any) -> Any:
    """R's ``spline_eval`` of an fmm spline: each point on the cubic of the last knot at or
    below it (the first knot's below them all, the last's beyond)."""
    knots = xp.asarray(knots)
    coefficients = xp.asarray(coefficients)
    cell = xp.clip(xp.searchsorted(knots, u, side="right") - 1, 0, knots.shape[0] - 1)
    t = u - knots[cell]
    y, b, c, d = (coefficients[k][cell] for k in range(4))
    return y + t * (b + t * (c + t * d))


def _transform(q: Any, trend: DispersionTrend | _Integral) -> Any:
    """getVarianceStabilizedData of a block of normalised counts (samples × genes), on its
    device."""
    xp = namespace(q)
    if isinstance(trend, _Integral):
        return trend.eta * _spline_at(xp, trend.knots, trend.coefficients, xp.arcsinh(q)) + trend.xi
    if trend.fit_type == "mean":
        alpha = trend.coefficients[0]
        shifted = 2.0 * xp.arcsinh(xp.sqrt(alpha * q)) - math.log(alpha) - math.log(4.0)
        return shifted / math.log(2.0)
    asympt, extra = trend.coefficients
    inner = 1.0 + extra + 2.0 * asympt * q + 2.0 * xp.sqrt(asympt * q * (1.0 + extra + asympt * q))
    return xp.log(inner / (4.0 * asympt)) / math.log(2.0)


def _original_chunks(ds: xr.Dataset) -> Any:
    """The cohort's own chunks of (sample, gene), so the layer reads as the store does."""
    data = ds["expression"].transpose("sample", "gene").data
    return data.chunks if isinstance(data, da.Array) else "auto"
