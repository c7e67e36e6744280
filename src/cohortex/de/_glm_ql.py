"""edgeR's quasi-likelihood pipeline: ``estimateDisp``, ``glmQLFit`` and ``glmQLFTest``;
and its likelihood-ratio tests, ``glmFit`` and ``glmLRT``.

Each gene's negative-binomial GLM (:mod:`cohortex.stats._negative_binomial`), fitted in gene
tiles of the counts (host numba; the genes are independent). Between the passes come the
steps across genes: the common dispersion and the abundance trend of the profile
likelihoods (locfit's local constant fit), the QL prior (limma's ``squeezeVar``).

The passes over the counts: the library sizes (and TMM factors); the Cox-Reid profile
likelihoods of each gene on edgeR's grid of 21 dispersions; the genes' average log-CPM at
the common dispersion; the GLM at the trended dispersion with its deviance, shrunken
coefficients and each test's null model; and, for the few genes whose QL dispersion falls
below the Poisson bound, their Poisson fits. Without a design, estimateDisp's classic mode
(groups of samples, for :func:`exact_test`) takes the conditional likelihoods of
pseudo-counts held in memory instead of the profile likelihoods.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from .. import fdr as _fdr
from .._backend import as_dask, take_genes, to_host
from .._cohort import CohortLike, as_cohort_dataset, as_cohort_matrix, shared_docs
from .._errors import CohortexError
from ..stats._brent import brent_minimize
from ..stats._ebayes import squeeze_var
from ..stats._householder import householder_effects
from ..stats._locfit import locfit_constant
from ..stats._negative_binomial import (
    adjusted_profile_likelihood,
    ave_log_cpm,
    lgamma_plus_one,
    nb_glm_fit,
    prior_counts,
)
from ..stats._qcml import conditional_log_likelihood, equalize_lib_sizes
from ..stats._spline_maximum import maximize_interpolant
from ._gene_columns import per_gene
from ._glm_treat import TREAT_NULLS, treat_designs, treat_log_pvalues, treat_tile
from ._least_squares import check_design, check_residual_df, design_matrix, sample_codes
from ._linear_model import contrast_matrix
from ._voom import count_sums

__all__ = [
    "classic_dispersions",
    "count_tiles",
    "estimate_dispersion",
    "glm_lrt",
    "glm_ql",
    "group_codes",
    "group_design",
    "mean_log_cpm",
    "sample_gene_values",
    "transcript_lengths",
]

GRID = np.arange(-10.0, 11.0)  # edgeR's grid: dispersions 0.1 · 2^GRID
_EPS = 1e-4  # edgeR's: a count below it is zero, a fitted value below it a fitted zero
_TILE_VALUES = 1_000_000  # float64 counts in one tile of genes (all samples): 8 MB
_PRIOR_N_CAP = 1e6  # estimateDisp's largest prior weight
_START_DISPERSION = 0.05  # estimateDisp's fit that finds the fitted zeros
_CLASSIC_VALUES = 2**28  # classic mode's pseudo-counts in memory: 2 GiB of float64


@dataclass(frozen=True)
class _Counts:
    """The counts (samples × genes, in tiles of whole genes), their effective library sizes
    and the design."""

    counts: da.Array
    library: np.ndarray  # (n_samples,) library sizes times the normalisation factors
    design: np.ndarray  # (n_samples, p)
    names: list[str]
    formula: str | None
    genes: Any
    # an offset per count, tiled as the counts (samples × genes): tximport's average
    # transcript lengths with the effective library sizes of the counts over the scaled
    # lengths (length_library); or, without those, the offsets themselves as given
    per_count: da.Array | None = None
    length_library: np.ndarray | None = None

    @property
    def offsets(self) -> np.ndarray:
        return np.log(self.library)

    @property
    def offset_source(self) -> str:
        """What the fits' offsets are made of, for the result's attrs."""
        if self.length_library is not None:
            return "lengths"
        return "library sizes" if self.per_count is None else "given"

    def offsets_of(self, values: np.ndarray) -> np.ndarray:
        """The offsets of a tile's genes (n × g) from their ``per_count`` values: given
        offsets as they are; tximport's from lengths, the lengths over their geometric mean
        times the effective library sizes, on the log scale and scaled to the library
        sizes' (``scaleOffset``)."""
        if self.length_library is None:
            return values
        lengths = values
        norm_matrix = lengths / np.exp(np.log(lengths).mean(axis=0))
        log_matrix = np.log(norm_matrix * self.length_library[:, None])
        return np.mean(np.log(self.library)) + log_matrix - log_matrix.mean(axis=0)


def _per_gene_offsets(
    data: _Counts,
    function: Callable[[np.ndarray, list[np.ndarray], np.ndarray], np.ndarray],
    rows: int,
    *gene_values: np.ndarray,
    keep: np.ndarray | None = None,
) -> np.ndarray:
    """``function(tile, [gene_values of its genes], offsets)`` over the gene tiles (of the
    genes ``keep`` where given): the offsets the log library sizes (n,), or with an offset
    per count the tile's own (n × g)."""
    counts = data.counts if keep is None else take_genes(data.counts, keep)
    if data.per_count is None:
        return per_gene(counts, lambda tile, v: function(tile, v, data.offsets), rows, *gene_values)
    values = data.per_count if keep is None else take_genes(data.per_count, keep)
    n = counts.shape[0]
    both = da.concatenate([to_host(counts), values], axis=0).rechunk({0: -1})
    return per_gene(
        both, lambda tile, v: function(tile[:n], v, data.offsets_of(tile[n:])), rows, *gene_values
    )


def _genes_of(offsets: np.ndarray, columns: Any) -> np.ndarray:
    """Offsets of the genes ``columns``: a tile's own (n × g) selected, or the samples' (n,)."""
    return offsets if offsets.ndim == 1 else np.asfortranarray(offsets[:, columns])


@dataclass(frozen=True)
class _Dispersions:
    common: float
    trended: np.ndarray  # (n_genes,)
    tagwise: np.ndarray | None
    ave_log_cpm: np.ndarray  # (n_genes,) at the common dispersion
    span: float
    prior_df: float | np.ndarray | None


