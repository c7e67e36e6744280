"""Per-gene Cox proportional-hazards models: ``cox()``."""

from __future__ import annotations

import warnings
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats as _stats

from .. import fdr as _fdr
from .._backend import namespace, resolve_device, to_host
from .._cohort import CohortLike, as_cohort_matrix, shared_docs, to_host_dataset
from .._errors import CohortexError, CohortexWarning
from ..de._least_squares import design_matrix, formula_like, formula_spec, formula_terms
from ..stats._cox import RiskSets, covariance, cox_newton
from ..stats._cpu.concordance import gene_concordance
from ..stats._pvalues import normal_two_sided_upper
from ._blocks import map_gene_blocks
from ._outcome import Outcome

__all__ = [
    "TIES",
    "CoxSetup",
    "check_options",
    "covariate_columns",
    "covariate_model",
    "covariate_terms",
    "covariates_like",
    "cox",
    "fit_gene_block",
]

TIES = ("efron", "breslow")


@shared_docs
def cox(
    cohort: CohortLike,
    time: str | Any,
    event: str | Any,
    *,
    covariates: str | pd.DataFrame | None = None,
    strata: str | Any | None = None,
    ties: str = "efron",
    confidence: float = 0.95,
    fdr: str = "bh",
    max_iterations: int = 20,
    tolerance: float = 1e-12,
    concordance: bool = False,
    device: str = "auto",
) -> xr.Dataset:
    """A Cox proportional-hazards model per gene, as R's ``coxph``, for all genes at once.

    For every gene: ``coxph(Surv(time, event) ~ covariates + gene, ties = ties)`` on the samples
    where the gene is observed (``+ strata(...)`` when given). The Newton–Raphson iterations run
    for all genes of a block together (risk-set sums as cumulative sums over the samples
    sorted by time, batched p × p solves), on the CPU or the GPU.

    Parameters
    ----------
    {cohort}
    time : str or sequence of float
        Follow-up times (a sample variable or one per sample): non-negative, no missing values.
    event : str or sequence of {0, 1}
        1 (or True) where the event happened at ``time``, 0 where the time is censored.
    covariates : str or DataFrame, optional
        A formula on sample variables fitted beside each gene, e.g. ``"~ age + stage"``
        (categorical variables as R's treatment contrasts; no intercept, as R's ``coxph``),
        or the covariates' numeric columns themselves (one row per sample).
    strata : str or sequence, optional
        A sample variable whose levels get their own baseline hazard (R's ``strata()``).
    ties : {"efron", "breslow"}, default "efron"
        Tied event times, as R's ``ties`` (Efron is R's default).
    confidence : float, default 0.95
        Level of the hazard ratios' intervals.
    fdr : str, default "bh"
        Correction of the Wald p-values (:mod:`cohortex.fdr`).
    max_iterations : int, default 20
        Newton–Raphson iterations per gene (R's ``iter.max``).
    tolerance : float, default 1e-12
        The relative change of the log-likelihood that ends a gene's iterations (R's ``eps``;
        R's default 1e-9 stops while the coefficients still move by ~1e-7 relative).
    concordance : bool, default False
        Also each model's Harrell's C (its linear predictor against survival, within strata;
        ``summary(coxph)``'s ``concordance``): ``concordance`` and ``concordance_se``. Off by
        default: sorting each gene's samples costs more than its model (~1 ms a gene at
        10,000 samples, on the host).
    {device}

    Returns
    -------
    xarray.Dataset
        On ``gene``: ``coefficient`` (log hazard ratio per unit of expression), ``se``,
        ``hazard_ratio`` with ``ci_low``/``ci_high``, ``statistic`` (Wald z) with ``pvalue``
        and ``padj``, ``lr_statistic``/``lr_pvalue`` (likelihood ratio against the model
        without the gene) and ``score_statistic``/``score_pvalue`` (its score test),
        ``loglik``, ``n_samples`` and ``n_events`` (the gene's observed samples), with
        ``concordance`` the models' ``concordance`` and ``concordance_se``, and per gene
        ``iterations``, ``converged`` and ``monotone`` (the likelihood keeps rising towards an
        infinite coefficient: separation; the numbers are then not estimates). Attributes name
        the model.

    Notes
    -----
    Genes that do not converge, or whose coefficient may be infinite, are flagged and counted
    in a warning, never silently reported as estimates.
    """
    check_options("cox()", ties, confidence)
    _fdr.check_method(fdr, "cox()")
    if not 0 < tolerance < 1:
        raise CohortexError(f"'tolerance' must be in (0, 1); got {tolerance!r}.")
    if max_iterations < 1:
        raise CohortexError(f"'max_iterations' must be at least 1; got {max_iterations!r}.")
    on = resolve_device(device)
    data = as_cohort_matrix(cohort)
    setup = CoxSetup(data, time, event, covariates, strata, ties == "efron", tolerance)
    outcome, names = setup.outcome, setup.names
    n_samples = data.matrix.shape[0]
    terms = 1 + setup.z.shape[1]
    columns = map_gene_blocks(
        data.matrix,
        on,
        8 + 1 + terms + terms * (terms + 1) // 2 + (2 if concordance else 0),
        _fit_block,
        setup,
        confidence,
        max_iterations,
        concordance,
    )
    columns["padj"] = _fdr.adjust(columns["pvalue"], fdr)
    result = xr.Dataset(
        {name: ("gene", values) for name, values in columns.items()},
        coords={"gene": data.gene_ids},
        attrs={
            "model": "cox",
            "ties": ties,
            "covariates": ", ".join(names),
            "strata": "" if strata is None else (strata if isinstance(strata, str) else "given"),
            "fdr": fdr,
            "confidence": confidence,
            "n_samples": n_samples,
            "n_events": int(outcome.event.sum()),
        },
    )
    _warn_flags(result)
    keep_on_device = namespace(data.matrix) is not np and not isinstance(data.matrix, da.Array)
    return result if keep_on_device else to_host_dataset(result)


