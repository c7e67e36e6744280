"""How well predicted survival probabilities do at fixed times: the inverse-probability-of-
censoring weighted Brier score, its index of prediction accuracy, and the time-dependent
AUC, as R's ``riskRegression::Score``; and their calibration against the Kaplan–Meier curves
of groups of samples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _stats

from .._cohort import as_cohort_matrix
from .._errors import CohortexError
from ._kaplan_meier import kaplan_meier
from ._outcome import Outcome

__all__ = ["calibration", "time_dependent_scores"]


def time_dependent_scores(
    cohort: Any,
    time: str | Any,
    event: str | Any,
    survival: pd.DataFrame | np.ndarray,
    times: Sequence[float] | np.ndarray | None = None,
    *,
    conservative: bool = False,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """The Brier score, its index of prediction accuracy (IPA) and the time-dependent AUC of
    predicted survival probabilities at each of ``times``, as R's ``riskRegression::Score(
    list(risks), Surv(time, event) ~ 1, metrics = c("auc", "brier"), summary = "ipa",
    cens.model = "km")``.

    Each sample's predicted risk at ``t`` is ``1 − S(t | x)``. The cases are the samples
    with an event by ``t``, the controls those still followed after ``t``; a sample
    censored by ``t`` counts for neither, and the others are weighted by the inverse of the
    Kaplan–Meier curve of the censoring (just before a case's own time; at ``t`` for the
    controls), so that the scores estimate those of a cohort followed completely.

    - ``brier``: the mean of ``w (1{T ≤ t} − risk)²`` over all samples; lower is better.
    - ``null_brier``: the same of the Kaplan–Meier curve of the cohort itself (the same
      risk for everyone: a model that knows nothing of the samples), and ``ipa = 1 −
      brier / null_brier`` (Kattan & Gerds 2018): the share of the null model's error the
      predictions remove; 0 is no better, negative worse.
    - ``auc``: the chance that a case has a higher predicted risk than a control (ties
      half), cases and controls weighted as above (Uno et al. 2007, Blanche et al. 2013).

    Parameters
    ----------
    cohort : path, xarray.Dataset or None
        Where ``time`` and ``event`` are looked up by name; None when they are values.
    time, event : str or sequence
        As for :func:`cox`: the outcomes the predictions are scored against (held-out
        samples, for an honest score).
    survival : DataFrame or ndarray of shape (n_samples, n_times)
        The predicted survival probabilities: :meth:`CoxModel.predict_survival`'s or
        :meth:`CoxnetModel.predict_survival`'s table (its samples in the cohort's order,
        and its times), or a matrix, one column per time of ``times``.
    times : sequence of float, optional
        With a matrix: its columns' times. With a table: the times to score (default all).
    conservative : bool, default False
        R's ``conservative``: True leaves out the uncertainty of the censoring curve from
        the standard errors (larger); the default takes it in, as Score does.
    confidence : float, default 0.95

    Returns
    -------
    pandas.DataFrame
        Indexed by time: ``brier``, ``brier_se``, ``brier_lower``, ``brier_upper``,
        ``null_brier``, ``null_brier_se``, ``ipa``, ``auc``, ``auc_se``, ``auc_lower``,
        ``auc_upper``, ``cases`` and ``controls`` (their numbers). Intervals are Wald's,
        kept within [0, 1] as R's. ``auc`` is NaN at a time without cases or controls.

    Raises
    ------
    CohortexError
        For invalid outcomes, predictions that are not probabilities, missing ones, or
        times that do not match them.
    """
    if not 0 < confidence < 1:
        raise CohortexError(f"'confidence' must be in (0, 1); got {confidence!r}.")
    outcome, ids = _outcome(cohort, time, event)
    grid, predicted = _predictions(survival, times, ids)
    quantile = float(_stats.norm.ppf((1.0 + confidence) / 2.0))
    censoring = _Censoring.build(outcome.time, outcome.event)
    rows = []
    for column, t in enumerate(grid):
        risk = 1.0 - predicted[:, column]
        weighted = _Weights.build(outcome.time, outcome.event, t, censoring)
        brier, brier_if = _brier(weighted, risk, conservative)
        null_risk = np.full(risk.size, 1.0 - censoring.survival_at(t))
        null_brier, null_if = _brier(weighted, null_risk, conservative)
        auc, auc_if = _auc(weighted, risk, conservative)
        brier_se = _se(brier_if)
        auc_se = _se(auc_if)
        rows.append(
            {
                "time": t,
                "brier": brier,
                "brier_se": brier_se,
                "brier_lower": max(0.0, brier - quantile * brier_se),
                "brier_upper": min(1.0, brier + quantile * brier_se),
                "null_brier": null_brier,
                "null_brier_se": _se(null_if),
                "ipa": 1.0 - brier / null_brier if null_brier > 0 else np.nan,
                "auc": auc,
                "auc_se": auc_se,
                "auc_lower": max(0.0, auc - quantile * auc_se) if np.isfinite(auc) else np.nan,
                "auc_upper": min(1.0, auc + quantile * auc_se) if np.isfinite(auc) else np.nan,
                "cases": int(weighted.case.sum()),
                "controls": int(weighted.control.sum()),
            }
        )
    return pd.DataFrame(rows).set_index("time")


def calibration(
    cohort: Any,
    time: str | Any,
    event: str | Any,
    survival: pd.DataFrame | np.ndarray,
    at: float,
    *,
    groups: int = 10,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Predicted against observed survival at time ``at``: the samples in ``groups`` groups
    of their predicted survival (its quantiles), each group's mean prediction beside its
    Kaplan–Meier estimate (R's ``survfit`` of the group, with its log-type interval). A
    calibrated model's points lie on the diagonal; a model that ranks well (high AUC) can
    still sit off it, predicting risks too extreme or too mild (an IPA near or below 0).

    Parameters
    ----------
    cohort, time, event
        As for :func:`time_dependent_scores`.
    survival : DataFrame or ndarray of shape (n_samples,) or (n_samples, n_times)
        The predicted survival probabilities at ``at``: ``predict_survival``'s table (its
        rows at ``at`` are taken), or the values (a matrix's single column).
    at : float
    groups : int, default 10
        Groups of (about) equal size; fewer where predictions tie.
    confidence : float, default 0.95

    Returns
    -------
    pandas.DataFrame
        One row per group, from the lowest predicted survival: ``n``, ``events`` (by
        ``at``), ``predicted`` (the mean), ``observed``, ``lower``, ``upper`` (NaN where
        the group's follow-up ends before ``at``).
    """
    if groups < 1:
        raise CohortexError(f"'groups' must be >= 1; got {groups!r}.")
    outcome, ids = _outcome(cohort, time, event)
    if isinstance(survival, pd.DataFrame):
        _, predicted = _predictions(survival, [at], ids)
    else:
        values = np.asarray(survival, dtype=np.float64)
        _, predicted = _predictions(values.reshape(ids.size, -1), [at], ids)
    prediction = predicted[:, 0]
    labels = pd.qcut(prediction, groups, labels=False, duplicates="drop")
    rows = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        curve = kaplan_meier(
            None, outcome.time[members], outcome.event[members], confidence=confidence
        )
        before = curve[curve["time"] <= at]
        observed = (
            (1.0, 1.0, 1.0)
            if before.empty
            else tuple(float(before[c].iloc[-1]) for c in ("survival", "lower", "upper"))
        )
        if at > outcome.time[members].max():
            observed = (np.nan, np.nan, np.nan)
        rows.append(
            {
                "group": int(label) + 1,
                "n": members.size,
                "events": int(
                    np.sum((outcome.time[members] <= at) & (outcome.event[members] == 1))
                ),
                "predicted": float(prediction[members].mean()),
                "observed": observed[0],
                "lower": observed[1],
                "upper": observed[2],
            }
        )
    return pd.DataFrame(rows).set_index("group")