@shared_docs
def estimate_dispersion(
    cohort: CohortLike,
    design: str | pd.DataFrame | np.ndarray | None = None,
    *,
    group: str | Sequence[Any] | np.ndarray | None = None,
    norm_factors: str | Any | None = "tmm",
    tagwise: bool = True,
    robust: bool = False,
    span: float | None = None,
    prior_df: float | None = None,
    min_row_sum: float = 5.0,
    lengths: str | np.ndarray | pd.DataFrame | None = "auto",
    offsets: str | np.ndarray | pd.DataFrame | None = None,
) -> xr.Dataset:
    """Negative-binomial dispersions of every gene, as edgeR's
    ``estimateDisp(calcNormFactors(DGEList(counts)), design)``.

    Each gene's Cox-Reid adjusted profile log-likelihood on 21 dispersions ``0.1 · 2^k``
    (k = −10…10), from its GLM with the samples whose count and fitted value are 0 left out;
    the common dispersion maximises their sum (a cubic spline through the grid), the trended
    dispersion of a gene the locfit trend of the likelihoods against its average log-CPM,
    the tagwise dispersion its own likelihood plus the trend weighted by the prior df of
    the genes' deviances (limma's ``squeezeVar``) over the residual df.

    Parameters
    ----------
    {cohort}
        Raw counts (scale ``counts``), no NaN or negative values.
    design : str, DataFrame or array of shape (n_samples, n_coefficients), optional
        As for :func:`fit`; it must leave residual degrees of freedom.
    group : str or array of shape (n_samples,), optional
        Instead of a design, edgeR's classic mode (``estimateDisp(y)`` of a DGEList with
        groups): the conditional likelihoods of quantile-adjusted pseudo-counts within each
        group (what :func:`exact_test` takes). Held in memory: up to 2^28 counts.
    norm_factors : {{"tmm", "upperquartile", "rle", "none"}} or array, default "tmm"
        As for :func:`voom`.
    tagwise : bool, default True
        Estimate each gene's own dispersion too.
    robust : bool, default False
        The prior df robust to outlier genes (``estimateDisp(robust = TRUE)``).
    span : float, optional
        The trend's span; edgeR's default ``0.25 + 0.75 · (50 / genes)^0.5`` (1 up to 50
        genes).
    prior_df : float, optional
        The tagwise prior df; by default estimated.
    min_row_sum : float, default 5
        Genes with fewer counts in all are left out of the estimation; they get the trended
        dispersion of the least expressed gene.
    lengths : "auto", str, array of shape (n_samples, n_genes), DataFrame, DataArray or None
        Average transcript lengths (tximport's ``length``), as for :func:`deseq`: tximport's
        edgeR route, an offset per count (``scaleOffset(y, normMat)``, ``normMat`` the
        lengths over their geometric mean per gene times the effective library sizes of the
        counts divided by them, whose ``norm_factors`` they take); the library sizes are
        then the counts' sums. ``"auto"`` (default) takes a ``read_quantifications``
        Dataset's lengths, as ``deseq``; None leaves them out. Not with
        ``group``: edgeR's classic mode takes no offsets.
    offsets : str, array of shape (n_samples, n_genes), DataFrame, DataArray, optional
        As for :func:`glm_ql`; not with ``group``.

    Returns
    -------
    xarray.Dataset
        ``ave_log_cpm``, ``trended_dispersion`` and ``tagwise_dispersion`` on ``gene`` (and
        ``prior_df`` when robust); attrs ``common_dispersion``, ``span``, ``prior_df``.
    """
    if (design is None) == (group is None):
        raise CohortexError("estimate_dispersion() takes a design or a group (classic mode).")
    codes = None
    if group is not None:
        if not (lengths is None or (isinstance(lengths, str) and lengths == "auto")):
            raise CohortexError(
                "estimate_dispersion()'s classic mode ('group') takes no transcript lengths "
                "(edgeR's takes no offsets); give a design."
            )
        if offsets is not None:
            raise CohortexError(
                "estimate_dispersion()'s classic mode ('group') takes no offsets; give a design."
            )
        codes = group_codes(cohort, group, "group")
        design = group_design(codes)
        lengths = None
    data = _prepare(cohort, design, norm_factors, "estimate_dispersion()", lengths, offsets)
    result = _dispersions(
        data,
        tagwise=tagwise,
        robust=robust,
        span=span,
        prior_df=prior_df,
        min_row_sum=min_row_sum,
        groups=codes,
    )
    variables: dict[str, Any] = {
        "ave_log_cpm": ("gene", result.ave_log_cpm),
        "trended_dispersion": ("gene", result.trended),
    }
    attrs: dict[str, Any] = {"common_dispersion": result.common, "span": result.span}
    if result.tagwise is not None:
        variables["tagwise_dispersion"] = ("gene", result.tagwise)
    if isinstance(result.prior_df, np.ndarray):  # robust: one per gene
        variables["prior_df"] = ("gene", result.prior_df)
    elif result.prior_df is not None:
        attrs["prior_df"] = float(result.prior_df)
    return xr.Dataset(variables, coords={"gene": data.genes}, attrs=attrs)


