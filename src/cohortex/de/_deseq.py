"""DESeq2's pipeline: ``DESeq(dds)`` and ``results(dds)``, held to DESeq2 1.38.

``DESeq`` with its defaults: median-of-ratios size factors; each gene's dispersion by
maximum Cox-Reid adjusted likelihood; their trend over the mean (``asymptDisp +
extraPois / mean``, a gamma GLM refitted without outlying genes); the maximum a posteriori
dispersions under a log-normal prior centred on the trend, whose variance is the spread of
the gene-wise estimates about the trend less the sampling variance (genes more than two
prior sd above the trend keep their own); Wald tests of the GLM coefficients (a ridge of
10⁻⁶ on the log2 scale); Cook's distances, and, where a cell of the design has seven samples
or more, the counts of those samples with a large Cook's distance replaced by the gene's
trimmed mean and the gene refitted. ``results``: the genes with an outlier left untested
(``maxCooks`` above the 0.99 quantile of F(p, m − p)), and independent filtering on the mean
(the share of genes filtered that maximises discoveries at ``alpha``, from a lowess fit)
before Benjamini–Hochberg.

The passes over the counts: the size factors; the gene-wise dispersions (in gene tiles,
host numba; :mod:`cohortex.stats._deseq`); and, after the trend, everything else of each
gene in one more pass (the means of the gene-wise fit are recomputed from its coefficients,
not held: they are as large as the counts). Counts on a GPU are read to the host tile by
tile: the fits are host-only.
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from scipy import optimize, special, stats

from .. import fdr as _fdr
from .._backend import to_host
from .._cohort import CohortLike, as_cohort_matrix, shared_docs
from .._errors import CohortexError, CohortexWarning
from .._normalize import size_factors as median_ratio_factors
from ..stats._deseq import (
    column_product,
    column_sums,
    fit_beta,
    fit_dispersion,
    fit_dispersion_grid,
    log_likelihood,
)
from ..stats._dispersion_prior import simulated_prior_variance
from ..stats._locfit import LocalQuadratic, locfit_quadratic
from ..stats._lowess import lowess
from ._gene_columns import per_gene
from ._glm_ql import count_tiles, sample_gene_values, transcript_lengths
from ._least_squares import check_design, check_residual_df, design_matrix
from ._linear_model import contrast_matrix

__all__ = [
    "CountData",
    "DesignPlan",
    "DispersionTrend",
    "deseq",
    "design_plan",
    "fit_dispersion_trend",
    "fit_glm",
    "gene_wise_row_count",
    "gene_wise_rows",
    "normalization_factors",
    "per_tile",
    "prepare_counts",
    "weighted_quantile",
]

MIN_DISPERSION = 1e-8
_KAPPA_0 = 1.0
_DISPERSION_TOL = 1e-6
_MAXIT = 100
_MIN_MU = 0.5
_BETA_TOL = 1e-8
_RIDGE_LOG2 = 1e-6  # nbinomWaldTest's lambda without a beta prior (log2 scale)
_LOG2E = 1.0 / math.log(2.0)
_TILE_GENES = 256  # a tile's genes: their line searches run one after another
_SIZE_FACTOR_TYPES = ("ratio", "poscounts")
_FIT_TYPES = ("parametric", "local", "mean")
_ALTERNATIVES = ("greaterAbs", "lessAbs", "greater", "less")
_GENE_WISE_ROWS = 3  # gene_wise_rows: baseMean, allZero, dispGeneEst, then the GLM's


@shared_docs
def deseq(
    cohort: CohortLike,
    design: str | pd.DataFrame | np.ndarray,
    *,
    contrasts: Sequence[str] | Mapping[str, Any] | pd.DataFrame | None = None,
    reduced: str | pd.DataFrame | np.ndarray | None = None,
    size_factors: str | np.ndarray = "ratio",
    lengths: str | np.ndarray | pd.DataFrame | None = "auto",
    norm_factors: str | np.ndarray | pd.DataFrame | None = None,
    fit_type: str = "parametric",
    min_replicates_for_replace: float = 7,
    cooks_cutoff: bool | float = True,
    independent_filtering: bool = True,
    ihw: bool = False,
    alpha: float = 0.1,
    lfc_threshold: float = 0.0,
    alternative: str = "greaterAbs",
    dispersion_prior_variance: float | None = None,
    shrink: str | None = None,
    use_t: bool = False,
    fdr: str = "bh",
) -> xr.Dataset:
    """DESeq2's differential expression: ``results(DESeq(dds), contrast)`` for each contrast.

    Parameters
    ----------
    {cohort}
        Raw counts (scale ``counts``): whole numbers, no NaN or negative values.
    design : str, DataFrame or array of shape (n_samples, n_coefficients)
        As for :func:`fit`: a formula on the sample variables (``"~ condition"``,
        ``"~ batch + condition"``) or the design matrix; full rank, at least two
        coefficients, fewer than the samples.
    contrasts : optional
        As for :func:`fit`: coefficient names or contrasts of them (log2 fold changes); by
        default every coefficient but the intercept, each on its own (DESeq2's ``results``
        takes the last by default; ``name =`` or a numeric ``contrast =`` give the others).
    reduced : str, DataFrame or array of shape (n_samples, fewer coefficients), optional
        ``DESeq(dds, test = "LRT", reduced = ...)``: the likelihood-ratio test of the design
        against this reduced one (``"~ 1"``, ``"~ batch"``), one statistic and p-value per
        gene (chi-square on the difference in coefficients), reported for every contrast,
        whose fold changes and standard errors stay the design's Wald estimates.
    size_factors : {{"ratio", "poscounts"}} or array of shape (n_samples,), default "ratio"
        ``estimateSizeFactors(type = ...)``, or the factors themselves.
    lengths : "auto", str, array of shape (n_samples, n_genes), DataFrame, DataArray or None
        Each gene's average transcript length in each sample (tximport's ``length``, which
        ``DESeqDataSetFromTximport`` keeps as ``avgTxLength``). The counts are then modelled
        with a normalization factor per count (``estimateNormFactors``): the lengths over
        their geometric mean per gene, times the median-of-ratios size factors of the counts
        over those (or the ``size_factors`` given), rescaled to a geometric mean of 1 per
        gene. ``"auto"`` (default) takes the cohort's ``length(sample, gene)``, as
        :func:`cohortex.io.read_quantifications` gives, unless its counts were made from
        abundances (``counts_from_abundance`` other than ``"no"``), as
        ``DESeqDataSetFromTximport`` decides; a store's gene variable ``length`` is not
        used. A name takes that variable; a DataFrame is samples × genes by id; None uses
        the size factors alone.
    norm_factors : str, array of shape (n_samples, n_genes), DataFrame, DataArray, optional
        ``normalizationFactors(dds) <- m``: a normalization factor per count (e.g. cqn's or
        EDASeq's offsets, ``exp``), taken as they are in place of size factors and lengths
        (as DESeq2 takes them: no size factors are estimated), read as ``lengths``.
    fit_type : {{"parametric", "local", "mean"}}, default "parametric"
        The dispersion trend: ``asymptDisp + extraPois / mean``; locfit's local quadratic
        of the log dispersions on the log means, weighted by the means; or their trimmed
        mean. Where the parametric fit fails the local one takes its place, with a warning,
        as in DESeq2 (attrs ``fit_type`` says which was fitted).
    min_replicates_for_replace : float, default 7
        Counts with a large Cook's distance are replaced (and the gene refitted) in samples
        whose design cell has at least this many samples; ``inf`` never replaces.
    cooks_cutoff : bool or float, default True
        Leave untested (p-value NaN) the genes whose largest Cook's distance, over samples
        in cells of three or more (and not replaced), exceeds this; True is F(p, m − p)'s
        0.99 quantile, False never.
    independent_filtering : bool, default True
        Choose a mean below which genes are not adjusted (their ``padj`` NaN) as DESeq2.
    ihw : bool, default False
        ``results(dds, filterFun = ihw)``: in place of independent filtering, each
        contrast's p-values are weighted by the genes' mean count (``mean_expression``) with
        IHW (:func:`cohortex.fdr.ihw`, its defaults and ``alpha``) and ``padj`` is their
        weighted adjustment; ``ihw_weight`` holds the weights. ``fdr`` must be "bh" or
        "bonferroni".
    alpha : float, default 0.1
        The FDR that independent filtering (or IHW) maximises discoveries at.
    lfc_threshold : float, default 0
        Test |log2 fold change| against this threshold (``results(lfcThreshold = ...)``).
    alternative : {{"greaterAbs", "lessAbs", "greater", "less"}}, default "greaterAbs"
        ``altHypothesis``.
    dispersion_prior_variance : float, optional
        ``dispPriorVar``; by default estimated as DESeq2 estimates it: the MAD² of the log
        dispersions about the trend less the sampling variance of a log χ²/df, or, with
        three residual degrees of freedom or fewer, by DESeq2's simulation (R's draws after
        ``set.seed(2)``, which DESeq2 sets; its result is DESeq2's exactly).
    shrink : {{None, "normal"}}, default None
        ``lfcShrink(dds, ..., type = "normal")``: each contrast's ``coefficient`` and ``se``
        from the GLM refitted with a Normal prior on the coefficients (Love et al. 2014), its
        variance matched to the fold changes' weighted upper quantile; the Wald test,
        p-values and padj stay the unshrunken fit's, as lfcShrink leaves them. A contrast
        that is one coefficient is shrunk as ``lfcShrink(coef = ...)``, any other as
        ``lfcShrink(contrast = ...)``, on DESeq2's expanded design (a column per level of
        every factor). Designs with interactions are refused, as DESeq2 refuses them.
    use_t : bool, default False
        ``DESeq(useT = TRUE)``: the Wald statistics' p-values from Student's t on ``n - p``
        degrees of freedom (samples less coefficients) instead of the normal distribution, a
        more cautious test for few samples; not for the likelihood-ratio test.
    {fdr}

    Returns
    -------
    xarray.Dataset
        On ``contrast`` × ``gene``: ``coefficient`` (log2FoldChange), ``se`` (lfcSE),
        ``statistic``, ``pvalue``, ``padj``, ``log10_pvalue`` (with ``ihw``, ``ihw_weight``);
        on ``contrast``: ``filter_threshold`` and ``filter_theta`` (independent filtering;
        NaN with ``ihw``). On ``gene``:
        ``mean_expression`` (baseMean), ``dispersion`` and its stages ``dispersion_gene``,
        ``dispersion_trend``, ``dispersion_map``, ``dispersion_outlier``; ``max_cooks``,
        ``replaced``, ``converged``, ``deviance``. On ``sample``: ``size_factor`` (with
        ``lengths``, the size factors of the counts over the scaled lengths; none with
        ``norm_factors``). Attrs: the trend's coefficients, ``dispersion_prior_variance``,
        ``cooks_cutoff``, ``normalization_factors`` (``"size factors"``, ``"lengths"`` or
        ``"given"``); with
        ``reduced``, ``statistic`` is the likelihood ratio (the same for every contrast) and
        ``lrt_df`` its degrees of freedom; with ``use_t``, ``t_df``. With ``shrink``:
        ``unshrunk_coefficient`` and ``unshrunk_se`` (the MLE's, which the tests use) beside
        the shrunken ones, and the attrs ``shrink`` and ``beta_prior_variance`` (one per
        coefficient of the design;
        ``expanded_prior_variance`` per column of the expanded design where one is used).
        A gene without counts has NaN throughout.
    """
    options = _check_options(
        fit_type,
        min_replicates_for_replace,
        alpha,
        lfc_threshold,
        alternative,
        dispersion_prior_variance,
        fdr,
        reduced is not None,
    )
    data = prepare_counts(
        cohort, design, size_factors, reduced, lengths=lengths, norm_factors=norm_factors
    )
    n, p = data.design.shape
    if use_t:
        if options.lrt:
            raise CohortexError(
                "deseq(use_t=True) takes the Wald tests' p-values from Student's t; the "
                "likelihood-ratio test ('reduced') has none."
            )
        options = dataclasses.replace(options, t_df=float(n - p))
    matrix = contrast_matrix(contrasts, data.names)
    contrast_values = matrix.to_numpy().T  # (k, p)
    _check_shrink(shrink, options, data)
    if ihw and options.fdr not in ("bh", "bonferroni"):
        raise CohortexError(
            f"deseq(ihw=True) weights the Benjamini-Hochberg or Bonferroni adjustment (IHW's "
            f"adjustment_type): 'fdr' must be 'bh' or 'bonferroni'; got {options.fdr!r}."
        )
    plan = design_plan(data, min_replicates_for_replace, contrast_values)

    gene_wise = per_tile(
        data, plan, lambda tile, _, plan: gene_wise_rows(tile, plan), gene_wise_row_count(plan)
    )
    base_mean, all_zero, dispersion_gene = gene_wise[0], gene_wise[1] > 0, gene_wise[2]
    trend = fit_dispersion_trend(
        base_mean[~all_zero], dispersion_gene[~all_zero], fit_type, "deseq()"
    )
    residual_df = n - p
    log_residuals = np.log(dispersion_gene) - np.log(trend.at(base_mean))
    above = ~all_zero & (dispersion_gene >= 100 * MIN_DISPERSION)  # some: the trend has them
    var_log = float(_mad(log_residuals[above]) ** 2)
    if dispersion_prior_variance is None:
        if residual_df <= 3:  # check_residual_df leaves at least one
            prior_var = simulated_prior_variance(log_residuals[above], residual_df)
        else:
            prior_var = max(var_log - float(special.polygamma(1, residual_df / 2.0)), 0.25)
    else:
        prior_var = float(dispersion_prior_variance)
    shared = _Shared(trend=trend, prior_var=prior_var, var_log=var_log)
    rows = _Rows(p=p, k=len(contrast_values))
    # the gene-wise GLM's coefficients, so the final pass recomputes its means, not the fit
    means = () if plan.linear_mu else tuple(gene_wise[_GENE_WISE_ROWS:])

    def final_tile(tile: np.ndarray, d: list[np.ndarray], plan: DesignPlan) -> np.ndarray:
        return _final_tile(tile, d[0], plan, shared, np.vstack(d[1:]) if means else None)

    final = per_tile(data, plan, final_tile, rows.total, dispersion_gene, *means)
    if data.per_count is not None and plan.replaceable.any():
        # refitWithoutOutliers' moments estimate takes the refitted genes' factors
        refit = np.flatnonzero(
            (final[rows["flagged"]] > 0) & (final[rows["now_zero"]] == 0) & (gene_wise[1] == 0)
        )
        if refit.size:
            subset = data.of_genes(refit)
            final[:, refit] = per_tile(
                subset,
                dataclasses.replace(plan, refit_mean_inverse_factor=subset.mean_inverse_factor),
                final_tile,
                rows.total,
                dispersion_gene[refit],
                *(m[refit] for m in means),
            )
    shrunk = None
    if shrink is not None:
        counted = final[rows["all_zero"]] == 0
        shrinkage = _Shrinkage.build(
            data,
            contrast_values,
            final[rows.beta][:, counted],
            final[rows["base_mean"]][counted],
            final[rows["dispersion_trend"]][counted],
        )
        fits = per_tile(
            data,
            plan,
            lambda tile, d, plan: shrinkage.tile(tile, d[0], plan),
            2 * len(contrast_values),
            final[rows["dispersion"]],
        )
        shrunk = (
            shrinkage.prior,
            fits[: len(contrast_values)],
            fits[len(contrast_values) :],
            shrinkage.expanded_prior,
        )
    return _results(
        data,
        plan,
        shared,
        matrix,
        final,
        rows,
        options,
        cooks_cutoff,
        "ihw" if ihw else "independent" if independent_filtering else "none",
        shrunk,
    )


def _check_shrink(shrink: str | None, options: _Options, data: CountData) -> None:
    if shrink is None:
        return
    if shrink != "normal":
        raise CohortexError(
            f"deseq()'s 'shrink' is None or 'normal' (lfcShrink's type; apeglm and ashr are "
            f"not offered); got {shrink!r}."
        )
    if options.lrt or options.lfc_threshold != 0:
        raise CohortexError(
            "deseq(shrink='normal') shrinks the Wald fit's fold changes: leave out 'reduced' "
            "and 'lfc_threshold' (lfcShrink then tests the shrunken estimates, not offered)."
        )
    if data.formula is not None and (":" in data.formula or "*" in data.formula):
        raise CohortexError(
            "deseq(shrink='normal') is lfcShrink's Normal prior, which DESeq2 does not "
            "offer for designs with interactions."
        )


def _beta_prior_variance(
    beta: np.ndarray, base_mean: np.ndarray, dispersion_trend: np.ndarray, intercept: np.ndarray
) -> np.ndarray:
    """estimateBetaPriorVar (``betaPriorMethod = "weighted"``, ``upperQuantile = 0.05``): each
    coefficient's prior variance matched to the weighted 95% quantile of its |MLE| (log2),
    the weights 1/(1/baseMean + dispFit); 10⁶ for the intercept.

    Parameters
    ----------
    beta : ndarray of shape (p, n_genes)
        The MLE coefficients (log2) of the genes with counts.
    base_mean, dispersion_trend : ndarray of shape (n_genes,)
    intercept : ndarray of shape (p,), bool

    Returns
    -------
    ndarray of shape (p,)
    """
    weights = 1.0 / (1.0 / base_mean + dispersion_trend)
    if beta.shape[1] == 1:
        variance = beta[:, 0] ** 2
    else:
        variance = np.empty(beta.shape[0])
        for j, x in enumerate(beta):
            use = np.abs(x) < 10  # NaN: left out, as Hmisc's wtd.table drops it
            if not use.any():
                variance[j] = 1e6
                continue
            quantile = weighted_quantile(np.abs(x[use]), weights[use], 0.95)
            variance[j] = (quantile / stats.norm.ppf(0.975)) ** 2
    variance[intercept] = 1e6
    return variance


def weighted_quantile(x: np.ndarray, weights: np.ndarray, probability: float) -> float:
    """Hmisc's wtd.quantile (``type = "quantile"``, ``normwt = TRUE``), as DESeq2 copies it:
    weights scaled to sum to the number of values, tied values' weights pooled, the quantile
    interpolated between the order statistics at ``1 + (n − 1) p`` on the cumulated weights."""
    keep = ~np.isnan(weights) & (weights != 0) & ~np.isnan(x)
    x, weights = x[keep], weights[keep] * keep.sum() / weights[keep].sum()
    values, inverse = np.unique(x, return_inverse=True)
    cumulative = np.cumsum(np.bincount(inverse, weights=weights))
    n = cumulative[-1]
    place = 1 + (n - 1) * probability
    low = max(math.floor(place), 1)
    high = min(low + 1, n)
    fraction = place % 1

    def at(position: float) -> float:  # approx(method = "constant", f = 1, rule = 2)
        index = min(int(np.searchsorted(cumulative, position, side="left")), values.size - 1)
        return float(values[index])

    return (1 - fraction) * at(low) + fraction * at(high)


_FACTOR_COLUMN = re.compile(r"^(?P<factor>.+)\[T\.(?P<level>.+)\]$")


@dataclass(frozen=True)
class _Shrinkage:
    """lfcShrink(type = "normal") of each contrast: a single coefficient from the design
    refitted under its prior (``coef =``), any other contrast from DESeq2's expanded design
    (``contrast =``: a column per level of every factor), whose prior gives each factor the
    mean of its levels' and their differences' variances."""

    prior: np.ndarray  # (p,) the design's prior variances
    single: np.ndarray  # (k,) bool: the contrast is one coefficient
    columns: np.ndarray  # (k,) that coefficient
    expanded: np.ndarray | None  # (n, p_e) the expanded design, when a contrast needs it
    expanded_prior: np.ndarray | None  # (p_e,)
    expanded_contrasts: np.ndarray | None  # (k, p_e)
    intercept: np.ndarray | None  # (p_e,) bool

    @classmethod
    def build(
        cls,
        data: CountData,
        contrasts: np.ndarray,
        beta: np.ndarray,
        base_mean: np.ndarray,
        dispersion_trend: np.ndarray,
    ) -> _Shrinkage:
        names = list(data.names)
        intercept = np.isin(names, ("Intercept", "(Intercept)"))
        prior = _beta_prior_variance(beta, base_mean, dispersion_trend, intercept)
        single = (np.count_nonzero(contrasts, axis=1) == 1) & (contrasts.max(axis=1) == 1)
        columns = np.argmax(contrasts, axis=1)
        if single.all():
            return cls(prior, single, columns, None, None, None, None)
        # the expanded design: the reference level's column is 1 − the other levels'
        factors: dict[str, list[int]] = {}
        for j, name in enumerate(names):
            match = _FACTOR_COLUMN.match(name)
            if match is not None:
                factors.setdefault(match["factor"], []).append(j)
        plain = [j for j, name in enumerate(names) if _FACTOR_COLUMN.match(name) is None]
        blocks = [data.design[:, plain]]
        expanded_prior = list(prior[plain])
        for levels in factors.values():
            dummies = data.design[:, levels]
            blocks.append(np.column_stack([1.0 - dummies.sum(axis=1), dummies]))
            differences = [beta[a] - beta[b] for i, a in enumerate(levels) for b in levels[:i]]
            variances = list(prior[levels])
            if differences:
                variances += list(
                    _beta_prior_variance(
                        np.array(differences),
                        base_mean,
                        dispersion_trend,
                        np.zeros(len(differences), dtype=bool),
                    )
                )
            expanded_prior += [float(np.mean(variances))] * (len(levels) + 1)
        expanded = np.hstack(blocks)
        # a contrast of the design's columns as one of the expanded design's columns
        # (a level's effect in the design is its column minus the reference's here)
        to_expanded = np.zeros((len(names), expanded.shape[1]))
        to_expanded[plain, np.arange(len(plain))] = 1.0
        place = len(plain)
        for levels in factors.values():
            to_expanded[levels, place + 1 + np.arange(len(levels))] = 1.0
            to_expanded[levels, place] = -1.0
            place += len(levels) + 1
        expanded_intercept = np.zeros(expanded.shape[1], dtype=bool)
        expanded_intercept[: len(plain)] = intercept[plain]
        return cls(
            prior,
            single,
            columns,
            expanded,
            np.array(expanded_prior),
            contrasts @ to_expanded,
            expanded_intercept,
        )

    def tile(self, tile: np.ndarray, dispersion: np.ndarray, plan: DesignPlan) -> np.ndarray:
        """The contrasts' shrunken estimates and standard errors (log2): (2k, genes), NaN
        for a gene without counts."""
        k = self.single.size
        out = np.full((2 * k, tile.shape[1]), np.nan)
        kept = np.flatnonzero(tile.sum(axis=0) > 0)
        if kept.size == 0:
            return out
        counts = np.asfortranarray(tile[:, kept])
        plan = plan.of_genes(kept)
        if self.single.any():
            fit = fit_glm(counts, plan, dispersion[kept], self.prior)
            for j in np.flatnonzero(self.single):
                out[j, kept] = fit.beta[self.columns[j]]
                out[k + j, kept] = fit.se[self.columns[j]]
        if self.expanded is not None:
            assert self.expanded_contrasts is not None
            wide = dataclasses.replace(plan, design=self.expanded)
            fit = fit_glm(counts, wide, dispersion[kept], self.expanded_prior, self.intercept)
            p = self.expanded.shape[1]
            covariance = fit.covariance.reshape(p, p, -1)
            for j in np.flatnonzero(~self.single):
                c = self.expanded_contrasts[j]
                out[j, kept] = c @ fit.beta
                variance = np.einsum("a,abg,b->g", c, covariance, c)
                out[k + j, kept] = np.sqrt(np.maximum(variance, 0.0))
        return out


@dataclass(frozen=True)
class _Options:
    fit_type: str
    alpha: float
    lfc_threshold: float
    alternative: str
    fdr: str
    lrt: bool
    t_df: float = 0.0  # useT's degrees of freedom; 0: the normal distribution


def _check_options(
    fit_type: str,
    min_replicates: float,
    alpha: float,
    lfc_threshold: float,
    alternative: str,
    prior_variance: float | None,
    fdr: str,
    lrt: bool,
) -> _Options:
    if fit_type not in _FIT_TYPES:
        raise CohortexError(f"deseq()'s 'fit_type' must be one of {_FIT_TYPES}; got {fit_type!r}.")
    if not (min_replicates >= 3):
        raise CohortexError(
            "deseq()'s 'min_replicates_for_replace' must be >= 3 (inf: never replace); got "
            f"{min_replicates!r}."
        )
    if not (0 < alpha < 1):
        raise CohortexError(f"deseq()'s 'alpha' must be in (0, 1); got {alpha!r}.")
    if not (np.isfinite(lfc_threshold) and lfc_threshold >= 0):
        raise CohortexError(f"deseq()'s 'lfc_threshold' must be >= 0; got {lfc_threshold!r}.")
    if alternative not in _ALTERNATIVES:
        raise CohortexError(
            f"deseq()'s 'alternative' must be one of {_ALTERNATIVES}; got {alternative!r}."
        )
    if lrt and (lfc_threshold != 0 or alternative != "greaterAbs"):
        raise CohortexError(
            "deseq(): a threshold on the fold change is a Wald test; leave out 'reduced' or "
            "'lfc_threshold' and 'alternative'."
        )
    if alternative == "lessAbs" and lfc_threshold == 0:
        raise CohortexError("deseq(): alternative 'lessAbs' needs a positive 'lfc_threshold'.")
    if prior_variance is not None and not (np.isfinite(prior_variance) and prior_variance > 0):
        raise CohortexError(
            f"deseq()'s 'dispersion_prior_variance' must be > 0; got {prior_variance!r}."
        )
    return _Options(fit_type, float(alpha), float(lfc_threshold), alternative, fdr, lrt)


@dataclass(frozen=True)
class CountData:
    """A counts cohort ready for DESeq2's fits."""

    counts: da.Array  # (n_samples, n_genes), tiles of whole genes
    size_factors: np.ndarray  # (n_samples,)
    mean_inverse_factor: float  # momentsDispEstimate's xim: mean(1 / colMeans(factors))
    design: np.ndarray  # (n_samples, p)
    names: list[str]
    formula: str | None
    genes: Any
    samples: Any
    two_level_factor: bool  # a formula of one two-level factor (results' Cook's exception)
    reduced: np.ndarray | None  # (n_samples, fewer) the LRT's reduced design
    # (n_samples, n_genes) tiled as the counts: avgTxLength ("lengths"), or the normalization
    # factors themselves ("factors")
    per_count: da.Array | None = None
    per_count_kind: str = ""

    @property
    def factor_source(self) -> str:
        """Where the normalization factors come from: "size factors", "lengths" (with the
        size factors) or "given"."""
        return {"": "size factors", "lengths": "lengths", "factors": "given"}[self.per_count_kind]

    def factors_of(self, block: np.ndarray) -> np.ndarray:
        """The normalization factors of a tile's genes from its ``per_count`` values."""
        if self.per_count_kind == "lengths":
            return normalization_factors(block, self.size_factors)
        return block

    def of_genes(self, columns: np.ndarray) -> CountData:
        """These genes alone, in tiles: a DESeqDataSet of them (its moments estimate from
        their own normalization factors)."""
        tiles = (-1, min(_TILE_GENES, max(len(columns), 1)))
        counts = self.counts[:, columns].rechunk(tiles)
        if self.per_count is None:
            return dataclasses.replace(self, counts=counts)
        per_count = self.per_count[:, columns].rechunk(tiles)
        return dataclasses.replace(
            self,
            counts=counts,
            per_count=per_count,
            mean_inverse_factor=_mean_inverse_factor(counts, per_count, self.factors_of),
        )

    def with_tiles(self, genes: int) -> CountData:
        """The same counts (and per-count values) in tiles of ``genes`` genes."""
        counts = self.counts.rechunk({1: genes})
        per_count = None if self.per_count is None else self.per_count.rechunk({1: genes})
        return dataclasses.replace(self, counts=counts, per_count=per_count)

    def normalized(self) -> da.Array:
        """``counts(dds, normalized = TRUE)``: the counts over their normalization factors
        (float64 on the host), in the counts' tiles."""
        if self.per_count is None:
            host = to_host(self.counts).astype(np.float64)
            return host / self.size_factors[:, None]
        n = self.counts.shape[0]

        def block(tile: np.ndarray) -> np.ndarray:
            return tile[:n] / self.factors_of(tile[n:])

        return da.map_blocks(
            block, self.tiles(), chunks=self.counts.chunks, dtype=np.float64, meta=np.empty((0, 0))
        )

    def tiles(self) -> da.Array:
        """The counts, or the counts over their per-count values ((2n, g) tiles), for
        :func:`per_tile`."""
        if self.per_count is None:
            return self.counts
        # on the host, where the fits run (and the per-count values are)
        return da.concatenate([to_host(self.counts), self.per_count], axis=0).rechunk({0: -1})


def per_tile(
    data: CountData,
    plan: DesignPlan,
    function: Callable[[np.ndarray, list[np.ndarray], DesignPlan], np.ndarray],
    rows: int,
    *gene_values: np.ndarray,
) -> np.ndarray:
    """``function(tile of counts, [gene_values of its genes], plan)`` over the gene tiles
    (:func:`per_gene`), the plan carrying each tile's normalization factors where the
    counts come with lengths or factors of their own."""
    if data.per_count is None:
        return per_gene(data.counts, lambda tile, v: function(tile, v, plan), rows, *gene_values)
    n = data.counts.shape[0]

    def each(tile: np.ndarray, values: list[np.ndarray]) -> np.ndarray:
        factors = data.factors_of(tile[n:])
        return function(tile[:n], values, plan.with_norm_factors(factors))

    return per_gene(data.tiles(), each, rows, *gene_values)


def normalization_factors(lengths: np.ndarray, size_factors: np.ndarray) -> np.ndarray:
    """estimateNormFactors' factors of genes from their lengths (n × g) and the size
    factors (n,): the lengths over their geometric mean, times the size factors, over the
    products' geometric mean (each gene's), in DESeq2's order of operations."""
    norm_matrix = lengths / np.exp(np.log(lengths).mean(axis=0))
    factors = norm_matrix * size_factors[:, None]
    return factors / np.exp(np.log(factors).mean(axis=0))


def prepare_counts(
    cohort: CohortLike,
    design: Any,
    factors: Any,
    reduced: Any = None,
    *,
    lengths: Any = None,
    norm_factors: Any = None,
    caller: str = "deseq()",
    min_coefficients: int = 2,
) -> CountData:
    """The counts in tiles of whole genes (checked whole, complete and non-negative), their
    size factors and the design (and a reduced one), and the lengths or normalization
    factors where given."""
    ds, counts = count_tiles(cohort, caller, max_genes=_TILE_GENES)
    n_samples = counts.shape[0]
    x_design, names, formula = design_matrix(design, ds, n_samples)
    check_design(x_design, names)
    check_residual_df(x_design)
    if x_design.shape[1] < min_coefficients:
        raise CohortexError(f"{caller} needs a design with at least two coefficients to test.")
    if np.any(np.abs(x_design).sum(axis=0) == 0):
        raise CohortexError(f"{caller}: a column of the design is all zero.")
    x_reduced = None
    if reduced is not None:
        x_reduced, reduced_names, _ = design_matrix(reduced, ds, n_samples)
        check_design(x_reduced, reduced_names)
        if x_reduced.shape[1] >= x_design.shape[1]:
            raise CohortexError(
                f"deseq()'s reduced design has {x_reduced.shape[1]} coefficients; the "
                f"likelihood-ratio test needs fewer than the design's {x_design.shape[1]}."
            )
    smallest, nan_count, fractional = da.compute(
        da.min(counts), da.sum(da.isnan(counts)), da.sum(counts != da.floor(counts))
    )
    if int(to_host(nan_count)):
        raise CohortexError(f"{caller} needs complete counts; the matrix holds NaN values.")
    if float(to_host(smallest)) < 0:
        raise CohortexError(f"{caller} needs counts >= 0; the matrix holds negative values.")
    if int(to_host(fractional)):
        raise CohortexError(
            f"{caller} needs whole counts, as DESeq2; the matrix holds fractional values "
            "(round estimated counts first, as DESeqDataSetFromTximport does; "
            "io.import_quantifications(round_counts=True), cohortex import-quant --round, "
            "or ds['expression'].round() of io.read_quantifications' Dataset)."
        )
    per_count, kind = _per_count(ds, counts, lengths, norm_factors, factors, caller)
    if kind == "factors":  # used as given: DESeq() estimates no size factors then
        factors = np.full(n_samples, np.nan)
    else:
        factors = _size_factors(counts, factors, n_samples, per_count)
    matrix = as_cohort_matrix(ds)
    data = CountData(
        counts=counts,
        size_factors=factors,
        mean_inverse_factor=float(np.mean(1.0 / factors)),
        per_count=per_count,
        per_count_kind=kind,
        design=x_design,
        names=list(names),
        formula=formula,
        genes=matrix.gene_ids,
        samples=ds["sample"].values,
        two_level_factor=_two_level_factor(formula, ds, x_design),
        reduced=x_reduced,
    )
    if per_count is None:
        return data
    return dataclasses.replace(
        data, mean_inverse_factor=_mean_inverse_factor(counts, per_count, data.factors_of)
    )


def _per_count(
    ds: xr.Dataset, counts: da.Array, lengths: Any, norm_factors: Any, factors: Any, caller: str
) -> tuple[da.Array | None, str]:
    """The lengths or the normalization factors given (their tiles and ``"lengths"`` or
    ``"factors"``), or neither (None, "")."""
    if norm_factors is not None:
        if not (lengths is None or (isinstance(lengths, str) and lengths == "auto")):
            raise CohortexError(f"{caller} takes 'lengths' or 'norm_factors', not both.")
        if not (isinstance(factors, str) and factors == "ratio"):
            raise CohortexError(
                f"{caller}'s 'norm_factors' are used as given, without size factors: leave "
                "out 'size_factors'."
            )
        return sample_gene_values(ds, norm_factors, counts, caller, "norm_factors"), "factors"
    found = transcript_lengths(ds, lengths, counts, caller)
    return found, "" if found is None else "lengths"


def _mean_inverse_factor(
    counts: da.Array, per_count: da.Array, factors_of: Callable[[np.ndarray], np.ndarray]
) -> float:
    """momentsDispEstimate's ``mean(1 / colMeans(normalizationFactors))`` over the genes
    with counts, their factors ``factors_of`` their per-count values."""

    def sums(tile: Any, tile_values: Any) -> np.ndarray:
        host = np.asarray(to_host(tile), dtype=np.float64)
        kept = host.sum(axis=0) > 0
        factors = factors_of(np.asarray(to_host(tile_values))[:, kept])
        return np.stack([factors.sum(axis=1), np.full(host.shape[0], kept.sum())], axis=1)

    parts = da.map_blocks(
        sums,
        counts,
        per_count,
        chunks=(counts.chunks[0], (2,) * len(counts.chunks[1])),
        dtype=np.float64,
        meta=np.empty((0, 0)),
    )
    totals = np.asarray(parts.compute()).reshape(counts.shape[0], -1, 2).sum(axis=1)
    return float(np.mean(totals[:, 1] / totals[:, 0]))


def _size_factors(
    counts: da.Array, factors: Any, n_samples: int, lengths: da.Array | None
) -> np.ndarray:
    if isinstance(factors, str):
        if factors not in _SIZE_FACTOR_TYPES:
            raise CohortexError(
                f"deseq()'s 'size_factors' must be one of {_SIZE_FACTOR_TYPES} or one factor "
                f"per sample; got {factors!r}."
            )
        norm_matrix = None
        if lengths is not None:  # estimateNormFactors: the counts over the lengths scaled
            norm_matrix = lengths / da.exp(da.log(lengths).mean(axis=0, keepdims=True))
        found = median_ratio_factors(
            counts if lengths is None else to_host(counts),  # beside the host's lengths
            positive_counts=factors == "poscounts",
            norm_matrix=norm_matrix,
        )
        values = np.asarray(to_host(found.compute()), dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise CohortexError(
                "Every gene has a zero count in some sample, so the median-of-ratios size "
                "factors cannot be computed; use size_factors='poscounts'."
            )
        return values
    values = np.asarray(factors, dtype=np.float64)
    if values.shape != (n_samples,) or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise CohortexError(
            f"deseq()'s size factors must be {n_samples} finite positive numbers, one per sample."
        )
    return values


def _two_level_factor(formula: str | None, ds: xr.Dataset, x_design: np.ndarray) -> bool:
    """Whether the design is a formula of one categorical sample variable with two levels
    (results() then keeps genes whose outlier has three larger counts)."""
    if formula is None or x_design.shape[1] != 2:
        return False
    import formulaic

    variables = [str(v) for v in formulaic.Formula(formula).required_variables]
    if len(variables) != 1 or variables[0] not in ds:
        return False
    values = ds[variables[0]].values
    return not np.issubdtype(values.dtype, np.number) and pd.unique(values).size == 2


@dataclass(frozen=True)
class DesignPlan:
    """What every tile needs: the design, its QR, the size factors and the cells (and, with
    transcript lengths, the normalization factors of the tile's genes)."""

    design: np.ndarray  # (n, p)
    q: np.ndarray  # (n, p): qr.Q of the design
    start: np.ndarray  # (p, n): R⁻¹ Qᵀ, the least-squares start of the betas
    size_factors: np.ndarray  # (n,)
    mean_inverse_factor: float  # momentsDispEstimate's xim
    linear_mu: bool  # as many distinct design rows as coefficients
    max_dispersion: float
    cooks_samples: np.ndarray  # (n,) bool: in a cell of three samples or more
    cells: np.ndarray  # (n,) int: the cell of a sample of cooks_samples, else -1
    cell_trim: np.ndarray  # (cells,) the trimmed mean's share in each cell
    cell_scale: np.ndarray  # (cells,) the trimmed variance's scale
    replaceable: np.ndarray  # (n,) bool: in a cell of min_replicates samples or more
    replace_cutoff: float  # qf(0.99, p, m − p)
    contrasts: np.ndarray  # (k, p)
    reduced: DesignPlan | None = None  # the LRT's reduced design, fitted as the design
    norm_factors: np.ndarray | None = None  # (n, g) of the genes in hand, else size factors
    # with norm_factors: the xim of the genes refitted without their outliers; None defers
    # their refit to a pass of their own, which knows them all
    refit_mean_inverse_factor: float | None = None

    def factors(self, g: int) -> np.ndarray:
        """Each count's normalization factor for ``g`` genes, (n, g): the genes' own, else
        the size factors (a view)."""
        if self.norm_factors is None:
            return np.broadcast_to(self.size_factors[:, None], (self.size_factors.size, g))
        assert self.norm_factors.shape[1] == g, "the plan's factors are of other genes"
        return self.norm_factors

    def of_genes(self, columns: Any) -> DesignPlan:
        """The plan for the genes ``columns`` of those in hand."""
        if self.norm_factors is None:
            return self
        return self.with_norm_factors(self.norm_factors[:, columns])

    def with_norm_factors(self, norm_factors: np.ndarray) -> DesignPlan:
        """The plan for genes of these normalization factors (n, g)."""
        reduced = None if self.reduced is None else self.reduced.with_norm_factors(norm_factors)
        return dataclasses.replace(self, norm_factors=norm_factors, reduced=reduced)


def _design_cells(design: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's design row as a code (first-seen order) and each code's sample count."""
    _, first, inverse, counts = np.unique(
        design, axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    order = np.argsort(first)  # codes in order of first appearance, as R's factor(unique)
    relabel = np.empty_like(order)
    relabel[order] = np.arange(order.size)
    return relabel[inverse.ravel()], counts[order]


def design_plan(
    data: CountData, min_replicates: float = math.inf, contrasts: np.ndarray | None = None
) -> DesignPlan:
    """What every tile needs of the design: its QR, cells, Cook's and replacement samples
    (and the reduced design's QR, fitted alike, for the LRT)."""
    design = data.design
    n, p = design.shape
    q, r = np.linalg.qr(design)
    codes, sizes = _design_cells(design)
    in_three = sizes[codes] >= 3
    plan = DesignPlan(
        design=design,
        q=q,
        start=np.linalg.solve(r, q.T),
        size_factors=data.size_factors,
        mean_inverse_factor=data.mean_inverse_factor,
        linear_mu=sizes.size == p,
        max_dispersion=float(max(10.0, n)),
        cooks_samples=in_three,
        cells=np.where(in_three, codes, -1),
        cell_trim=np.where(sizes <= 3, 1.0 / 3.0, np.where(sizes <= 23, 1.0 / 4.0, 1.0 / 8.0)),
        cell_scale=np.where(sizes <= 3, 2.04, np.where(sizes <= 23, 1.86, 1.51)),
        replaceable=sizes[codes] >= min_replicates,
        replace_cutoff=float(stats.f.ppf(0.99, p, n - p)),
        contrasts=np.zeros((0, p)) if contrasts is None else contrasts,
    )
    if data.reduced is None:
        return plan
    q_reduced, r_reduced = np.linalg.qr(data.reduced)
    reduced = dataclasses.replace(
        plan,
        design=data.reduced,
        q=q_reduced,
        start=np.linalg.solve(r_reduced, q_reduced.T),
        linear_mu=False,
        contrasts=np.zeros((0, data.reduced.shape[1])),
    )
    return dataclasses.replace(plan, reduced=reduced)


# --- the gene-wise dispersions ---------------------------------------------------------------


@dataclass(frozen=True)
class _GeneWise:
    base_mean: np.ndarray  # (g,)
    base_var: np.ndarray
    initial: np.ndarray  # (g,) the starting dispersions
    mu: np.ndarray  # (n, g) the means the dispersions were fitted at (floored)
    dispersion: np.ndarray  # (g,) dispGeneEst
    means: np.ndarray | None  # the GLM of the means (_means_rows), None for linear means


def gene_wise_rows(tile: np.ndarray, plan: DesignPlan) -> np.ndarray:
    """estimateDispersionsGeneEst of a tile of counts (n × g): rows baseMean, allZero,
    dispGeneEst, and the GLM that gave the means (:func:`_means_rows`; NaN for a one-way
    design's linear means); a gene without counts has NaN."""
    out = np.full((gene_wise_row_count(plan), tile.shape[1]), np.nan)
    zero = tile.sum(axis=0) == 0
    out[1] = zero
    if (~zero).any():
        counts = np.asfortranarray(tile[:, ~zero])
        fit = _gene_wise(counts, plan.of_genes(~zero))
        out[0, ~zero] = fit.base_mean
        out[2, ~zero] = fit.dispersion
        if fit.means is not None:
            out[_GENE_WISE_ROWS:, ~zero] = fit.means
    out[0, zero] = 0.0
    return out


def gene_wise_row_count(plan: DesignPlan) -> int:
    """The rows :func:`gene_wise_rows` gives each gene."""
    return _GENE_WISE_ROWS + 2 * plan.design.shape[1] + 1


def _means_rows(glm: _GLM) -> np.ndarray:
    """What recomputes a GLM's means bit for bit: its IRLS coefficients (natural log), the
    optimiser's (log2) and which genes the optimiser fitted, ((2p + 1) × g)."""
    return np.vstack([glm.natural, glm.beta, glm.optimized[None, :]])


def _means_from(rows: np.ndarray, plan: DesignPlan) -> np.ndarray:
    """A GLM's means from :func:`_means_rows`, computed as :func:`_glm` computes them."""
    p = plan.design.shape[1]
    factors = plan.factors(rows.shape[1])
    with np.errstate(over="ignore"):
        mu = factors * np.exp(column_product(plan.design, rows[:p]))
    for gene in np.flatnonzero(rows[2 * p] > 0):
        mu[:, gene] = factors[:, gene] * 2.0 ** (plan.design @ rows[p : 2 * p, gene])
    return mu


def _gene_wise(
    counts: np.ndarray,
    plan: DesignPlan,
    with_estimate: bool = True,
    means: np.ndarray | None = None,
) -> _GeneWise:
    """estimateDispersionsGeneEst of genes with counts (n × g): the starts (the smaller of
    the rough and the moments estimates), the means (a linear model of the normalised
    counts for a one-way design, else the GLM at the starts, or its stored ``means`` rows)
    and the line search; genes that do not converge on the grid."""
    n, p = plan.design.shape
    factors = plan.factors(counts.shape[1])
    normalized = counts / factors
    # summed column by column in one order, so that a gene's start does not depend on its tile
    base_mean = column_sums(normalized) / n
    base_var = column_sums((normalized - base_mean) ** 2) / (n - 1)
    linear = column_product(plan.q, column_product(np.ascontiguousarray(plan.q.T), normalized))
    floored = np.maximum(linear, 1.0)
    rough = np.maximum(
        column_sums(((normalized - floored) ** 2 - floored) / floored**2) / (n - p), 0
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        moments = (base_var - plan.mean_inverse_factor * base_mean) / base_mean**2
    initial = np.clip(np.fmin(rough, moments), MIN_DISPERSION, plan.max_dispersion)
    rows = None
    if plan.linear_mu:
        mu = linear * factors
    elif means is not None:
        mu = _means_from(means, plan)
    else:
        glm = fit_glm(counts, plan, initial)
        mu, rows = glm.mu, _means_rows(glm)
    mu = np.asfortranarray(np.maximum(mu, _MIN_MU))
    if not with_estimate:
        return _GeneWise(base_mean, base_var, initial, mu, initial, rows)
    g = counts.shape[1]
    log_alpha = np.log(initial)
    iterations = np.zeros(g, dtype=np.int64)
    initial_lp = np.empty(g)
    last_lp = np.empty(g)
    fit_dispersion(
        counts,
        mu,
        plan.design,
        log_alpha,
        np.log(initial),
        1.0,
        math.log(MIN_DISPERSION / 10.0),
        _KAPPA_0,
        _DISPERSION_TOL,
        _MAXIT,
        False,
        iterations,
        initial_lp,
        last_lp,
    )
    estimate = np.minimum(np.exp(log_alpha), plan.max_dispersion)
    no_increase = last_lp < initial_lp + np.abs(initial_lp) / 1e6
    estimate[no_increase] = initial[no_increase]
    converged = (iterations < _MAXIT) & (iterations != 1)
    refit = ~converged & (estimate > MIN_DISPERSION * 10)
    if refit.any():
        estimate[refit] = _grid(
            counts[:, refit], mu[:, refit], plan, np.zeros(refit.sum()), 1.0, False
        )
    return _GeneWise(
        base_mean,
        base_var,
        initial,
        mu,
        np.clip(estimate, MIN_DISPERSION, plan.max_dispersion),
        rows,
    )


def _grid(
    counts: np.ndarray,
    mu: np.ndarray,
    plan: DesignPlan,
    prior_mean: np.ndarray,
    prior_var: float,
    use_prior: bool,
) -> np.ndarray:
    """fitDispGridWrapper: 20 log dispersions from 10⁻⁸ to max(10, n), then finer."""
    grid = np.linspace(math.log(1e-8), math.log(plan.max_dispersion), 20)
    out = np.empty(counts.shape[1])
    fit_dispersion_grid(
        np.asfortranarray(counts),
        np.asfortranarray(mu),
        plan.design,
        grid,
        np.ascontiguousarray(prior_mean, dtype=np.float64),
        prior_var,
        use_prior,
        out,
    )
    return np.exp(out)


# --- the GLM --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _GLM:
    beta: np.ndarray  # (p, g) log2 scale
    se: np.ndarray  # (p, g) log2 scale
    covariance: np.ndarray  # (p·p, g) log2 scale
    mu: np.ndarray  # (n, g) not floored
    hat: np.ndarray  # (n, g)
    converged: np.ndarray  # (g,) bool
    log_like: np.ndarray  # (g,)
    natural: np.ndarray  # (p, g) IRLS's coefficients (natural log)
    optimized: np.ndarray  # (g,) bool: the optimiser's (beta) replace IRLS's


def fit_glm(
    counts: np.ndarray,
    plan: DesignPlan,
    dispersion: np.ndarray,
    prior_variance: np.ndarray | None = None,
    intercept_start: np.ndarray | None = None,
    *,
    tol: float = _BETA_TOL,
    optimize: bool = True,
) -> _GLM:
    """fitNbinomGLMs: fitBeta from the least-squares fit of log(normalised counts + 0.1),
    and R's optim (L-BFGS-B) for the genes it leaves unconverged or unstable. Its ridge is
    1e-6 (log2 scale) without ``prior_variance``, else the Normal prior's 1/variance per
    coefficient (``nbinomWaldTest(betaPrior = TRUE)``). A design short of full rank (DESeq2's
    expanded one) starts, as fitNbinomGLMs starts it, from log(mean normalised count) on
    the columns where ``intercept_start`` (p,) is true and 0 elsewhere. ``tol`` is fitBeta's
    ``betaTol``; ``optimize=False`` is ``useOptim = FALSE`` (rlog's)."""
    n, p = plan.design.shape
    g = counts.shape[1]
    factors = plan.factors(g)
    if intercept_start is None:
        start = column_product(plan.start, np.log(counts / factors + 0.1))
    else:
        log_mean = np.log((counts / factors).mean(axis=0))
        start = np.where(intercept_start[:, None], log_mean[None, :], 0.0)
    beta = np.ascontiguousarray(start)
    iterations = np.zeros(g, dtype=np.int64)
    deviance = np.empty(g)
    covariance = np.empty((p * p, g))
    hat = np.empty((n, g), order="F")
    lambda_log2 = np.full(p, _RIDGE_LOG2) if prior_variance is None else 1.0 / prior_variance
    ridge = lambda_log2 / math.log(2.0) ** 2
    fit_beta(
        counts,
        np.asfortranarray(factors),
        plan.design,
        np.ascontiguousarray(dispersion, dtype=np.float64),
        beta,
        ridge,
        tol,
        _MAXIT,
        _MIN_MU,
        iterations,
        deviance,
        covariance,
        hat,
    )
    with np.errstate(over="ignore"):
        mu = factors * np.exp(column_product(plan.design, beta))
    log_like = _log_like(counts, mu, dispersion)
    stable = ~np.isnan(beta).any(axis=0)
    diagonal = covariance[:: p + 1]
    positive = (diagonal > 0).all(axis=0)
    converged = iterations < _MAXIT
    beta_log2 = _LOG2E * beta
    covariance = covariance * _LOG2E**2
    optimized = (~converged | ~stable | ~positive) & optimize
    for gene in np.flatnonzero(optimized):
        row = beta_log2[:, gene]
        begin = row if (stable[gene] and np.all(np.abs(row) < 30)) else start[:, gene]
        solution, ok = _optim(
            counts[:, gene], factors[:, gene], plan.design, dispersion[gene], begin, lambda_log2
        )
        converged[gene] = converged[gene] or ok
        beta_log2[:, gene] = solution
        mu[:, gene] = factors[:, gene] * 2.0 ** (plan.design @ solution)
        floored = np.maximum(mu[:, gene], _MIN_MU)
        w = 1.0 / (1.0 / floored + dispersion[gene])
        information = plan.design.T @ (plan.design * w[:, None])
        inverse = np.linalg.inv(information + np.diag(ridge))
        covariance[:, gene] = (inverse @ information @ inverse).ravel() * _LOG2E**2
        log_like[gene] = log_likelihood(counts[:, gene], 1.0 / dispersion[gene], floored)
    se = np.sqrt(np.maximum(covariance[:: p + 1], 0.0))
    return _GLM(beta_log2, se, covariance, mu, hat, converged, log_like, beta, optimized)


def _log_like(counts: np.ndarray, mu: np.ndarray, dispersion: np.ndarray) -> np.ndarray:
    """Each gene's Σ log dnbinom(count, size = 1/α, mu), (g,)."""
    return np.array(
        [
            log_likelihood(counts[:, g], 1.0 / dispersion[g], mu[:, g])
            for g in range(counts.shape[1])
        ]
    )


def _optim(
    counts: np.ndarray,
    factors: np.ndarray,
    design: np.ndarray,
    dispersion: float,
    start: np.ndarray,
    lambda_log2: np.ndarray | None = None,
) -> tuple[np.ndarray, bool]:
    """fitNbinomGLMsOptim's ``optim(method = "L-BFGS-B")`` of one gene on the log2 scale
    (coefficients within ±30, R's central differences of step 10⁻³, factr 10⁷), the prior
    Normal(0, 1/λ) per coefficient (λ 10⁻⁶ without a beta prior)."""
    size = 1.0 / dispersion
    if lambda_log2 is None:
        lambda_log2 = np.full(start.size, _RIDGE_LOG2)
    sd = np.sqrt(1.0 / lambda_log2)

    def objective(beta: np.ndarray) -> float:
        with np.errstate(over="ignore"):
            mu = factors * 2.0 ** (design @ beta)
        ll = log_likelihood(counts, size, mu)
        prior = float(stats.norm.logpdf(beta, 0.0, sd).sum())
        value = -(ll + prior)
        return value if math.isfinite(value) else 1e300

    def gradient(beta: np.ndarray) -> np.ndarray:
        out = np.empty_like(beta)
        for j in range(beta.size):
            up, down = beta.copy(), beta.copy()
            up[j] = min(beta[j] + 1e-3, 30.0)
            down[j] = max(beta[j] - 1e-3, -30.0)
            out[j] = (objective(up) - objective(down)) / (up[j] - down[j])
        return out

    result = optimize.minimize(
        objective,
        np.clip(np.asarray(start, dtype=np.float64), -30.0, 30.0),
        jac=gradient,
        method="L-BFGS-B",
        bounds=[(-30.0, 30.0)] * start.size,
        options={"maxcor": 5, "ftol": 1e7 * np.finfo(float).eps, "gtol": 0.0, "maxiter": 100},
    )
    return np.asarray(result.x, dtype=np.float64), bool(result.success)


# --- the trend ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DispersionTrend:
    """A fitted dispersion trend: ``asymptDisp + extraPois / mean``, a constant, or the
    exponential of locfit's local quadratic in the log mean."""

    fit_type: str
    coefficients: tuple[float, float]  # asymptDisp, extraPois (parametric); mean, 0; nan
    local: LocalQuadratic | None = None  # fit_type "local": log dispersion on log mean

    def at(self, means: np.ndarray) -> np.ndarray:
        if self.fit_type == "mean":
            return np.full(np.shape(means), self.coefficients[0])
        if self.local is not None:  # a mean of 0 has no trend: NaN
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.exp(self.local.at(np.log(np.asarray(means, dtype=np.float64))))
        with np.errstate(divide="ignore"):
            return self.coefficients[0] + self.coefficients[1] / np.asarray(means)

    def attrs(self) -> dict[str, Any]:
        """The trend's coefficients as result attrs."""
        if self.fit_type == "parametric":
            asymptotic, extra = self.coefficients
            return {"asymptotic_dispersion": asymptotic, "extra_poisson": extra}
        if self.fit_type == "mean":
            return {"mean_dispersion": self.coefficients[0]}
        return {}


def fit_dispersion_trend(
    means: np.ndarray, dispersions: np.ndarray, fit_type: str, caller: str = "deseq()"
) -> DispersionTrend:
    """estimateDispersionsFit on the genes with counts (their baseMean and dispGeneEst):
    where the parametric fit fails, DESeq2's local fit in its place, with a warning."""
    used = dispersions > 100 * MIN_DISPERSION
    if not used.any():
        raise CohortexError(
            "Every gene's dispersion estimate is within two orders of magnitude of the "
            f"minimum ({MIN_DISPERSION:g}); the dispersion trend cannot be fitted."
        )
    if fit_type == "mean":
        kept = dispersions[dispersions > 10 * MIN_DISPERSION]
        return DispersionTrend("mean", (_trimmed_mean(kept, 0.001), 0.0))
    if fit_type == "parametric":
        coefficients = _parametric_fit(means[used], dispersions[used])
        if coefficients is not None:
            return DispersionTrend("parametric", coefficients)
        warnings.warn(
            f"{caller}: the dispersion trend is not captured by asymptDisp + extraPois / "
            "mean, so a local regression was fitted in its place (as DESeq2 does); give "
            "fit_type='local' or 'mean' to choose.",
            CohortexWarning,
            stacklevel=3,
        )
    local = _local_fit(means[used], dispersions[used])
    return DispersionTrend("local", (math.nan, math.nan), local)


def _local_fit(means: np.ndarray, dispersions: np.ndarray) -> LocalQuadratic:
    """localDispersionFit: locfit's default fit of the log dispersions on the log means,
    weighted by the means (of the genes whose dispersion is at least 10 times the
    minimum)."""
    kept = dispersions >= 10 * MIN_DISPERSION
    if np.count_nonzero(kept) < 3:
        raise CohortexError(
            "The local dispersion trend needs at least 3 genes with a dispersion estimate "
            f"above {10 * MIN_DISPERSION:g}; use fit_type='mean'."
        )
    return locfit_quadratic(np.log(means[kept]), np.log(dispersions[kept]), weights=means[kept])


def _parametric_fit(means: np.ndarray, dispersions: np.ndarray) -> tuple[float, float] | None:
    """parametricDispersionFit: a gamma GLM (identity link) of the dispersions on 1/mean,
    refitted on the genes whose dispersion lies within (10⁻⁴, 15) times the fit."""
    coefficients = np.array([0.1, 1.0])
    for _ in range(11):
        residuals = dispersions / (coefficients[0] + coefficients[1] / means)
        good = (residuals > 1e-4) & (residuals < 15)
        fitted, converged = _gamma_identity_glm(
            dispersions[good],
            np.column_stack([np.ones(good.sum()), 1.0 / means[good]]),
            coefficients,
        )
        if fitted is None or not np.all(fitted > 0):
            return None
        old = coefficients
        coefficients = fitted
        if np.sum(np.log(coefficients / old) ** 2) < 1e-6 and converged:
            return float(coefficients[0]), float(coefficients[1])
    return None


def _gamma_identity_glm(
    y: np.ndarray, x: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray | None, bool]:
    """R's glm.fit for ``family = Gamma(link = "identity")`` from ``start`` (IRLS, ε 10⁻⁸,
    25 steps, step halving while a mean is not positive)."""

    def deviance(mu: np.ndarray) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(y == 0, 1.0, y / mu)
            return float(np.sum(-2.0 * (np.log(ratio) - (y - mu) / mu)))

    coefficients = start.astype(np.float64)
    eta = x @ coefficients
    if not np.all(eta > 0):
        return None, False
    dev_old = deviance(eta)
    old = coefficients
    for _ in range(25):
        mu = eta
        z = eta + (y - mu)
        w = 1.0 / mu
        proposal = np.linalg.lstsq(x * w[:, None], z * w, rcond=None)[0].astype(np.float64)
        eta = x @ proposal
        dev = deviance(eta)
        halvings = 0
        while not (math.isfinite(dev) and np.all(eta > 0)):
            halvings += 1
            if halvings > 25:
                return None, False
            proposal = (proposal + old) / 2.0
            eta = x @ proposal
            dev = deviance(eta)
        coefficients = proposal
        if abs(dev - dev_old) / (abs(dev) + 0.1) < 1e-8:
            return coefficients, True
        dev_old = dev
        old = coefficients
    return coefficients, False


def _trimmed_mean(values: np.ndarray, trim: float) -> float:
    """R's ``mean(x, trim)``: ⌊n · trim⌋ values off each end (the median from trim 0.5)."""
    n = values.size
    if trim >= 0.5:
        return float(np.median(values))
    low = math.floor(n * trim)
    ordered = np.sort(values)
    return float(np.mean(ordered[low : n - low]))


def _mad(values: np.ndarray) -> float:
    """R's ``mad``: 1.4826 · median |x − median x|."""
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


# --- the final pass -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shared:
    """What the final pass takes from across the genes."""

    trend: DispersionTrend
    prior_var: float  # dispPriorVar
    var_log: float  # varLogDispEsts


@dataclass(frozen=True)
class _Rows:
    """The final pass's rows for each gene."""

    p: int
    k: int
    names: tuple[str, ...] = (
        "base_mean",
        "all_zero",
        "dispersion_gene",
        "dispersion_trend",
        "dispersion_map",
        "dispersion_outlier",
        "dispersion",
        "converged",
        "deviance",
        "max_cooks_all",
        "max_cooks_kept",
        "counts_above_outlier",
        "flagged",
        "now_zero",
        "lrt_statistic",
    )

    def __getitem__(self, name: str) -> int:
        return self.names.index(name)

    @property
    def beta(self) -> slice:
        return slice(len(self.names), len(self.names) + self.p)

    @property
    def covariance(self) -> slice:
        start = len(self.names) + self.p
        return slice(start, start + self.p * self.p)

    @property
    def contrast_zero(self) -> slice:
        start = len(self.names) + self.p + self.p * self.p
        return slice(start, start + self.k)

    @property
    def total(self) -> int:
        return len(self.names) + self.p + self.p * self.p + self.k


@dataclass(frozen=True)
class _GeneFit:
    base_mean: np.ndarray
    dispersion_gene: np.ndarray
    dispersion_trend: np.ndarray
    dispersion_map: np.ndarray
    dispersion_outlier: np.ndarray
    dispersion: np.ndarray
    glm: _GLM
    cooks: np.ndarray  # (n, g)
    lrt_statistic: np.ndarray | None  # (g,) with a reduced design


def _final_tile(
    tile: np.ndarray,
    dispersion_gene: np.ndarray,
    plan: DesignPlan,
    shared: _Shared,
    means: np.ndarray | None,
) -> np.ndarray:
    """Every gene's final dispersion, Wald fit and Cook's distances; with replaceable
    samples, the genes with an outlier refitted on replaced counts."""
    rows = _Rows(p=plan.design.shape[1], k=plan.contrasts.shape[0])
    out = np.full((rows.total, tile.shape[1]), np.nan)
    zero = tile.sum(axis=0) == 0
    out[rows["all_zero"]] = zero
    out[rows["base_mean"], zero] = 0.0
    kept = np.flatnonzero(~zero)
    if kept.size == 0:
        return out
    counts = np.asfortranarray(tile[:, kept])
    stored = None if means is None else means[:, kept]
    plan = plan.of_genes(kept)
    fit = _fit_genes(counts, dispersion_gene[kept], plan, shared, stored)
    _write(out, rows, kept, fit)
    cooks = fit.cooks
    with np.errstate(invalid="ignore"):
        chosen = np.where(plan.cooks_samples[:, None], cooks, -np.inf)
        out[rows["max_cooks_all"], kept] = _column_max(chosen, bool(plan.cooks_samples.any()))
        masked = np.where(plan.replaceable[:, None], 0.0, cooks)
        chosen = np.where(plan.cooks_samples[:, None], masked, -np.inf)
        out[rows["max_cooks_kept"], kept] = _column_max(chosen, bool(plan.cooks_samples.any()))
    filled = np.where(np.isnan(cooks), -np.inf, cooks)
    at_max = counts[np.argmax(filled, axis=0), np.arange(kept.size)]
    out[rows["counts_above_outlier"], kept] = (counts > at_max[None, :]).sum(axis=0)
    for j, contrast in enumerate(plan.contrasts):
        if (contrast >= 0).all() or (contrast <= 0).all():
            out[rows.contrast_zero.start + j, kept] = 0.0
        else:
            samples = plan.design @ (contrast != 0).astype(np.float64) != 0
            out[rows.contrast_zero.start + j, kept] = counts[samples].sum(axis=0) == 0
    if plan.replaceable.any():
        with np.errstate(invalid="ignore"):
            outliers = cooks > plan.replace_cutoff
        flagged = outliers.any(axis=0)
        out[rows["flagged"], kept] = flagged
        out[rows["now_zero"], kept] = 0.0
        _replace_and_refit(out, rows, kept, counts, outliers, plan, shared)
    return out


def _column_max(values: np.ndarray, any_rows: bool) -> np.ndarray:
    """Each column's maximum (NaN where a value is NaN, or where no row counts)."""
    if not any_rows:
        return np.full(values.shape[1], np.nan)
    return np.max(values, axis=0)


def _replace_and_refit(
    out: np.ndarray,
    rows: _Rows,
    kept: np.ndarray,
    counts: np.ndarray,
    outliers: np.ndarray,
    plan: DesignPlan,
    shared: _Shared,
) -> None:
    """replaceOutliers and refitWithoutOutliers: each outlying count (n × g) of a
    replaceable sample becomes the gene's 20% trimmed mean of the normalised counts times the
    count's normalization factor (truncated to a whole count), and the gene is fitted again
    from its gene-wise dispersion on (the dispersion trend and prior stay). With
    normalization factors, every gene with an outlier is refitted (as DESeq2 refits them),
    its moments estimate from the refitted genes' factors: in the pass that knows them."""
    replace = outliers & plan.replaceable[:, None]
    # with size factors a gene without a replaced count would be refitted to its fit
    changed = np.flatnonzero((replace if plan.norm_factors is None else outliers).any(axis=0))
    if changed.size == 0:
        return
    factors = plan.factors(counts.shape[1])[:, changed]
    normalized = counts[:, changed] / factors
    n = normalized.shape[0]
    low = math.floor(n * 0.2)
    trimmed = np.sort(normalized, axis=0)[low : n - low].mean(axis=0)
    replacement = np.trunc(trimmed[None, :] * factors)
    new_counts = np.where(replace[:, changed], replacement, counts[:, changed])
    now_zero = new_counts.sum(axis=0) == 0
    out[rows["now_zero"], kept[changed[now_zero]]] = 1.0
    out[rows["base_mean"], kept[changed[now_zero]]] = 0.0
    refit = changed[~now_zero]
    if refit.size == 0:
        return
    if plan.norm_factors is not None:
        if plan.refit_mean_inverse_factor is None:
            return  # refitted by refit_with_factors, once the refitted genes are known
        plan = dataclasses.replace(plan, mean_inverse_factor=plan.refit_mean_inverse_factor)
    new_counts = np.asfortranarray(new_counts[:, ~now_zero])
    plan = plan.of_genes(refit)
    gene_wise = _gene_wise(new_counts, plan)
    fit = _fit_genes(new_counts, gene_wise.dispersion, plan, shared, gene_wise.means)
    _write(out, rows, kept[refit], fit)


def _write(out: np.ndarray, rows: _Rows, columns: np.ndarray, fit: _GeneFit) -> None:
    out[rows["base_mean"], columns] = fit.base_mean
    out[rows["dispersion_gene"], columns] = fit.dispersion_gene
    out[rows["dispersion_trend"], columns] = fit.dispersion_trend
    out[rows["dispersion_map"], columns] = fit.dispersion_map
    out[rows["dispersion_outlier"], columns] = fit.dispersion_outlier
    out[rows["dispersion"], columns] = fit.dispersion
    out[rows["converged"], columns] = fit.glm.converged
    out[rows["deviance"], columns] = -2.0 * fit.glm.log_like
    if fit.lrt_statistic is not None:
        out[rows["lrt_statistic"], columns] = fit.lrt_statistic
    out[rows.beta, columns] = fit.glm.beta
    out[rows.covariance, columns] = fit.glm.covariance


def _fit_genes(
    counts: np.ndarray,
    dispersion_gene: np.ndarray,
    plan: DesignPlan,
    shared: _Shared,
    means: np.ndarray | None,
) -> _GeneFit:
    """estimateDispersionsMAP, nbinomWaldTest and calculateCooksDistance of genes with
    counts (n × g), their gene-wise dispersions and the GLM of their gene-wise means."""
    gene_wise = _gene_wise(counts, plan, with_estimate=False, means=means)
    trend = shared.trend.at(gene_wise.base_mean)
    start = np.where(dispersion_gene > 0.1 * trend, dispersion_gene, trend)
    start = np.where(np.isnan(start), trend, start)
    log_alpha = np.log(start)
    g = counts.shape[1]
    iterations = np.zeros(g, dtype=np.int64)
    initial_lp = np.empty(g)
    last_lp = np.empty(g)
    fit_dispersion(
        counts,
        gene_wise.mu,
        plan.design,
        log_alpha,
        np.log(trend),
        shared.prior_var,
        math.log(MIN_DISPERSION / 10.0),
        _KAPPA_0,
        _DISPERSION_TOL,
        _MAXIT,
        True,
        iterations,
        initial_lp,
        last_lp,
    )
    dispersion_map = np.exp(log_alpha)
    refit = iterations >= _MAXIT
    if refit.any():
        dispersion_map[refit] = _grid(
            counts[:, refit],
            gene_wise.mu[:, refit],
            plan,
            np.log(trend[refit]),
            shared.prior_var,
            True,
        )
    dispersion_map = np.clip(dispersion_map, MIN_DISPERSION, plan.max_dispersion)
    with np.errstate(invalid="ignore"):
        outlier = np.log(dispersion_gene) > np.log(trend) + 2.0 * math.sqrt(shared.var_log)
    outlier &= ~np.isnan(outlier)
    dispersion = np.where(outlier, dispersion_gene, dispersion_map)
    glm = fit_glm(counts, plan, dispersion)
    lrt = None
    if plan.reduced is not None:
        lrt = 2.0 * (glm.log_like - _reduced_log_like(counts, plan.reduced, dispersion))
    return _GeneFit(
        base_mean=gene_wise.base_mean,
        dispersion_gene=dispersion_gene,
        dispersion_trend=trend,
        dispersion_map=dispersion_map,
        dispersion_outlier=outlier.astype(np.float64),
        dispersion=dispersion,
        glm=glm,
        # nbinomLRT computes Cook's distances before it stores the full model's means: at
        # the gene-wise step's
        cooks=_cooks(counts, gene_wise.mu if plan.reduced is not None else glm.mu, glm.hat, plan),
        lrt_statistic=lrt,
    )


def _reduced_log_like(
    counts: np.ndarray, reduced: DesignPlan, dispersion: np.ndarray
) -> np.ndarray:
    """nbinomLRT's fit of the reduced design: an intercept alone in closed form (the log of
    the mean normalised count, as fitNbinomGLMs), any other design as the full one."""
    design = reduced.design
    if design.shape[1] == 1 and np.all(design == 1.0):
        factors = reduced.factors(counts.shape[1])
        mean = (counts / factors).mean(axis=0)
        mu = factors * 2.0 ** np.log2(mean)[None, :]
        return _log_like(counts, mu, dispersion)
    return fit_glm(counts, reduced, dispersion).log_like


def _cooks(counts: np.ndarray, mu: np.ndarray, hat: np.ndarray, plan: DesignPlan) -> np.ndarray:
    """calculateCooksDistance: Pearson residuals of ``mu`` at robust moment dispersions,
    scaled by the leverages ``hat``, (n × g)."""
    p = plan.design.shape[1]
    normalized = counts / plan.factors(counts.shape[1])
    if plan.cooks_samples.any():
        variance = np.full(counts.shape[1], -np.inf)
        for cell in np.unique(plan.cells[plan.cells >= 0]):
            members = normalized[plan.cells == cell]
            trim = plan.cell_trim[cell]
            centre = _trimmed_columns(members, trim)
            spread = _trimmed_columns((members - centre[None, :]) ** 2, trim)
            variance = np.maximum(variance, plan.cell_scale[cell] * spread)
    else:
        centre = _trimmed_columns(normalized, 1.0 / 8.0)
        variance = 1.51 * _trimmed_columns((normalized - centre[None, :]) ** 2, 1.0 / 8.0)
    mean = normalized.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        robust = np.maximum((variance - mean) / mean**2, 0.04)
        pearson = (counts - mu) ** 2 / (mu + robust[None, :] * mu**2)
        return pearson / p * hat / (1.0 - hat) ** 2


def _trimmed_columns(values: np.ndarray, trim: float) -> np.ndarray:
    """R's ``mean(x, trim)`` of each column."""
    n = values.shape[0]
    low = math.floor(n * trim)
    return np.sort(values, axis=0)[low : n - low].mean(axis=0)


# --- results --------------------------------------------------------------------------------


def _results(
    data: CountData,
    plan: DesignPlan,
    shared: _Shared,
    matrix: pd.DataFrame,
    final: np.ndarray,
    rows: _Rows,
    options: _Options,
    cooks_cutoff: bool | float,
    filtering: str,
    shrunk: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None] | None = None,
) -> xr.Dataset:
    n, p = data.design.shape
    all_zero = final[rows["all_zero"]] > 0
    base_mean = final[rows["base_mean"]]
    beta = final[rows.beta]  # (p, g)
    covariance = final[rows.covariance].reshape(p, p, -1)
    contrasts = plan.contrasts  # (k, p)
    estimate = contrasts @ beta
    variance = np.einsum("ka,abg,kb->kg", contrasts, covariance, contrasts)
    se = np.sqrt(np.maximum(variance, 0.0))
    zero = final[rows.contrast_zero] > 0
    if options.lrt:
        df = p - data.reduced.shape[1] if data.reduced is not None else 0
        lrt = final[rows["lrt_statistic"]]
        statistic = np.broadcast_to(lrt, estimate.shape).copy()
        log_p = np.broadcast_to(stats.chi2.logsf(lrt, df), estimate.shape).copy()
        estimate = np.where(zero, 0.0, estimate)  # cleanContrast: the LRT's own test stays
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            statistic, log_p = _wald(estimate, se, options)
        estimate = np.where(zero, 0.0, estimate)
        statistic = np.where(zero, 0.0, statistic)
        log_p = np.where(zero, 0.0, log_p)

    flagged = final[rows["flagged"]] > 0
    now_zero = final[rows["now_zero"]] > 0
    refitted = plan.replaceable.any() and flagged.sum() > now_zero.sum()
    if refitted:
        max_cooks = (
            np.full(base_mean.size, np.nan)
            if plan.replaceable.all()
            else final[rows["max_cooks_kept"]]
        )
    else:
        max_cooks = final[rows["max_cooks_all"]]
    if not (n > p):
        max_cooks[:] = np.nan
    cutoff = plan.replace_cutoff if cooks_cutoff is True else cooks_cutoff
    if cutoff is not False:
        with np.errstate(invalid="ignore"):
            outlier = max_cooks > float(cutoff)
        if data.two_level_factor:
            outlier &= final[rows["counts_above_outlier"]] < 3
        log_p[:, outlier] = np.nan
    shown = [estimate, se]
    if shrunk is not None:  # lfcShrink: the refits' estimates, cleaned as results() cleans
        shown = [np.where(zero, 0.0, shrunk[1]), shrunk[2].copy()]
    for values in (*shown, estimate, se, statistic, log_p):
        values[:, now_zero] = 0.0
        values[:, all_zero] = np.nan
    pvalues = np.exp(log_p)
    padj = np.empty_like(pvalues)
    weights = np.empty_like(pvalues)
    thresholds = np.full(len(contrasts), np.nan)
    thetas = np.full(len(contrasts), np.nan)
    for j in range(len(contrasts)):
        if filtering == "ihw":  # ihw.DESeqResults: the mean count as the covariate
            weighting = _fdr.ihw(pvalues[j], base_mean, options.alpha, method=options.fdr)
            padj[j], weights[j] = weighting.adjusted, weighting.weights
        elif filtering == "independent":
            padj[j], thresholds[j], thetas[j] = _filtered_adjust(
                base_mean, pvalues[j], options.alpha, options.fdr
            )
        else:
            padj[j] = _fdr.adjust(pvalues[j], options.fdr)
    gene = ("gene",)
    pairs = ("contrast", "gene")
    variables: dict[str, Any] = {
        "coefficient": (pairs, shown[0]),
        "se": (pairs, shown[1]),
        "statistic": (pairs, statistic),
        "pvalue": (pairs, pvalues),
        "padj": (pairs, padj),
        "log10_pvalue": (pairs, log_p / math.log(10.0)),
        "filter_threshold": (("contrast",), thresholds),
        "filter_theta": (("contrast",), thetas),
        "mean_expression": (gene, base_mean),
        "dispersion": (gene, final[rows["dispersion"]]),
        "dispersion_gene": (gene, final[rows["dispersion_gene"]]),
        "dispersion_trend": (gene, final[rows["dispersion_trend"]]),
        "dispersion_map": (gene, final[rows["dispersion_map"]]),
        "dispersion_outlier": (gene, _flags(final[rows["dispersion_outlier"]], all_zero)),
        "max_cooks": (gene, max_cooks),
        "replaced": (gene, _flags(final[rows["flagged"]], all_zero)),
        "converged": (gene, _flags(final[rows["converged"]], all_zero)),
        "deviance": (gene, final[rows["deviance"]]),
    }
    if filtering == "ihw":
        variables["ihw_weight"] = (pairs, weights)
    if data.per_count_kind != "factors":  # DESeq2 has no size factors beside given factors
        variables["size_factor"] = (("sample",), data.size_factors)
    trend = shared.trend
    attrs: dict[str, Any] = {
        "mean_expression_scale": "linear",  # baseMean: the mean of normalised counts
        "test": "likelihood ratio (DESeq2 nbinomLRT)"
        if options.lrt
        else "Wald (DESeq2 nbinomWaldTest)",
        "design": list(data.names),
        "formula": data.formula or "",
        "fit_type": trend.fit_type,
        "dispersion_prior_variance": shared.prior_var,
        "log_dispersion_variance": shared.var_log,
        "cooks_cutoff": float("nan") if cutoff is False else float(cutoff),
        "lfc_threshold": options.lfc_threshold,
        "alternative": options.alternative,
        "independent_filtering": int(filtering == "independent"),
        "ihw": int(filtering == "ihw"),
        "alpha": options.alpha,
        "fdr": options.fdr,
    }
    attrs["normalization_factors"] = data.factor_source
    if options.lrt and data.reduced is not None:
        attrs["lrt_df"] = p - data.reduced.shape[1]
    if options.t_df > 0:
        attrs["t_df"] = options.t_df
    if shrunk is not None:
        variables["unshrunk_coefficient"] = (pairs, estimate)
        variables["unshrunk_se"] = (pairs, se)
        attrs["shrink"] = "normal"
        attrs["beta_prior_variance"] = [float(v) for v in shrunk[0]]
        if shrunk[3] is not None:
            attrs["expanded_prior_variance"] = [float(v) for v in shrunk[3]]
    attrs.update(trend.attrs())
    return xr.Dataset(
        variables,
        coords={"contrast": list(matrix.columns), "gene": data.genes, "sample": data.samples},
        attrs=attrs,
    )


def _flags(values: np.ndarray, all_zero: np.ndarray) -> np.ndarray:
    """0/1 flags as booleans; a gene without counts is False."""
    return np.where(all_zero, False, values > 0)


def _wald(estimate: np.ndarray, se: np.ndarray, options: _Options) -> tuple[np.ndarray, np.ndarray]:
    """The Wald statistic and log p-value of each estimate, against results()'s
    ``lfcThreshold`` and ``altHypothesis``."""
    t = options.lfc_threshold
    two_sided = math.log(2.0)
    df = options.t_df
    logsf = (lambda q: stats.t.logsf(q, df)) if df > 0 else stats.norm.logsf  # useT
    if t == 0 and options.alternative == "greaterAbs":
        statistic = estimate / se
        return statistic, two_sided + logsf(np.abs(statistic))
    if options.alternative == "greaterAbs":
        scaled = (np.abs(estimate) - t) / se
        statistic = np.sign(estimate) * np.maximum(scaled, 0.0)
        return statistic, np.minimum(0.0, two_sided + logsf(scaled))
    if options.alternative == "lessAbs":
        above = (t - estimate) / se
        below = (estimate + t) / se
        statistic = np.minimum(np.maximum(above, 0.0), np.maximum(below, 0.0))
        return statistic, np.maximum(logsf(above), logsf(below))
    if options.alternative == "greater":
        scaled = (estimate - t) / se
        return np.maximum(scaled, 0.0), logsf(scaled)
    scaled = (estimate + t) / se
    return np.minimum(scaled, 0.0), logsf((-t - estimate) / se)


def _filtered_adjust(
    base_mean: np.ndarray, pvalues: np.ndarray, alpha: float, method: str
) -> tuple[np.ndarray, float, float]:
    """pvalueAdjustment's independent filtering: the adjusted p-values of the genes whose
    mean reaches each of 50 quantiles (from the share of zero means to 0.95), the quantile
    chosen where the discoveries at ``alpha`` first exceed their lowess fit's maximum less
    the fit's root-mean-square residual; (padj, the mean threshold, its quantile)."""
    lower = float(np.mean(base_mean == 0))
    upper = 0.95 if lower < 0.95 else 1.0
    theta = np.linspace(lower, upper, 50)
    cutoffs = np.quantile(base_mean, theta)
    adjusted = np.full((theta.size, base_mean.size), np.nan)
    for i, cutoff in enumerate(cutoffs):
        use = base_mean >= cutoff
        if use.any():
            adjusted[i, use] = _fdr.adjust(pvalues[use], method)
    with np.errstate(invalid="ignore"):
        rejections = (adjusted < alpha).sum(axis=1).astype(np.float64)
    _, smooth, _ = lowess(theta, rejections, f=1.0 / 5.0)
    if rejections.max() <= 10:
        j = 0
    else:
        positive = rejections > 0
        residual = rejections[positive] - smooth[positive]
        threshold = smooth.max() - math.sqrt(float(np.mean(residual**2)))
        above = np.flatnonzero(rejections > threshold)
        j = int(above[0]) if above.size else 0
    return adjusted[j], float(cutoffs[j]), float(theta[j])
