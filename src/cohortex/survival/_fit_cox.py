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
from ..stats._cox import (
    CoxFit,
    RiskSets,
    covariance,
    cox_newton,
    cox_terms,
    score_residuals,
)
from ._concordance import concordance_of
from ._cox import check_options, covariate_model, covariate_terms, covariates_like
from ._outcome import Outcome, cluster_codes, sample_numbers, sample_values, strata_of

__all__ = [
    "BaselineHazard",
    "CoxModel",
    "cox_fit_matrix",
    "cox_loglik_matrix",
    "fit_cox",
    "hazard_ratios",
    "survival_curves",
    "term_means",
    "term_values",
]


@dataclass(frozen=True)
class CoxModel:
    """A fitted Cox model of several terms (:func:`fit_cox`).

    Attributes
    ----------
    terms : pandas.DataFrame
        Indexed by term (the genes, then the covariates' columns): ``coefficient`` (log
        hazard ratio per unit), ``se``, ``hazard_ratio``, ``ci_low``, ``ci_high``,
        ``statistic`` (Wald z) and ``pvalue``; with the robust variance, ``se`` is the
        robust one (which the z, p and intervals use) and ``naive_se`` the model's.
    loglik, loglik_null : float
        The log partial likelihood at the fit and with every coefficient 0.
    df : float
        The tests' degrees of freedom: the number of terms, or with a ridge penalty the
        effective number.
    lr_statistic, wald_statistic, score_statistic : float
        The model's likelihood-ratio, Wald and score tests against no effect (R's
        ``summary``), each on ``df`` degrees of freedom, with ``lr_pvalue``,
        ``wald_pvalue`` and ``score_pvalue``; the Wald test with the robust variance when
        ``robust``.
    robust_score_statistic, robust_score_pvalue : float
        With the robust variance, R's robust score test (its ``rscore``); NaN otherwise.
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
    covariance : ndarray of shape (n_terms, n_terms)
        The coefficients' covariance (R's ``vcov``; with a ridge penalty ``(H + P)⁻¹``).
    strata : str or None
        The sample variable of the strata when the fit was given one by name.
    baseline : dict
        Per stratum (its name; "" without strata), the baseline hazard at the terms' means
        that :meth:`predict_survival` scales (R's ``survfit`` pieces).
    robust : bool
        Whether ``covariance`` is the robust (sandwich) one, R's ``robust``.
    naive_covariance : ndarray of shape (n_terms, n_terms)
        The model-based covariance (R's ``naive.var``; ``covariance`` itself when not
        robust).
    weighted : bool
        Whether the fit had case weights.
    offset : str or None
        The offset's sample variable, when the fit was given one by name.
    offset_mean : float or None
        The mean offset of the samples fitted (None: no offset): predictions add each
        sample's offset less it, as R's.
    training : dict
        What :meth:`proportional_hazards` reads of the samples fitted: their terms
        (``x``), ``time``, ``event``, stratum codes (``strata``), each column's ``term``,
        and ``efron``.
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
    covariance: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    strata: str | None = None
    baseline: dict[str, BaselineHazard] = field(default_factory=dict, repr=False, compare=False)
    robust: bool = False
    naive_covariance: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    robust_score_statistic: float = np.nan
    robust_score_pvalue: float = np.nan
    weighted: bool = False
    offset: str | None = None
    offset_mean: float | None = None
    training: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def proportional_hazards(self, transform: str = "km") -> pd.DataFrame:
        """The test of the model's proportional hazards, as R's ``cox.zph(fit)``: for each
        term (a factor's columns together), the score test of its log hazard ratio drifting
        with ``g(t)``, and of all of them together (GLOBAL).

        Parameters
        ----------
        transform : {"km", "rank", "identity", "log"}, default "km"
            g(t), as :func:`cox_zph`'s.

        Returns
        -------
        pandas.DataFrame
            Indexed by term, then "GLOBAL": ``statistic`` (χ²), ``df``, ``pvalue``.

        Raises
        ------
        CohortexError
            For a model with case weights, an offset or a ridge penalty (not offered), or
            an unknown transform.
        """
        if self.weighted or self.offset_mean is not None or self.ridge > 0:
            raise CohortexError(
                "proportional_hazards() tests models without case weights, an offset or a "
                "ridge penalty."
            )
        from ._cox_zph import check_transform, model_zph

        fitted = self.training
        check_transform(transform, fitted["time"], "proportional_hazards()")
        return model_zph(
            fitted["x"],
            fitted["time"],
            fitted["event"],
            fitted["strata"],
            self.terms["coefficient"].to_numpy(),
            fitted["efron"],
            fitted["terms"],
            transform,
        )

    def predict(self, cohort: CohortLike, *, offset: str | Any | None = None) -> pd.Series:
        """The linear predictor ``(x − means) · β`` of every sample of ``cohort`` (R's
        ``predict(type = "lp")`` with ``reference = "sample"``): higher, a higher hazard.

        The genes are found by id and the covariates encoded as in the fit (the same
        levels and reference, whichever of them the new samples have), so another cohort
        scores with this model as long as it has them; a level the fit never saw is refused;
        samples missing a gene's value get NaN. A model fitted with an offset adds each
        sample's offset less the fit's mean one: ``offset`` (a sample variable or values),
        by default the fit's offset variable.
        """
        data = as_cohort_matrix(cohort)
        values, _, _ = term_values(data, self.genes, self.covariate_spec)
        beta = self.terms["coefficient"].to_numpy()
        predictor = (values - self.means[None, :]) @ beta + self._offset(data, offset)
        return pd.Series(predictor, index=data.sample_ids)

    def _offset(self, data: Any, given: Any) -> np.ndarray | float:
        """Each sample's offset less the fit's mean offset (0 for a fit without one)."""
        n = data.matrix.shape[0]
        if self.offset_mean is None:
            if given is not None:
                raise CohortexError("The model was fitted without an offset; give none.")
            return 0.0
        spec = self.offset if given is None else given
        if spec is None:
            raise CohortexError(
                "The model was fitted with an offset given as values: give each sample's "
                "offset (offset=...)."
            )
        return sample_numbers(data, spec, "offset", n) - self.offset_mean

    def predict_survival(
        self,
        cohort: CohortLike,
        times: Sequence[float],
        *,
        strata: str | Any | None = None,
        confidence: float = 0.95,
        offset: str | Any | None = None,
    ) -> pd.DataFrame:
        """Each sample's predicted probability of surviving past each of ``times``, as R's
        ``summary(survfit(fit, newdata), times)``.

        ``S(t | x) = exp(−Λ₀(t) · exp((x − means) · β))``, with the baseline cumulative
        hazard ``Λ₀`` of the samples fitted (within the sample's stratum): Efron's form of
        it after a fit with Efron's ties, Breslow's (Nelson–Aalen's) after Breslow's, as R's
        default ``ctype``. The standard error takes in both the baseline's and the
        coefficients' uncertainty (R's ``se.fit``), and the interval is R's default
        log-type, ``S · exp(±z · se(Λ))`` (at most 1).

        Parameters
        ----------
        cohort : path, xarray.Dataset or array
            Samples with the model's genes and covariates (the fit's own cohort or another).
        times : sequence of float
            On the fit's time scale.
        strata : str or sequence, optional
            Each sample's stratum, for a model fitted within strata: by default the fit's
            strata variable (when it was given by name); its levels must be the fit's.
        confidence : float, default 0.95
        offset : str or sequence, optional
            As for :meth:`predict`.

        Returns
        -------
        pandas.DataFrame
            One row per (sample, time): ``sample``, ``time``, ``survival``,
            ``cumulative_hazard``, ``std_err`` (of the survival, as R's summary), ``lower``,
            ``upper``; with strata also ``stratum``. NaN beyond the last follow-up time of
            the sample's stratum (where R's summary reports nothing) and for a sample
            missing a term.
        """
        check_options("predict_survival()", "efron", confidence)
        data = as_cohort_matrix(cohort)
        values, _, _ = term_values(data, self.genes, self.covariate_spec)
        centred = values - self.means[None, :]
        beta = self.terms["coefficient"].to_numpy()
        stratum = strata_of(data, strata, self.strata, list(self.baseline), len(centred))
        return survival_curves(
            self.baseline,
            stratum,
            centred,
            np.exp(centred @ beta + self._offset(data, offset)),
            times,
            self.covariance,
            float(_stats.norm.ppf((1.0 + confidence) / 2.0)),
            np.asarray(data.sample_ids),
        )


def survival_curves(
    baseline: dict[str, BaselineHazard],
    stratum: np.ndarray,
    x: np.ndarray,
    risk: np.ndarray,
    times: Sequence[float],
    covariance: np.ndarray,
    quantile: float,
    sample_ids: np.ndarray,
) -> pd.DataFrame:
    """Each sample's predicted survival at ``times`` (``predict_survival``'s table) from the
    baselines of its ``stratum``, its centred terms ``x`` (n × p) and ``risk``."""
    grid = np.asarray(times, dtype=np.float64).reshape(-1)
    if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid < 0):
        raise CohortexError("predict_survival() needs times that are finite and >= 0.")
    tables = []
    for level in np.unique(stratum):
        rows = np.flatnonzero(stratum == level)
        tables.append(baseline[level].curves(x[rows], risk[rows], grid, covariance, quantile, rows))
    table = pd.concat(tables).sort_values(["row", "time"], kind="stable")
    out = pd.DataFrame({"sample": sample_ids[table["row"].to_numpy()]})
    if list(baseline) != [""]:
        out["stratum"] = stratum[table["row"].to_numpy()]
    for column in ["time", "survival", "cumulative_hazard", "std_err", "lower", "upper"]:
        out[column] = table[column].to_numpy()
    return out


@dataclass(frozen=True)
class BaselineHazard:
    """One stratum's baseline hazard at the terms' means, R's ``agsurv`` at its event times.

    Attributes
    ----------
    time : ndarray of shape (n_times,)
        The stratum's event times.
    cumulative : ndarray of shape (n_times,)
        ``Λ₀`` just after each.
    variance : ndarray of shape (n_times,)
        The cumulative sum of the hazard's variance increments at a fixed β (R's
        ``cumsum(varhaz)``).
    mean_terms : ndarray of shape (n_times, n_terms)
        The cumulative sum of the risk-weighted means of the terms at risk times the
        hazard increments (R's ``xbar``).
    last : float
        The stratum's last follow-up time: beyond it the curve is not estimated.
    """

    time: np.ndarray
    cumulative: np.ndarray
    variance: np.ndarray
    mean_terms: np.ndarray
    last: float

    @classmethod
    def build(
        cls,
        x: np.ndarray,
        risk: np.ndarray,
        time: np.ndarray,
        event: np.ndarray,
        efron: bool,
        weight: np.ndarray | None = None,
    ) -> BaselineHazard:
        """From the stratum's centred terms ``x`` (n × p), ``risk = exp(x β)``, times, events
        and case weights (default 1): at each event time with d events of weight D, risk sum
        R over those at risk and ``e``, ``x_e`` the events' own sums, Breslow's increments
        ``D/R``, ``D/R²`` and ``D x_R/R²``; Efron's average them over the d events leaving
        one by one (``R − j e/d``, j < d), as R's agsurv."""
        order = np.argsort(time, kind="stable")
        w = np.ones(time.size) if weight is None else weight[order]
        t, dead, r, xs = time[order], event[order], risk[order] * w, x[order]
        unique, starts = np.unique(t, return_index=True)
        count = np.add.reduceat(dead, starts)
        deaths = np.add.reduceat(dead * w, starts)
        at_risk = np.cumsum(np.add.reduceat(r, starts)[::-1])[::-1]
        weighted = np.cumsum(np.add.reduceat(r[:, None] * xs, starts, axis=0)[::-1], axis=0)[::-1]
        keep = count > 0
        d, n_dead, total, x_total = deaths[keep], count[keep], at_risk[keep], weighted[keep]
        hazard, variance = d / total, d / total**2
        mean_terms = x_total * (d / total**2)[:, None]
        if efron and np.any(n_dead > 1):
            leaving = np.add.reduceat(r * dead, starts)[keep]
            x_leaving = np.add.reduceat((r * dead)[:, None] * xs, starts, axis=0)[keep]
            for i in np.flatnonzero(n_dead > 1):
                share = np.arange(n_dead[i]) / n_dead[i]
                inverse = 1.0 / (total[i] - leaving[i] * share)
                hazard[i] = d[i] * np.mean(inverse)
                variance[i] = d[i] * np.mean(inverse**2)
                mean_terms[i] = d[i] * (
                    (x_total[i][None, :] - x_leaving[i][None, :] * share[:, None])
                    * (inverse**2)[:, None]
                ).mean(axis=0)
        return cls(
            time=unique[keep],
            cumulative=np.cumsum(hazard),
            variance=np.cumsum(variance),
            mean_terms=np.cumsum(mean_terms, axis=0),
            last=float(t[-1]),
        )

    def curves(
        self,
        x: np.ndarray,
        risk: np.ndarray,
        times: np.ndarray,
        covariance: np.ndarray,
        quantile: float,
        rows: np.ndarray,
    ) -> pd.DataFrame:
        """The curves of samples with centred terms ``x`` (m × p) and ``risk`` at ``times``:
        a long table with each sample's ``row``."""
        at = np.searchsorted(self.time, times, side="right") - 1
        seen = at >= 0
        index = np.maximum(at, 0)
        base = np.where(seen, self.cumulative[index], 0.0)  # (times,)
        fixed = np.where(seen, self.variance[index], 0.0)
        means = np.where(seen[:, None], self.mean_terms[index], 0.0)  # (times, p)
        # d = Λ₀(t) x − x̄(t): the coefficients' share of the variance, dᵀ V d
        gap = base[None, :, None] * x[:, None, :] - means[None, :, :]
        spread = np.einsum("mtp,pq,mtq->mt", gap, covariance, gap)
        hazard = base[None, :] * risk[:, None]
        with np.errstate(invalid="ignore"):
            se_hazard = np.sqrt((fixed[None, :] + spread) * risk[:, None] ** 2)
        survival = np.exp(-hazard)
        beyond = np.broadcast_to(times[None, :] > self.last, hazard.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            lower = np.where(survival > 0, survival * np.exp(-quantile * se_hazard), np.nan)
            upper = np.where(
                survival > 0, np.minimum(survival * np.exp(quantile * se_hazard), 1.0), np.nan
            )
        columns = {
            "survival": survival,
            "cumulative_hazard": hazard,
            "std_err": survival * se_hazard,
            "lower": lower,
            "upper": upper,
        }
        return pd.DataFrame(
            {
                "row": np.repeat(rows, times.size),
                "time": np.tile(times, rows.size),
                **{name: np.where(beyond, np.nan, v).ravel() for name, v in columns.items()},
            }
        )


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
    weights: str | Any | None = None,
    offset: str | Any | None = None,
    robust: bool | None = None,
    cluster: str | Any | None = None,
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
    weights : str or sequence of float, optional
        Case weights (a sample variable or the values; positive), R's ``weights``: each
        sample counts that many times in the partial likelihood (Efron's ties with each tied
        group's mean weight, as R), the terms' means, the concordance and the baseline
        hazard. Inverse-probability weights, e.g. of a case–cohort or a propensity model,
        are not integers: then the variance is the robust one by default, as R's.
    offset : str or sequence of float, optional
        A known part of the log hazard added to the model's (R's ``offset()``), e.g. a
        published clinical score whose coefficient is fixed at 1: the genes are then fitted
        on top of it. Predictions add it too (see :meth:`CoxModel.predict`).
    robust : bool, optional
        The robust (sandwich) variance of the coefficients, ``DᵀD`` with D the weighted
        dfbeta residuals summed within clusters, for the z tests, intervals and the Wald
        test; R's default: when ``cluster`` is given or a weight is not an integer. Not
        with ``ridge``.
    cluster : str or sequence, optional
        Groups of correlated samples (e.g. several samples of one patient), whose dfbeta
        residuals are summed before the robust variance and the concordance's standard
        error (R's ``cluster``).

    Returns
    -------
    CoxModel
        Its terms, tests and concordance; ``predict`` scores other samples or cohorts.

    Raises
    ------
    CohortexError
        For no term, an unknown gene, invalid outcomes, weights that are not positive
        numbers, a missing offset or cluster, robust with ridge, or no event among the
        samples fitted.
    """
    check_options("fit_cox()", ties, confidence)
    if not (np.isfinite(ridge) and ridge >= 0):
        raise CohortexError(f"'ridge' must be a penalty >= 0; got {ridge!r}.")
    genes = tuple(str(g) for g in ([genes] if isinstance(genes, str) else genes))
    if not genes and covariates is None:
        raise CohortexError("fit_cox() needs terms: genes, covariates or both.")
    data = as_cohort_matrix(cohort)
    outcome = Outcome.resolve(data.dataset, time, event, strata, data.sample_ids)
    n = len(data.sample_ids)
    case = None if weights is None else sample_numbers(data, weights, "weights", n, positive=True)
    fixed = None if offset is None else sample_numbers(data, offset, "offset", n)
    groups = None
    if cluster is not None:
        labels = sample_values(data.dataset, cluster, "cluster", n, data.sample_ids)
        groups = cluster_codes(labels, data.sample_ids)
    if robust is None:  # R's default
        robust = groups is not None or (case is not None and bool(np.any(case != np.floor(case))))
    if robust and ridge > 0:
        raise CohortexError("fit_cox() has no robust variance with a ridge penalty.")
    values, names, spec = term_values(data, genes, covariates)
    used = ~np.isnan(values).any(axis=1)  # R's na.omit
    x = values[used]
    strata_used = None if outcome.strata is None else outcome.strata[used]
    event_used = outcome.event[used]
    if event_used.sum() == 0:
        raise CohortexError("No sample with every term observed has an event.")
    case_used = np.ones(x.shape[0]) if case is None else case[used]
    offset_mean = None if fixed is None else float(fixed[used].mean())
    # centred as R's (exp(η) stays finite): the likelihood is the same
    offset_used = np.zeros(x.shape[0]) if fixed is None else fixed[used] - offset_mean
    means = term_means(x, names, case_used)
    centred = x - x.mean(axis=0)[None, :]  # the fit: centred as coxph (the same likelihood)
    penalty = np.zeros(len(names))
    if ridge > 0:
        penalty[: len(genes)] = ridge * x[:, : len(genes)].var(axis=0, ddof=1)
    options: dict[str, Any] = {
        "efron": ties == "efron",
        "case_weights": None if case is None else case_used,
        "offset": None if fixed is None else offset_used,
    }
    time_used = outcome.time[used]
    fit = cox_fit_matrix(
        centred,
        time_used,
        event_used,
        strata_used,
        penalty=penalty,
        max_iterations=max_iterations,
        tolerance=tolerance,
        **options,
    )
    beta = np.asarray(fit.beta[0])
    variance = np.asarray(covariance(fit.information))[0]  # (H + P)⁻¹ with a penalty
    naive = variance
    robust_score = np.nan
    if robust:
        risk_sets = RiskSets.build(time_used, event_used, strata_used)
        cluster_used = np.arange(x.shape[0]) if groups is None else groups[used]
        dfbeta = _cluster_scores(centred, beta, risk_sets, options, cluster_used) @ naive
        variance = dfbeta.T @ dfbeta
        # R's robust score test: the residuals at β = 0, and like R's without the offset
        at_zero = _cluster_scores(
            centred, np.zeros_like(beta), risk_sets, {**options, "offset": None}, cluster_used
        )
        total = at_zero.sum(axis=0)
        robust_score = float(total @ np.linalg.solve(at_zero.T @ at_zero, total))
    terms = hazard_ratios(beta, np.sqrt(np.diag(variance)), names, confidence)
    if robust:
        terms.insert(2, "naive_se", np.sqrt(np.diag(naive)))
    # the partial likelihood itself (a penalised fit's less its penalty), and with β = 0
    loglik = float(fit.loglik[0]) + 0.5 * float(np.sum(penalty * beta * beta))
    loglik_null = float(fit.start_loglik[0])
    lr = 2.0 * (loglik - loglik_null)
    wald = (
        float(beta @ np.linalg.solve(variance, beta))
        if robust
        else float(beta @ np.asarray(fit.information[0]) @ beta)
    )
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
    predictor = centred @ beta + offset_used  # C only ranks it: the centring does not matter
    at_means = x - means[None, :]
    fitted_risk = np.exp(at_means @ beta + offset_used)
    baseline = {}
    for code in np.unique(strata_used) if strata_used is not None else [None]:
        rows = slice(None) if code is None else strata_used == code
        name = "" if code is None else outcome.strata_names[code]
        baseline[name] = BaselineHazard.build(
            at_means[rows],
            fitted_risk[rows],
            time_used[rows],
            event_used[rows],
            efron=ties == "efron",
            weight=case_used[rows],
        )
    codes = np.zeros(x.shape[0], np.int64) if strata_used is None else strata_used
    harrell = concordance_of(
        time_used,
        event_used,
        codes,
        predictor,
        case_used,
        None if groups is None else groups[used],
        required=False,
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
        concordance=harrell.concordance,
        concordance_se=harrell.std_err,
        n_samples=int(used.sum()),
        n_events=int(event_used.sum()),
        iterations=int(fit.iterations[0]),
        converged=converged,
        genes=genes,
        covariates=covariates,
        ridge=float(ridge),
        means=means,
        covariate_spec=spec,
        covariance=variance,
        strata=strata if isinstance(strata, str) else None,
        baseline=baseline,
        robust=bool(robust),
        naive_covariance=naive,
        robust_score_statistic=robust_score,
        robust_score_pvalue=float(_stats.chi2.sf(robust_score, df)),
        weighted=case is not None,
        offset=offset if isinstance(offset, str) else None,
        offset_mean=offset_mean,
        training={
            "x": centred,
            "time": time_used,
            "event": event_used,
            "strata": strata_used,
            "terms": [*genes, *covariate_terms(covariates, data.dataset, n)],
            "efron": ties == "efron",
        },
    )


def _cluster_scores(
    x: np.ndarray,
    beta: np.ndarray,
    risk: RiskSets,
    options: dict[str, Any],
    clusters: np.ndarray,
) -> np.ndarray:
    """The score residuals of the samples ``x`` (n × p, sample order) at ``beta``, times
    their case weights, summed within each cluster (codes (n,)): (n_clusters × p)."""
    order = risk.order
    case, offset = options["case_weights"], options["offset"]
    residual = np.empty_like(x)
    residual[order] = score_residuals(
        x[order],
        beta,
        risk,
        options["efron"],
        None if case is None else case[order],
        None if offset is None else offset[order],
    )
    if case is not None:
        residual *= case[:, None]
    out = np.zeros((int(clusters.max()) + 1, x.shape[1]))
    np.add.at(out, clusters, residual)
    return out


def hazard_ratios(
    beta: np.ndarray, se: np.ndarray, names: Sequence[str], confidence: float
) -> pd.DataFrame:
    """A model's terms table: ``coefficient``, ``se``, ``hazard_ratio`` with its Wald
    interval ``ci_low``, ``ci_high``, the z ``statistic`` and its two-sided ``pvalue``."""
    quantile = float(_stats.norm.ppf((1.0 + confidence) / 2.0))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a separated term
        z = beta / se
        return pd.DataFrame(
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


def term_means(
    x: np.ndarray, names: Sequence[str], case_weights: np.ndarray | None = None
) -> np.ndarray:
    """R's coxph ``means`` of the terms ``x`` (n_samples × terms) named ``names``: each
    column's (case-weighted) mean, a category's indicator (formulaic's "variable[T.level]")
    at 0, so that a linear predictor centred at them is centred at the reference level."""
    mean = x.mean(axis=0) if case_weights is None else case_weights @ x / case_weights.sum()
    return np.where([("[" in name) for name in names], 0.0, mean)


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
    case_weights: np.ndarray | None = None,
    offset: np.ndarray | None = None,
) -> CoxFit:
    """One Cox model of the columns of ``x`` (n_samples × p, complete) by Newton–Raphson
    from ``start`` (p,; default β = 0), with a ridge ``penalty`` (p,) when given and not all
    0, case weights and an offset (n,) when given: the fit of one "gene" (its arrays' first
    axis of length 1)."""
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
        one_model=True,
        case_weights=None if case_weights is None else case_weights[risk.order],
        offset=None if offset is None else offset[risk.order],
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
        variables, np.ones((x.shape[0], 1), dtype=bool), beta[None, :], risk, efron, one_model=True
    )
    return float(loglik[0])


def term_values(
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