@shared_docs
def glm_ql(
    cohort: CohortLike,
    design: str | pd.DataFrame | np.ndarray,
    *,
    contrasts: Sequence[str] | Mapping[str, Any] | pd.DataFrame | None = None,
    dispersion: str | float | np.ndarray = "trended",
    norm_factors: str | Any | None = "tmm",
    robust: bool = False,
    abundance_trend: bool = True,
    poisson_bound: bool = True,
    prior_count: float = 0.125,
    treat_lfc: float | None = None,
    treat_null: str = "interval",
    lengths: str | np.ndarray | pd.DataFrame | None = "auto",
    offsets: str | np.ndarray | pd.DataFrame | None = None,
    fdr: str = "bh",
) -> xr.Dataset:
    """edgeR's quasi-likelihood F-tests: ``estimateDisp``, ``glmQLFit`` and ``glmQLFTest``.

    Every gene's negative-binomial GLM at its trended dispersion; its deviance over the
    residual df (the samples whose count and fitted value are both 0 left out) is the QL
    dispersion, moderated towards its trend over the genes' average log-CPM (limma's
    ``squeezeVar``); each contrast is tested by the drop in deviance to the model without it,
    an F-test on the moderated QL dispersion. Where a gene's QL dispersion lies below the
    Poisson bound its p-value is no smaller than the Poisson likelihood-ratio test's.

    Parameters
    ----------
    {cohort}
        Raw counts (scale ``counts``), no NaN or negative values.
    design : str, DataFrame or array of shape (n_samples, n_coefficients)
        As for :func:`fit`; at least two coefficients and residual degrees of freedom.
    contrasts : optional
        As for :func:`fit`: the coefficients or contrasts to test, each on its own (one df);
        with more than one, also all together (``F``, ``F_pvalue``: glmQLFTest with several
        coefficients).
    dispersion : {{"trended", "common", "tagwise"}}, float or array of shape (n_genes,)
        The NB dispersions: edgeR's estimates (:func:`estimate_dispersion`; trended is what
        glmQLFit takes from estimateDisp), or given.
    norm_factors : {{"tmm", "upperquartile", "rle", "none"}} or array, default "tmm"
    robust : bool, default False
        Robust estimation of the dispersions and of the QL prior (``robust = TRUE`` in both).
    abundance_trend : bool, default True
        The QL prior follows the genes' average log-CPM.
    poisson_bound : bool, default True
    prior_count : float, default 0.125
        The prior count of the reported log fold changes (edgeR's glmFit default).
    treat_lfc : float, optional
        edgeR's ``glmTreat(fit, lfc = ...)``: test whether each contrast's |log2 fold change|
        exceeds this threshold (e.g. ``log2(1.2)``, glmTreat's default), each contrast on its
        own; 0 is the plain test, as in edgeR.
    treat_null : {{"interval", "worst.case"}}, default "interval"
        glmTreat's null: fold changes anywhere within the threshold, or at it.
    lengths : "auto", str, array of shape (n_samples, n_genes), DataFrame, DataArray or None
        Average transcript lengths (tximport's ``length``), as for :func:`deseq`: tximport's
        edgeR route, an offset per count (``scaleOffset(y, normMat)``, ``normMat`` the
        lengths over their geometric mean per gene times the effective library sizes of the
        counts divided by them, whose ``norm_factors`` they take); the library sizes are
        then the counts' sums. ``"auto"`` (default) takes a ``read_quantifications``
        Dataset's lengths, as ``deseq``; None leaves them out.
    offsets : str, array of shape (n_samples, n_genes), DataFrame, DataArray, optional
        An offset per count on the natural log scale, used as given in every fit in place of
        the log effective library sizes (edgeR's ``y$offset <- m``: cqn's ``glm.offset``,
        or ``scaleOffset``'s result); a variable's name, an array, a DataFrame of samples ×
        genes by id or a DataArray. The library sizes times ``norm_factors`` remain the
        average log-CPM's, as in edgeR. Not with explicit ``lengths``; ``"auto"`` then
        takes none.
    {fdr}

    Returns
    -------
    xarray.Dataset
        On ``contrast`` × ``gene``: ``coefficient`` (log2 fold change), ``statistic`` (F),
        ``pvalue``, ``padj``, ``log10_pvalue``; on ``gene``: ``mean_expression`` (average log-CPM),
        ``dispersion``, ``deviance``, ``df_residual``, ``s2`` (deviance / df), ``s2_prior``,
        ``s2_post``, ``df_total``, ``df_prior`` when robust; with several contrasts ``F``,
        ``F_pvalue``, ``F_padj``. Attrs: ``test``, ``common_dispersion``, ``df_prior``,
        ``offsets`` (``"library sizes"``, ``"lengths"`` or ``"given"``). With
        ``treat_lfc``: no statistic (glmTreat has none) and no joint test, but
        ``unshrunk_coefficient`` (the log2 fold change without prior counts, which glmTreat
        compares with the threshold).
    """
    _check_treat(treat_lfc, treat_null, "glm_ql()")
    fits = _fit_genes(
        cohort,
        design,
        contrasts,
        dispersion,
        norm_factors,
        robust,
        prior_count,
        "glm_ql()",
        lengths,
        offsets,
    )
    n_samples, p = fits.data.design.shape
    n_genes = fits.phi.size
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = np.where(fits.df == 0, 0.0, fits.deviance / fits.df)
    s2 = np.maximum(s2, 0.0)
    covariate = fits.average if abundance_trend else None
    prior_fit = squeeze_var(s2, fits.df, covariate=covariate, robust=robust)
    s2_post = np.asarray(prior_fit.s2_post, dtype=np.float64)
    df_total = np.minimum(prior_fit.df_prior + fits.df, n_genes * (n_samples - p))
    below = (fits.smallest_fitted * fits.phi + 1.0) * s2_post < 1.0
    if not poisson_bound:
        below[:] = False
    if treat_lfc:
        log_p = _treat(fits, treat_lfc, treat_null, (s2_post, df_total), below)
        f = None
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            f = fits.likelihood_ratio / fits.df_tests[:, None] / s2_post[None, :]
        log_p = stats.f.logsf(f, fits.df_tests[:, None], df_total[None, :])
        if below.any():
            bound = _poisson_log_pvalues(fits.data, below, fits.unshrunk[:, below], fits.tests)
            log_p[:, below] = np.maximum(log_p[:, below], bound)
    variables: dict[str, Any] = {
        "df_residual": ("gene", fits.df),
        "s2": ("gene", s2),
        "s2_post": ("gene", s2_post),
        "df_total": ("gene", df_total),
    }
    attrs: dict[str, Any] = {
        "test": "quasi-likelihood F (edgeR glmQLFTest)",
        **_treat_attrs(treat_lfc, treat_null, "after glmQLFit"),
        "normalization": "edgeR glmQLFit",
        "abundance_trend": int(abundance_trend),
        "robust": int(robust),
        "poisson_bound": int(poisson_bound),
    }
    for name, value in (("s2_prior", prior_fit.s2_prior), ("df_prior", prior_fit.df_prior)):
        if np.ndim(value):
            variables[name] = ("gene", np.asarray(value, dtype=np.float64))
        else:
            attrs[name] = float(value)
    return _result(fits, f, log_p, "F", variables, attrs, fdr)


