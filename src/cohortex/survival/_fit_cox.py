"""One Cox model of several genes and covariates together: ``fit_cox()``, as R's ``coxph``."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _stats

from .._backend import to_host
from .._cohort import CohortLike, as_cohort_matrix
from .._errors import CohortexError, CohortexWarning
from ..stats._cox import CoxFit, RiskSets, covariance, cox_newton, cox_terms
from ..stats._cpu.concordance import gene_concordance
from ._cox import check_options, covariate_model, covariates_like
from ._outcome import Outcome

__all__ = ["CoxModel", "cox_fit_matrix", "cox_loglik_matrix", "fit_cox", "term_means"]


@dataclass(frozen=True)
class CoxModel:
    """A fitted Cox model of several terms (:func:`fit_cox`).

    Attributes
    ----------
    terms : pandas.DataFrame
        Indexed by term (the genes, then the covariates' columns): ``coefficient`` (log
        hazard ratio per unit), ``se``, ``hazard_ratio``, ``ci_low``, ``ci_high``,
        ``statistic`` (Wald z) and ``pvalue``.
    loglik, loglik_null : float
        The log partial likelihood at the fit and with every coefficient 0.
    df : float
        The tests' degrees of freedom: the number of terms, or with a ridge penalty the
        effective number.
    lr_statistic, wald_statistic, score_statistic : float
        The model's likelihood-ratio, Wald and score tests against no effect (R's
        ``summary``), each on ``df`` degrees of freedom, with ``lr_pvalue``,
        ``wald_pvalue`` and ``score_pvalue``.
    ridge : float
        The ridge penalty of the fit (0: none).
    concordance, concordance_se : float
        Harrell's C of the linear predictor (within strata) and its standard error.
    n_samples, n_events : int
        Samples fitted (those with every term observed) and their events.
    iterations : int
    converged : bool
    genes : tuple of str
    covariates : str or None
        The covariates' formula.
    means : ndarray of shape (n_terms,)
        The terms' means over the samples fitted, a category's indicator at 0 (R's
        ``means``): the linear predictor is centred at them.
    covariate_spec : object
        formulaic's spec of the covariates, which encodes another cohort's samples with the
        fit's levels and reference (None without covariates).
    """

    terms: pd.DataFrame
    loglik: float
    loglik_null: float
    df: float
    lr_statistic: float
    lr_pvalue: float
    wald_statistic: float
    wald_pvalue: float
    score_statistic: float
    score_pvalue: float
    concordance: float
    concordance_se: float
    n_samples: int
    n_events: int
    iterations: int
    converged: bool
    genes: tuple[str, ...]
    covariates: str | None
    ridge: float
    means: np.ndarray = field(repr=False)
    covariate_spec: Any = field(default=None, repr=False, compare=False)

    def predict(self, cohort: CohortLike) -> pd.Series:
        """The linear predictor ``(x − means) · β`` of every sample of ``cohort`` (R's
        ``predict(type = "lp")`` with ``reference = "sample"``): higher, a higher hazard.

        The genes are found by id and the covariates encoded as in the fit (the same
        levels and reference, whichever of them the new samples have), so another cohort
        scores with this model as long as it has them; a level the fit never saw is refused;
        samples missing a gene's value get NaN.
        """
        data = as_cohort_matrix(cohort)
        values, _, _ = _term_values(data, self.genes, self.covariate_spec)
        beta = self.terms["coefficient"].to_numpy()
        return pd.Series((values - self.means[None, :]) @ beta, index=data.sample_ids)


def fit_cox(
    cohort: CohortLike,
    time: str | Any,
    event: str | Any,
    *,
    genes: Sequence[str] = (),
    covariates: str | None = None,
    strata: str | Any | None = None,
    ties: str = "efron",
    ridge: float = 0.0,
    confidence: float = 0.95,
    max_iterations: int = 20,
    tolerance: float = 1e-12,
) -> CoxModel:
    """One Cox model of several genes and covariates, as R's ``coxph(Surv(time, event) ~
    gene1 + gene2 + … + covariates)`` — a prognostic signature with clinical variables,
    where :func:`cox` fits each gene on its own.

    Parameters
    ----------
    cohort : path, xarray.Dataset or array
    time, event : str or sequence
        As for :func:`cox`.
    genes : sequence of str
        Gene ids of the cohort, each a term.
    covariates : str, optional
        A formula of sample variables, e.g. ``"~ age + er"`` (as :func:`cox`'s).
    strata : str or sequence, optional
        A sample variable whose levels get their own baseline hazard.
    ties : {"efron", "breslow"}, default "efron"
    ridge : float, default 0
        A ridge penalty on the genes' coefficients, the covariates' left free: the log
        partial likelihood less ``ridge / 2 · Σ β_g² var(x_g)`` (R's ``ridge(genes, theta =
        ridge)``, whose default ``scale = TRUE`` penalises each gene by its variance over
        the samples fitted). For signatures of many genes with few events; the tests'
        ``df`` is then R's effective one (``sum(fit$df)``: ``diag((H + P)⁻¹ H)`` summed over
        the genes, plus each covariate's sandwich-to-model variance ratio), and the score
        test is not computed (NaN), as in R.
    confidence : float, default 0.95
        Level of the hazard ratios' intervals.
    max_iterations : int, default 20
    tolerance : float, default 1e-12
        As for :func:`cox`.

    Returns
    -------
    CoxModel
        Its terms, tests and concordance; ``predict`` scores other samples or cohorts.

    Raises
    ------
    CohortexError
        For no term, an unknown gene, invalid outcomes, or no event among the samples fitted.
    """
    check_options("fit_cox()", ties, confidence)
    if not (np.isfinite(ridge) and ridge >= 0):
        raise CohortexError(f"'ridge' must be a penalty >= 0; got {ridge!r}.")
    genes = tuple(str(g) for g in ([genes] if isinstance(genes, str) else genes))
    if not genes and covariates is None:
        raise CohortexError("fit_cox() needs terms: genes, covariates or both.")
    data = as_cohort_matrix(cohort)
    outcome = Outcome.resolve(data.dataset, time, event, strata, data.sample_ids)
    values, names, spec = _term_values(data, genes, covariates)
    used = ~np.isnan(values).any(axis=1)  # R's na.omit
    x = values[used]
    strata_used = None if outcome.strata is None else outcome.strata[used]
    event_used = outcome.event[used]
    if event_used.sum() == 0:
        raise CohortexError("No sample with every term observed has an event.")
    means = term_means(x, names)
    centred = x - x.mean(axis=0)[None, :]  # the fit: centred as coxph (the same likelihood)
    penalty = np.zeros(len(names))
    if ridge > 0:
        penalty[: len(genes)] = ridge * x[:, : len(genes)].var(axis=0, ddof=1)
    fit = cox_fit_matrix(
        centred,
        outcome.time[used],
        event_used,
        strata_used,
        efron=ties == "efron",
        penalty=penalty,
        max_iterations=max_iterations,
        tolerance=tolerance,
    )
    beta = np.asarray(fit.beta[0])
    variance = np.asarray(covariance(fit.information))[0]  # (H + P)⁻¹ with a penalty
    se = np.sqrt(np.diag(variance))
    quantile = float(_stats.norm.ppf((1.0 + confidence) / 2.0))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a separated term
        z = beta / se
        terms = pd.DataFrame(
            {
                "coefficient": beta,
                "se": se,
                "hazard_ratio": np.exp(beta),
                "ci_low": np.exp(beta - quantile * se),
                "ci_high": np.exp(beta + quantile * se),
                "statistic": z,
                "pvalue": 2.0 * _stats.norm.sf(np.abs(z)),
            },
            index=pd.Index(names, name="term"),
        )
    # the partial likelihood itself (a penalised fit's less its penalty), and with β = 0
    loglik = float(fit.loglik[0]) + 0.5 * float(np.sum(penalty * beta * beta))
    loglik_null = float(fit.start_loglik[0])
    lr = 2.0 * (loglik - loglik_null)
    wald = float(beta @ np.asarray(fit.information[0]) @ beta)
    df = float(len(names))
    if ridge > 0:  # R's coxpenal: diag(V H) of the genes, diag(V H V) / diag(V) of the rest
        unpenalised = np.asarray(fit.information[0]) - np.diag(penalty)
        spread = variance @ unpenalised
        ratio = np.diag(spread @ variance) / np.diag(variance)
        df = float(np.sum(np.diag(spread)[: len(genes)]) + np.sum(ratio[len(genes) :]))
    score = np.nan  # R computes no score test of a penalised model
    if ridge == 0:
        start_score = np.asarray(fit.start_score[0])
        start_variance = np.asarray(covariance(fit.start_information))[0]
        score = float(start_score @ start_variance @ start_score)
    predictor = centred @ beta  # C only ranks it: the centring does not matter
    codes = np.zeros(x.shape[0], np.int64) if strata_used is None else strata_used
    found, found_se = gene_concordance(
        outcome.time[used], event_used, codes, predictor[:, None], np.ones((x.shape[0], 1), bool)
    )
    converged = bool(fit.converged[0])
    if not converged:
        warnings.warn(
            f"fit_cox() did not converge in {max_iterations} iterations (a coefficient may be "
            "infinite: separation); its numbers are not estimates.",
            CohortexWarning,
            stacklevel=2,
        )
    return CoxModel(
        terms=terms,
        loglik=loglik,
        loglik_null=loglik_null,
        df=df,
        lr_statistic=lr,
        lr_pvalue=float(_stats.chi2.sf(lr, df)),
        wald_statistic=wald,
        wald_pvalue=float(_stats.chi2.sf(wald, df)),
        score_statistic=score,
        score_pvalue=float(_stats.chi2.sf(score, df)),
        concordance=float(found[0]),
        concordance_se=float(found_se[0]),
        n_samples=int(used.sum()),
        n_events=int(event_used.sum()),
        iterations=int(fit.iterations[0]),
        converged=converged,
        genes=genes,
        covariates=covariates,
        ridge=float(ridge),
        means=means,
        covariate_spec=spec,
    )


def term_means(x: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """R's coxph ``means`` of the terms ``x`` (n_samples × terms) named ``names``: each
    column's mean, a category's indicator (formulaic's "variable[T.level]") at 0, so that a
    linear predictor centred at them is centred at the reference level."""
    return np.where([("[" in name) for name in names], 0.0, x.mean(axis=0))


def cox_fit_matrix(
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    strata: np.ndarray | None,
    *,
    efron: bool = True,
    penalty: np.ndarray | None = None,
    max_iterations: int = 20,
    tolerance: float = 1e-12,
    start: np.ndarray | None = None,
) -> CoxFit:
    """One Cox model of the columns of ``x`` (n_samples × p, complete) by Newton–Raphson
    from ``start`` (p,; default β = 0), with a ridge ``penalty`` (p,) when given and not all
    0: the fit of one "gene" (its arrays' first axis of length 1)."""
    risk = RiskSets.build(time, event, strata)
    variables = [x[risk.order, j : j + 1] for j in range(x.shape[1])]
    return cox_newton(
        variables,
        np.ones((x.shape[0], 1), dtype=bool),
        np.zeros((1, x.shape[1])) if start is None else np.asarray(start, np.float64)[None, :],
        risk,
        efron=efron,
        max_iterations=max_iterations,
        eps=tolerance,
        penalty=penalty if penalty is not None and np.any(penalty > 0) else None,
    )


def cox_loglik_matrix(
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    strata: np.ndarray | None,
    beta: np.ndarray,
    *,
    efron: bool = True,
) -> float:
    """The log partial likelihood of the samples' ``x`` (n × p) at ``beta`` (p,)."""
    risk = RiskSets.build(time, event, strata)
    variables = [x[risk.order, j : j + 1] for j in range(x.shape[1])]
    loglik, _, _ = cox_terms(
        variables, np.ones((x.shape[0], 1), dtype=bool), beta[None, :], risk, efron
    )
    return float(loglik[0])


def _term_values(
    data: Any, genes: tuple[str, ...], covariates: str | Any | None
) -> tuple[np.ndarray, list[str], Any]:
    """The terms' values (n_samples × terms, NaN where missing) and names: the genes by id,
    then the covariates' columns, from their formula (a fit) or a fit's spec (a prediction),
    with that spec."""
    ids = [str(g) for g in data.gene_ids]
    where = {gene: i for i, gene in enumerate(ids)}
    unknown = [g for g in genes if g not in where]
    if unknown:
        raise CohortexError(
            f"{len(unknown)} gene(s) are not in the cohort (the first: {unknown[0]!r})."
        )
    n = data.matrix.shape[0]
    columns = data.matrix[:, [where[g] for g in genes]] if genes else np.zeros((n, 0))
    values = np.asarray(to_host(getattr(columns, "compute", lambda: columns)()), np.float64)
    names: list[str] = []
    spec: Any = None
    if covariates is None:
        z = np.zeros((n, 0))
    elif isinstance(covariates, str):
        z, names, spec = covariate_model(covariates, data.dataset, n)
    else:
        z, spec = covariates_like(covariates, data.dataset), covariates
    return np.column_stack([values, z]), [*genes, *names], spec
