"""Cross-validated prediction of survival: a Cox signature chosen and fitted inside each training
fold, scored by Harrell's C on the held-out samples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _stats

from .._backend import to_host
from .._cohort import CohortLike, as_cohort_matrix, shared_docs
from .._errors import CohortexError
from ..stats._cox import RiskSets
from ..stats._cpu.concordance import gene_concordance
from ..stats._logrank import logrank_block
from ..survival._concordance import Concordance, concordance
from ..survival._cox import covariate_model, cox
from ..survival._coxnet import (
    CoxnetModel,
    choose_lambda,
    coxnet,
    coxnet_path,
    cross_validated_deviance,
    fold_labels,
)
from ..survival._fit_cox import (
    BaselineHazard,
    CoxModel,
    cox_fit_matrix,
    cox_loglik_matrix,
    fit_cox,
    term_means,
)
from ..survival._outcome import Outcome
from ..survival._scores import calibration, time_dependent_scores
from ._cross_validate import permutation_pvalue

__all__ = [
    "RIDGE_GRID",
    "SURVIVAL_MODELS",
    "SurvivalCrossValidation",
    "cross_validate_survival",
    "fit_survival",
]

RIDGE_GRID = 10.0 ** np.arange(-2.0, 3.5, 0.5)  # 0.01 … 1000, on standardised genes
SURVIVAL_MODELS = {"ridge": 20, "lasso": 200}  # each model's genes chosen by default


@dataclass
class SurvivalCrossValidation:
    """The result of :func:`cross_validate_survival`.

    Attributes
    ----------
    folds : pandas.DataFrame
        One row per (repeat, fold): ``n_train``, ``n_test``, ``events_test``,
        ``concordance`` (Harrell's C of the held-out samples), ``penalty`` (the ridge
        penalty, or the lasso's λ) and ``genes`` (those with a coefficient); with
        covariates also ``covariates_concordance`` (the covariates' model alone).
    predictions : pandas.DataFrame
        One row per (repeat, sample): the fold, ``sample``, ``time``, ``event``, ``risk``
        (the out-of-fold linear predictor of standardised genes, and of the covariates when
        given; higher, a shorter survival expected) and ``risk_group`` ("high" above the
        median risk of the fold's training samples, else "low"); with strata, ``stratum``;
        with ``times``, ``survival_<t>`` (the out-of-fold probability of surviving past t).
    concordance : float
        Harrell's C of the pooled out-of-fold risks (first repeat; within strata when
        given), with ``concordance_se``; Uno's by :meth:`weighted_concordance`.
    covariates_concordance : float
        With ``covariates``: the same C of a Cox model of the covariates alone, fitted in the
        same training folds — what the genes add is the difference (NaN without).
    scores : pandas.DataFrame
        With ``times``: :func:`cohortex.survival.time_dependent_scores` of the pooled
        out-of-fold survival probabilities (first repeat), indexed by time: the Brier score,
        the IPA against the Kaplan–Meier curve, the time-dependent AUC, with their standard
        errors (empty without ``times``).
    genes : pandas.DataFrame
        Indexed by each gene ever chosen: ``selected`` (fraction of folds that chose it) and
        ``coefficient`` (its mean standardised log hazard ratio over those folds), sorted by
        both.
    fold_genes : list of ndarray of str
        The genes each fold chose, one entry per row of ``folds``.
    permutation_concordance : ndarray
        The pooled C of each run on permuted outcomes (empty without ``permutations``).
    permutation_pvalue : float
        ``(1 + #{permuted ≥ observed}) / (1 + permutations)``; NaN without permutations.
    logrank_statistic, logrank_pvalue : float
        The log-rank χ² (within strata) of the cross-validated risk groups, high against low
        (first repeat; each held-out sample high when its risk is above the median risk of
        its fold's training samples, as Simon et al. 2011), and its nominal p-value (1 df);
        with permutations also ``logrank_permutation_pvalue`` (the honest one: the groups
        come from a selection inside each fold).
    parameters : dict
    """

    folds: pd.DataFrame
    predictions: pd.DataFrame
    concordance: float
    concordance_se: float
    covariates_concordance: float
    scores: pd.DataFrame
    genes: pd.DataFrame
    fold_genes: list[np.ndarray]
    permutation_concordance: np.ndarray
    permutation_pvalue: float
    logrank_statistic: float
    logrank_pvalue: float
    logrank_permutation_pvalue: float
    parameters: dict[str, Any] = field(default_factory=dict)

    def weighted_concordance(
        self, time_weights: str = "n/G2", max_time: float | None = None
    ) -> Concordance:
        """The concordance of the pooled out-of-fold risks (first repeat, within strata when
        given) with R's time weights: by default Uno's C (``"n/G2"``, each pair weighted by
        the inverse square of the censoring's survival at its earlier event), which does not
        depend on how heavily the cohort is censored; ``max_time`` is its τ
        (:func:`cohortex.survival.concordance`)."""
        first = self.predictions[self.predictions["repeat"] == 0]
        return concordance(
            None,
            first["time"].to_numpy(),
            first["event"].to_numpy(),
            first["risk"].to_numpy(),
            strata=first["stratum"].to_numpy() if "stratum" in first else None,
            time_weights=time_weights,
            max_time=max_time,
        )

    def calibration(self, at: float, groups: int = 10) -> pd.DataFrame:
        """The pooled out-of-fold survival at ``at`` (one of ``times``; first repeat) against
        the Kaplan–Meier curves of ``groups`` groups of it
        (:func:`cohortex.survival.calibration`)."""
        column = f"survival_{at:g}"
        first = self.predictions[self.predictions["repeat"] == 0]
        if column not in first:
            predicted = ", ".join(f"{t:g}" for t in self.parameters.get("times", []))
            raise CohortexError(
                f"No held-out survival at {at:g}: cross_validate_survival(times=...) predicted "
                f"it at {predicted or 'no time'}."
            )
        return calibration(
            None,
            first["time"].to_numpy(),
            first["event"].to_numpy(),
            first[column].to_numpy(),
            at,
            groups=groups,
        )

    def kaplan_meier(self, confidence: float = 0.95) -> pd.DataFrame:
        """Kaplan–Meier curves of the cross-validated risk groups (first repeat): each
        held-out sample is "high" when its risk is above the median risk of its fold's
        training samples (:func:`cohortex.survival.kaplan_meier`'s table)."""
        from ..survival import kaplan_meier

        first = self.predictions[self.predictions["repeat"] == 0]
        return kaplan_meier(
            None,
            first["time"].to_numpy(),
            first["event"].to_numpy(),
            by=first["risk_group"].to_numpy(),
            confidence=confidence,
        )


@shared_docs
def cross_validate_survival(
    cohort: CohortLike,
    time: str | Any,
    event: str | Any,
    *,
    model: str = "ridge",
    k: int | None = None,
    ridge: float | None = None,
    lambda_choice: str = "lambda_min",
    covariates: str | None = None,
    folds: int = 5,
    inner_folds: int = 5,
    repeats: int = 1,
    strata: str | Any | None = None,
    times: Sequence[float] | None = None,
    permutations: int = 0,
    seed: int = 0,
    device: str = "auto",
) -> SurvivalCrossValidation:
    """Cross-validated survival prediction from expression: how well a Cox signature ranks
    patients it has not seen.

    Within every training fold the ``k`` genes with the largest univariate Cox |z| (:func:`
    cohortex.survival.cox` of the training samples only) are standardised on those samples
    and fitted together by a ridge-penalised Cox model (:func:`cohortex.survival.fit_cox`)
    or by the lasso (:func:`cohortex.survival.coxnet`, which keeps some of them); the
    held-out samples get its linear predictor as their risk. Choosing the genes on all
    samples first leaks the held-out outcomes into the signature; this function cannot.

    Parameters
    ----------
    {cohort}
    time, event : str or sequence
        As for :func:`cohortex.survival.cox`.
    model : {{"ridge", "lasso"}}, default "ridge"
        The ridge keeps every chosen gene; the lasso (:func:`cohortex.survival.coxnet` down
        to 1% of its largest penalty) is chosen in each training fold by cv.glmnet's
        cross-validated deviance over ``inner_folds`` folds (``lambda_min``), and keeps the
        genes it gives a coefficient.
    k : int, optional
        Genes chosen in each fold by their univariate Cox |z| (all genes when the cohort has
        fewer): by default 20 for the ridge, 200 for the lasso (:data:`SURVIVAL_MODELS`).
    ridge : float, optional
        The ridge penalty on the standardised coefficients; by default chosen in each
        training fold from :data:`RIDGE_GRID` by the cross-validated partial likelihood
        (Verweij & van Houwelingen 1993) over ``inner_folds`` folds of its samples.
    lambda_choice : {{"lambda_min", "lambda_1se"}}, default "lambda_min"
        The lasso's penalty in each fold: cv.glmnet's smallest cross-validated deviance, or
        the largest penalty within one standard error of it (fewer genes, the usual choice
        for a short clinical signature).
    covariates : str, optional
        A formula on sample variables (e.g. clinical ``"~ age + stage"``) in every model,
        unpenalised: the genes are chosen by their Cox |z| adjusted for them, and fitted
        beside them (the ridge's penalty and the lasso's on the genes only). Each fold also
        scores the covariates' model alone (``covariates_concordance``); the permutations
        move the covariates with the outcomes, so that their null is genes that add
        nothing to the covariates.
    folds : int, default 5
        Folds stratified by the event indicator (shuffled with ``seed``).
    inner_folds : int, default 5
        Folds of the ridge penalty's choice.
    repeats : int, default 1
        Repeats of the whole cross-validation with other splits.
    strata : str or sequence, optional
        A sample variable whose levels get their own baseline hazard, in the models and in
        the concordance (pairs within a level).
    times : sequence of float, optional
        Times at which to predict each held-out sample's probability of survival (the
        Efron-type baseline hazard of its training fold, within its stratum, scaled by its
        risk: R's survfit of the fold's model) and to score those predictions (``scores``:
        the Brier score, IPA and time-dependent AUC). Each must lie within every training
        fold's follow-up.
    permutations : int, default 0
        Runs on permuted outcomes (each sample's time and event moved together to another
        sample, within strata) for a null distribution of the pooled C.
    seed : int, default 0
    {device}

    Returns
    -------
    SurvivalCrossValidation
    """
    from sklearn.model_selection import RepeatedStratifiedKFold

    k = _checked_model(model, k, ridge, inner_folds, lambda_choice)
    if folds < 2 or repeats < 1 or permutations < 0:
        raise CohortexError(
            "cross_validate_survival() needs folds >= 2, repeats >= 1 and permutations >= 0; "
            f"got folds={folds}, repeats={repeats}, permutations={permutations}."
        )
    data = as_cohort_matrix(cohort)
    outcome = Outcome.resolve(data.dataset, time, event, strata, data.sample_ids)
    events = int(outcome.event.sum())
    if min(events, outcome.event.size - events) < folds:
        raise CohortexError(
            f"{events} events and {outcome.event.size - events} censored samples: each of the "
            f"{folds} folds needs some of both."
        )
    codes = np.zeros(outcome.event.size, np.int64) if outcome.strata is None else outcome.strata
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    splits = list(splitter.split(np.zeros(codes.size), outcome.event))
    k = min(k, data.matrix.shape[1])
    clinical, clinical_names = _clinical(covariates, data, outcome.event.size)
    settings = {
        "model": model,
        "k": k,
        "ridge": ridge,
        "lambda_choice": lambda_choice,
        "covariates": covariates,
        "covariate_names": clinical_names,
        "inner_folds": inner_folds,
        "seed": seed,
    }

    grid = np.zeros(0) if times is None else np.asarray(times, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(grid)) or np.any(grid < 0):
        raise CohortexError("'times' must be finite and >= 0.")

    def run(
        follow_up: np.ndarray, event_flags: np.ndarray, clinical: np.ndarray, grid: np.ndarray
    ) -> tuple[Any, ...]:
        return _cross_validate_once(
            data, follow_up, event_flags, clinical, codes, splits, folds, settings, device, grid
        )

    fold_table, risks, chosen, high, alone, survival = run(
        outcome.time, outcome.event, clinical, grid
    )
    scores = pd.DataFrame()
    if grid.size:
        beyond = np.isnan(survival[0]).any(axis=0)
        if beyond.any():
            raise CohortexError(
                f"Time {grid[np.argmax(beyond)]:g} lies beyond the follow-up of a training "
                "fold (or a stratum of it): its survival is not estimated there; choose "
                "earlier times."
            )
        scores = time_dependent_scores(None, outcome.time, outcome.event, survival[0], grid)
    observed, observed_se = _pooled(outcome.time, outcome.event, codes, risks[0])
    baseline = np.nan
    if clinical.shape[1]:
        baseline = _pooled(outcome.time, outcome.event, codes, alone)[0]
    separation = _logrank(outcome.time, outcome.event, codes, high[0])
    rng = np.random.default_rng(seed)
    null, null_separation = [], []
    for _ in range(permutations):
        order = np.arange(codes.size)
        for level in np.unique(codes):  # within strata
            members = np.flatnonzero(codes == level)
            order[members] = rng.permutation(members)
        moved, flags = outcome.time[order], outcome.event[order]
        _, permuted, _, permuted_high, _, _ = run(moved, flags, clinical[order], np.zeros(0))
        null.append(_pooled(moved, flags, codes, permuted[0])[0])
        null_separation.append(_logrank(moved, flags, codes, permuted_high[0]))
    null_array = np.asarray(null)
    gene_ids = np.asarray(data.gene_ids)
    stratum = {} if outcome.strata is None else {"stratum": np.asarray(outcome.strata_names)[codes]}
    at_times = [
        {f"survival_{t:g}": values[:, j] for j, t in enumerate(grid)} for values in survival
    ]
    predictions = pd.concat(
        [
            pd.DataFrame(
                {
                    "repeat": repeat,
                    "fold": fold_of,
                    "sample": np.asarray(data.sample_ids),
                    "time": outcome.time,
                    "event": outcome.event.astype(np.int64),
                    "risk": values,
                    "risk_group": np.where(flags, "high", "low"),
                    **stratum,
                    **at_times[repeat],
                }
            )
            for repeat, (values, flags, fold_of) in enumerate(
                zip(risks, high, _fold_of(splits, folds, codes.size), strict=True)
            )
        ],
        ignore_index=True,
    )
    return SurvivalCrossValidation(
        folds=fold_table,
        predictions=predictions,
        concordance=observed,
        concordance_se=observed_se,
        covariates_concordance=baseline,
        scores=scores,
        genes=_gene_table(chosen, gene_ids, len(splits)),
        fold_genes=[gene_ids[genes] for genes, _ in chosen],
        permutation_concordance=null_array,
        permutation_pvalue=permutation_pvalue(null_array, observed),
        logrank_statistic=separation,
        logrank_pvalue=float(_stats.chi2.sf(separation, 1)),
        logrank_permutation_pvalue=permutation_pvalue(np.asarray(null_separation), separation),
        parameters={**settings, "folds": folds, "repeats": repeats, "times": grid.tolist()},
    )


@shared_docs
def fit_survival(
    cohort: CohortLike,
    time: str | Any,
    event: str | Any,
    *,
    model: str = "ridge",
    k: int | None = None,
    ridge: float | None = None,
    lambda_choice: str = "lambda_min",
    covariates: str | None = None,
    inner_folds: int = 5,
    strata: str | Any | None = None,
    seed: int = 0,
    device: str = "auto",
) -> CoxModel | CoxnetModel:
    """The final survival signature on a whole cohort, to score others: what each training
    fold of :func:`cross_validate_survival` does, on every sample.

    The ``k`` genes with the largest univariate Cox |z|, fitted together by a ridge Cox
    model (the penalty chosen by the cross-validated partial likelihood over
    ``inner_folds`` folds unless given) or by the lasso (its λ chosen by cv.glmnet's
    deviance over ``inner_folds`` folds). Its ``predict`` scores a new cohort by gene id.

    Parameters
    ----------
    {cohort}
    time, event, model, k, ridge, lambda_choice, covariates, inner_folds, strata, seed
        As for :func:`cross_validate_survival`.
    {device}

    Returns
    -------
    cohortex.survival.CoxModel or cohortex.survival.CoxnetModel
        The ridge's, with ``ridge`` the penalty used; the lasso's path of the chosen genes,
        whose ``predict`` and ``coef`` default to ``lambda_choice`` (its ``chosen``).
    """
    k = _checked_model(model, k, ridge, inner_folds, lambda_choice)
    data = as_cohort_matrix(cohort)
    outcome = Outcome.resolve(data.dataset, time, event, strata, data.sample_ids)
    clinical, _ = _clinical(covariates, data, outcome.event.size)
    per_gene = cox(
        data.matrix,
        outcome.time,
        outcome.event,
        covariates=pd.DataFrame(clinical) if clinical.shape[1] else None,
        strata=outcome.strata,
        device=device,
    )
    chosen = _top(per_gene, min(k, data.matrix.shape[1]))
    genes = [str(g) for g in np.asarray(data.gene_ids)[chosen]]
    if model == "lasso":
        path = coxnet(
            cohort,
            outcome.time,
            outcome.event,
            genes=genes,
            covariates=covariates,
            strata=strata,  # as given: a variable's name lets predict_survival find it again
            lambda_min_ratio=0.01,
            folds=inner_folds,
            seed=seed,
        )
        return replace(path, chosen=lambda_choice)
    if ridge is None:
        x = np.asarray(to_host(_computed(data.matrix[:, chosen])), dtype=np.float64)
        if np.isnan(x).any():
            raise CohortexError("The chosen genes have missing values; impute or drop them first.")
        standard = (x - x.mean(axis=0)) / np.where(
            x.std(axis=0, ddof=1) > 0, x.std(axis=0, ddof=1), 1.0
        )
        settings = {"inner_folds": inner_folds, "seed": seed}
        every = np.arange(x.shape[0])
        ridge = _choose_ridge(
            np.column_stack([clinical, standard]),
            clinical.shape[1],
            outcome.time,
            outcome.event,
            outcome.strata,
            every,
            settings,
        )
    return fit_cox(
        cohort,
        outcome.time,
        outcome.event,
        genes=genes,
        covariates=covariates,
        strata=strata,
        ridge=ridge,
    )


def _clinical(covariates: str | None, data: Any, n_samples: int) -> tuple[np.ndarray, list[str]]:
    """The covariates' columns (n_samples × q; q = 0 without) and names."""
    if covariates is None:
        return np.zeros((n_samples, 0)), []
    values, names, _ = covariate_model(covariates, data.dataset, n_samples)
    return values, names


def _checked_model(
    model: str, k: int | None, ridge: float | None, inner_folds: int, lambda_choice: str
) -> int:
    """The genes to choose (``k`` or the model's default), the options checked."""
    if model not in SURVIVAL_MODELS:
        raise CohortexError(f"'model' must be one of {', '.join(SURVIVAL_MODELS)}; got {model!r}.")
    k = SURVIVAL_MODELS[model] if k is None else k
    if k < 1 or inner_folds < (3 if model == "lasso" else 2):
        raise CohortexError(
            f"Survival prediction needs k >= 1 and inner_folds >= 2 (3 for the lasso); got "
            f"k={k}, inner_folds={inner_folds}."
        )
    if ridge is not None and (model != "ridge" or not (np.isfinite(ridge) and ridge >= 0)):
        raise CohortexError(f"'ridge' must be a penalty >= 0 of the ridge model; got {ridge!r}.")
    if lambda_choice not in ("lambda_min", "lambda_1se"):
        raise CohortexError(
            f"'lambda_choice' must be 'lambda_min' or 'lambda_1se'; got {lambda_choice!r}."
        )
    if lambda_choice != "lambda_min" and model != "lasso":
        raise CohortexError("'lambda_choice' chooses the lasso's penalty: it needs model='lasso'.")
    return k


def _top(per_gene: Any, k: int) -> np.ndarray:
    """The ``k`` genes with the largest univariate |z| (converged fits only), in gene order."""
    z = np.abs(np.asarray(per_gene["statistic"].values, dtype=np.float64))
    z[~np.isfinite(z) | ~np.asarray(per_gene["converged"].values, dtype=bool)] = -1.0
    return np.sort(np.argsort(-z, kind="stable")[:k])


def _cross_validate_once(
    data: Any,
    time: np.ndarray,
    event: np.ndarray,
    clinical: np.ndarray,
    codes: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    folds: int,
    settings: dict[str, Any],
    device: str,
    grid: np.ndarray,
) -> tuple[
    pd.DataFrame,
    list[np.ndarray],
    list[tuple[np.ndarray, np.ndarray]],
    list[np.ndarray],
    np.ndarray,
    list[np.ndarray],
]:
    """Every fold of every repeat for one assignment of outcomes (and of the covariates'
    columns ``clinical``, n_samples × q): the genes, the penalty, the fit, the held-out risks
    and high-risk flags (one array each per repeat), the covariates' own model's held-out
    risks (first repeat; NaN without covariates), and the held-out survival probabilities
    at the times ``grid`` (n_samples × times per repeat)."""
    k, q = settings["k"], clinical.shape[1]
    chosen_genes = []
    for train, _ in splits:
        per_gene = cox(
            data.matrix[train],
            time[train],
            event[train],
            covariates=pd.DataFrame(clinical[train]) if q else None,
            strata=codes[train] if codes.max() > 0 else None,
            device=device,
        )
        chosen_genes.append(_top(per_gene, k))
    union = np.unique(np.concatenate(chosen_genes))
    values = np.asarray(to_host(_computed(data.matrix[:, union])), dtype=np.float64)
    position = {gene: i for i, gene in enumerate(union)}
    risks = [np.full(time.size, np.nan) for _ in range(len(splits) // folds)]
    high = [np.zeros(time.size, dtype=bool) for _ in risks]
    alone = np.full(time.size, np.nan)
    survival = [np.full((time.size, grid.size), np.nan) for _ in risks]
    rows, chosen = [], []
    for index, (train, test) in enumerate(splits):
        repeat, fold = divmod(index, folds)
        genes = chosen_genes[index]
        x = values[:, [position[g] for g in genes]]
        if np.isnan(x[np.concatenate([train, test])]).any():
            raise CohortexError(
                "The chosen genes have missing values; survival prediction needs complete "
                "values (impute or drop those genes first)."
            )
        centre, scale = x[train].mean(axis=0), x[train].std(axis=0, ddof=1)
        scale[scale == 0] = 1.0
        # the covariates centred at R's means (fit_cox's predict), not scaled (unpenalised:
        # their scale changes nothing)
        covariates = clinical - term_means(clinical[train], settings["covariate_names"])
        design = np.column_stack([covariates, (x - centre) / scale])
        strata = codes if codes.max() > 0 else None
        train_strata = None if strata is None else strata[train]
        if settings["model"] == "lasso":
            beta, penalty = _lasso(design, q, time, event, strata, train, settings)
        else:
            penalty = settings["ridge"]
            if penalty is None:
                penalty = _choose_ridge(design, q, time, event, strata, train, settings)
            fit = cox_fit_matrix(
                design[train],
                time[train],
                event[train],
                train_strata,
                penalty=np.r_[np.zeros(q), np.full(genes.size, penalty)],
            )
            beta = np.asarray(fit.beta[0])
        risks[repeat][test] = design[test] @ beta
        if grid.size:
            survival[repeat][test] = _held_out_survival(
                design @ beta, time, event, codes, train, test, grid
            )
        # the high-risk group: above the median risk of the training samples (Simon et al.)
        high[repeat][test] = risks[repeat][test] > np.median(design[train] @ beta)
        row = {
            "repeat": repeat,
            "fold": fold,
            "n_train": train.size,
            "n_test": test.size,
            "events_test": int(event[test].sum()),
            "concordance": _concordance(time, event, codes, risks[repeat], test),
            "penalty": float(penalty),
            "genes": int(np.count_nonzero(beta[q:])),
        }
        if q:  # the covariates' model alone, fitted on the same training samples
            own = cox_fit_matrix(covariates[train], time[train], event[train], train_strata)
            baseline = covariates @ np.asarray(own.beta[0])
            row["covariates_concordance"] = _concordance(time, event, codes, baseline, test)
            if repeat == 0:
                alone[test] = baseline[test]
        rows.append(row)
        kept = beta[q:] != 0
        chosen.append((genes[kept], beta[q:][kept]))
    return pd.DataFrame(rows), risks, chosen, high, alone, survival


def _held_out_survival(
    predictor: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    codes: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    grid: np.ndarray,
) -> np.ndarray:
    """The held-out samples' survival probabilities at ``grid`` (test × times): the
    Efron-type baseline hazard of the training samples' linear predictors within each
    stratum (R's survfit of the fold's coxph; glmnet's survfit.coxnet), scaled by each
    held-out sample's risk. NaN in a stratum without training samples and beyond a
    stratum's last training follow-up."""
    out = np.full((test.size, grid.size), np.nan)
    centre = float(predictor[train].mean())
    for level in np.unique(codes[test]):
        fitted = train[codes[train] == level]
        held = np.flatnonzero(codes[test] == level)
        if fitted.size == 0:
            continue
        baseline = BaselineHazard.build(
            np.zeros((fitted.size, 0)),
            np.exp(predictor[fitted] - centre),
            time[fitted],
            event[fitted],
            efron=True,
        )
        curves = baseline.curves(
            np.zeros((held.size, 0)),
            np.exp(predictor[test[held]] - centre),
            grid,
            np.zeros((0, 0)),
            0.0,
            held,
        )
        out[held] = curves["survival"].to_numpy().reshape(held.size, grid.size)
    return out


def _concordance(
    time: np.ndarray, event: np.ndarray, codes: np.ndarray, risk: np.ndarray, test: np.ndarray
) -> float:
    """Harrell's C of ``risk`` over the held-out samples ``test``."""
    found, _ = gene_concordance(
        time[test], event[test], codes[test], risk[test][:, None], np.ones((test.size, 1), bool)
    )
    return float(found[0])


def _lasso(
    design: np.ndarray,
    q: int,
    time: np.ndarray,
    event: np.ndarray,
    strata: np.ndarray | None,
    train: np.ndarray,
    settings: dict[str, Any],
) -> tuple[np.ndarray, float]:
    """The lasso Cox path of the training samples' genes (the columns of ``design`` after
    its first ``q``, the covariates, unpenalised) and its coefficients at cv.glmnet's
    ``lambda_min`` or ``lambda_1se`` (``lambda_choice``) over ``inner_folds`` folds of them
    (balanced for events)."""
    x, t, e = design[train, q:], time[train], event[train]
    z = design[train, :q] if q else None
    s = None if strata is None else strata[train]
    # the path to 1% of the largest penalty (glmnet's default with more genes than samples):
    # further down, a few hundred genes on a few hundred samples near an unpenalised fit
    # separate the outcomes, and no fold's choice lies there
    path = coxnet_path(x, t, e, s, covariates=z, lambda_min_ratio=0.01)
    labels = fold_labels(settings["inner_folds"], e, settings["seed"])
    assert labels is not None  # inner_folds >= 3
    deviance, spread = cross_validated_deviance(x, t, e, s, labels, path.lambdas, covariates=z)
    smallest, within = choose_lambda(path.lambdas, deviance, spread)
    penalty = within if settings["lambda_choice"] == "lambda_1se" else smallest
    return path.coefficients[int(np.flatnonzero(path.lambdas == penalty)[0])], penalty


def _choose_ridge(
    design: np.ndarray,
    q: int,
    time: np.ndarray,
    event: np.ndarray,
    strata: np.ndarray | None,
    train: np.ndarray,
    settings: dict[str, Any],
) -> float:
    """The penalty of :data:`RIDGE_GRID` on the standardised genes (the columns of
    ``design`` after its first ``q``, the covariates, unpenalised) with the largest
    cross-validated partial likelihood over the training samples' inner folds: Σ_j l(β₋ⱼ) −
    l₋ⱼ(β₋ⱼ), the first on ties."""
    from sklearn.model_selection import StratifiedKFold

    inner = StratifiedKFold(settings["inner_folds"], shuffle=True, random_state=settings["seed"])
    x, t, e = design[train], time[train], event[train]
    s = None if strata is None else strata[train]
    parts = list(inner.split(np.zeros(train.size), e))
    values = np.empty(RIDGE_GRID.size)
    starts: list[np.ndarray | None] = [None] * len(parts)
    # from the strongest penalty down, each inner fold's fit starting from its last one
    for index in range(RIDGE_GRID.size - 1, -1, -1):
        total = 0.0
        for j, (fit_rows, _) in enumerate(parts):
            fit = cox_fit_matrix(
                x[fit_rows],
                t[fit_rows],
                e[fit_rows],
                None if s is None else s[fit_rows],
                penalty=np.r_[np.zeros(q), np.full(x.shape[1] - q, RIDGE_GRID[index])],
                start=starts[j],
            )
            beta = np.asarray(fit.beta[0])
            starts[j] = beta
            total += cox_loglik_matrix(x, t, e, s, beta) - cox_loglik_matrix(
                x[fit_rows], t[fit_rows], e[fit_rows], None if s is None else s[fit_rows], beta
            )
        values[index] = total
    values = np.where(np.isfinite(values), values, -np.inf)  # a fit that failed: never chosen
    return float(RIDGE_GRID[int(np.argmax(values))])  # the smallest penalty on ties


def _pooled(
    time: np.ndarray, event: np.ndarray, codes: np.ndarray, risk: np.ndarray
) -> tuple[float, float]:
    """Harrell's C of the pooled out-of-fold risks and its standard error."""
    found, std_err = gene_concordance(time, event, codes, risk[:, None], np.isfinite(risk)[:, None])
    return float(found[0]), float(std_err[0])


def _logrank(time: np.ndarray, event: np.ndarray, codes: np.ndarray, high: np.ndarray) -> float:
    """The log-rank χ² of ``high`` against the rest, within strata (R's survdiff)."""
    risk = RiskSets.build(time, event, codes)
    column = high[risk.order][:, None]
    found = logrank_block(column, np.ones_like(column), risk)
    return float(found["chisq"][0])


def _fold_of(splits: list[tuple[np.ndarray, np.ndarray]], folds: int, n: int) -> list[np.ndarray]:
    """Each repeat's fold of every sample."""
    out = []
    for repeat in range(len(splits) // folds):
        fold_of = np.full(n, -1)
        for fold in range(folds):
            fold_of[splits[repeat * folds + fold][1]] = fold
        out.append(fold_of)
    return out


def _gene_table(
    chosen: list[tuple[np.ndarray, np.ndarray]], gene_ids: np.ndarray, n_folds: int
) -> pd.DataFrame:
    table = pd.DataFrame(
        [(g, b) for genes, beta in chosen for g, b in zip(genes, beta, strict=True)],
        columns=["position", "coefficient"],
    )
    grouped = table.groupby("position")["coefficient"]
    out = pd.DataFrame(
        {"selected": grouped.size() / n_folds, "coefficient": grouped.mean()}
    ).reset_index()
    out.index = pd.Index(gene_ids[out.pop("position").to_numpy()], name="gene")
    strength = out["coefficient"].abs()
    return (
        out.assign(strength=strength)
        .sort_values(["selected", "strength"], ascending=False)
        .drop(columns="strength")
    )


def _computed(values: Any) -> Any:
    return values.compute() if hasattr(values, "compute") else values