@shared_docs
def glm_lrt(
    cohort: CohortLike,
    design: str | pd.DataFrame | np.ndarray,
    *,
    contrasts: Sequence[str] | Mapping[str, Any] | pd.DataFrame | None = None,
    dispersion: str | float | np.ndarray = "tagwise",
    norm_factors: str | Any | None = "tmm",
    robust: bool = False,
    prior_count: float = 0.125,
    treat_lfc: float | None = None,
    treat_null: str = "interval",
    lengths: str | np.ndarray | pd.DataFrame | None = "auto",
    offsets: str | np.ndarray | pd.DataFrame | None = None,
    fdr: str = "bh",
) -> xr.Dataset:
    """edgeR's likelihood-ratio tests: ``glmLRT(glmFit(estimateDisp(y, design), design))``.

    Every gene's negative-binomial GLM at its dispersion (by default its tagwise estimate,
    what ``glmFit`` takes from a DGEList after estimateDisp); each contrast is tested by the
    drop in deviance to the model without it, against a chi-square. edgeR recommends the
    quasi-likelihood F-tests (:func:`glm_ql`), whose error rates hold with few replicates;
    the likelihood-ratio test is for data without replicates' variability to estimate or
    for comparisons with earlier analyses.

    Parameters
    ----------
    {cohort}
        Raw counts (scale ``counts``), no NaN or negative values.
    design : str, DataFrame or array of shape (n_samples, n_coefficients)
        As for :func:`fit`; at least two coefficients and residual degrees of freedom.
    contrasts : optional
        As for :func:`glm_ql`; with more than one, also all together (``LR``,
        ``LR_pvalue``: glmLRT with several coefficients).
    dispersion : {{"tagwise", "trended", "common"}}, float or array of shape (n_genes,)
    norm_factors : {{"tmm", "upperquartile", "rle", "none"}} or array, default "tmm"
    robust : bool, default False
        The dispersions estimated robustly (``estimateDisp(robust = TRUE)``).
    prior_count : float, default 0.125
        The prior count of the reported log fold changes.
    treat_lfc : float, optional
        edgeR's ``glmTreat`` after ``glmFit``: as for :func:`glm_ql`.
    treat_null : {{"interval", "worst.case"}}, default "interval"
    lengths : "auto", str, array of shape (n_samples, n_genes), DataFrame, DataArray or None
        As for :func:`glm_ql`.
    offsets : str, array of shape (n_samples, n_genes), DataFrame, DataArray, optional
        As for :func:`glm_ql`.
    {fdr}

    Returns
    -------
    xarray.Dataset
        On ``contrast`` × ``gene``: ``coefficient`` (log2 fold change), ``statistic`` (the
        likelihood ratio), ``pvalue``, ``padj``, ``log10_pvalue``; on ``gene``:
        ``mean_expression`` (average log-CPM), ``dispersion``, ``deviance``; with several
        contrasts ``LR``, ``LR_pvalue``, ``LR_padj``. With ``treat_lfc`` as for
        :func:`glm_ql`.
    """
    _check_treat(treat_lfc, treat_null, "glm_lrt()")
    fits = _fit_genes(
        cohort,
        design,
        contrasts,
        dispersion,
        norm_factors,
        robust,
        prior_count,
        "glm_lrt()",
        lengths,
        offsets,
    )
    attrs = {
        "test": "likelihood ratio (edgeR glmLRT)",
        **_treat_attrs(treat_lfc, treat_null, "after glmFit"),
        "robust": int(robust),
    }
    if treat_lfc:
        log_p = _treat(fits, treat_lfc, treat_null, None, None)
        return _result(fits, None, log_p, "LR", {}, attrs, fdr)
    ratio = np.maximum(fits.likelihood_ratio, 0.0)  # pchisq of a rounding below 0 is 1
    log_p = stats.chi2.logsf(ratio, fits.df_tests[:, None])
    return _result(fits, fits.likelihood_ratio, log_p, "LR", {}, attrs, fdr)


def _check_treat(treat_lfc: float | None, treat_null: str, caller: str) -> None:
    number = isinstance(treat_lfc, int | float | np.number) and not isinstance(treat_lfc, bool)
    if treat_lfc is not None and not (number and np.isfinite(treat_lfc) and treat_lfc >= 0):
        raise CohortexError(f"{caller}'s 'treat_lfc' must be a number >= 0; got {treat_lfc!r}.")
    if treat_null not in TREAT_NULLS:
        raise CohortexError(
            f"{caller}'s 'treat_null' must be one of {', '.join(map(repr, TREAT_NULLS))}; got "
            f"{treat_null!r}."
        )


def _treat_attrs(treat_lfc: float | None, treat_null: str, after: str) -> dict[str, Any]:
    if not treat_lfc:
        return {}
    return {
        "test": f"edgeR glmTreat {after} (|log2 FC| > {treat_lfc:g}, {treat_null} null)",
        "treat_lfc": float(treat_lfc),
        "treat_null": treat_null,
    }


def _treat(
    fits: _GeneFits,
    lfc: float,
    null: str,
    quasi: tuple[np.ndarray, np.ndarray] | None,
    below: np.ndarray | None,
) -> np.ndarray:
    """glmTreat's log p-values (contrasts × genes); after glmQLFit (``quasi``) the genes
    ``below`` the Poisson bound get no smaller p-value than their Poisson glmTreat (edgeR's
    Poisson fit from the unshrunk coefficients, its own fold changes against the
    threshold)."""
    data = fits.data
    contrasts = fits.matrix.to_numpy()
    k = contrasts.shape[1]
    designs = treat_designs(data.design, contrasts, lfc)
    z = _per_gene_offsets(
        data, lambda tile, v, offsets: treat_tile(tile, v[0], offsets, designs), 2 * k, fits.phi
    )
    unshrunk = contrasts.T @ fits.unshrunk / np.log(2.0)
    log_p = treat_log_pvalues(z, unshrunk, lfc, null, quasi)
    if below is None or not below.any():
        return log_p
    p = data.design.shape[1]

    def poisson_tile(tile: np.ndarray, values: list[np.ndarray], offsets: np.ndarray) -> np.ndarray:
        zeros = np.zeros(tile.shape[1])
        fit = nb_glm_fit(tile, data.design, offsets, zeros, np.vstack(values))
        return np.vstack(
            [
                treat_tile(tile, zeros, offsets, designs),
                contrasts.T @ fit.coefficients / np.log(2.0),
            ]
        )

    rows = _per_gene_offsets(
        data, poisson_tile, 3 * k, *(fits.unshrunk[j, below] for j in range(p)), keep=below
    )
    bound = treat_log_pvalues(rows[: 2 * k], rows[2 * k :], lfc, null)
    log_p[:, below] = np.maximum(log_p[:, below], bound)
    return log_p


@dataclass(frozen=True)
class _GeneFits:
    """Every gene's GLM at its dispersion and the null models of the tests."""

    data: _Counts
    matrix: pd.DataFrame  # coefficients × contrasts
    tests: list[tuple[np.ndarray, int]]  # each test's null design and df
    phi: np.ndarray  # (n_genes,) the dispersions
    average: np.ndarray  # (n_genes,) average log-CPM
    estimate: _Dispersions | None
    deviance: np.ndarray  # (n_genes,)
    df: np.ndarray  # (n_genes,) residual df, fitted zeros left out
    smallest_fitted: np.ndarray  # (n_genes,)
    unshrunk: np.ndarray  # (p, n_genes)
    shrunk: np.ndarray  # (p, n_genes) with prior counts
    null_deviance: np.ndarray  # (tests, n_genes)
    prior_count: float

    @property
    def likelihood_ratio(self) -> np.ndarray:
        return self.null_deviance - self.deviance[None, :]

    @property
    def df_tests(self) -> np.ndarray:
        return np.array([df for _, df in self.tests], dtype=np.float64)