def check_options(caller: str, ties: str, confidence: float | None = None) -> None:
    """Refuses a ``ties`` method that is not one of :data:`TIES` and a ``confidence`` level
    outside (0, 1), naming ``caller``."""
    if ties not in TIES:
        raise CohortexError(
            f"The 'ties' parameter of {caller} must be one of {', '.join(map(repr, TIES))}; "
            f"got {ties!r}."
        )
    if confidence is not None and not 0 < confidence < 1:
        raise CohortexError(f"'confidence' must be in (0, 1); got {confidence!r}.")


class CoxSetup:
    """What every gene's Cox model shares: the checked outcome, the covariates (centred, as
    R's coxph: the partial likelihood is unchanged), the risk sets and the covariates' own
    model (each gene's start).

    Parameters
    ----------
    data : CohortMatrix
    time, event, covariates, strata
        As :func:`cox` takes them.
    efron : bool
    tolerance : float
    """

    def __init__(
        self,
        data: Any,
        time: Any,
        event: Any,
        covariates: str | pd.DataFrame | None,
        strata: Any,
        efron: bool,
        tolerance: float,
    ) -> None:
        n_samples = data.matrix.shape[0]
        self.outcome = Outcome.resolve(data.dataset, time, event, strata, data.sample_ids)
        if self.outcome.event.sum() == 0:
            raise CohortexError("No sample has an event: a Cox model has nothing to fit.")
        z, self.names = covariate_columns(covariates, data.dataset, n_samples)
        self.terms = covariate_terms(covariates, data.dataset, n_samples)
        self.z = z - z.mean(axis=0)
        self.risk = RiskSets.build(self.outcome.time, self.outcome.event, self.outcome.strata)
        self.efron = efron
        self.tolerance = tolerance
        self.null = None
        if self.z.shape[1]:
            everyone = np.ones((n_samples, 1), dtype=bool)
            z_columns = [self.z[self.risk.order, j : j + 1] for j in range(self.z.shape[1])]
            self.null = cox_newton(
                z_columns,
                everyone,
                np.zeros((1, self.z.shape[1])),
                self.risk,
                efron=efron,
                max_iterations=50,
                eps=tolerance,
            )
            if not bool(self.null.converged[0]):
                raise CohortexError(
                    f"The model of the covariates alone ({covariates}) did not converge; check "
                    "them for separation or collinearity."
                )


