"""limma's ``voom``: log-CPM values and precision weights from their mean–variance trend."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.array.utils import meta_from_array

from .._backend import as_device_dask, dask_on, namespace, resolve_device, to_host
from .._cohort import CohortLike, as_cohort_dataset, as_cohort_matrix, shared_docs
from .._errors import CohortexError, CohortexWarning
from .._normalize import resolve_factors
from ..stats._lowess import lowess, tied_means
from ._array_weights import GENE_BY_GENE_SAMPLES, array_weights
from ._block_model import block_least_squares
from ._gene_columns import TASK_GENES
from ._least_squares import (
    check_design,
    design_matrix,
    fit_tiles,
    least_squares,
    sample_codes,
)

__all__ = [
    "CountSums",
    "count_offsets",
    "count_sums",
    "log_cpm",
    "narrow_columns",
    "trend_weights",
    "voom",
    "warn_lengths_left_out",
]

_ROWS_PER_CHUNK = 2048

# float64 values in a column of voom's tiles (all samples) for array_weights, which reads a
# column of the values and of the weights per task: ~256 MB an array, whatever the samples
_COLUMN_VALUES = 32_000_000


@shared_docs
def voom(
    cohort: CohortLike,
    design: str | pd.DataFrame | np.ndarray,
    *,
    norm_factors: str | Any | None = None,
    block: str | Any = None,
    correlation: float | None = None,
    sample_weights: bool | str = False,
    var_group: str | Any = None,
    span: float = 0.5,
    device: str = "auto",
) -> xr.Dataset:
    """Transform counts for linear modelling with precision weights (Law et al. 2014).

    As limma's ``voom(counts, design)``: ``E = log2((x + 0.5) / (L + 1) · 10⁶)`` with library
    sizes L (times ``norm_factors``); an ordinary fit of ``design`` to E gives each gene's
    mean and residual standard deviation; R's ``lowess`` with ``span`` through
    ``sqrt(sd)`` against the mean log-count is the trend, and each observation's weight is
    ``1 / trend(log2 fitted count)⁴``. Pass the result to :func:`fit` with the same design:
    it uses the weights.

    Parameters
    ----------
    {cohort}
        Raw counts (scale ``counts``), no NaN or negative values.
    design : str, DataFrame or array of shape (n_samples, n_coefficients)
        As for :func:`fit`.
    norm_factors : {"tmm", "upperquartile", "rle", "none"} or array, optional
        edgeR's normalisation factors for the library sizes (:func:`cohortex.norm_factors`);
        ``"tmm"`` as in ``voom(calcNormFactors(DGEList(counts)), design)``. Default none.
    block : str or array of shape (n_samples,), optional
        Samples correlated within blocks, with their ``correlation`` (both or neither): the
        fit behind the trend is limma's block fit, as ``voom(block=, correlation=)`` — the
        second round of limma's voom + :func:`duplicate_correlation` recipe.
    correlation : float, optional
        The correlation within blocks, e.g. the consensus of :func:`duplicate_correlation`
        on a first voom.
    sample_weights : bool or {"reml", "genebygene"}, default False
        Sample quality weights as well, as limma's ``voomWithQualityWeights(method =
        "reml")`` (``True`` or ``"reml"``) or its default gene-by-gene update
        (``"genebygene"``, for small studies: see :func:`array_weights`):
        :func:`array_weights` of a first voom, voom again with the trend fitted with those
        weights, :func:`array_weights` of its weights; the result's ``weights`` are voom's
        times the sample weights. With ``block`` and ``correlation``, both voom fits are
        block fits, as limma's ``voomWithQualityWeights(block=, correlation=)`` (the sample
        weights themselves are estimated without the blocks, as there).
    var_group : str or array of shape (n_samples,), optional
        With ``sample_weights``: one weight per group of samples (a batch, a site) instead of
        per sample.
    span : float, default 0.5
        The lowess span.
    {device}

    Returns
    -------
    xarray.Dataset
        The cohort's sample and gene variables with ``expression`` (E, float64, lazy),
        ``weights`` (sample, gene; float64, lazy), ``lib_size`` (sample); on ``gene``
        ``voom_mean`` and ``voom_sqrt_sd`` (the points of the trend, NaN for genes with no
        count) and on ``trend`` the lowess curve ``trend_x``, ``trend_y``; with
        ``sample_weights``, ``sample_weights`` on ``sample`` (limma's
        ``targets$sample.weights``) and their attrs prefixed ``sample_weights_``. Attrs: scale
        ``log2``, normalization ``voom``, ``span``.
    """
    if not (np.isfinite(span) and 0 < span <= 1):
        raise CohortexError(f"voom's 'span' must be in (0, 1]; got {span!r}.")
    on = resolve_device(device)
    ds = as_cohort_dataset(cohort)
    if not isinstance(ds, xr.Dataset) or "expression" not in ds:
        raise CohortexError("voom() needs a cohort store or Dataset with an 'expression'.")
    if ds.attrs.get("scale") not in ("counts",):
        raise CohortexError(
            f"voom() needs raw counts (scale 'counts'); this cohort's scale is "
            f"{ds.attrs.get('scale')!r}."
        )
    warn_lengths_left_out(ds, "voom()")
    # tiles (the store's, or ~8 MB ones), never bands of every gene: array_weights and
    # duplicate_correlation read a column of voom's tiles per task, all samples of its genes
    counts = fit_tiles(
        dask_on(ds["expression"].transpose("sample", "gene").data, on, (_ROWS_PER_CHUNK, -1))
    )
    if sample_weights not in (False, True, "reml", "genebygene"):
        raise CohortexError(
            "voom's 'sample_weights' must be True, False, 'reml' or 'genebygene'; got "
            f"{sample_weights!r}."
        )
    method = "genebygene" if sample_weights == "genebygene" else "reml"
    if sample_weights:
        counts = narrow_columns(counts)
    n_samples, n_genes = counts.shape
    if n_genes < 2:
        raise CohortexError("voom() needs at least two genes to fit a mean-variance trend.")
    x_design, names, _ = design_matrix(design, ds, n_samples)
    check_design(x_design, names)
    if (block is None) != (correlation is None):
        raise CohortexError(
            "voom's 'block' and 'correlation' go together (estimate the correlation with "
            "duplicate_correlation on a first voom)."
        )
    if correlation is not None and not (
        isinstance(correlation, int | float | np.floating) and -1 < correlation < 1
    ):
        raise CohortexError(f"The 'correlation' parameter must be in (-1, 1); got {correlation!r}.")
    if var_group is not None and not sample_weights:
        raise CohortexError("voom's 'var_group' goes with 'sample_weights'.")
    if method == "genebygene" and var_group is None and n_samples - 1 > GENE_BY_GENE_SAMPLES:
        raise CohortexError(  # before any pass over the counts
            f"The gene-by-gene sample weights are offered up to {GENE_BY_GENE_SAMPLES + 1} "
            f"samples; this cohort has {n_samples}. Use sample_weights='reml'."
        )
    codes = (
        None if block is None else sample_codes(block, as_cohort_matrix(ds), n_samples, "block")[0]
    )
    sums = count_sums(ds, counts, norm_factors, "voom()")
    library, expressed = sums.library, sums.expressed
    logged = log_cpm(counts, library)
    trend = _trend(logged, x_design, library, expressed, span, codes, correlation, None)
    quality = None
    if sample_weights:  # limma's voomWithQualityWeights: weights, voom again, weights
        voomed = _voomed(ds, logged, trend)
        first = array_weights(voomed, x_design, var_group=var_group, method=method, device=on)
        trend = _trend(logged, x_design, library, expressed, span, codes, correlation, first.values)
        voomed = _voomed(ds, logged, trend)
        quality = array_weights(voomed, x_design, var_group=var_group, method=method, device=on)
    weights = trend.weights
    if quality is not None:
        column = da.from_array(quality.values[:, None], chunks=(logged.chunks[0], 1))
        weights = weights * (column if namespace(counts) is np else as_device_dask(column))
    out = ds.copy()
    out["expression"] = (("sample", "gene"), logged)
    out["weights"] = (("sample", "gene"), weights)
    out["lib_size"] = ("sample", library)
    out["voom_mean"] = ("gene", np.where(expressed, trend.sx, np.nan))
    out["voom_sqrt_sd"] = ("gene", np.where(expressed, trend.sy, np.nan))
    out["trend_x"] = ("trend", trend.curve_x)
    out["trend_y"] = ("trend", trend.curve_y)
    out.attrs = {**ds.attrs, "scale": "log2", "normalization": "voom", "span": span}
    if quality is not None:
        out["sample_weights"] = ("sample", quality.values)
        out.attrs.update({f"sample_weights_{k}": v for k, v in quality.attrs.items()})
    if correlation is not None:
        out.attrs["voom_correlation"] = float(correlation)
    if isinstance(norm_factors, str):
        out.attrs["norm_factors"] = norm_factors
    return out


@dataclass
class CountSums:
    """The first pass over a counts matrix: its checks and what voom needs of it."""

    library: np.ndarray  # (n_samples,) library sizes, times the normalisation factors
    expressed: np.ndarray  # (n_genes,) bool: genes with a count
    zeros: np.ndarray | None  # (n_genes,) each gene's counts below 1e-4, when asked


def count_sums(
    ds: xr.Dataset,
    counts: da.Array,
    norm_factors: str | Any | None,
    caller: str,
    *,
    count_zeros: bool = False,
) -> CountSums:
    """One pass over ``counts`` (samples × genes): the library sizes and expressed genes
    (edgeR's factors taken from them, without another pass), refusing NaN and negative
    counts; with ``count_zeros`` each gene's zeros too (voomLmFit's)."""
    sums = [
        da.sum(counts, axis=1, dtype=np.float64),
        da.sum(counts, axis=0, dtype=np.float64),
        da.min(counts),
        da.sum(da.isnan(counts)),
    ]
    if count_zeros:
        sums.append(da.sum(counts < 1e-4, axis=0))
    library, gene_totals, smallest, nan_count, *zeros = dask.compute(*sums)
    if int(to_host(nan_count)):
        raise CohortexError(f"{caller} needs complete counts; the matrix holds NaN values.")
    if float(to_host(smallest)) < 0:
        raise CohortexError(f"{caller} needs counts >= 0; the matrix holds negative values.")
    library = np.asarray(to_host(library), dtype=np.float64)
    expressed = np.asarray(to_host(gene_totals)) != 0
    factors = resolve_factors(ds, norm_factors, library, expressed)
    if factors is not None:
        library = library * factors
    return CountSums(library, expressed, np.asarray(to_host(zeros[0])) if zeros else None)


def log_cpm(counts: da.Array, library: np.ndarray) -> da.Array:
    """voom's log-CPM, ``log2((x + 0.5) / (L + 1) · 10⁶)``, lazily in the tiles of ``counts``
    (float64; ``library``: the library sizes L, host, one per sample)."""
    offsets = da.from_array(library[:, None] + 1.0, chunks=(counts.chunks[0], 1))
    return da.map_blocks(
        _log_cpm, counts, offsets, dtype=np.float64, meta=meta_from_array(counts, dtype=np.float64)
    )


def narrow_columns(counts: da.Array) -> da.Array:
    """``counts`` with tiles split along genes into equal parts until a column of them holds
    at most :data:`_COLUMN_VALUES` values (each tile read once; narrower tiles everywhere cost
    the plain voom time and memory, so only the sample weights take them)."""
    width = max(counts.chunks[1])
    target = max(64, _COLUMN_VALUES // counts.shape[0])
    if width <= target:
        return counts
    parts = -(-width // target)
    return counts.rechunk({1: -(-width // parts)})


@dataclass
class _Trend:
    """voom's weights (lazy) and the points and curve of its mean–variance trend."""

    weights: da.Array
    sx: np.ndarray
    sy: np.ndarray
    curve_x: np.ndarray
    curve_y: np.ndarray


