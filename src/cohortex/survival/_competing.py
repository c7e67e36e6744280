"""Cumulative incidence with competing risks and Gray's test: ``cumulative_incidence()``, as
R's ``cmprsk::cuminc``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _stats

from .._errors import CohortexError
from ..stats._cpu.competing import cumulative_incidence_steps, gray_scores
from ._compare import group_labels, ordered_levels
from ._outcome import Outcome, sample_source, sample_values

__all__ = ["CumulativeIncidence", "cumulative_incidence"]


@dataclass(frozen=True)
class CumulativeIncidence:
    """Each cause's cumulative incidence per group, and Gray's tests (:func:`cumulative_incidence`).

    Attributes
    ----------
    curves : pandas.DataFrame
        One row per (cause, group, time the cause has events): ``group``, ``cause``,
        ``time``, ``estimate`` (the probability of an event of that cause by then, the
        other causes competing), ``variance`` and ``std_err`` (Gray's).
    tests : pandas.DataFrame
        With two groups or more, indexed by cause: ``statistic``, ``df`` and ``pvalue`` of
        Gray's test; empty otherwise.
    follow_up : dict
        Each group's last follow-up time: the curves hold their last value up to it.
    """

    curves: pd.DataFrame
    tests: pd.DataFrame
    follow_up: dict[str, float]

    def at(self, times: Any) -> pd.DataFrame:
        """The estimates and variances at ``times`` (R's ``timepoints``): one row per
        (group, cause, time); 0 before the first event, NaN after the group's last
        follow-up."""
        grid = np.asarray(times, dtype=np.float64).reshape(-1)
        if grid.size == 0 or not np.all(np.isfinite(grid)):
            raise CohortexError("at() needs finite times.")
        rows = []
        for (group, cause), curve in self.curves.groupby(["group", "cause"], sort=False):
            index = np.searchsorted(curve["time"].to_numpy(), grid, side="right") - 1
            seen = index >= 0
            estimate = np.where(seen, curve["estimate"].to_numpy()[np.maximum(index, 0)], 0.0)
            variance = np.where(seen, curve["variance"].to_numpy()[np.maximum(index, 0)], 0.0)
            beyond = grid > self.follow_up[str(group)]
            rows.append(
                pd.DataFrame(
                    {
                        "group": group,
                        "cause": cause,
                        "time": grid,
                        "estimate": np.where(beyond, np.nan, estimate),
                        "variance": np.where(beyond, np.nan, variance),
                    }
                )
            )
        return pd.concat(rows, ignore_index=True)


def cumulative_incidence(
    cohort: Any,
    time: str | Any,
    status: str | Any,
    *,
    by: str | Any | None = None,
    strata: str | Any | None = None,
    rho: float = 0.0,
    censored: Any = 0,
) -> CumulativeIncidence:
    """The cumulative incidence of each cause of an event when causes compete (relapse
    or death first, say), per group of samples, and Gray's test of each cause between the
    groups; as R's ``cmprsk::cuminc(time, status, group, strata, rho, cencode)``.

    With competing causes, one minus the Kaplan–Meier curve of one cause (the others
    censored) overstates its probability: a patient who died cannot relapse. The
    cumulative incidence ``F_k(t)`` sums, over the cause's event times up to t, the
    probability of being event-free just before (the Kaplan–Meier curve of any event)
    times the cause's hazard then; the causes' incidences and the event-free probability
    add up to one. Gray's test compares a cause's incidence between groups, within strata
    when given, weighting times by ``(1 − F_k(t−))^ρ``.

    Parameters
    ----------
    cohort : path, xarray.Dataset, array or None
        Where ``time``, ``status``, ``by`` and ``strata`` are looked up by name; None when
        they are given as values.
    time : str or sequence
        Follow-up times (≥ 0).
    status : str or sequence
        Each sample's cause of event, or the ``censored`` code: e.g. 0 censored, 1 relapse,
        2 death. Causes are reported in sorted order.
    by : str or sequence, optional
        Groups of samples (e.g. a signature's risk groups): a curve each and the tests
        between them. Samples without a group are left out.
    strata : str or sequence, optional
        Gray's tests sum over its levels (the curves do not).
    rho : float, default 0
        The tests' weight power.
    censored : default 0
        The ``status`` code of a censored time.

    Returns
    -------
    CumulativeIncidence

    Raises
    ------
    CohortexError
        For invalid times, a missing status, no event, or a negative ρ.
    """
    if not (np.isfinite(rho) and rho >= 0):
        raise CohortexError(f"'rho' must be a finite number >= 0; got {rho!r}.")
    _, dataset, ids = sample_source(
        cohort, {"time": time, "status": status, "by": by, "strata": strata}
    )
    n = len(ids)
    labels = (
        np.full(n, "all", dtype=object)
        if by is None
        else group_labels(sample_values(dataset, by, "by", n, ids))
    )
    codes = group_labels(sample_values(dataset, status, "status", n, ids))
    censored_code = group_labels([censored])[0]
    kept = labels != ""
    if np.any(codes[kept] == ""):
        first = str(ids[np.flatnonzero(kept & (codes == ""))[0]])
        raise CohortexError(f"The status of sample {first!r} is missing.")
    failed = (codes != censored_code).astype(np.float64)
    # the times and strata checked as survival outcomes (any event counts as one)
    outcome = Outcome.resolve(
        dataset,
        np.asarray(sample_values(dataset, time, "time", n, ids))[kept],
        failed[kept],
        None if strata is None else sample_values(dataset, strata, "strata", n, ids)[kept],
        np.asarray(ids)[kept],
    )
    labels, codes = labels[kept], codes[kept]
    causes = ordered_levels(codes[codes != censored_code])
    if not causes:
        raise CohortexError("No sample has an event: there is no incidence to estimate.")
    groups = ordered_levels(labels)
    # integer codes: comparisons of text arrays cost more than the estimates
    group_codes = pd.Categorical(labels, categories=groups).codes.astype(np.int64)
    cause_codes = pd.Categorical(codes, categories=causes).codes.astype(np.int64)  # −1 censored
    order = np.argsort(outcome.time, kind="stable")
    time_sorted = outcome.time[order]
    members = {group: order[group_codes[order] == g] for g, group in enumerate(groups)}
    follow_up = {group: float(outcome.time[rows].max()) for group, rows in members.items()}
    curves = []
    for c, cause in enumerate(causes):  # R's order: each cause's curves, group by group
        for group, rows in members.items():
            times, estimate, variance = cumulative_incidence_steps(
                outcome.time[rows], outcome.event[rows], (cause_codes[rows] == c).astype(float)
            )
            curves.append(
                pd.DataFrame(
                    {
                        "group": group,
                        "cause": cause,
                        "time": times,
                        "estimate": estimate,
                        "variance": variance,
                        "std_err": np.sqrt(variance),
                    }
                )
            )
    tests = pd.DataFrame(columns=["statistic", "df", "pvalue"], index=pd.Index([], name="cause"))
    if len(groups) > 1:
        group_sorted = group_codes[order]
        stratum = (
            np.zeros(order.size, np.int64) if outcome.strata is None else outcome.strata[order]
        )
        found = {}
        for c, cause in enumerate(causes):
            kind = np.where(
                outcome.event[order] == 0, 0, np.where(cause_codes[order] == c, 1, 2)
            ).astype(np.int64)
            score = np.zeros(len(groups) - 1)
            variance_sum = np.zeros((len(groups) - 1, len(groups) - 1))
            for level in np.unique(stratum):
                inside = stratum == level
                s, v = gray_scores(
                    time_sorted[inside], kind[inside], group_sorted[inside], len(groups), rho
                )
                score += s
                variance_sum += v
            try:
                statistic = float(score @ np.linalg.solve(variance_sum, score))
            except np.linalg.LinAlgError:
                statistic = np.nan
            df = len(groups) - 1
            found[cause] = (statistic, df, float(_stats.chi2.sf(statistic, df)))
        tests = pd.DataFrame.from_dict(found, orient="index", columns=["statistic", "df", "pvalue"])
        tests.index.name = "cause"
    return CumulativeIncidence(
        curves=pd.concat(curves, ignore_index=True), tests=tests, follow_up=follow_up
    )
