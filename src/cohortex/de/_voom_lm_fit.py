"""edgeR's ``voomLmFit``: voom and the linear model, with the exact zeros of counts left out of
each gene's residual variance and degrees of freedom."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.array.utils import meta_from_array

from .._backend import as_device_dask, dask_on, namespace, resolve_device, take_genes, to_host
from .._cohort import CohortLike, as_cohort_dataset, as_cohort_matrix, shared_docs, to_host_dataset
from .._errors import CohortexError
from ..stats._lowess import lowess, tied_means, weighted_lowess
from ..stats._poisson import poisson_basis, poisson_coefficients
from ._array_weights import GENE_BY_GENE_SAMPLES, array_weights
from ._block_model import block_least_squares, duplicate_correlation
from ._gene_columns import TASK_GENES
from ._least_squares import (
    LeastSquares,
    check_design,
    check_residual_df,
    design_matrix,
    fit_tiles,
    least_squares,
    sample_codes,
)
from ._linear_model import check_test_options, contrast_matrix, fit_result
from ._voom import (
    count_offsets,
    count_sums,
    log_cpm,
    narrow_columns,
    trend_weights,
    warn_lengths_left_out,
)

__all__ = ["voom_lm_fit"]

_ROWS_PER_CHUNK = 2048
_EPS = 1e-4  # edgeR's: a count below it is a zero, a fitted value below it a fitted zero
# float64 values in a column of counts that one Poisson task holds (all samples): ~64 MB, its
# fitted values and masks a few times that
_COLUMN_VALUES = 8_000_000


@shared_docs
def voom_lm_fit(
    cohort: CohortLike,
    design: str | pd.DataFrame | np.ndarray,
    *,
    contrasts: Sequence[str] | Mapping[str, Any] | pd.DataFrame | None = None,
    norm_factors: str | Any | None = None,
    block: str | Any = None,
    sample_weights: bool | str = False,
    var_group: str | Any = None,
    span: float = 0.5,
    moderate: bool = True,
    trend: bool = False,
    robust: bool = False,
    treat_lfc: float | None = None,
    confidence: float = 0.95,
    fdr: str = "bh",
    device: str = "auto",
) -> xr.Dataset:
    """voom and the linear model of every gene with exact zeros accounted for, as edgeR's
    ``voomLmFit(counts, design)`` followed by limma's ``eBayes``.

    A log count of 0 is ``log2(0.5 / (L + 1) · 10⁶)`` whatever the gene: a group of samples
    with no count of a gene makes its residuals small and its variance too low. voomLmFit
    finds the zeros that the model fits exactly — edgeR's Poisson fit of each gene with more
    zeros than the smallest group (a fitted value and a count below 1e-4) — and leaves them
    out of that gene's residual variance and degrees of freedom (its coefficients stay those
    of all values). The mean–variance trend is then limma's ``weightedLowess`` with each gene
    weighted by its residual df, and eBayes takes the genes' own df. With ``block``, the
    correlation within blocks is estimated twice (after a first and a second voom), as
    voomLmFit does; with ``sample_weights``, sample weights are estimated twice and voom's
    second trend is fitted with them.

    Parameters
    ----------
    {cohort}
        Raw counts (scale ``counts``), no NaN or negative values.
    design : str, DataFrame or array of shape (n_samples, n_coefficients)
        As for :func:`fit`.
    contrasts : optional
        As for :func:`fit` (limma's ``contrasts.fit`` after voomLmFit).
    norm_factors : {"tmm", "upperquartile", "rle", "none"} or array, optional
        As for :func:`voom`; ``"tmm"`` as in ``voomLmFit(calcNormFactors(DGEList(counts)))``.
    block : str or array of shape (n_samples,), optional
        Samples correlated within blocks (patients): the fits are limma's block fits with the
        consensus correlation of :func:`duplicate_correlation`, estimated here.
    sample_weights : bool or {"genebygene", "reml"}, default False
        Sample quality weights: ``True`` is voomLmFit's ``sample.weights = TRUE``, limma's
        gene-by-gene ``arrayWeights`` (it is given voom's weights), offered up to
        1,001 samples; ``"reml"`` the REML estimate, which scales to any cohort but is not
        what voomLmFit computes (the two differ by a few per cent).
    var_group : str or array of shape (n_samples,), optional
        With ``sample_weights``: one weight per group of samples.
    span : float, default 0.5
        The span of the trend.
    moderate, trend, robust, treat_lfc, confidence, fdr
        As for :func:`fit`.
    {device}

    Returns
    -------
    xarray.Dataset
        :func:`fit`'s result with each gene's ``df_residual`` and ``exact_zeros`` (the zeros
        left out) on ``gene``, ``lib_size`` and, with sample weights,
        ``sample_weights`` on ``sample``; attrs ``correlation`` (with ``block``) and
        ``normalization`` ``"voomLmFit"``.
    """
    if not (np.isfinite(span) and 0 < span <= 1):
        raise CohortexError(f"voom_lm_fit's 'span' must be in (0, 1]; got {span!r}.")
    check_test_options(moderate, trend, robust, treat_lfc, confidence, fdr)
    if sample_weights not in (False, True, "reml", "genebygene"):
        raise CohortexError(
            "voom_lm_fit's 'sample_weights' must be True, False, 'genebygene' or 'reml'; got "
            f"{sample_weights!r}."
        )
    method = "reml" if sample_weights == "reml" else "genebygene"
    if var_group is not None and not sample_weights:
        raise CohortexError("voom_lm_fit's 'var_group' goes with 'sample_weights'.")
    on = resolve_device(device)
    ds = as_cohort_dataset(cohort)
    if not isinstance(ds, xr.Dataset) or "expression" not in ds:
        raise CohortexError("voom_lm_fit() needs a cohort store or Dataset with an 'expression'.")
    warn_lengths_left_out(ds, "voom_lm_fit()")
    if ds.attrs.get("scale") != "counts":
        raise CohortexError(
            f"voom_lm_fit() needs raw counts (scale 'counts'); this cohort's scale is "
            f"{ds.attrs.get('scale')!r}."
        )
    counts = fit_tiles(
        dask_on(ds["expression"].transpose("sample", "gene").data, on, (_ROWS_PER_CHUNK, -1))
    )
    if sample_weights or block is not None:  # array_weights, duplicate_correlation: columns
        counts = narrow_columns(counts)
    n_samples, n_genes = counts.shape
    if n_genes < 2:
        raise CohortexError("voom_lm_fit() needs at least two genes to fit a mean-variance trend.")
    x_design, names, formula = design_matrix(design, ds, n_samples)
    check_design(x_design, names)
    check_residual_df(x_design)
    gene_by_gene = sample_weights and method == "genebygene" and var_group is None
    if gene_by_gene and n_samples - 1 > GENE_BY_GENE_SAMPLES:  # before any pass over counts
        raise CohortexError(
            f"voomLmFit's gene-by-gene sample weights are offered up to "
            f"{GENE_BY_GENE_SAMPLES + 1} samples; this cohort has {n_samples}. Use "
            "sample_weights='reml'."
        )
    matrix = contrast_matrix(contrasts, names)
    codes, block_name = (
        (None, None)
        if block is None
        else sample_codes(block, as_cohort_matrix(ds), n_samples, "block")
    )
    sums = count_sums(ds, counts, norm_factors, "voom_lm_fit()", count_zeros=True)
    library, zeros = sums.library, sums.zeros
    assert zeros is not None
    logged = log_cpm(counts, library)
    offsets = count_offsets(library)

    fitted = least_squares(logged, x_design, None)
    zeros_model = _exact_zeros(counts, x_design, library, zeros)
    average = np.asarray(to_host(fitted.average), dtype=np.float64)
    if zeros_model is not None:  # else voom as it is (R's lowess for the trend)
        refit = least_squares(zeros_model.rows(counts), x_design, None)
        fitted = zeros_model.override(fitted, refit)
        average[zeros_model.candidate] = np.asarray(to_host(refit.average))
    df = _gene_df(fitted, n_genes)
    replicated = df > 0
    if replicated.sum() < 2:
        raise CohortexError(
            "voom_lm_fit() needs at least two genes with residual degrees of freedom once the "
            "exact zeros are left out."
        )
    sx = average[replicated] + np.mean(np.log2(library + 1.0)) - np.log2(1e6)
    knots = _trend(sx, fitted, replicated, span, zeros_model is not None)
    weights = trend_weights(logged, x_design, fitted.beta, offsets, *knots)

    with_zeros_missing = logged if zeros_model is None else zeros_model.masked(logged, counts)

    def voomed(weights: da.Array) -> xr.Dataset:
        """The log2 cohort of limma's ``yNAfull`` and ``weights``, for array_weights and
        duplicate_correlation."""
        out = ds.copy()
        out["expression"] = (("sample", "gene"), with_zeros_missing)
        out["weights"] = (("sample", "gene"), weights)
        out.attrs = {**ds.attrs, "scale": "log2"}
        return out

    quality: xr.DataArray | None = None
    correlation: float | None = None
    if sample_weights or codes is not None:  # voomLmFit's second round
        if sample_weights:
            quality = _sample_weights(voomed(weights), x_design, var_group, method, on)
            if codes is not None:
                weights = weights * _column(quality.values, logged)
        if codes is not None:
            correlation = _correlation(voomed(weights), x_design, codes, on)
        round_weights = None if quality is None else quality.values
        fitted = _fit(logged, x_design, codes, correlation, round_weights)
        if zeros_model is not None:
            refit = _fit(zeros_model.rows(counts), x_design, codes, correlation, round_weights)
            fitted = zeros_model.override(fitted, refit)
        knots = _trend(sx, fitted, replicated, span, zeros_model is not None)
        weights = trend_weights(logged, x_design, fitted.beta, offsets, *knots)
        if sample_weights:
            quality = _sample_weights(voomed(weights), x_design, var_group, method, on)
            weights = weights * _column(quality.values, logged)
        if codes is not None:
            correlation = _correlation(voomed(weights), x_design, codes, on)

    final = _fit(logged, x_design, codes, correlation, weights)
    if zeros_model is not None:  # their weights as above, computed for them alone
        positions = np.flatnonzero(zeros_model.candidate)
        beta = fitted.beta[:, namespace(fitted.beta).asarray(positions)]
        logged_rows = zeros_model.logged_rows(counts)
        row_weights = trend_weights(logged_rows, x_design, beta, offsets, *knots)
        if quality is not None:
            row_weights = row_weights * _column(quality.values, logged_rows)
        refit = _fit(zeros_model.rows(counts), x_design, codes, correlation, row_weights)
        final = zeros_model.override(final, refit)
    attrs: dict[str, Any] = {
        "design": list(names),
        "formula": formula or "",
        "weighted": 1,
        "normalization": "voomLmFit",
        "span": span,
    }
    if codes is not None:
        attrs.update(block=block_name, correlation=float(correlation or 0.0))
    result = fit_result(
        replace(final, df_residual=_gene_df(final, n_genes)),
        matrix,
        as_cohort_matrix(ds).gene_ids,
        attrs,
        moderate=moderate,
        trend=trend,
        robust=robust,
        treat_lfc=treat_lfc,
        confidence=confidence,
        fdr=fdr,
    )
    result = to_host_dataset(result)
    result["exact_zeros"] = (
        "gene",
        np.zeros(n_genes) if zeros_model is None else zeros_model.count,
    )
    result["lib_size"] = ("sample", library)
    if quality is not None:
        result["sample_weights"] = ("sample", quality.values)
    if "sample" in ds.coords:
        result = result.assign_coords(sample=ds["sample"].values)
    return result


@dataclass
class _ExactZeros:
    """The genes with exact zeros and their Poisson fit, to mask those zeros."""

    candidate: np.ndarray  # (n_genes,) bool: the genes with exact zeros
    basis: np.ndarray  # (n_samples, q)
    coefficients: np.ndarray  # (q, n_candidates)
    library: np.ndarray  # (n_samples,)
    count: np.ndarray  # (n_genes,) each gene's exact zeros

    def logged_rows(self, counts: da.Array) -> da.Array:
        """The candidate genes' log-CPM: their counts selected tile by tile, then logged
        (not the whole matrix logged, then selected)."""
        return log_cpm(take_genes(counts, self.candidate), self.library)

    def rows(self, counts: da.Array) -> da.Array:
        """The candidate genes' log-CPM, exact zeros NaN."""
        return self._mask(
            self.logged_rows(counts), take_genes(counts, self.candidate), self.coefficients
        )

    def masked(self, logged: da.Array, counts: da.Array) -> da.Array:
        """All genes' log-CPM, the exact zeros NaN (limma's ``yNAfull``)."""
        full = np.zeros((self.basis.shape[1], self.candidate.size))
        full[:, self.candidate] = self.coefficients
        return self._mask(logged, counts, full, self.candidate)

    def override(self, fitted: LeastSquares, refit: LeastSquares) -> LeastSquares:
        """``fitted`` with the candidates' residual variance and df from ``refit``."""
        xp = namespace(fitted.s2)
        positions = xp.asarray(np.flatnonzero(self.candidate))
        s2 = xp.asarray(fitted.s2).copy()
        s2[positions] = xp.asarray(refit.s2)
        df = _gene_df(fitted, self.candidate.size)
        df[self.candidate] = np.asarray(to_host(refit.df_residual), dtype=np.float64)
        return replace(fitted, s2=s2, df_residual=df)

    def _mask(
        self,
        values: da.Array,
        counts: da.Array,
        coefficients: np.ndarray,
        genes: np.ndarray | None = None,
    ) -> da.Array:
        rows = values.chunks[0]
        with np.errstate(divide="ignore"):  # a sample without counts: every fitted value 0
            log_library = np.log(self.library)
        return da.map_blocks(
            _without_exact_zeros,
            values,
            counts,
            da.from_array(self.basis, chunks=(rows, -1)),
            da.from_array(coefficients, chunks=(-1, values.chunks[1])),
            da.from_array(log_library[:, None], chunks=(rows, 1)),
            da.from_array(
                np.ones(values.shape[1], dtype=bool) if genes is None else genes,
                chunks=(values.chunks[1],),
            )[None, :],
            dtype=np.float64,
            meta=meta_from_array(values, dtype=np.float64),
        )


def _without_exact_zeros(
    values: Any, counts: Any, basis: Any, coefficients: Any, log_library: Any, genes: Any
) -> Any:
    """``values`` with NaN at the exact zeros of ``genes``."""
    xp = namespace(values)
    zero = xp.asarray(genes) & _exact_zero(counts, basis, coefficients, log_library)
    return xp.where(zero, xp.nan, values)


def _exact_zero(counts: Any, basis: Any, coefficients: Any, log_library: Any) -> Any:
    """Where the count and its Poisson fitted value ``exp(basis @ coefficients + log_library)``
    are both below 1e-4 (rows × genes, boolean)."""
    xp = namespace(counts)
    log_mean = xp.asarray(basis) @ xp.asarray(coefficients) + xp.asarray(log_library)
    with np.errstate(over="ignore", invalid="ignore"):
        fitted_zero = ~(xp.exp(log_mean) >= _EPS)  # NaN coefficients: edgeR's fitted 0
    return (counts < _EPS) & fitted_zero


def _exact_zeros(
    counts: da.Array, x_design: np.ndarray, library: np.ndarray, zeros: np.ndarray
) -> _ExactZeros | None:
    """The genes with exact zeros and their Poisson fit, or None when no gene has one.

    Only genes with more zeros than the smallest group (limma's hat values: ``1/max(h)``
    samples, at least 2) are fitted, each with all its samples in one task, which counts its
    exact zeros on the way.
    """
    q, _ = np.linalg.qr(x_design)
    smallest_group = 1.0 / np.max(np.sum(q * q, axis=1))
    candidate = zeros > max(2.0, smallest_group) - _EPS
    if not candidate.any():
        return None
    rows = take_genes(counts, candidate).rechunk(
        {0: -1, 1: max(1, min(TASK_GENES, _COLUMN_VALUES // counts.shape[0]))}
    )
    with np.errstate(divide="ignore"):  # a sample without counts: every fitted value 0
        log_library = np.log(library)
    basis = poisson_basis(x_design)

    def fit_and_count(block: Any) -> np.ndarray:
        """The coefficients (q rows) and the exact zeros (a last row) of a column of genes."""
        block = np.asarray(to_host(block))
        coefficients = poisson_coefficients(block, x_design, log_library)
        zero = _exact_zero(block, basis, coefficients, log_library[:, None])
        return np.vstack([coefficients, zero.sum(axis=0)[None, :]])

    fitted = rows.map_blocks(
        fit_and_count,
        chunks=((basis.shape[1] + 1,), rows.chunks[1]),
        dtype=np.float64,
        meta=np.empty((0, 0)),
    ).compute()
    found = fitted[-1] > 0
    if not found.any():
        return None
    exact = np.zeros(candidate.size)
    exact[np.flatnonzero(candidate)[found]] = fitted[-1][found]
    return _ExactZeros(exact > 0, basis, fitted[:-1][:, found], library, exact)


def _gene_df(fitted: LeastSquares, n_genes: int) -> np.ndarray:
    """The residual df of every gene (host, float64), a scalar df repeated."""
    df = np.asarray(to_host(fitted.df_residual), dtype=np.float64)
    return np.full(n_genes, float(df)) if df.ndim == 0 else df.copy()


def _trend(
    sx: np.ndarray, fitted: LeastSquares, replicated: np.ndarray, span: float, weighted: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The knots of voom's trend through ``sqrt(sd)`` against ``sx`` of the genes with residual
    df: limma's ``weightedLowess`` weighted by the df when exact zeros were left out (every
    point is a knot), else R's ``lowess`` (linear between its anchors)."""
    s2 = np.asarray(to_host(fitted.s2), dtype=np.float64)[replicated]
    sy = np.sqrt(np.sqrt(s2))
    if weighted:
        df = _gene_df(fitted, replicated.size)[replicated]
        curve_x, curve_y = weighted_lowess(sx, sy, df, span=span)
        return tied_means(curve_x, curve_y)
    curve_x, curve_y, anchors = lowess(sx, sy, f=span)
    return tied_means(curve_x[anchors], curve_y[anchors])


def _fit(
    values: da.Array,
    x_design: np.ndarray,
    codes: np.ndarray | None,
    correlation: float | None,
    weights: da.Array | np.ndarray | None,
) -> LeastSquares:
    """limma's lmFit of ``values``: with the blocks when there are blocks."""
    if codes is None:
        return least_squares(values, x_design, weights)
    tiles = values.rechunk({0: _ROWS_PER_CHUNK, 1: TASK_GENES})
    if isinstance(weights, da.Array):
        weights = weights.rechunk(tiles.chunks)
    return block_least_squares(tiles, x_design, codes, float(correlation or 0.0), weights)


def _sample_weights(
    voomed: xr.Dataset, x_design: np.ndarray, var_group: Any, method: str, device: str
) -> xr.DataArray:
    return array_weights(voomed, x_design, var_group=var_group, method=method, device=device)


def _correlation(voomed: xr.Dataset, x_design: np.ndarray, codes: np.ndarray, device: str) -> float:
    """The consensus correlation within blocks (0 where limma's is NA)."""
    found = duplicate_correlation(voomed, x_design, codes, device=device)
    consensus = float(found.attrs["consensus_correlation"])
    return consensus if np.isfinite(consensus) else 0.0


def _column(values: np.ndarray, like: da.Array) -> da.Array:
    """One value per sample as a (samples × 1) Dask column in the rows of ``like``."""
    column = da.from_array(values[:, None], chunks=(like.chunks[0], 1))
    return column if namespace(like) is np else as_device_dask(column)
