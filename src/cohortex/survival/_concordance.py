"""The concordance of a risk score with survival, as R's ``survival::concordance``: Harrell's
C, and with time weights Uno's and the others R offers."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from .._backend import to_host
from .._errors import CohortexError
from ..stats._cpu.concordance import pair_counts
from ._outcome import Outcome, cluster_codes, sample_numbers, sample_source, sample_values

__all__ = ["TIME_WEIGHTS", "Concordance", "concordance", "concordance_of"]

# R's timewt: each comparable pair weighted by a function of its earlier event's time t,
# from the Kaplan–Meier curves of the stratum's survival S and censoring G just before t and
# the number at risk at t
TIME_WEIGHTS = ("n", "S", "S/G", "n/G2", "I")


@dataclass(frozen=True)
class Concordance:
    """The concordance of a risk score (Harrell's C; with time weights, Uno's or another).

    Attributes
    ----------
    concordance : float
        The share of comparable pairs whose earlier event has the higher risk, ties in risk
        counting half: ``(concordant + tied_risk / 2) / (concordant + discordant +
        tied_risk)``, each pair weighted by its time weight. 0.5 is chance; 1 a perfect
        ranking.
    std_err : float
        Its standard error by the infinitesimal jackknife (R's ``sqrt(var)``; with time
        weights, the weights taken as fixed, as R does).
    concordant, discordant, tied_risk, tied_time, tied_both : float
        The pairs by category, weighted (R's ``count``: concordant, discordant, tied.x,
        tied.y, tied.xy); pairs tied in time are not comparable.
    n : int
        Samples used (those with a risk).
    time_weights : str
        The time weights (:data:`TIME_WEIGHTS`; ``"n"``: none, Harrell's C).
    """

    concordance: float
    std_err: float
    concordant: float
    discordant: float
    tied_risk: float
    tied_time: float
    tied_both: float
    n: int
    time_weights: str = "n"


def concordance(
    cohort: Any,
    time: str | Any,
    event: str | Any,
    risk: str | Any,
    *,
    strata: str | Any | None = None,
    time_weights: str = "n",
    min_time: float | None = None,
    max_time: float | None = None,
    weights: str | Any | None = None,
    cluster: str | Any | None = None,
) -> Concordance:
    """The concordance (C-index) of a risk score with survival: Harrell's C, or with time
    weights Uno's C; as R's ``concordance(Surv(time, event) ~ risk + strata(s), reverse =
    TRUE, timewt, ymin, ymax, weights)``.

    A pair of samples is comparable when the earlier time is an event (a censored time tied
    with an event counts as later); it is concordant when that earlier event has the higher
    risk. Within strata only, when given. For a model's risk (a linear predictor, a
    predicted hazard) or one gene's expression as a prognostic marker.

    Harrell's C counts every comparable pair once, so it depends on the censoring: where
    many are censored early, the pairs of early events dominate it. Uno et al. (2011)
    weight each pair by ``1 / G(t−)²``, with ``G`` the Kaplan–Meier curve of the censoring
    and ``t`` the earlier event's time (``time_weights="n/G2"``), which makes the C
    consistent for a population quantity that does not depend on the censoring; it is
    usually reported up to a time ``max_time`` (τ) before the follow-up thins out.

    Parameters
    ----------
    cohort : path, xarray.Dataset, array or None
        Where ``time``, ``event``, ``risk`` and ``strata`` are looked up by name; None when
        they are given as values.
    time, event : str or sequence
        As for :func:`cox`.
    risk : str or sequence of float
        The risk of each sample (higher: shorter survival expected): a sample variable, a
        gene id of the cohort, or the values. Samples whose risk is missing are left out.
    strata : str or sequence, optional
        Compare samples within each level only (R's ``strata()``).
    time_weights : {"n", "S", "S/G", "n/G2", "I"}, default "n"
        R's ``timewt``, computed within each stratum at each event time ``t`` from the
        number at risk ``n(t)`` and the Kaplan–Meier curves of the survival ``S`` and of
        the censoring ``G`` just before ``t``: ``"n"`` 1 (Harrell's C); ``"n/G2"``
        ``1 / G(t−)²`` (Uno's C); ``"S"`` ``N S(t−) / n(t)`` and ``"S/G"`` ``N S(t−) /
        (G(t−) n(t))`` (N the stratum's samples; Peto–Peto's and Schemper's); ``"I"``
        ``1 / n(t)``. A stratum with fewer than two events is weighted by ``"n"``, as R
        does.
    min_time : float, optional
        R's ``ymin``: times below it are raised to it (their events then tie there); a
        censored time below it is refused.
    max_time : float, optional
        R's ``ymax``: pairs whose earlier event comes after it do not count (Uno's τ).
    weights : str or sequence of float, optional
        Case weights (a sample variable or the values; positive): a pair counts the product
        of its samples' weights, and the time weights' curves are weighted Kaplan–Meier
        curves (R's ``weights``), e.g. inverse-probability weights of a sampling design.
    cluster : str or sequence, optional
        Groups of correlated samples (e.g. a patient's several samples): the standard
        error sums each group's influence first (R's ``cluster``).

    Returns
    -------
    Concordance
        The C-index, its standard error and the pair counts.

    Raises
    ------
    CohortexError
        For invalid outcomes, a risk that is not numbers, weights that are not positive
        numbers, unknown time weights, a censored time below ``min_time``, or no comparable
        pair.
    """
    if time_weights not in TIME_WEIGHTS:
        raise CohortexError(
            f"time_weights must be one of {', '.join(map(repr, TIME_WEIGHTS))}; "
            f"got {time_weights!r}."
        )
    data, dataset, ids = sample_source(
        cohort, {"time": time, "event": event, "risk": risk, "strata": strata}
    )
    outcome = Outcome.resolve(dataset, time, event, strata, ids)
    scores = _risk(data, risk, len(ids))
    case = (
        np.ones(len(ids))
        if weights is None
        else sample_numbers(
            SimpleNamespace(dataset=dataset, sample_ids=ids),
            weights,
            "weights",
            len(ids),
            positive=True,
        )
    )
    used = ~np.isnan(scores)
    times = outcome.time
    if min_time is not None:
        early = used & (outcome.event == 0) & (times < min_time)
        if early.any():
            raise CohortexError(
                f"Sample {ids[np.flatnonzero(early)[0]]!r} is censored at {times[early][0]:g}, "
                f"before min_time {min_time:g}: whether its event came before min_time is "
                "unknown (R's concordance refuses it too)."
            )
        times = np.maximum(times, min_time)
    groups = np.zeros(len(ids), dtype=np.int64) if outcome.strata is None else outcome.strata
    clusters = None
    if cluster is not None:
        clusters = cluster_codes(sample_values(dataset, cluster, "cluster", len(ids), ids), ids)
    return concordance_of(
        times[used],
        outcome.event[used],
        groups[used],
        scores[used],
        case[used],
        None if clusters is None else clusters[used],
        time_weights=time_weights,
        max_time=max_time,
    )


def concordance_of(
    time: np.ndarray,
    event: np.ndarray,
    strata: np.ndarray,
    risk: np.ndarray,
    case: np.ndarray,
    clusters: np.ndarray | None = None,
    *,
    time_weights: str = "n",
    max_time: float | None = None,
    required: bool = True,
) -> Concordance:
    """:func:`concordance` of checked arrays, each of shape (n_samples,): times, 0/1 events,
    stratum codes, finite risks, positive case weights and cluster codes (or None). Without
    a comparable pair: refused, or NaN when not ``required`` (a model's own C)."""
    counts = np.zeros(5)
    influence = np.zeros((time.size, 5))
    for level in np.unique(strata):
        rows = np.flatnonzero(strata == level)
        weight = _time_weights(time[rows], event[rows], case[rows], time_weights, max_time)
        found, shares = pair_counts(time[rows], event[rows], risk[rows], weight, case[rows])
        counts += found
        influence[rows] = shares
    pairs = counts[:3].sum()
    if pairs == 0 and not required:
        return Concordance(
            np.nan,
            np.nan,
            0.0,
            0.0,
            0.0,
            float(counts[3]),
            float(counts[4]),
            int(time.size),
            time_weights,
        )
    if pairs == 0:
        raise CohortexError(
            "No comparable pair of samples (an event before another sample's time"
            + (f", up to max_time {max_time:g}" if max_time is not None else "")
            + "); the concordance is undefined."
        )
    somers_d = (counts[0] - counts[1]) / pairs
    dfbeta = case * (
        (influence[:, 0] - influence[:, 1]) / pairs
        - somers_d / pairs * influence[:, :3].sum(axis=1)
    )
    if clusters is not None:
        dfbeta = np.bincount(clusters, weights=dfbeta)
    return Concordance(
        concordance=float((somers_d + 1.0) / 2.0),
        std_err=float(np.sqrt((dfbeta**2).sum() / 4.0)),
        concordant=float(counts[0]),
        discordant=float(counts[1]),
        tied_risk=float(counts[2]),
        tied_time=float(counts[3]),
        tied_both=float(counts[4]),
        n=int(time.size),
        time_weights=time_weights,
    )


def _time_weights(
    time: np.ndarray, event: np.ndarray, case: np.ndarray, kind: str, max_time: float | None
) -> np.ndarray:
    """Each sample's time weight in one stratum (R's ``timewt``, read for events only):
    from the (case-weighted) number at risk at its time and the Kaplan–Meier curves of the
    survival and of the censoring just before it (censored times tied with an event fall
    after it, as R's ``fastkm1`` has them)."""
    n = float(case.sum())
    weight = np.ones(time.size)
    if kind != "n" and event.sum() >= 2:
        times, index = np.unique(time, return_inverse=True)
        deaths = np.bincount(index, weights=event * case, minlength=times.size)
        censored = np.bincount(index, weights=(1.0 - event) * case, minlength=times.size)
        at_risk = n - np.concatenate(([0.0], np.cumsum(deaths + censored)[:-1]))
        with np.errstate(divide="ignore", invalid="ignore"):
            # S and G just before each time: the product over the earlier times
            survival = np.cumprod(np.where(at_risk > 0, 1.0 - deaths / at_risk, 1.0))
            after = at_risk - deaths  # the censored at a time fall after its deaths
            censoring = np.cumprod(np.where(after > 0, 1.0 - censored / after, 1.0))
        before_s = np.concatenate(([1.0], survival[:-1]))
        before_g = np.concatenate(([1.0], censoring[:-1]))
        by_time = {
            "S": n * before_s / at_risk,
            "S/G": n * before_s / (before_g * at_risk),
            "n/G2": 1.0 / before_g**2,
            "I": 1.0 / at_risk,
        }[kind]
        weight = by_time[index]
    if max_time is not None:
        weight = np.where(time > max_time, 0.0, weight)
    return weight


def _risk(data: Any, risk: Any, n: int) -> np.ndarray:
    """Each sample's risk (NaN where missing): a gene's values, a sample variable or values."""
    if isinstance(risk, str) and data is not None:
        genes = [str(g) for g in data.gene_ids]
        if risk in genes and risk not in data.sample_variables():
            column = data.matrix[:, genes.index(risk)]
            values = to_host(getattr(column, "compute", lambda: column)())
            return np.asarray(values, dtype=np.float64)
    dataset = data.dataset if data is not None else None
    try:
        scores = np.asarray(sample_values(dataset, risk, "risk", n, None), dtype=np.float64)
    except (TypeError, ValueError):
        raise CohortexError("The risk scores must be numbers.") from None
    if np.isinf(scores).any():
        raise CohortexError("The risk scores must be finite (missing ones may be NaN).")
    return scores
