"""Kaplan–Meier curves: ``kaplan_meier()``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _stats

from .._backend import to_host
from .._cohort import as_cohort_matrix
from .._errors import CohortexError
from ..stats._logrank import high_expression
from ._compare import group_labels
from ._outcome import Outcome, sample_numbers, sample_values

__all__ = ["kaplan_meier", "median_survival"]


def kaplan_meier(
    cohort: Any,
    time: str | Any,
    event: str | Any,
    *,
    by: str | Any | None = None,
    gene: str | None = None,
    quantile: float = 0.5,
    confidence: float = 0.95,
    weights: str | Any | None = None,
    robust: bool | None = None,
) -> pd.DataFrame:
    """Kaplan–Meier survival curves with Greenwood intervals, as R's ``survfit``.

    Parameters
    ----------
    cohort : path, xarray.Dataset, array or None
        Where ``time``, ``event``, ``by`` and ``gene`` are looked up; None when they are
        given as values.
    time, event : str or sequence
        As for :func:`cox`.
    by : str or sequence, optional
        Groups of samples (a sample variable or one label per sample): one curve each.
    gene : str, optional
        A gene id: curves of its samples above its ``quantile`` ("high") and the rest
        ("low"), as :func:`logrank` splits them.
    quantile : float, default 0.5
    confidence : float, default 0.95
        Level of the pointwise intervals: R's default ``conf.type = "log"``,
        ``S · exp(± z · se)`` with Greenwood's ``se = √Σ d / (n (n − d))``.
    weights : str or sequence of float, optional
        Case weights (positive; a sample variable or the values), e.g. inverse-probability
        weights for curves adjusted to a population: the numbers at risk, of events and of
        censored samples are sums of weights (R's ``weights``).
    robust : bool, optional
        The infinitesimal-jackknife standard error (each sample's weighted influence on
        log S) in place of Greenwood's; R's default: with a weight that is not an integer.

    Returns
    -------
    pandas.DataFrame
        One row per group and distinct time (event or censoring), as ``survfit``'s:
        ``group``, ``time``, ``n_risk``, ``n_event``, ``n_censor`` (weighted: floats),
        ``survival``, ``std_err`` (of −log S), ``lower``, ``upper`` (NaN where S is 0).
    """
    if not 0 < confidence < 1:
        raise CohortexError(f"'confidence' must be in (0, 1); got {confidence!r}.")
    if by is not None and gene is not None:
        raise CohortexError("Give 'by' (sample groups) or 'gene' (its high/low split), not both.")
    dataset, n_samples, ids = None, None, None
    if cohort is not None:
        data = as_cohort_matrix(cohort)
        dataset, n_samples, ids = data.dataset, data.matrix.shape[0], data.sample_ids
    else:
        if isinstance(time, str) or gene is not None:
            raise CohortexError("Without a cohort, 'time' and 'event' must be values, not names.")
        n_samples = len(np.asarray(time))
        ids = np.array([f"S{i + 1}" for i in range(n_samples)])
    outcome = Outcome.resolve(dataset, time, event, None, ids)
    case = (
        None
        if weights is None
        else sample_numbers(
            SimpleNamespace(dataset=dataset, sample_ids=ids),
            weights,
            "weights",
            n_samples,
            positive=True,
        )
    )
    if robust is None:  # R's default
        robust = case is not None and bool(np.any(case != np.floor(case)))
    if gene is not None:
        genes = [str(g) for g in data.gene_ids]
        if gene not in genes:
            raise CohortexError(f"The gene {gene!r} is not in the cohort.")
        column = data.matrix[:, genes.index(gene)]
        values = np.asarray(to_host(getattr(column, "compute", lambda: column)()), np.float64)
        high = np.asarray(to_host(high_expression(values[:, None], quantile)))[:, 0]
        labels = np.where(np.isnan(values), "", np.where(high, "high", "low"))
    elif by is not None:
        labels = group_labels(sample_values(dataset, by, "by", n_samples, ids))
    else:
        labels = np.full(n_samples, "all")
    z = float(_stats.norm.ppf((1.0 + confidence) / 2.0))
    frames, records = [], {}
    for group in sorted(set(labels) - {"", "nan"}):
        rows = labels == group
        records[group] = int(rows.sum())
        weight = np.ones(int(rows.sum())) if case is None else case[rows]
        curve = _curve(outcome.time[rows], outcome.event[rows], weight, z, bool(robust))
        if case is None:
            curve = curve.astype({"n_risk": np.int64, "n_event": np.int64, "n_censor": np.int64})
        frames.append(curve.assign(group=group))
    table = pd.concat(frames, ignore_index=True)
    table = table[["group", *[c for c in table.columns if c != "group"]]]
    table.attrs["confidence"] = confidence
    table.attrs["records"] = records  # samples per group (the counts are weighted)
    return table


def _curve(
    time: np.ndarray, event: np.ndarray, weight: np.ndarray, z: float, robust: bool
) -> pd.DataFrame:
    """One group's Kaplan–Meier table, from the samples' case weights."""
    distinct, inverse = np.unique(time, return_inverse=True)
    events = np.bincount(inverse, weights=event * weight, minlength=distinct.size)
    censored = np.bincount(inverse, weights=(1.0 - event) * weight, minlength=distinct.size)
    leaving = events + censored
    at_risk = leaving[::-1].cumsum()[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.cumprod(1.0 - events / at_risk)
        if robust:
            std_err = _jackknife(inverse, event, weight, events, at_risk)
        else:
            std_err = np.sqrt(np.cumsum(events / (at_risk * (at_risk - events))))
        lower = survival * np.exp(-z * std_err)
        upper = np.minimum(survival * np.exp(z * std_err), 1.0)
    empty = survival <= 0
    return pd.DataFrame(
        {
            "time": distinct,
            "n_risk": at_risk,
            "n_event": events,
            "n_censor": censored,
            "survival": survival,
            "std_err": std_err,
            "lower": np.where(empty, np.nan, lower),
            "upper": np.where(empty, np.nan, upper),
        }
    )


def _jackknife(
    inverse: np.ndarray,
    event: np.ndarray,
    weight: np.ndarray,
    events: np.ndarray,
    at_risk: np.ndarray,
) -> np.ndarray:
    """The infinitesimal-jackknife standard error of −log S at each distinct time (R's robust
    survfit): √Σᵢ (wᵢ Uᵢ(t))², with sample i's influence on −log S(t)
    ``Uᵢ(t) = δᵢ 1(tᵢ ≤ t) c(tᵢ) − H(min(t, tᵢ))``, ``c = 1 / (n − d)`` and ``H`` the running
    sum of ``d / (n (n − d))``: constant after tᵢ, so two running sums give every time's."""
    c = 1.0 / (at_risk - events)
    hazard = np.cumsum(events / at_risk * c)
    own = event * c[inverse] - hazard[inverse]  # Uᵢ from tᵢ on
    squared = np.bincount(inverse, weights=(weight * own) ** 2, minlength=at_risk.size)
    settled = np.cumsum(squared)  # the samples whose time has come
    later = np.bincount(inverse, weights=weight**2, minlength=at_risk.size)
    waiting = np.concatenate((np.cumsum(later[::-1])[::-1][1:], [0.0]))  # tᵢ > t
    return np.sqrt(settled + waiting * hazard**2)


def median_survival(
    cohort: Any,
    time: str | Any,
    event: str | Any,
    *,
    by: str | Any | None = None,
    gene: str | None = None,
    quantile: float = 0.5,
    confidence: float = 0.95,
    restricted_time: float | None = None,
    weights: str | Any | None = None,
    robust: bool | None = None,
) -> pd.DataFrame:
    """Each group's median survival with its confidence limits, and its restricted mean
    survival time, as R's ``summary(survfit(...), rmean = ...)$table``.

    The median is the first time the Kaplan–Meier curve is at or below 0.5 (where the curve
    is exactly 0.5 over a stretch, the midpoint of that stretch, as R); its limits are the
    times where the curve's pointwise interval limits (:func:`kaplan_meier`'s) cross 0.5
    (Brookmeyer & Crowley). Each is NaN where the curve does not reach 0.5. The restricted
    mean is the area under the curve up to ``restricted_time`` τ: the expected survival
    time within τ, defined when the median is not, with its standard error (R's).

    Parameters
    ----------
    cohort, time, event, by, gene, quantile, confidence, weights, robust
        As for :func:`kaplan_meier` (the limits from its intervals).
    restricted_time : float, optional
        τ; default the largest follow-up time of all the samples (R's ``rmean =
        "common"``). A curve that ends before τ is extended at its last value.

    Returns
    -------
    pandas.DataFrame
        Indexed by group: ``records`` (samples), ``events`` (weighted), ``median``, ``lower``,
        ``upper``, ``rmean``, ``rmean_se``; ``restricted_time`` in ``attrs``.
    """
    curves = kaplan_meier(
        cohort,
        time,
        event,
        by=by,
        gene=gene,
        quantile=quantile,
        confidence=confidence,
        weights=weights,
        robust=robust,
    )
    horizon = float(curves["time"].max()) if restricted_time is None else float(restricted_time)
    if not (np.isfinite(horizon) and horizon >= 0):
        raise CohortexError(f"'restricted_time' must be a time >= 0; got {restricted_time!r}.")
    rows = {}
    for group, curve in curves.groupby("group", sort=False):
        times = curve["time"].to_numpy()
        mean, mean_se = _restricted_mean(
            times,
            curve["survival"].to_numpy(),
            curve["n_risk"].to_numpy(np.float64),
            curve["n_event"].to_numpy(np.float64),
            horizon,
        )
        rows[group] = {
            "records": curves.attrs["records"][group],
            "events": curve["n_event"].sum(),
            "median": _first_half(curve["survival"].to_numpy(), times),
            "lower": _first_half(curve["lower"].to_numpy(), times),
            "upper": _first_half(curve["upper"].to_numpy(), times),
            "rmean": mean,
            "rmean_se": mean_se,
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "group"
    table.attrs.update(confidence=confidence, restricted_time=horizon)
    return table


def _first_half(curve: np.ndarray, times: np.ndarray) -> float:
    """The first time ``curve`` (decreasing, NaN where undefined) is at or below 0.5; where
    it is 0.5 (to R's all.equal tolerance), the midpoint to the first time below (R's
    ``minmin``); NaN if never."""
    tolerance = np.sqrt(np.finfo(float).eps)
    keep = ~np.isnan(curve) & (curve < 0.5 + tolerance)
    if not keep.any():
        return float("nan")
    x, y = times[keep], curve[keep]
    if abs(y[0] - 0.5) < tolerance and np.any(y < y[0]):
        return float((x[0] + x[np.flatnonzero(y < y[0])[0]]) / 2.0)
    return float(x[0])


def _restricted_mean(
    times: np.ndarray, survival: np.ndarray, at_risk: np.ndarray, events: np.ndarray, end: float
) -> tuple[float, float]:
    """The area under the curve from 0 to ``end`` and its standard error (R's survmean:
    rectangles under the step function, the variance from Greenwood's increments)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        greenwood = np.where(at_risk - events == 0, 0.0, events / (at_risk * (at_risk - events)))
    keep = times <= end
    if not keep.any():  # τ before the first time
        edges, heights, increments = np.array([end]), np.array([1.0]), np.array([0.0])
    else:
        edges = np.append(times[keep], end)
        heights = np.append(survival[keep], survival[keep][-1])
        increments = np.append(greenwood[keep], 0.0)
    start = min(0.0, float(times.min()))
    widths = np.diff(np.concatenate(([start], edges)))
    rectangles = widths * np.concatenate(([1.0], heights[:-1]))
    tail = np.cumsum(rectangles[1:][::-1])  # the area after each time
    variance = float(np.sum(tail**2 * increments[::-1][1:]))
    return float(rectangles.sum()), float(np.sqrt(variance))