def covariate_columns(
    formula: str | pd.DataFrame | None, dataset: Any, n_samples: int
) -> tuple[np.ndarray, list[str]]:
    """The covariates' columns (n_samples × q) and names; R's coxph drops the intercept."""
    if formula is None:
        return np.zeros((n_samples, 0)), []
    matrix, names, _ = design_matrix(formula, dataset, n_samples)
    keep = _without_intercept(names)
    return np.asarray(matrix[:, keep], dtype=np.float64), [names[j] for j in keep]


def covariate_model(
    formula: str, dataset: Any, n_samples: int
) -> tuple[np.ndarray, list[str], Any]:
    """:func:`covariate_columns` with formulaic's model spec, to encode another cohort's
    samples alike (:func:`covariates_like`); a formula without a column is refused."""
    matrix, names, spec = formula_spec(formula, dataset)
    if matrix.shape[0] != n_samples:
        raise CohortexError(
            f"The covariates have {matrix.shape[0]} rows; the cohort has {n_samples} samples."
        )
    keep = _without_intercept(names)
    if not keep:
        raise CohortexError(f"The covariates {formula!r} have no column.")
    return matrix[:, keep], [names[j] for j in keep], spec


def covariates_like(spec: Any, dataset: Any) -> np.ndarray:
    """The columns of :func:`covariate_model`'s ``spec`` for ``dataset``'s samples (the
    fit's levels and reference; a level it never saw is refused)."""
    matrix, names = formula_like(spec, dataset)
    return matrix[:, _without_intercept(names)]


def covariate_terms(formula: str | pd.DataFrame | None, dataset: Any, n_samples: int) -> list[str]:
    """The term of each of :func:`covariate_columns`' columns (``grade`` for both of a
    three-level factor's indicators; a column given as such is its own term)."""
    if formula is None:
        return []
    _, names, _ = design_matrix(formula, dataset, n_samples)
    if not isinstance(formula, str):
        return [names[j] for j in _without_intercept(names)]
    terms = formula_terms(formula, dataset)
    return [terms[j] for j in _without_intercept(names)]


def _without_intercept(names: list[str]) -> list[int]:
    return [j for j, name in enumerate(names) if name not in ("Intercept", "(Intercept)")]


def fit_gene_block(block: Any, setup: CoxSetup, max_iterations: int) -> tuple[Any, Any, Any]:
    """Every gene's Cox model of one block of genes (all samples).

    Returns
    -------
    fit : CoxFit
        Coefficients (n_genes, 1 + q): the gene's, then the covariates'.
    x : array of shape (n_samples, n_genes)
        The genes' values in risk-set order, centred, 0 where missing.
    valid : array of shape (n_samples, n_genes), bool
        The samples of each gene's model, in risk-set order.
    """
    z, risk, null = setup.z, setup.risk, setup.null
    efron, tolerance = setup.efron, setup.tolerance
    xp = namespace(block)
    x = xp.asarray(block, dtype=xp.float64)[xp.asarray(risk.order)]
    valid = ~xp.isnan(x)
    n_genes = x.shape[1]
    # centred, as R's coxph (the partial likelihood is unchanged); a constant gene exactly 0
    with warnings.catch_warnings():  # a gene with no value: NumPy warns of an empty slice
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = xp.nanmean(x, axis=0)
        constant = xp.nanmax(x, axis=0) == xp.nanmin(x, axis=0)
    x = xp.where(constant[None, :], 0.0, x - centre[None, :])
    covariates = [xp.asarray(z[risk.order, j : j + 1]) for j in range(z.shape[1])]
    start = xp.zeros((n_genes, 1 + len(covariates)))
    if null is not None:
        start[:, 1:] = xp.asarray(null.beta)
        missing = np.flatnonzero(to_host(xp.any(~valid, axis=0)))
        if missing.size:  # the covariates' model on the samples these genes keep
            rows = xp.asarray(missing)
            refit = cox_newton(
                covariates,
                valid[:, rows],
                start[rows, 1:],
                risk,
                efron=efron,
                max_iterations=50,
                eps=tolerance,
            )
            start[rows, 1:] = refit.beta
    x = xp.where(valid, x, 0.0)
    fit = cox_newton(
        [x, *covariates],
        valid,
        start,
        risk,
        efron=efron,
        max_iterations=max_iterations,
        eps=tolerance,
    )
    return fit, x, valid