def _trend(
    logged: da.Array,
    x_design: np.ndarray,
    library: np.ndarray,
    expressed: np.ndarray,
    span: float,
    codes: np.ndarray | None,
    correlation: float | None,
    sample_weights: np.ndarray | None,
) -> _Trend:
    """The fit of the log-CPM (with the blocks and with sample weights, either or both),
    its trend and the weights it gives."""
    if codes is None or correlation is None:
        fitted = least_squares(logged, x_design, sample_weights)  # one weight per sample
    else:  # limma's gls.series: the same tiles as any block fit
        tiles = logged.rechunk({0: _ROWS_PER_CHUNK, 1: TASK_GENES})
        fitted = block_least_squares(tiles, x_design, codes, float(correlation), sample_weights)
    sx = np.asarray(to_host(fitted.average)) + np.mean(np.log2(library + 1.0)) - np.log2(1e6)
    sy = np.sqrt(np.sqrt(np.asarray(to_host(fitted.s2))))  # sqrt of the residual sd
    curve_x, curve_y, anchors = lowess(sx[expressed], sy[expressed], f=span)
    # R's approxfun(rule = 2) through every point of the curve; it is linear between the
    # anchors, so those (tied x averaged) are the knots
    knots_x, knots_y = tied_means(curve_x[anchors], curve_y[anchors])
    weights = trend_weights(logged, x_design, fitted.beta, count_offsets(library), knots_x, knots_y)
    return _Trend(weights, sx, sy, curve_x, curve_y)