def _outcome(cohort: Any, time: Any, event: Any) -> tuple[Outcome, np.ndarray]:
    """The checked outcomes and the sample ids (S1, S2, … without a cohort)."""
    if cohort is None:
        if isinstance(time, str) or isinstance(event, str):
            raise CohortexError("Without a cohort, time and event must be values.")
        ids = np.array([f"S{i + 1}" for i in range(len(np.asarray(time)))])
        return Outcome.resolve(None, time, event, None, ids), ids
    data = as_cohort_matrix(cohort)
    ids = np.asarray(data.sample_ids)
    return Outcome.resolve(data.dataset, time, event, None, ids), ids


def _predictions(
    survival: pd.DataFrame | np.ndarray, times: Sequence[float] | np.ndarray | None, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The times and the survival probabilities (n_samples × times), checked."""
    if isinstance(survival, pd.DataFrame):
        needed = {"sample", "time", "survival"}
        if not needed <= set(survival.columns):
            raise CohortexError(
                "The predictions table needs the columns 'sample', 'time' and 'survival' "
                "(predict_survival's)."
            )
        wide = survival.pivot_table(
            index="sample", columns="time", values="survival", aggfunc="first", dropna=False
        )
        missing = [s for s in ids if s not in wide.index]
        if missing or len(wide) != len(ids):
            raise CohortexError(
                "The predictions' samples must be the cohort's "
                f"({len(missing)} of its samples have none; the first: "
                f"{missing[0] if missing else '-'!r})."
            )
        grid = np.asarray(wide.columns if times is None else times, dtype=np.float64)
        unknown = [t for t in grid if t not in set(wide.columns)]
        if unknown:
            raise CohortexError(f"No predictions at time {unknown[0]!r}.")
        values = wide.loc[ids, grid].to_numpy(np.float64)
    else:
        values = np.asarray(survival, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        if times is None:
            raise CohortexError("With a matrix of predictions, give their times.")
        grid = np.asarray(times, dtype=np.float64).reshape(-1)
        if values.shape != (ids.size, grid.size):
            raise CohortexError(
                f"The predictions must be one row per sample and one column per time "
                f"({ids.size} × {grid.size}); got shape {values.shape}."
            )
    if grid.size == 0 or not np.all(np.isfinite(grid)):
        raise CohortexError("time_dependent_scores() needs finite times.")
    if np.isnan(values).any():
        raise CohortexError(
            "Some predicted probabilities are missing (NaN: a sample missing a term, or a "
            "time beyond the follow-up of the model's cohort); score those samples or times "
            "apart."
        )
    if np.any((values < 0) | (values > 1)):
        raise CohortexError("The predicted survival probabilities must lie in [0, 1].")
    return grid, values


@dataclass(frozen=True)
class _Censoring:
    """The Kaplan–Meier curve of the censoring (a censored time tied with an event falls
    after it) and the pieces of its Nelson–Aalen influence function, at the distinct
    times."""

    times: np.ndarray
    curve: np.ndarray  # G just after each time
    at_risk: np.ndarray  # Y(u): samples with a time at or after u
    censored: np.ndarray
    events: np.ndarray
    spread: np.ndarray  # Σ_{v ≤ u} n c(v) / Y(v)²
    n: int

    @classmethod
    def build(cls, time: np.ndarray, event: np.ndarray) -> _Censoring:
        times, index = np.unique(time, return_inverse=True)
        events = np.bincount(index, weights=event, minlength=times.size)
        censored = np.bincount(index, weights=1.0 - event, minlength=times.size)
        at_risk = time.size - np.concatenate(([0.0], np.cumsum(events + censored)[:-1]))
        after = at_risk - events
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(after > 0, 1.0 - censored / after, 1.0)
        return cls(
            times=times,
            curve=np.cumprod(factor),
            at_risk=at_risk,
            censored=censored,
            events=events,
            spread=np.cumsum(time.size * censored / at_risk**2),
            n=int(time.size),
        )

    def at(self, t: np.ndarray | float, before: bool = False) -> np.ndarray:
        """G at ``t`` (just before it with ``before``)."""
        k = np.searchsorted(self.times, t, side="left" if before else "right") - 1
        return np.where(k >= 0, self.curve[np.maximum(k, 0)], 1.0)

    def spread_to(self, t: np.ndarray | float, before: bool = False) -> np.ndarray:
        """``Σ_{u ≤ t} n c(u) / Y(u)²`` (over ``u < t`` with ``before``)."""
        k = np.searchsorted(self.times, t, side="left" if before else "right") - 1
        return np.where(k >= 0, self.spread[np.maximum(k, 0)], 0.0)

    def survival_at(self, t: float) -> float:
        """The Kaplan–Meier curve of the survival itself at ``t`` (the null model)."""
        keep = self.times <= t
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(self.at_risk > 0, 1.0 - self.events / self.at_risk, 1.0)
        return float(np.prod(factor[keep]))


@dataclass(frozen=True)
class _Weights:
    """The cases and controls at one time ``t`` and their inverse censoring weights."""

    t: float
    time: np.ndarray
    case: np.ndarray
    control: np.ndarray
    weight: np.ndarray  # 1 / G(T−) of a case, 1 / G(t) of a control, else 0
    own: np.ndarray  # each sample's influence on the censoring's cumulative hazard up to
    # its own time: n (1 − δ) / Y(T) − Σ_{u ≤ T} n c(u) / Y(u)²
    censoring: _Censoring

    @classmethod
    def build(
        cls, time: np.ndarray, event: np.ndarray, t: float, censoring: _Censoring
    ) -> _Weights:
        case = (time <= t) & (event == 1)
        control = time > t
        weight = np.zeros(time.size)
        weight[case] = 1.0 / censoring.at(time[case], before=True)
        if control.any():  # G(t) > 0: someone is still followed after t
            weight[control] = 1.0 / float(censoring.at(t))
        k = np.searchsorted(censoring.times, time)
        own = censoring.n * (1.0 - event) / censoring.at_risk[k] - censoring.spread[k]
        return cls(t, time, case, control, weight, own, censoring)

    def censoring_term(self, case_values: np.ndarray, control_total: float) -> np.ndarray:
        """For each sample k, ``(1/n) (Σ_cases v_i φ_k(T_i−) + V φ_k(t))``: how the
        estimated censoring curve moves a sum of the cases' values ``v`` (each weighted by
        ``1 / G(T_i−)``) and the controls' total ``V`` (weighted by ``1 / G(t)``), with
        ``φ_k(s)`` sample k's influence on the censoring's cumulative hazard up to s."""
        n = self.time.size
        order = np.argsort(self.time, kind="stable")
        sorted_time = self.time[order]
        values = np.where(self.case, case_values, 0.0)
        following = np.searchsorted(sorted_time, self.time, side="right")
        # cases after sample k's time: φ_k(T_i−) = own_k
        after = np.concatenate((np.cumsum(values[order][::-1])[::-1], [0.0]))
        # cases at or before it: φ_k(T_i−) = −Σ_{u < T_i} n c(u) / Y(u)²
        shares = values * self.censoring.spread_to(self.time, before=True)
        before = np.concatenate(([0.0], np.cumsum(shares[order])))
        # the controls at t: φ_k(t) = own_k when T_k ≤ t, else −Σ_{u ≤ t}
        at_t = np.where(self.time <= self.t, self.own, -float(self.censoring.spread_to(self.t)))
        return (self.own * after[following] - before[following] + at_t * control_total) / n


def _brier(weighted: _Weights, risk: np.ndarray, conservative: bool) -> tuple[float, np.ndarray]:
    """The Brier score at ``weighted.t`` and each sample's influence on it."""
    residual = np.where(weighted.case, (1.0 - risk) ** 2, risk**2) * weighted.weight
    brier = float(residual.mean())
    influence = residual - brier
    if not conservative:
        influence += weighted.censoring_term(residual, float(residual[weighted.control].sum()))
    return brier, influence