def _fit_block(
    block: Any, setup: CoxSetup, confidence: float, max_iterations: int, concordance: bool
) -> dict[str, Any]:
    """Every result column for one block of genes (all samples)."""
    xp = namespace(block)
    risk = setup.risk
    fit, x, valid = fit_gene_block(block, setup, max_iterations)
    variance = covariance(fit.information)
    beta = fit.beta[:, 0]
    se = xp.sqrt(variance[:, 0, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        wald = beta / se
        start_variance = covariance(fit.start_information)
        score_statistic = xp.einsum(
            "gi,gij,gj->g", fit.start_score, start_variance, fit.start_score
        )
        lr = xp.maximum(2.0 * (fit.loglik - fit.start_loglik), 0.0)
        # R's test for an infinite coefficient: the remaining step u·V is not negligible
        remaining = xp.abs(xp.einsum("gi,gij->gj", fit.score, variance))[:, 0]
    eps = 1e-9
    monotone = (remaining > eps) & (remaining > np.sqrt(eps) * xp.abs(beta))
    quantile = float(_stats.norm.ppf((1.0 + confidence) / 2.0))
    events = xp.asarray(risk.event)[:, None] * valid
    usable = xp.isfinite(se)
    extra = _concordance_columns(setup, fit.beta, x, valid) if concordance else {}
    return {
        **extra,
        "coefficient": xp.where(usable, beta, xp.nan),
        "se": se,
        "hazard_ratio": xp.where(usable, xp.exp(beta), xp.nan),
        "ci_low": xp.exp(beta - quantile * se),
        "ci_high": xp.exp(beta + quantile * se),
        "statistic": wald,
        "pvalue": normal_two_sided_upper(xp.abs(wald)),
        "lr_statistic": xp.where(usable, lr, xp.nan),
        "lr_pvalue": xp.where(usable, normal_two_sided_upper(xp.sqrt(lr)), xp.nan),
        "score_statistic": xp.where(usable, score_statistic, xp.nan),
        "score_pvalue": normal_two_sided_upper(xp.sqrt(score_statistic)),
        "loglik": xp.where(usable, fit.loglik, xp.nan),
        "n_samples": xp.sum(valid, axis=0).astype(xp.int64),
        "n_events": xp.sum(events, axis=0).astype(xp.int64),
        "iterations": fit.iterations,
        "converged": fit.converged & usable,
        "monotone": monotone & usable,
    }


def _concordance_columns(setup: CoxSetup, beta: Any, x: Any, valid: Any) -> dict[str, Any]:
    """Each model's Harrell's C of its linear predictor (risk-set order, on the host)."""
    xp = namespace(x)
    predictor = x * beta[None, :, 0]
    for j in range(setup.z.shape[1]):
        predictor = (
            predictor + xp.asarray(setup.z[setup.risk.order, j])[:, None] * beta[None, :, 1 + j]
        )
    outcome, order = setup.outcome, setup.risk.order
    strata = np.zeros(order.size, np.int64) if outcome.strata is None else outcome.strata[order]
    found, std_err = gene_concordance(
        outcome.time[order],
        outcome.event[order],
        strata,
        np.asarray(to_host(predictor)),
        np.asarray(to_host(valid)),
    )
    return {"concordance": xp.asarray(found), "concordance_se": xp.asarray(std_err)}


def _warn_flags(result: xr.Dataset) -> None:
    usable = np.isfinite(np.asarray(to_host(result["se"].data)))
    failed = int((usable & ~np.asarray(to_host(result["converged"].data))).sum())
    monotone = int(np.asarray(to_host(result["monotone"].data)).sum())
    unusable = int((~usable).sum())
    parts = []
    if failed:
        parts.append(f"{failed} did not converge (flag 'converged')")
    if monotone:
        parts.append(
            f"{monotone} have a likelihood that keeps rising (flag 'monotone': separation, an "
            "infinite coefficient)"
        )
    if unusable:
        parts.append(f"{unusable} could not be fitted (constant expression or no event): NaN")
    if parts:
        message = "Of the genes' Cox models, " + "; ".join(parts) + "."
        warnings.warn(message, CohortexWarning, stacklevel=3)