def _fit_genes(
    cohort: CohortLike,
    design: Any,
    contrasts: Any,
    dispersion: Any,
    norm_factors: Any,
    robust: bool,
    prior_count: float,
    caller: str,
    lengths: Any = None,
    offsets: Any = None,
) -> _GeneFits:
    """The dispersions (estimated or given) and the fits that glm_ql and glm_lrt share."""
    if not np.isfinite(prior_count) or prior_count < 0:
        raise CohortexError(f"{caller}'s 'prior_count' must be >= 0; got {prior_count!r}.")
    data = _prepare(cohort, design, norm_factors, caller, lengths, offsets)
    p = data.design.shape[1]
    n_genes = data.counts.shape[1]
    if p < 2:
        raise CohortexError(f"{caller} needs a design with at least two coefficients to test.")
    matrix = contrast_matrix(contrasts, data.names)
    tests = _null_designs(data.design, matrix)
    estimate = None
    if isinstance(dispersion, str):
        if dispersion not in ("trended", "common", "tagwise"):
            raise CohortexError(
                f"{caller}'s 'dispersion' must be 'trended', 'common', 'tagwise', a number or "
                f"one per gene; got {dispersion!r}."
            )
        estimate = _dispersions(
            data,
            tagwise=dispersion == "tagwise",
            robust=robust,
            span=None,
            prior_df=None,
            min_row_sum=5.0,
        )
        chosen = {
            "trended": estimate.trended,
            "common": estimate.common,
            "tagwise": estimate.tagwise,
        }
        phi = np.broadcast_to(np.asarray(chosen[dispersion], dtype=np.float64), (n_genes,))
        average = estimate.ave_log_cpm
    else:
        phi = np.broadcast_to(np.asarray(dispersion, dtype=np.float64), (n_genes,)).copy()
        if phi.shape != (n_genes,) or not np.all(np.isfinite(phi)) or np.any(phi < 0):
            raise CohortexError(
                f"{caller}'s 'dispersion' must be finite and >= 0, one number or one per gene."
            )
        average = mean_log_cpm(data, None)
    phi = np.ascontiguousarray(phi, dtype=np.float64)
    null_designs = [null for null, _ in tests]
    rows = _per_gene_offsets(
        data,
        lambda tile, d, offsets: _ql_tile(
            tile, d[0], data.design, offsets, data.library, prior_count, null_designs
        ),
        3 + 2 * p + len(tests),
        phi,
    )
    return _GeneFits(
        data=data,
        matrix=matrix,
        tests=tests,
        phi=phi,
        average=average,
        estimate=estimate,
        deviance=rows[0],
        df=rows[1],
        smallest_fitted=rows[2],
        unshrunk=rows[3 : 3 + p],
        shrunk=rows[3 + p : 3 + 2 * p],
        null_deviance=rows[3 + 2 * p :],
        prior_count=prior_count,
    )


def _result(
    fits: _GeneFits,
    statistic: np.ndarray | None,
    log_p: np.ndarray,
    joint: str,
    variables: dict[str, Any],
    attrs: dict[str, Any],
    fdr: str,
) -> xr.Dataset:
    """The result of every contrast's test (rows of ``statistic`` and ``log_p``, one per
    contrast and, with several, one more for all together, named ``joint``); without a
    statistic (glmTreat) each contrast's test alone, and its unshrunk fold change."""
    k = fits.matrix.shape[1]
    pvalues = np.exp(log_p)
    log10_pvalue = log_p / np.log(10.0)  # finite where p underflows
    logfc = (fits.matrix.to_numpy().T @ fits.shrunk) / np.log(2.0)
    out: dict[str, Any] = {
        "mean_expression": ("gene", fits.average),
        "coefficient": (("contrast", "gene"), logfc),
        "pvalue": (("contrast", "gene"), pvalues[:k]),
        "padj": (("contrast", "gene"), _fdr.adjust(pvalues[:k], fdr)),
        "log10_pvalue": (("contrast", "gene"), log10_pvalue[:k]),
        "dispersion": ("gene", fits.phi),
        "deviance": ("gene", fits.deviance),
        **variables,
    }
    attrs = {
        **attrs,
        "design": list(fits.data.names),
        "formula": fits.data.formula or "",
        "prior_count": fits.prior_count,
        "fdr": fdr,
        "offsets": fits.data.offset_source,
    }
    if fits.estimate is not None:
        attrs.update(common_dispersion=fits.estimate.common, span=fits.estimate.span)
    if statistic is None:
        unshrunk = fits.matrix.to_numpy().T @ fits.unshrunk / np.log(2.0)
        out["unshrunk_coefficient"] = (("contrast", "gene"), unshrunk)
    else:
        out["statistic"] = (("contrast", "gene"), statistic[:k])
    if k > 1 and statistic is not None:
        out[joint] = ("gene", statistic[k])
        out[f"{joint}_pvalue"] = ("gene", pvalues[k])
        out[f"{joint}_padj"] = ("gene", _fdr.adjust(pvalues[k], fdr))
        attrs[f"{joint}_df1" if joint == "F" else f"{joint}_df"] = int(fits.df_tests[k])
    return xr.Dataset(
        out, coords={"contrast": list(fits.matrix.columns), "gene": fits.data.genes}, attrs=attrs
    )


