"""Maximally selected log-rank statistics (R's maxstat with ``smethod = "LogRank"``) of many
genes at once, on ``xp``.

For each gene the samples are ordered by its expression; every split into the ``m`` lowest and
the rest (``m`` between the proportions asked, at a change of value) gives a standardised sum
of log-rank scores over the lowest ``m``; the largest is the statistic and its split the
estimated cutpoint. Its p-value is Lausen & Schumacher's (1992) asymptotic bound or Lausen,
Sauerbrei & Schumacher's (1994) improved Bonferroni bound, as maxstat's "Lau92" and "Lau94".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from .._backend import namespace, special

__all__ = ["cumulative_hazard", "cutpoint_columns", "logrank_scores"]


def logrank_scores(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """exactRankTests' ``cscores(Surv(time, event), "LogRank")``: each sample's event minus
    the cumulative sum of ``event / (N - rank + 1)`` up to its time (tied times all at their
    largest rank, as its ``irank``).

    Parameters
    ----------
    time, event : ndarray of shape (n_samples,)

    Returns
    -------
    ndarray of shape (n_samples,), float64
    """
    n = time.shape[0]
    order = np.argsort(time, kind="stable")
    rank = stats.rankdata(time, method="max").astype(np.int64)
    fact = event / (n - rank + 1.0)
    return event - np.cumsum(fact[order])[rank - 1]


def cumulative_hazard(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """The Nelson–Aalen cumulative hazard at each sample's own time, ``Σ_{s ≤ t} d_s / n_s``:
    summed over a group, the events survdiff expects of it."""
    _, inverse = np.unique(time, return_inverse=True)
    deaths = np.bincount(inverse, weights=event)
    at_risk = time.shape[0] - np.concatenate(([0], np.cumsum(np.bincount(inverse))[:-1]))
    return np.cumsum(deaths / at_risk)[inverse]


def cutpoint_columns(
    block: Any,
    scores: Any,
    events: Any,
    hazard: Any,
    lowest: int,
    highest: int,
    log_ratio: float,
) -> dict[str, Any]:
    """maxstat's statistic, cutpoint and p-values of each gene of a block.

    Parameters
    ----------
    block : array of shape (n_samples, n_genes)
    scores, events, hazard : arrays of shape (n_samples,), float64, on the block's device
        :func:`logrank_scores`, the event indicators and :func:`cumulative_hazard`.
    lowest, highest : int
        The splits allowed: ``m`` samples below, ``lowest ≤ m ≤ highest`` (maxstat's
        ``max(1, floor(N minprop))`` and ``floor(N maxprop)``).
    log_ratio : float
        ``log(maxprop (1 - minprop) / ((1 - maxprop) minprop))``, for Lau92.

    Returns
    -------
    dict of arrays of shape (n_genes,)
        ``statistic``, ``cutpoint`` (the largest value of the lower group), ``n_low``,
        ``pvalue_lau94``, ``pvalue_lau92`` (both at most 1), ``observed_low`` and
        ``expected_low`` (events of the lower group, and as survdiff expects them), ``missing``
        (1 for a gene with a missing value). NaN for a gene with a missing value or no split
        allowed.
    """
    xp = namespace(block)
    x = xp.asarray(block, dtype=xp.float64)
    n, g = x.shape
    order = xp.argsort(x, axis=0)
    ordered = xp.take_along_axis(x, order, axis=0)
    m = xp.arange(1, n, dtype=xp.float64)[:, None]
    total = scores.sum()
    expected = m / n * total
    variance = m * (n - m) / (n * n * (n - 1.0)) * (n * (scores * scores).sum() - total * total)
    sums = xp.cumsum(scores[order], axis=0)[:-1]
    valid = (ordered[1:] != ordered[:-1]) & (m >= lowest) & (m <= highest)
    statistic_m = xp.where(valid, xp.abs(sums - expected) / xp.sqrt(variance), -xp.inf)
    best = xp.argmax(statistic_m, axis=0)
    columns = xp.arange(g)
    statistic = statistic_m[best, columns]
    missing = xp.isnan(x).any(axis=0)
    usable = valid.any(axis=0) & ~missing
    nan = xp.nan
    statistic = xp.where(usable, statistic, nan)
    observed_low = xp.cumsum(events[order], axis=0)[best, columns]
    expected_low = xp.cumsum(hazard[order], axis=0)[best, columns]

    # Lau94: D sums over consecutive allowed splits, found by sorting the allowed ones first
    allowed = xp.sort(xp.where(valid, m, xp.inf), axis=0)
    count = valid.sum(axis=0)
    pair = xp.arange(n - 2)[:, None] < (count - 1)
    low_m = xp.where(pair, allowed[:-1], 1.0)
    high_m = xp.where(pair, allowed[1:], 2.0)
    t = xp.sqrt(1.0 - low_m * (n - high_m) / ((n - low_m) * high_m))
    b = xp.where(usable, statistic, 0.0)
    density = xp.exp(-b * b / 2.0)
    terms = xp.where(pair, (t - (b * b / 4.0 - 1.0) * t**3 / 6.0), 0.0)
    bonferroni = density / math.pi * terms.sum(axis=0)
    lau94 = 2.0 * special(xp).ndtr(-b) + bonferroni

    # Lau92: 1 below b = 1, else the bound, at least 0
    phi = density / math.sqrt(2.0 * math.pi)
    safe_b = xp.maximum(b, 1.0)
    lau92 = 4.0 * phi / safe_b + phi * (safe_b - 1.0 / safe_b) * log_ratio
    lau92 = xp.where(b < 1.0, 1.0, xp.maximum(lau92, 0.0))
    return {
        "statistic": statistic,
        "cutpoint": xp.where(usable, ordered[best, columns], nan),
        "n_low": xp.where(usable, best + 1.0, nan),
        "pvalue_lau94": xp.where(usable, xp.minimum(lau94, 1.0), nan),
        "pvalue_lau92": xp.where(usable, xp.minimum(lau92, 1.0), nan),
        "observed_low": xp.where(usable, observed_low, nan),
        "expected_low": xp.where(usable, expected_low, nan),
        "missing": missing.astype(xp.float64),
    }