def count_offsets(library: np.ndarray) -> np.ndarray:
    """``log2((L + 1) · 10⁻⁶)``: a fitted log-CPM plus this is voom's log fitted count."""
    return np.log2((library + 1.0) * 1e-6)


def trend_weights(
    logged: da.Array,
    x_design: np.ndarray,
    beta: Any,
    offsets: np.ndarray,
    knots_x: np.ndarray,
    knots_y: np.ndarray,
) -> da.Array:
    """Weights ``1 / trend(fitted value + offset)⁴`` (lazy, in the tiles of ``logged``).

    ``beta`` (p × n_genes, on the device of ``logged``) gives the fitted values; ``offsets``
    (one per sample) turn them into the trend's scale — voom's :func:`count_offsets` (the
    log fitted count), vooma's zeros. The trend is linear between ``knots_x`` (increasing)
    and ``knots_y``, constant beyond them (R's ``approxfun(rule = 2)``).
    """
    xp = namespace(logged)
    chunks = logged.chunks[0]
    return da.map_blocks(
        _weights,
        da.from_array(x_design, chunks=(chunks, -1)),
        da.from_array(beta, chunks=(-1, logged.chunks[1]), asarray=False),
        da.from_array(np.asarray(offsets, dtype=np.float64)[:, None], chunks=(chunks, 1)),
        xp.asarray(knots_x),
        xp.asarray(knots_y),
        chunks=logged.chunks,
        dtype=np.float64,
        meta=meta_from_array(logged, dtype=np.float64),
    )


