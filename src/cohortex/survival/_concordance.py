"""Harrell's concordance of a risk score with survival, as R's ``survival::concordance``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import to_host
from .._cohort import as_cohort_matrix
from .._errors import CohortexError
from ..stats._cpu.concordance import pair_counts
from ._outcome import Outcome, sample_values

__all__ = ["Concordance", "concordance"]


@dataclass(frozen=True)
class Concordance:
    """Harrell's C of a risk score.

    Attributes
    ----------
    concordance : float
        The share of comparable pairs whose earlier event has the higher risk, ties in risk
        counting half: ``(concordant + tied_risk / 2) / (concordant + discordant +
        tied_risk)``. 0.5 is chance; 1 a perfect ranking.
    std_err : float
        Its standard error by the infinitesimal jackknife (R's ``sqrt(var)``).
    concordant, discordant, tied_risk, tied_time, tied_both : float
        The pairs by category (R's ``count``: concordant, discordant, tied.x, tied.y,
        tied.xy); pairs tied in time are not comparable.
    n : int
        Samples used (those with a risk).
    """

    concordance: float
    std_err: float
    concordant: float
    discordant: float
    tied_risk: float
    tied_time: float
    tied_both: float
    n: int


def concordance(
    cohort: Any,
    time: str | Any,
    event: str | Any,
    risk: str | Any,
    *,
    strata: str | Any | None = None,
) -> Concordance:
    """Harrell's concordance (C-index) of a risk score with survival, as R's
    ``concordance(Surv(time, event) ~ risk + strata(s), reverse = TRUE)``.

    A pair of samples is comparable when the earlier time is an event (a censored time tied
    with an event counts as later); it is concordant when that earlier event has the higher
    risk. Within strata only, when given. For a model's risk (a linear predictor, a
    predicted hazard) or one gene's expression as a prognostic marker.

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

    Returns
    -------
    Concordance
        The C-index, its standard error and the pair counts.

    Raises
    ------
    CohortexError
        For invalid outcomes, a risk that is not numbers, or no comparable pair.
    """
    dataset, ids, data = None, None, None
    if cohort is not None:
        data = as_cohort_matrix(cohort)
        dataset, ids = data.dataset, data.sample_ids
    else:
        if any(isinstance(v, str) for v in (time, event, risk, strata)):
            raise CohortexError("Without a cohort, time, event, risk and strata must be values.")
        ids = np.array([f"S{i + 1}" for i in range(len(np.asarray(time)))])
    outcome = Outcome.resolve(dataset, time, event, strata, ids)
    scores = _risk(data, risk, len(ids))
    used = ~np.isnan(scores)
    groups = np.zeros(len(ids), dtype=np.int64) if outcome.strata is None else outcome.strata
    counts = np.zeros(5)
    influence = np.zeros((len(ids), 5))
    for level in np.unique(groups[used]):
        rows = np.flatnonzero(used & (groups == level))
        found, shares = pair_counts(outcome.time[rows], outcome.event[rows], scores[rows])
        counts += found
        influence[rows] = shares
    pairs = counts[:3].sum()
    if pairs == 0:
        raise CohortexError(
            "No comparable pair of samples (an event before another sample's time); the "
            "concordance is undefined."
        )
    somers_d = (counts[0] - counts[1]) / pairs
    dfbeta = (influence[:, 0] - influence[:, 1]) / pairs - somers_d / pairs * influence[:, :3].sum(
        axis=1
    )
    return Concordance(
        concordance=float((somers_d + 1.0) / 2.0),
        std_err=float(np.sqrt((dfbeta**2).sum() / 4.0)),
        concordant=float(counts[0]),
        discordant=float(counts[1]),
        tied_risk=float(counts[2]),
        tied_time=float(counts[3]),
        tied_both=float(counts[4]),
        n=int(used.sum()),
    )


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
