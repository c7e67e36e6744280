"""Survival compared between groups of samples: ``compare_groups()``, as R's ``survdiff``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _stats

from .._errors import CohortexError
from ._outcome import Outcome, sample_source, sample_values

__all__ = ["GroupComparison", "compare_groups", "group_labels", "ordered_levels"]


@dataclass(frozen=True)
class GroupComparison:
    """The log-rank (or G-rho) test of survival between groups (:func:`compare_groups`).

    Attributes
    ----------
    table : pandas.DataFrame
        Indexed by group: ``n`` (samples), ``observed`` and ``expected`` events (weighted
        by ``S(t−)^ρ`` when ρ ≠ 0, as R's), ``oe2_e`` ``(O − E)² / E`` and ``oe2_v``
        ``(O − E)² / V`` (R's print).
    statistic : float
        The χ² statistic on ``df`` degrees of freedom.
    df : int
        Groups with an expected event, less one.
    pvalue : float
    variance : ndarray of shape (n_groups, n_groups)
        The covariance of ``observed − expected`` (R's ``var``).
    rho : float
    """

    table: pd.DataFrame
    statistic: float
    df: int
    pvalue: float
    variance: np.ndarray = field(repr=False)
    rho: float = 0.0


def compare_groups(
    cohort: Any,
    time: str | Any,
    event: str | Any,
    by: str | Any,
    *,
    strata: str | Any | None = None,
    rho: float = 0.0,
) -> GroupComparison:
    """Whether survival differs between groups of samples — subtypes, treatment arms, a
    signature's risk groups: the log-rank test, as R's ``survdiff(Surv(time, event) ~ by
    (+ strata(s)), rho)``.

    At each event time the events of each group are compared with those expected were the
    hazard the same in all groups (its share of the samples at risk), summed over the times
    and, with ``strata``, over the strata, each with its own risk sets. ``rho`` weights each
    time by the pooled Kaplan–Meier estimate just before it to the power ρ: 0 is the
    log-rank test (every event alike), 1 Peto & Peto's modification of the Gehan–Wilcoxon
    test (early differences weigh more).

    Parameters
    ----------
    cohort : path, xarray.Dataset, array or None
        Where ``time``, ``event``, ``by`` and ``strata`` are looked up by name; None when
        they are given as values.
    time, event : str or sequence
        As for :func:`cox`.
    by : str or sequence
        Each sample's group (a sample variable or the labels); samples without one are
        left out, as R's ``na.omit``.
    strata : str or sequence, optional
        A sample variable: the groups are compared within each of its levels; samples
        without one are left out.
    rho : float, default 0
        The G-rho family's ρ (≥ 0).

    Returns
    -------
    GroupComparison
        The groups' observed and expected events, the χ² statistic and its p-value.

    Raises
    ------
    CohortexError
        For invalid outcomes, fewer than two groups, a negative ρ, or no event.
    """
    if not (np.isfinite(rho) and rho >= 0):
        raise CohortexError(f"'rho' must be a finite number >= 0; got {rho!r}.")
    _, dataset, ids = sample_source(
        cohort, {"time": time, "event": event, "by": by, "strata": strata}
    )
    labels = group_labels(sample_values(dataset, by, "by", len(ids), ids))
    kept = labels != ""
    levels = None
    if strata is not None:  # samples without a stratum are left out too, as R's na.omit
        levels = group_labels(sample_values(dataset, strata, "strata", len(ids), ids))
        kept &= levels != ""
    outcome = Outcome.resolve(
        dataset,
        np.asarray(sample_values(dataset, time, "time", len(ids), ids))[kept],
        np.asarray(sample_values(dataset, event, "event", len(ids), ids))[kept],
        None if levels is None else levels[kept],
        np.asarray(ids)[kept],
    )
    names = ordered_levels(labels[kept])
    if len(names) < 2:
        raise CohortexError(f"compare_groups() needs two groups or more; got {names}.")
    if outcome.event.sum() == 0:
        raise CohortexError("No sample has an event: there is nothing to compare.")
    group = pd.Categorical(labels[kept], categories=names).codes.astype(np.int64)
    codes = np.zeros(group.size, np.int64) if outcome.strata is None else outcome.strata
    k = len(names)
    observed, expected, variance = np.zeros(k), np.zeros(k), np.zeros((k, k))
    for level in np.unique(codes):
        rows = codes == level
        o, e, v = _stratum(outcome.time[rows], outcome.event[rows], group[rows], k, rho)
        observed += o
        expected += e
        variance += v
    tested = np.flatnonzero(expected > 0)  # R leaves out a group with nothing expected
    statistic = 0.0
    if tested.size >= 2:
        gap = (observed - expected)[tested][1:]
        statistic = float(gap @ np.linalg.solve(variance[np.ix_(tested, tested)][1:, 1:], gap))
    df = int(tested.size - 1)
    gap = observed - expected
    with np.errstate(divide="ignore", invalid="ignore"):
        table = pd.DataFrame(
            {
                "n": np.bincount(group, minlength=k),
                "observed": observed,
                "expected": expected,
                "oe2_e": gap**2 / expected,
                "oe2_v": gap**2 / np.diag(variance),
            },
            index=pd.Index(names, name="group"),
        )
    return GroupComparison(
        table=table,
        statistic=statistic,
        df=df,
        pvalue=float(_stats.chi2.sf(statistic, df)) if df > 0 else np.nan,
        variance=variance,
        rho=float(rho),
    )


def group_labels(values: Any) -> np.ndarray:
    """Each sample's group label as text, "" where it is missing; whole numbers held as
    floats (a numeric column with gaps) without their ".0"."""
    series = pd.Series(values)
    missing = series.isna().to_numpy()
    present = series[~missing]
    if series.dtype.kind == "f" and np.all(present == np.round(present)):
        series = series.map(lambda v: v if pd.isna(v) else str(int(v)))
    text = series.astype(str).to_numpy(dtype=object)
    return np.where(missing | (text == "") | (text == "nan"), "", text)


def ordered_levels(labels: np.ndarray) -> list[str]:
    """The distinct labels, in numeric order when they are all numbers (R's factor levels
    of a numeric variable), else alphabetical."""
    distinct = sorted(set(labels.tolist()))
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return distinct


def _stratum(
    time: np.ndarray, event: np.ndarray, group: np.ndarray, k: int, rho: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One stratum's observed and expected events per group (k,) and their covariance (k, k),
    as R's survdiff2: at each distinct time with d events among N at risk, n_g of group g,
    ``E_g += w d n_g / N`` and ``V += w² d (N − d) / (N (N − 1)) (diag(n) − n nᵀ / N)``,
    ``w = S(t−)^ρ`` of the pooled Kaplan–Meier curve."""
    times, index = np.unique(time, return_inverse=True)
    leaving = np.zeros((times.size, k))
    deaths = np.zeros((times.size, k))
    np.add.at(leaving, (index, group), 1.0)
    np.add.at(deaths, (index, group), event)
    at_risk = np.cumsum(leaving[::-1], axis=0)[::-1]  # (times, k)
    total = at_risk.sum(axis=1)
    dead = deaths.sum(axis=1)
    weight = np.ones(times.size)
    if rho != 0:
        survival = np.cumprod(1.0 - dead / total)
        weight = np.concatenate(([1.0], survival[:-1])) ** rho
    observed = (weight[:, None] * deaths).sum(axis=0)
    expected = (weight * dead / total) @ at_risk
    informative = (dead > 0) & (total > 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(
            informative, weight**2 * dead * (total - dead) / (total * (total - 1.0)), 0.0
        )
    variance = np.diag(scale @ at_risk) - (at_risk * (scale / total)[:, None]).T @ at_risk
    return observed, expected, variance
