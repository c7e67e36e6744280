"""Kaplan–Meier curves: ``kaplan_meier()``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _stats

from .._backend import to_host
from .._cohort import as_cohort_matrix
from .._errors import CohortexError
from ..stats._logrank import high_expression
from ._outcome import Outcome, sample_values

__all__ = ["kaplan_meier"]


def kaplan_meier(
    cohort: Any,
    time: str | Any,
    event: str | Any,
    *,
    by: str | Any | None = None,
    gene: str | None = None,
    quantile: float = 0.5,
    confidence: float = 0.95,
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

    Returns
    -------
    pandas.DataFrame
        One row per group and distinct time (event or censoring), as ``survfit``'s:
        ``group``, ``time``, ``n_risk``, ``n_event``, ``n_censor``, ``survival``, ``std_err``
        (of −log S), ``lower``, ``upper`` (NaN where S is 0).
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
    if gene is not None:
        genes = [str(g) for g in data.gene_ids]
        if gene not in genes:
            raise CohortexError(f"The gene {gene!r} is not in the cohort.")
        column = data.matrix[:, genes.index(gene)]
        values = np.asarray(to_host(getattr(column, "compute", lambda: column)()), np.float64)
        high = np.asarray(to_host(high_expression(values[:, None], quantile)))[:, 0]
        labels = np.where(np.isnan(values), "", np.where(high, "high", "low"))
    elif by is not None:
        labels = pd.Series(sample_values(dataset, by, "by", n_samples, ids)).astype(str).to_numpy()
    else:
        labels = np.full(n_samples, "all")
    z = float(_stats.norm.ppf((1.0 + confidence) / 2.0))
    frames = []
    for group in sorted(set(labels) - {"", "nan"}):
        rows = labels == group
        frames.append(_curve(outcome.time[rows], outcome.event[rows], z).assign(group=group))
    table = pd.concat(frames, ignore_index=True)
    table = table[["group", *[c for c in table.columns if c != "group"]]]
    table.attrs["confidence"] = confidence
    return table


def _curve(time: np.ndarray, event: np.ndarray, z: float) -> pd.DataFrame:
    """One group's Kaplan–Meier table."""
    distinct, inverse = np.unique(time, return_inverse=True)
    events = np.bincount(inverse, weights=event, minlength=distinct.size)
    censored = np.bincount(inverse, weights=1.0 - event, minlength=distinct.size)
    leaving = events + censored
    at_risk = leaving[::-1].cumsum()[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.cumprod(1.0 - events / at_risk)
        greenwood = np.cumsum(events / (at_risk * (at_risk - events)))
        std_err = np.sqrt(greenwood)
        lower = survival * np.exp(-z * std_err)
        upper = np.minimum(survival * np.exp(z * std_err), 1.0)
    empty = survival <= 0
    return pd.DataFrame(
        {
            "time": distinct,
            "n_risk": at_risk.astype(np.int64),
            "n_event": events.astype(np.int64),
            "n_censor": censored.astype(np.int64),
            "survival": survival,
            "std_err": std_err,
            "lower": np.where(empty, np.nan, lower),
            "upper": np.where(empty, np.nan, upper),
        }
    )
