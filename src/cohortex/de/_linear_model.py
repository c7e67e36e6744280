"""Linear models for every gene (``cohortex.de.fit``), with limma's moderated t and F."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from .. import fdr as _fdr
from .._backend import dask_on, namespace, resolve_device, to_host
from .._cohort import CohortLike, as_cohort_matrix, shared_docs, to_host_dataset
from .._errors import CohortexError
from ..stats._ebayes import ebayes
from ..stats._linear import contrast_stdev_unscaled
from ..stats._pvalues import f_sf, log_t_two_sided, t_two_sided, t_upper
from ._block_model import block_least_squares, duplicate_correlation
from ._gene_columns import TASK_GENES
from ._least_squares import (
    LeastSquares,
    check_design,
    check_residual_df,
    design_matrix,
    least_squares,
    sample_codes,
    sample_weights_of,
    weights_for,
)
from ._robust_fit import robust_least_squares

__all__ = ["check_test_options", "contrast_matrix", "fit", "fit_result"]

_ROWS_PER_CHUNK = 2048


@shared_docs
def fit(
    cohort: CohortLike,
    design: str | pd.DataFrame | np.ndarray,
    *,
    contrasts: Sequence[str] | Mapping[str, Any] | pd.DataFrame | None = None,
    weights: Any = None,
    block: str | Any = None,
    correlation: float | None = None,
    method: str = "ls",
    moderate: bool = True,
    trend: bool = False,
    robust: bool = False,
    treat_lfc: float | None = None,
    confidence: float = 0.95,
    fdr: str = "bh",
    device: str = "auto",
) -> xr.Dataset:
    """Fit a linear model to every gene and test coefficients or contrasts.

    Parameters
    ----------
    {cohort}
        NaN values are missing observations: each gene is fitted on its observed samples, with
        its own residual df, as limma's ``lmFit``.
    design : str, DataFrame or array of shape (n_samples, n_coefficients)
        A formula on the sample variables, parsed by formulaic (e.g.
        ``"~ condition + batch + age"``; columns are named like ``condition[T.tumor]``), or
        the design matrix itself (a DataFrame's column names name the coefficients).
    contrasts : None, list of str, mapping or DataFrame, optional
        What to test. ``None``: every coefficient except the intercept. A list: those
        coefficients. A mapping ``{name: expression}``: each expression a coefficient name or a
        linear combination such as ``"B - A"`` or ``"0.5*B + 0.5*C - A"`` (or a vector of
        length n_coefficients). A DataFrame: a contrast matrix, rows named by coefficients.
    weights : array of shape (n_samples, n_genes) or (n_samples,), optional
        Precision weights of weighted least squares per gene (limma's ``lmFit(weights=)``):
        per observation (voom's, :func:`voom`), or per sample. A weight ≤ 0 leaves the
        observation out. Default: the cohort's own ``weights`` variable (sample, gene) when it
        has one, as a voom result does; else none. As in limma, positive weights per sample
        give every gene without missing values the same weighted fit, whose ``(X'WX)⁻¹``
        the contrasts and the F take; a per-gene fit (weights per observation, missing
        values) gives its contrasts standard errors as limma's ``contrasts.fit`` does (each
        gene's coefficient errors with the unweighted design's correlation).
    block : str or array of shape (n_samples,), optional
        Samples correlated within blocks (several samples of a patient, a litter, technical
        replicates): a sample variable or the labels. The model is fitted by generalised
        least squares with one ``correlation`` within every block, as limma's
        ``lmFit(block=, correlation=)``.
    correlation : float, optional
        The correlation within blocks; default: estimated by :func:`duplicate_correlation`
        with this design and weights (another pass over the data). Recorded in the attrs.
        With voom's weights this is limma's first round: voom's weights come from a fit
        without the blocks.
    method : {"ls", "robust"}, default "ls"
        limma's ``lmFit(method = )``: least squares, or robust regression (``"robust"``,
        MASS's ``rlm`` for each gene with its defaults: Huber's ψ with k = 1.345, the
        residuals' MAD as the scale, at most 20 steps), which lets outlying samples weigh
        less. Its coefficients' standard errors are the last Huber-weighted fit's and sigma is
        rlm's scale, as limma's ``mrlm``; not with ``block``. Host only (a gene at a time).
    moderate : bool, default True
        limma's empirical Bayes moderation (``eBayes``): moderated t on ``d + d0`` degrees of
        freedom and the B-statistic. ``False`` gives ordinary t-tests.
    trend : bool, default False
        limma's ``eBayes(trend = TRUE)``: the prior variance follows each gene's average
        expression (``AveExpr``) along a natural spline, for data whose variance depends on
        the level (log counts).
    robust : bool, default False
        limma's ``eBayes(robust = TRUE)``: genes whose variance is an outlier (high or low)
        against the prior get a smaller prior df, so they do not distort the others. With
        ``trend``, the log-variances' trend is limma's ``loessFit`` (R's ``lowess``, span 0.4).
    treat_lfc : float, optional
        limma's ``treat(fit, lfc = ...)``: test whether the absolute coefficient exceeds this
        threshold (a log2 fold change) rather than 0 (McCarthy & Smyth 2009). The p-value is
        ``P(T > (|b| − lfc)/se) + P(T > (|b| + lfc)/se)``; ``statistic`` is
        ``sign(b) · max(|b| − lfc, 0)/se`` where ``|b| > lfc``, else 0; no ``lods``.
    confidence : float, default 0.95
        Level of the coefficients' confidence intervals (limma's ``topTable(confint=)``):
        ``b ± t_{(1+level)/2, df} · se`` with the moderated standard error and df.
    fdr : str, default "bh"
        Correction per contrast, and of the F p-values (:mod:`cohortex.fdr`).
    {device}

    Returns
    -------
    xarray.Dataset
        On ``(contrast, gene)``: ``coefficient`` (the contrast's estimate, a log2 fold change
        on log2 data), ``ci_low`` and ``ci_high`` (its confidence interval), ``statistic``
        (t), ``pvalue``, ``padj``, ``lods`` (B, when moderated); on ``gene``:
        ``mean_expression`` (limma's ``AveExpr``), ``s2`` (residual variance),
        ``s2_post``, and with several contrasts the moderated ``F``, ``F_pvalue`` and
        ``F_padj`` (limma's ``F``: on the contrasts' rank ``F_df1``, so dependent contrasts
        count once, and ``F_df2 = df_residual + df_prior``); on ``contrast``:
        ``stdev_unscaled``. Per gene instead of attributes where limma has one per gene:
        ``s2_prior`` (trend), ``df_prior``, ``df_total`` and ``F_df2`` (robust). Attributes:
        ``df_residual``, ``df_prior``, ``s2_prior``, ``df_total``, ``F_df1``, ``F_df2``,
        ``F_projection`` (the F's r × contrasts projection, for :func:`decide`'s nested F),
        ``confidence``, the design's column names and the formula.
    """
    check_test_options(moderate, trend, robust, treat_lfc, confidence, fdr)
    if method not in ("ls", "robust"):
        raise CohortexError(f"fit()'s 'method' is 'ls' or 'robust'; got {method!r}.")
    if method == "robust" and block is not None:
        raise CohortexError(
            "fit(method='robust') fits each gene on its own; it takes no 'block' (limma's "
            "robust fit ignores blocks)."
        )
    device = resolve_device(device)
    data = as_cohort_matrix(cohort)
    n_samples = data.matrix.shape[0]
    x_design, names, formula = design_matrix(design, data.dataset, n_samples)
    check_design(x_design, names)
    check_residual_df(x_design)
    matrix = contrast_matrix(contrasts, names)

    x = dask_on(data.matrix, device, (_ROWS_PER_CHUNK, -1))  # least_squares chunks it
    given = weights_for(weights, data, x)
    per_sample = sample_weights_of(weights, n_samples)  # one positive weight per sample
    block_attrs: dict[str, Any] = {}
    if block is None:
        if correlation is not None:
            raise CohortexError("'correlation' goes with 'block' (the samples it applies to).")
        if method == "robust":
            fitted = robust_least_squares(data.matrix, x_design, given, len(data.gene_ids))
        else:
            fitted = least_squares(x, x_design, given if per_sample is None else per_sample)
    else:
        codes, block_name = sample_codes(block, data, n_samples, "block")
        if correlation is None:
            correlation = float(
                duplicate_correlation(
                    data.matrix if data.dataset is None else data.dataset,
                    x_design,
                    codes,
                    weights=weights,
                    device=device,
                ).attrs["consensus_correlation"]
            )
        if not (isinstance(correlation, int | float | np.floating) and -1 < correlation < 1):
            raise CohortexError(
                f"The 'correlation' parameter must be in (-1, 1); got {correlation!r}."
            )
        tiles = dask_on(data.matrix, device, (_ROWS_PER_CHUNK, TASK_GENES))
        fitted = block_least_squares(
            tiles,
            x_design,
            codes,
            float(correlation),
            per_sample
            if per_sample is not None or given is None
            else weights_for(weights, data, tiles),
        )
        block_attrs = {"block": block_name, "correlation": float(correlation)}
    attrs: dict[str, Any] = {
        "design": list(names),
        "formula": formula or "",
        "weighted": int(given is not None),
        "method": method,
        **block_attrs,
    }
    result = fit_result(
        fitted,
        matrix,
        data.gene_ids,
        attrs,
        moderate=moderate,
        trend=trend,
        robust=robust,
        treat_lfc=treat_lfc,
        confidence=confidence,
        fdr=fdr,
    )
    if namespace(data.matrix) is np or hasattr(data.matrix, "dask"):
        result = to_host_dataset(result)
    return result


def check_test_options(
    moderate: bool,
    trend: bool,
    robust: bool,
    treat_lfc: float | None,
    confidence: float,
    fdr: str,
) -> None:
    """Refuse :func:`fit`'s testing options that do not go together or are out of range."""
    if (trend or robust or treat_lfc is not None) and not moderate:
        raise CohortexError(
            "'trend', 'robust' and 'treat_lfc' apply to the moderated t (moderate=True)."
        )
    if not 0 < confidence < 1:
        raise CohortexError(f"'confidence' must be in (0, 1); got {confidence!r}.")
    if treat_lfc is not None and not np.isfinite(treat_lfc):
        raise CohortexError(f"'treat_lfc' must be a finite number; got {treat_lfc!r}.")
    _fdr.check_method(fdr, "fit()")


def fit_result(
    fitted: LeastSquares,
    matrix: pd.DataFrame,
    gene_ids: Any,
    attrs: dict[str, Any],
    *,
    moderate: bool,
    trend: bool,
    robust: bool,
    treat_lfc: float | None,
    confidence: float,
    fdr: str,
) -> xr.Dataset:
    """:func:`fit`'s result from every gene's least-squares fit: the contrasts of ``matrix``
    (coefficients × contrasts), limma's eBayes (``moderate``) or ordinary t, treat, the F,
    confidence intervals and FDR, on the device of ``fitted``. ``attrs``: the design's names,
    formula, ``weighted`` and the block's, to which the tests' own are added."""
    contrast = matrix.to_numpy()
    xtx_inverse = fitted.unscaled_cov  # limma's cov.coefficients
    unscaled_cov = contrast.T @ xtx_inverse @ contrast
    xp = namespace(fitted.beta)
    per_gene = fitted.coefficient_sd is not None
    if per_gene:
        missing = xp.isnan(fitted.beta)
        scale = np.sqrt(np.diag(xtx_inverse))
        stdev_unscaled = contrast_stdev_unscaled(
            xp.where(missing, 1e30, fitted.coefficient_sd),
            xtx_inverse / np.outer(scale, scale),
            contrast,
        )
        coefficient = xp.asarray(contrast.T) @ xp.where(missing, 0.0, fitted.beta)
        not_estimable = stdev_unscaled > 1e20  # limma: a contrast of a missing coefficient
        coefficient = xp.where(not_estimable, xp.nan, coefficient)
        stdev_unscaled = xp.where(not_estimable, xp.nan, stdev_unscaled)
    else:
        coefficient = xp.asarray(contrast.T) @ fitted.beta  # (contrasts × genes)
        stdev_unscaled = xp.asarray(np.sqrt(np.diag(unscaled_cov)))[:, None]
    s2, df_residual, average = fitted.s2, fitted.df_residual, fitted.average
    gene_priors: dict[str, Any] = {}
    attrs = {
        "test": "moderated t (limma eBayes)" if moderate else "ordinary t (OLS)",
        **attrs,
        "fdr": fdr,
    }
    if np.ndim(df_residual):  # per gene: missing values or weights
        gene_priors["df_residual"] = xp.asarray(df_residual)
    else:
        attrs["df_residual"] = df_residual
    if moderate:
        prior, t, df, lods = ebayes(
            coefficient,
            stdev_unscaled,
            s2,
            df_residual,
            covariate=np.asarray(to_host(average)) if trend else None,
            robust=robust,
        )
        s2_post = xp.asarray(prior.s2_post)
        attrs.update(trend=int(trend), robust=int(robust))
        for name, value in (("df_prior", prior.df_prior), ("s2_prior", prior.s2_prior)):
            if np.ndim(value):  # one per gene: trend (s2_prior) or robust (df_prior)
                gene_priors[name] = xp.asarray(value)
            else:
                attrs[name] = float(value)
        if np.ndim(df):
            gene_priors["df_total"] = df
        else:
            attrs["df_total"] = float(df)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = coefficient / stdev_unscaled / xp.sqrt(s2)[None, :]
        df = xp.asarray(df_residual) if np.ndim(df_residual) else df_residual
        s2_post, lods = s2, None
    if treat_lfc is None:
        pvalue = t_two_sided(t, df)
        log10_pvalue = log_t_two_sided(t, df) / np.log(10.0)
    else:
        t, pvalue = _treat(coefficient, stdev_unscaled, s2_post, df, abs(float(treat_lfc)))
        with np.errstate(divide="ignore"):  # treat's p: a sum of two tails, left as it is
            log10_pvalue = xp.log10(pvalue)
        lods = None
        attrs.update(test="limma treat (moderated t against a threshold)", treat_lfc=treat_lfc)
    quantile = stats.t.ppf((1.0 + confidence) / 2.0, np.asarray(to_host(df)))
    margin = stdev_unscaled * xp.sqrt(s2_post)[None, :] * xp.asarray(quantile)
    attrs["confidence"] = confidence
    variables: dict[str, Any] = {
        "mean_expression": ("gene", average),
        "ci_low": (("contrast", "gene"), coefficient - margin),
        "ci_high": (("contrast", "gene"), coefficient + margin),
        "coefficient": (("contrast", "gene"), coefficient),
        "statistic": (("contrast", "gene"), t),
        "pvalue": (("contrast", "gene"), pvalue),
        "padj": (("contrast", "gene"), _fdr.adjust(pvalue, fdr)),
        "log10_pvalue": (("contrast", "gene"), log10_pvalue),
        "s2": ("gene", s2),
        "s2_post": ("gene", s2_post),
        "stdev_unscaled": (("contrast", "gene"), stdev_unscaled)
        if stdev_unscaled.shape[1] > 1 or per_gene
        else ("contrast", stdev_unscaled[:, 0]),
    }
    if lods is not None:
        variables["lods"] = (("contrast", "gene"), lods)
    variables.update({name: ("gene", value) for name, value in gene_priors.items()})
    if matrix.shape[1] > 1 and treat_lfc is None:
        # limma's F is on df_residual + df_prior (per gene when robust), not the capped df_total
        prior_df = gene_priors.get("df_prior", attrs.get("df_prior", 0.0))
        f_df = (xp.asarray(df_residual) if np.ndim(df_residual) else df_residual) + prior_df
        f, f_p, projection = _f_test(t, unscaled_cov, f_df)
        variables["F"] = ("gene", f)
        variables["F_pvalue"] = ("gene", f_p)
        variables["F_padj"] = ("gene", _fdr.adjust(f_p, fdr))
        attrs["F_df1"] = projection.shape[0]
        # decide(method="nestedF") tests the contrasts of a gene on the same projection
        attrs["F_projection"] = projection.tolist()
        if np.ndim(f_df):
            variables["F_df2"] = ("gene", f_df)
        else:
            attrs["F_df2"] = float(f_df)
    return xr.Dataset(
        variables, coords={"contrast": list(matrix.columns), "gene": gene_ids}, attrs=attrs
    )


def contrast_matrix(contrasts: Any, names: list[str]) -> pd.DataFrame:
    """Contrast matrix (coefficients × contrasts) with named columns."""
    if contrasts is None:
        chosen = [n for n in names if n.lower() not in ("intercept", "(intercept)")]
        if not chosen:
            raise CohortexError("The design has only an intercept; name a contrast to test.")
        contrasts = chosen
    if isinstance(contrasts, pd.DataFrame):
        unknown = [str(i) for i in contrasts.index if str(i) not in names]
        if unknown:
            raise CohortexError(_unknown_message(unknown, names))
        return contrasts.reindex(names).fillna(0.0).astype(np.float64)
    if isinstance(contrasts, str):
        contrasts = [contrasts]
    if not isinstance(contrasts, Mapping):
        contrasts = {str(c): str(c) for c in contrasts}
    columns = {}
    for label, expression in contrasts.items():
        if isinstance(expression, str):
            columns[str(label)] = _parse_contrast(expression, names)
        else:
            vector = np.asarray(expression, dtype=np.float64)
            if vector.shape != (len(names),):
                raise CohortexError(
                    f"Contrast {label!r} must have one weight per coefficient ({len(names)}); "
                    f"got shape {vector.shape}."
                )
            columns[str(label)] = vector
    return pd.DataFrame(columns, index=names)


_TERM = re.compile(r"\s*([+-]?)\s*(?:(\d+(?:\.\d*)?|\.\d+)\s*\*\s*)?([^+\-*]+?)\s*(?=[+-]|$)")


def _parse_contrast(expression: str, names: list[str]) -> np.ndarray:
    """'B - A', '0.5*B + 0.5*C - A' or one coefficient name → a weight vector."""
    vector = np.zeros(len(names))
    if expression in names:  # a name may itself hold '-' or '+'
        vector[names.index(expression)] = 1.0
        return vector
    position = 0
    for match in _TERM.finditer(expression):
        if not match.group(0).strip():
            continue
        sign, factor, name = match.groups()
        if name not in names:
            raise CohortexError(_unknown_message([name], names))
        weight = float(factor) if factor else 1.0
        vector[names.index(name)] += -weight if sign == "-" else weight
        position = match.end()
    if position == 0 or expression[position:].strip():
        raise CohortexError(f"The contrast {expression!r} could not be parsed.")
    return vector


def _unknown_message(unknown: list[str], names: list[str]) -> str:
    return (
        f"The contrasts name unknown coefficients: {', '.join(unknown)}. Coefficients: "
        f"{', '.join(names)}."
    )


def _treat(
    coefficient: Any, stdev_unscaled: Any, s2_post: Any, df: Any, lfc: float
) -> tuple[Any, Any]:
    """limma's ``treat``: t and p-value against |coefficient| ≤ ``lfc``."""
    xp = namespace(coefficient)
    se = stdev_unscaled * xp.sqrt(s2_post)[None, :]
    size = xp.abs(coefficient)
    right = (size - lfc) / se
    left = (size + lfc) / se
    pvalue = t_upper(right, df) + t_upper(left, df)
    outside = xp.maximum(right, 0.0)
    t = xp.where(coefficient > lfc, outside, xp.where(coefficient < -lfc, -outside, 0.0))
    return t, pvalue


def _f_test(t: Any, unscaled_cov: np.ndarray, df: Any) -> tuple[Any, Any, np.ndarray]:
    """limma's moderated F (``classifyTestsF``): ``t' R⁺ t / r`` with R the contrasts'
    correlation matrix and r its rank (eigenvalues above 1e-8 of the largest), so dependent
    contrasts such as B − A, C − A, C − B count as the two tests they are.

    Returns
    -------
    F : array of shape (n_genes,)
    pvalue : array of shape (n_genes,)
        On r and ``df`` degrees of freedom.
    projection : ndarray of shape (r, n_contrasts)
        ``Λ^-½ V'`` of R's leading eigenpairs: ``F = |projection @ t|² / r``.
    """
    xp = namespace(t)
    covariance = unscaled_cov.copy()
    diagonal = np.diag(covariance).copy()
    diagonal[diagonal == 0] = 1.0  # a contrast of zeros, as limma treats it
    np.fill_diagonal(covariance, diagonal)
    scale = np.sqrt(diagonal)
    correlation = covariance / np.outer(scale, scale)
    values, vectors = np.linalg.eigh(correlation)
    values, vectors = values[::-1], vectors[:, ::-1]  # largest first, as R's eigen
    rank = int(np.sum(values / values[0] > 1e-8))
    projection = (vectors[:, :rank] / np.sqrt(values[:rank])).T  # (r, contrasts)
    f = xp.sum((xp.asarray(projection) @ t) ** 2, axis=0) / rank
    return f, f_sf(f, float(rank), df), projection