def count_tiles(
    cohort: CohortLike, caller: str, *, max_genes: int | None = None
) -> tuple[xr.Dataset, da.Array]:
    """A raw-counts cohort and its counts (samples × genes) in tiles of whole genes: at most
    ``_TILE_VALUES`` values and ``max_genes`` genes a tile, at least four tiles a core."""
    ds = as_cohort_dataset(cohort)
    if not isinstance(ds, xr.Dataset) or "expression" not in ds:
        raise CohortexError(f"{caller} needs a cohort store or Dataset with an 'expression'.")
    if ds.attrs.get("scale") != "counts":
        raise CohortexError(
            f"{caller} needs raw counts (scale 'counts'); this cohort's scale is "
            f"{ds.attrs.get('scale')!r}."
        )
    counts = ds["expression"].transpose("sample", "gene").data
    if not isinstance(counts, da.Array):  # NumPy or CuPy, viewed where it lives
        counts = as_dask(counts, (-1, -1))
    n_samples, n_genes = counts.shape
    spread = -(-n_genes // (4 * (os.cpu_count() or 1)))
    tile = max(1, min(n_genes, _TILE_VALUES // max(n_samples, 1), max(spread, 64)))
    if max_genes is not None:
        tile = min(tile, max_genes)
    return ds, counts.rechunk((-1, tile))


def _prepare(
    cohort: CohortLike,
    design: Any,
    norm_factors: Any,
    caller: str,
    lengths: Any = None,
    offsets: Any = None,
) -> _Counts:
    """The counts, their effective library sizes and the design; with transcript lengths,
    tximport's edgeR route: the library sizes are the counts' sums (no factors), and
    ``norm_factors`` are of the counts over the lengths scaled to their geometric mean
    (``calcNormFactors(normCts)``), the effective library sizes of the offsets. Given
    ``offsets`` (``y$offset``) replace the log effective library sizes in every fit; the
    library sizes, with their factors, are then only the average log-CPM's."""
    ds, counts = count_tiles(cohort, caller)
    n_samples = counts.shape[0]
    x_design, names, formula = design_matrix(design, ds, n_samples)
    check_design(x_design, names)
    check_residual_df(x_design)
    if offsets is not None:
        if not (lengths is None or (isinstance(lengths, str) and lengths == "auto")):
            raise CohortexError(
                f"{caller} takes transcript lengths or offsets, not both: the lengths are "
                "made into offsets of their own."
            )
        given = sample_gene_values(ds, offsets, counts, caller, "offsets", positive=False)
        sums = count_sums(ds, counts, norm_factors, caller)
        if np.any(sums.library <= 0):
            raise CohortexError(f"{caller} needs every sample to have counts (a library size > 0).")
        genes = as_cohort_matrix(ds).gene_ids
        return _Counts(counts, sums.library, x_design, list(names), formula, genes, given)
    length_tiles = transcript_lengths(ds, lengths, counts, caller)
    sums = count_sums(ds, counts, norm_factors if length_tiles is None else None, caller)
    if np.any(sums.library <= 0):
        raise CohortexError(f"{caller} needs every sample to have counts (a library size > 0).")
    length_library = None
    if length_tiles is not None:
        norm_matrix = length_tiles / da.exp(da.log(length_tiles).mean(axis=0, keepdims=True))
        scaled = to_host(counts).astype(np.float64) / norm_matrix
        layer = ds.assign(expression=(("sample", "gene"), scaled))  # what the factors read
        length_library = count_sums(layer, scaled, norm_factors, caller).library
    return _Counts(
        counts,
        sums.library,
        x_design,
        list(names),
        formula,
        as_cohort_matrix(ds).gene_ids,
        length_tiles,
        length_library,
    )


def sample_gene_values(
    ds: xr.Dataset, given: Any, counts: da.Array, caller: str, what: str, *, positive: bool = True
) -> da.Array:
    """A value per sample and gene (a variable's name, a DataArray, a DataFrame of samples
    × genes by id, or an array) tiled as the counts, on the host, checked finite (and
    positive unless ``positive`` is False)."""
    shape = counts.shape
    if isinstance(given, str):
        variable = ds.get(given)
        if variable is None or set(variable.dims) != {"sample", "gene"}:
            raise CohortexError(
                f"{caller}'s {what!r} names {given!r}, which is not a variable of the "
                "cohort with one value per sample and gene."
            )
        values: Any = variable.transpose("sample", "gene").data
    elif isinstance(given, xr.DataArray) and set(given.dims) == {"sample", "gene"}:
        values = given.transpose("sample", "gene").data
    elif isinstance(given, pd.DataFrame):
        samples = pd.Index(ds["sample"].values.astype(str))
        genes = pd.Index(as_cohort_matrix(ds).gene_ids.astype(str))
        table = given.set_axis(given.index.astype(str), axis=0).set_axis(
            given.columns.astype(str), axis=1
        )
        absent = samples.difference(table.index).tolist() + genes.difference(table.columns).tolist()
        if absent:
            raise CohortexError(
                f"{caller}'s {what!r} table lacks the cohort's samples or genes "
                f"{', '.join(map(repr, absent[:5]))}{' …' if len(absent) > 5 else ''}."
            )
        values = table.loc[samples, genes].to_numpy(dtype=np.float64)
    else:
        values = given
    if not isinstance(values, da.Array):
        values = np.asarray(to_host(values), dtype=np.float64)
    if tuple(values.shape) != tuple(shape):
        raise CohortexError(
            f"{caller}'s {what!r} must hold one value per sample and gene, {shape}; got "
            f"{tuple(values.shape)}."
        )
    tiles = to_host(da.asarray(values)).astype(np.float64).rechunk(counts.chunks)
    usable = da.isfinite(tiles) & (tiles > 0) if positive else da.isfinite(tiles)
    if not bool(to_host(da.all(usable).compute())):
        raise CohortexError(
            f"{caller}'s {what!r} must be finite and positive; they hold a zero, a negative "
            "value or a missing value."
            if positive
            else f"{caller}'s {what!r} must be finite; they hold a missing or infinite value."
        )
    return tiles


def transcript_lengths(
    ds: xr.Dataset, lengths: Any, counts: da.Array, caller: str
) -> da.Array | None:
    """The average transcript lengths (tximport's ``length``, samples × genes) tiled as the
    counts, or None: ``"auto"`` takes the cohort's ``length(sample, gene)`` unless its counts
    were made from abundances (``DESeqDataSetFromTximport``'s rule); anything else is read
    by :func:`sample_gene_values`."""
    if lengths is None:
        return None
    if isinstance(lengths, str) and lengths == "auto":
        variable = ds.get("length")
        made = ds.attrs.get("counts_from_abundance", "no") != "no"
        if made or variable is None or set(variable.dims) != {"sample", "gene"}:
            return None
        lengths = "length"
    return sample_gene_values(ds, lengths, counts, caller, "lengths")


def mean_log_cpm(data: _Counts, common: float | None) -> np.ndarray:
    """edgeR's aveLogCPM at ``common`` (its default 0.05 when None)."""
    phi = 0.05 if common is None else common
    return per_gene(data.counts, lambda tile, _: ave_log_cpm(tile, data.library, phi)[None, :], 1)[
        0
    ]


def _dispersions(
    data: _Counts,
    *,
    tagwise: bool,
    robust: bool,
    span: float | None,
    prior_df: float | None,
    min_row_sum: float,
    groups: np.ndarray | None = None,
) -> _Dispersions:
    """estimateDisp: with ``groups`` (each sample's group) its classic mode, else the
    design's Cox-Reid profile likelihoods."""
    if span is not None and not (np.isfinite(span) and 0 < span <= 1):
        raise CohortexError(f"The dispersion trend's 'span' must be in (0, 1]; got {span!r}.")
    if prior_df is not None and not (prior_df >= 0):
        raise CohortexError(f"'prior_df' must be >= 0; got {prior_df!r}.")
    n_samples, p = data.design.shape
    if groups is None:
        likelihoods = _per_gene_offsets(
            data,
            lambda tile, _, offsets: _profile_tile(tile, data.design, offsets, min_row_sum),
            GRID.size + 1,
        )
    else:
        likelihoods = _classic_profile(data, groups, min_row_sum)
    selected = likelihoods[0] > 0
    if not selected.any():
        raise CohortexError(
            f"No gene has {min_row_sum:g} counts or more in all; the dispersion cannot be "
            "estimated."
        )
    profile = likelihoods[1:, selected].T  # (selected genes × grid)
    common = float(0.1 * 2.0 ** maximize_interpolant(GRID, profile.sum(axis=0)[None, :])[0])
    average = mean_log_cpm(data, common)
    covariate = average[selected]
    n_selected = profile.shape[0]
    if span is None:
        span = 1.0 if n_selected <= 50 else 0.25 + 0.75 * (50.0 / n_selected) ** 0.5
    shared = locfit_constant(covariate, profile, span)
    trend = 0.1 * 2.0 ** maximize_interpolant(GRID, shared)
    trended = np.full(average.size, trend[np.argmin(covariate)])
    trended[selected] = trend
    if not tagwise:
        return _Dispersions(common, trended, None, average, span, prior_df)
    if prior_df is None:
        rows = _per_gene_offsets(
            data,
            lambda tile, d, offsets: _deviance_tile(tile, d[0], data.design, offsets),
            2,
            trended,
        )
        deviance, df = rows[0][selected], rows[1][selected]
        with np.errstate(divide="ignore", invalid="ignore"):
            s2 = np.where(df == 0, 0.0, deviance / df)
        fitted_prior = squeeze_var(np.maximum(s2, 0.0), df, covariate=covariate, robust=robust)
        estimated: float | np.ndarray = fitted_prior.df_prior
    else:
        estimated = float(prior_df)
    prior_n = np.broadcast_to(
        np.asarray(estimated, dtype=np.float64) / (n_samples - p), (n_selected,)
    )
    tagwise_values = trended.copy()
    too_large = prior_n > _PRIOR_N_CAP
    if not too_large.all():
        weight = np.minimum(prior_n, _PRIOR_N_CAP)
        individual = 0.1 * 2.0 ** maximize_interpolant(GRID, profile + weight[:, None] * shared)
        chosen = tagwise_values[selected]
        keep = ~too_large if robust else np.ones(n_selected, dtype=bool)
        chosen[keep] = individual[keep]
        tagwise_values[selected] = chosen
    reported: float | np.ndarray = estimated
    if robust and np.ndim(estimated):
        reported = np.full(average.size, np.inf)
        reported[selected] = estimated
    return _Dispersions(common, trended, tagwise_values, average, span, reported)


def group_codes(cohort: CohortLike, group: Any, parameter: str) -> np.ndarray:
    """Each sample's group as codes 0…k−1, the groups in sorted order (R's factor)."""
    matrix = as_cohort_matrix(as_cohort_dataset(cohort))
    codes, _ = sample_codes(group, matrix, matrix.matrix.shape[0], parameter)
    return codes


def group_design(codes: np.ndarray) -> np.ndarray:
    """``model.matrix(~ group)``: an intercept and an indicator of every group but the first."""
    columns = [np.ones(codes.size)] + [
        (codes == k).astype(np.float64) for k in range(1, int(codes.max()) + 1)
    ]
    return np.column_stack(columns)


def classic_dispersions(
    cohort: CohortLike, codes: np.ndarray, norm_factors: Any, *, tagwise: bool, estimate: bool
) -> tuple[_Counts, _Dispersions | None]:
    """The counts and, when ``estimate``, estimateDisp's classic-mode dispersions of the
    groups ``codes``."""
    data = _prepare(cohort, group_design(codes), norm_factors, "exact_test()")
    if not estimate:
        return data, None
    estimated = _dispersions(
        data,
        tagwise=tagwise,
        robust=False,
        span=None,
        prior_df=None,
        min_row_sum=5.0,
        groups=codes,
    )
    return data, estimated


def _classic_profile(data: _Counts, groups: np.ndarray, min_row_sum: float) -> np.ndarray:
    """estimateDisp's classic mode, in the layout of :func:`_profile_tile` (row 0 the
    estimated genes, rows 1… their likelihoods on the grid): pseudo-counts at a dispersion of
    0.01, the common dispersion of their conditional likelihood (R's optimize), pseudo-counts
    at it, and each gene's conditional likelihood on the grid, summed over the groups."""
    n_samples, n_genes = data.counts.shape  # a group of two samples or more: residual df
    if n_samples * n_genes > _CLASSIC_VALUES:
        raise CohortexError(
            f"estimateDisp's classic mode holds the pseudo-counts in memory: up to "
            f"{_CLASSIC_VALUES:,} counts; this cohort has {n_samples * n_genes:,}. Give a "
            "design instead (its profile likelihoods stream)."
        )

    def pseudo_counts(dispersion: float) -> np.ndarray:
        """equalizeLibSizes of every gene, tile by tile over the cores."""
        return per_gene(
            data.counts,
            lambda tile, d: equalize_lib_sizes(tile, groups, data.library, d[0]),
            n_samples,
            np.full(n_genes, dispersion),
        )

    totals = per_gene(data.counts, lambda tile, _: tile.sum(axis=0)[None, :], 1)[0]
    selected = totals >= min_row_sum
    out = np.zeros((GRID.size + 1, n_genes))
    out[0, selected] = 1.0
    if not selected.any():
        return out
    pseudo = np.asfortranarray(pseudo_counts(0.01)[:, selected])
    delta = brent_minimize(
        lambda d: -float(conditional_log_likelihood(pseudo, groups, d).sum()),
        1e-4,
        100.0 / 101.0,
        1e-6,
    )
    pseudo = np.asfortranarray(pseudo_counts(delta / (1.0 - delta))[:, selected])
    grid_dispersions = 0.1 * 2.0**GRID
    for i, phi in enumerate(grid_dispersions):
        out[1 + i, selected] = conditional_log_likelihood(pseudo, groups, phi / (1.0 + phi))
    return out


def _kept_columns(design: np.ndarray) -> np.ndarray:
    """The columns R's ``qr(design)`` keeps (``pivot[1:rank]``): each column in turn unless
    what is left of it after the kept ones is below 1e-7 of its norm (LINPACK's dqrdc2)."""
    kept: list[int] = []
    basis = np.empty((design.shape[0], 0))
    for j in range(design.shape[1]):
        column = design[:, j]
        norm = np.linalg.norm(column)
        if basis.shape[1]:
            column = column - basis @ (basis.T @ column)
        residual = np.linalg.norm(column)
        if norm > 0 and residual >= 1e-7 * norm:
            kept.append(j)
            basis = np.column_stack([basis, column / residual])
    return np.asarray(kept, dtype=np.int64)


def _residual_df(zero: np.ndarray, design: np.ndarray) -> np.ndarray:
    """edgeR's ``.residDF``: each gene's residual df (genes,) with its fitted zeros (samples
    × genes, bool) left out."""
    n, p = design.shape
    n_zero = zero.sum(axis=0)
    df = np.full(zero.shape[1], float(n - p))
    df[n_zero == n] = 0.0
    some = np.flatnonzero((n_zero > 0) & (n_zero < n))
    if some.size:
        patterns, which = np.unique(zero[:, some].T, axis=0, return_inverse=True)
        for k, pattern in enumerate(patterns):
            rank = _kept_columns(design[~pattern]).size
            members = some[which.ravel() == k]
            df[members] = np.maximum(n - n_zero[members] - rank, 0.0)
    return df


def _profile_tile(
    tile: np.ndarray, design: np.ndarray, offsets: np.ndarray, min_row_sum: float
) -> np.ndarray:
    """Row 0: whether each gene is estimated (its counts sum to ``min_row_sum``); rows 1…:
    its adjusted profile likelihood on the grid (0 where left out), as estimateDisp."""
    out = np.zeros((GRID.size + 1, tile.shape[1]))
    selected = np.flatnonzero(tile.sum(axis=0) >= min_row_sum)
    out[0, selected] = 1.0
    if selected.size == 0:
        return out
    y = np.asfortranarray(tile[:, selected])
    offsets = _genes_of(offsets, selected)
    first = nb_glm_fit(
        y, design, offsets, np.full(selected.size, _START_DISPERSION), with_deviance=False
    )
    zero = (y < _EPS) & (first.fitted < _EPS)
    patterns, which = np.unique(zero.T, axis=0, return_inverse=True)
    which = which.ravel()
    grid_dispersions = 0.1 * 2.0**GRID
    for k, pattern in enumerate(patterns):
        present = ~pattern
        if not present.any():
            continue
        members = np.flatnonzero(which == k)
        sub_design = design
        if not present.all():
            sub_design = design[present][:, _kept_columns(design[present])]
            if sub_design.shape[0] == sub_design.shape[1]:
                continue
        counts = np.asfortranarray(y[present][:, members])
        present_offsets = _genes_of(offsets, members)[present]
        lgamma_counts = lgamma_plus_one(counts)  # the same at every dispersion of the grid
        start = None
        for i, phi in enumerate(grid_dispersions):
            dispersion = np.full(members.size, phi)
            fit = nb_glm_fit(
                counts, sub_design, present_offsets, dispersion, start, with_deviance=False
            )
            out[1 + i, selected[members]] = adjusted_profile_likelihood(
                counts, fit.fitted, dispersion, sub_design, lgamma_counts
            )
            start = fit.coefficients
    return out


def _deviance_tile(
    tile: np.ndarray, dispersion: np.ndarray, design: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """Each gene's deviance and residual df (fitted zeros left out) at ``dispersion``."""
    fit = nb_glm_fit(tile, design, offsets, dispersion)
    zero = (tile < _EPS) & (fit.fitted < _EPS)
    return np.vstack([fit.deviance, _residual_df(zero, design)])


def _ql_tile(
    tile: np.ndarray,
    dispersion: np.ndarray,
    design: np.ndarray,
    offsets: np.ndarray,
    library: np.ndarray,
    prior_count: float,
    null_designs: list[np.ndarray],
) -> np.ndarray:
    """Rows: deviance, residual df, the smallest fitted value, the coefficients (p), the
    coefficients with prior counts (p), each test's null deviance. ``offsets`` are the log
    library sizes (n,), or a tile's own (n × g), whose prior counts follow each gene's."""
    fit = nb_glm_fit(tile, design, offsets, dispersion)
    zero = (tile < _EPS) & (fit.fitted < _EPS)
    libraries = library if offsets.ndim == 1 else np.exp(offsets)
    prior, prior_offsets = prior_counts(libraries, prior_count)
    with_prior = nb_glm_fit(
        tile + (prior[:, None] if prior.ndim == 1 else prior),
        design,
        prior_offsets,
        dispersion,
        with_deviance=False,
    )
    nulls = [nb_glm_fit(tile, null, offsets, dispersion).deviance for null in null_designs]
    return np.vstack(
        [
            fit.deviance,
            _residual_df(zero, design),
            fit.fitted.min(axis=0),
            fit.coefficients,
            with_prior.coefficients,
            *nulls,
        ]
    )


def _null_designs(design: np.ndarray, matrix: pd.DataFrame) -> list[tuple[np.ndarray, int]]:
    """Each test's null design and df: one per contrast, and one for all of them together
    when there are several (glmLRT: a coefficient's column dropped, or the design rotated by
    the contrasts' Householder QR and their columns dropped)."""
    contrasts = matrix.to_numpy()
    sets = [contrasts[:, [k]] for k in range(contrasts.shape[1])]
    if contrasts.shape[1] > 1:
        sets.append(contrasts)
    out = []
    for c in sets:
        if np.linalg.matrix_rank(c) < c.shape[1]:
            raise CohortexError("The contrasts tested together must be linearly independent.")
        unit = np.all((c == 0) | (c == 1), axis=0) & (np.count_nonzero(c, axis=0) == 1)
        if unit.all():  # glmLRT(coef = ...): the coefficients' columns dropped
            dropped = np.flatnonzero(c.any(axis=1))
            out.append((np.delete(design, dropped, axis=1), c.shape[1]))
        else:  # as R: Q from the reflections applied to the identity, then design %*% Q
            reflected, _ = householder_effects(c, np.eye(c.shape[0]))
            rotation = reflected.T
            out.append((np.ascontiguousarray(design @ rotation[:, c.shape[1] :]), c.shape[1]))
    return out


def _poisson_log_pvalues(
    data: _Counts, below: np.ndarray, start: np.ndarray, tests: list[tuple[np.ndarray, int]]
) -> np.ndarray:
    """The log p-values of the Poisson likelihood-ratio tests (tests × genes) of the genes
    ``below`` the Poisson bound, their fits started from ``start`` (p × genes), selected and
    fitted tile by tile (with counts as Poisson as a simulator's, all genes are below)."""
    p = data.design.shape[1]

    def tile_tests(tile: np.ndarray, values: list[np.ndarray], offsets: np.ndarray) -> np.ndarray:
        zeros = np.zeros(tile.shape[1])
        full = nb_glm_fit(tile, data.design, offsets, zeros, np.vstack(values))
        ratios = [
            nb_glm_fit(tile, null, offsets, zeros).deviance - full.deviance for null, _ in tests
        ]
        return np.vstack(
            [stats.chi2.logsf(r, df) for r, (_, df) in zip(ratios, tests, strict=True)]
        )

    return _per_gene_offsets(
        data, tile_tests, len(tests), *(start[k] for k in range(p)), keep=below
    )