def _voomed(ds: xr.Dataset, logged: da.Array, trend: _Trend) -> xr.Dataset:
    """The cohort as voom leaves it, for array_weights: log-CPM and voom's weights."""
    voomed = ds.copy()
    voomed["expression"] = (("sample", "gene"), logged)
    voomed["weights"] = (("sample", "gene"), trend.weights)
    voomed.attrs = {**ds.attrs, "scale": "log2"}
    return voomed


def _log_cpm(block: Any, offsets: Any) -> Any:
    xp = namespace(block)
    return xp.log2((block.astype(xp.float64) + 0.5) / xp.asarray(offsets) * 1e6)


def _weights(design: Any, beta: Any, log_offsets: Any, knots_x: Any, knots_y: Any) -> Any:
    """``1 / trend(fitted + offset)⁴`` for a block of samples (rows of ``design``).

    voom's log fitted count is ``fitted log-CPM + log2((L + 1) · 10⁻⁶)``, which is R's
    ``log2(10⁻⁶ · 2^fitted · (L + 1))`` up to rounding. NumPy blocks use the compiled loop.
    """
    xp = namespace(beta)
    if xp is np:
        from ..stats._cpu.voom import voom_weights  # numba: CPU only

        return voom_weights(design, beta, np.asarray(log_offsets)[:, 0], knots_x, knots_y)
    fitted = xp.asarray(design) @ beta  # log-CPM fitted values, (rows × genes)
    log_count = fitted + xp.asarray(log_offsets)
    trend = xp.interp(log_count, knots_x, knots_y)
    return 1.0 / trend**4


def warn_lengths_left_out(ds: xr.Dataset, caller: str) -> None:
    """Warn when a model without offsets is given tximport's estimated counts with their
    lengths (``counts_from_abundance`` "no" and ``length(sample, gene)``): those counts carry
    the bias of a change in which transcripts a gene expresses, which only the lengths undo."""
    variable = ds.get("length")
    if variable is None or set(variable.dims) != {"sample", "gene"}:
        return
    if ds.attrs.get("counts_from_abundance", "no") != "no":
        return
    warnings.warn(
        f"{caller} takes no transcript lengths, and this cohort's counts are tximport's "
        "estimated counts (counts_from_abundance 'no'), which need them: a change in which "
        "transcripts a gene expresses would read as a change in its expression. Import the "
        "counts as 'lengthScaledTPM' for this model (tximport's advice), or use de.deseq, "
        "glm_ql or glm_lrt, which take the lengths.",
        CohortexWarning,
        stacklevel=3,
    )