def _auc(weighted: _Weights, risk: np.ndarray, conservative: bool) -> tuple[float, np.ndarray]:
    """The weighted AUC at ``weighted.t`` (ties half) and each sample's influence on it."""
    n = risk.size
    cases, controls = np.flatnonzero(weighted.case), np.flatnonzero(weighted.control)
    if cases.size == 0 or controls.size == 0:
        return np.nan, np.full(n, np.nan)
    a = np.where(weighted.case, weighted.weight, 0.0)
    b = np.where(weighted.control, weighted.weight, 0.0)
    # each case's controls below it, each control's cases above it (ties half), weighted
    below = np.sort(risk[controls])
    beaten = np.searchsorted(below, risk[cases], "left") + np.searchsorted(
        below, risk[cases], "right"
    )
    by_case = np.zeros(n)
    by_case[cases] = 0.5 * beaten * b[controls[0]] / n  # (1/n) Σ_j b_j K_ij
    case_order = np.argsort(risk[cases], kind="stable")
    case_risk = risk[cases][case_order]
    total = np.concatenate(([0.0], np.cumsum(a[cases][case_order])))
    low = np.searchsorted(case_risk, risk[controls], "left")
    high = np.searchsorted(case_risk, risk[controls], "right")
    by_control = np.zeros(n)
    by_control[controls] = (
        (total[-1] - total[high]) + 0.5 * (total[high] - total[low])
    ) / n  # (1/n) Σ_i a_i K_ij
    mean_a, mean_b = a.sum() / n, b.sum() / n
    nu = float((a * by_case).sum() / n)
    mu = mean_a * mean_b
    auc = nu / mu
    nu_influence = a * by_case + b * by_control - 2.0 * nu
    mu_influence = a * mean_b + b * mean_a - 2.0 * mu
    if not conservative:
        # ν and μ each move with the cases' weights and with the controls' (n ν and n μ in
        # all, as the cases' own sums)
        nu_influence += weighted.censoring_term(a * by_case, n * nu)
        mu_influence += weighted.censoring_term(a * mean_b, n * mu)
    return auc, (nu_influence - auc * mu_influence) / mu


def _se(influence: np.ndarray) -> float:
    """R's ``sd(IF) / sqrt(n)``."""
    if not np.all(np.isfinite(influence)):
        return np.nan
    return float(np.std(influence, ddof=1) / np.sqrt(influence.size))
