"""Compiled log-rank tests of many genes (numba), the CPU twin of
:func:`cohortex.stats._logrank.logrank_columns`' ``xp`` body.

Why compiled: the ``xp`` body sorts every gene's column for its quantile and builds about ten
(samples × genes) float64 arrays (masks, products, two cumulative sums per count) before it
reduces them. Here each gene's quantile is a selection (``select``, linear time) over its
observed values, and one pass over the samples in risk-set order (genes along contiguous
memory) counts each gene's samples at risk, high and low, and adds a tied time's terms at its
last sample — the same sums, in the same order of times.
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit
from .select import select

__all__ = ["logrank_compiled"]


# genes whose values are gathered together: each row of the block is read a cache line at a
# time (a transposed copy of the block took longer than all the selections)
TILE = 16


@njit(nogil=True, cache=True)
def _thresholds(x, quantile, out):  # type: ignore[no-untyped-def]
    """Type-7 ``quantile`` of each column's non-NaN values (NaN for a column of NaN)."""
    n, n_genes = x.shape
    tile = np.empty((n, TILE))
    values = np.empty(n)
    for first in range(0, n_genes, TILE):
        width = min(TILE, n_genes - first)
        for i in range(n):
            for j in range(width):
                tile[i, j] = x[i, first + j]
        for j in range(width):
            count = 0
            for i in range(n):
                value = tile[i, j]
                if not np.isnan(value):
                    values[count] = value
                    count += 1
            if count == 0:
                out[first + j] = np.nan
                continue
            position = quantile * (count - 1)
            low = int(np.floor(position))
            lower = select(values[:count], low)
            upper = lower
            if low + 1 < count:  # the next order statistic: the least value past the low one
                upper = values[low + 1]
                for i in range(low + 2, count):
                    if values[i] < upper:
                        upper = values[i]
            out[first + j] = lower + (position - low) * (upper - lower)


@njit(nogil=True, cache=True)
def _sweep(  # type: ignore[no-untyped-def]
    x,
    order,
    threshold,
    event,
    stratum_starts,
    group_stops,
    observed,
    expected,
    variance,
    n_high,
    n_valid,
    events,
):
    n = order.size
    n_genes = x.shape[1]
    at_risk = np.zeros(n_genes)
    at_risk_high = np.zeros(n_genes)
    deaths = np.zeros(n_genes)
    deaths_high = np.zeros(n_genes)
    stratum = 0
    group = 0
    for i in range(n):
        if stratum < stratum_starts.size and i == stratum_starts[stratum]:
            n_valid += at_risk
            n_high += at_risk_high
            at_risk[:] = 0.0
            at_risk_high[:] = 0.0
            stratum += 1
        row = order[i]
        # counts as selects of 0/1, not branches: which samples are high is data, not pattern
        if event[i] > 0:
            for g in range(n_genes):
                value = x[row, g]
                observed_value = 1.0 if value == value else 0.0  # NaN: not in this gene's test
                high = 1.0 if value > threshold[g] else 0.0
                at_risk[g] += observed_value
                at_risk_high[g] += high
                deaths[g] += observed_value
                deaths_high[g] += high
        else:
            for g in range(n_genes):
                value = x[row, g]
                at_risk[g] += 1.0 if value == value else 0.0
                at_risk_high[g] += 1.0 if value > threshold[g] else 0.0
        if group < group_stops.size and i == group_stops[group] - 1:
            group += 1
            for g in range(n_genes):
                d = deaths[g]
                if d == 0.0:
                    continue
                total = at_risk[g]
                share = at_risk_high[g] / total if total > 0 else 0.0
                spread = (total - d) / (total - 1.0) if total > 1 else 0.0
                expected[g] += d * share
                variance[g] += d * share * (1.0 - share) * spread
                observed[g] += deaths_high[g]
                events[g] += d
                deaths[g] = 0.0
                deaths_high[g] = 0.0
    n_valid += at_risk
    n_high += at_risk_high


def logrank_compiled(
    block: np.ndarray,
    order: np.ndarray,
    event: np.ndarray,
    stratum_starts: np.ndarray,
    group_stops: np.ndarray,
    quantile: float,
) -> dict[str, np.ndarray]:
    """Log-rank tests of each gene's samples above its ``quantile`` against the rest.

    Parameters
    ----------
    block : ndarray of shape (n_samples, n_genes)
        Expression in the samples' own order (NaN: not in that gene's test).
    order : ndarray of shape (n_samples,), int64
        The samples sorted by stratum, then time from the latest.
    event : ndarray of shape (n_samples,)
        The event indicator in that order.
    stratum_starts : ndarray of int64
        First row (in that order) of each stratum.
    group_stops : ndarray of int64
        One past the last row of each tied time that holds an event, ascending.
    quantile : float

    Returns
    -------
    dict of ndarrays of shape (n_genes,), float64
        ``observed``, ``expected`` (of the high group), ``variance``, ``chisq`` (NaN where
        the variance is 0), ``n_high``, ``n_valid`` and ``events`` (of the samples tested).
    """
    x = np.ascontiguousarray(block)
    if x.dtype not in (np.float32, np.float64) or not x.dtype.isnative:  # numba takes neither
        x = x.astype(np.float64)
    n_genes = x.shape[1]
    threshold = np.empty(n_genes)
    _thresholds(x, float(quantile), threshold)
    columns = {
        name: np.zeros(n_genes)
        for name in ("observed", "expected", "variance", "n_high", "n_valid", "events")
    }
    _sweep(
        x,
        np.asarray(order, dtype=np.int64),
        threshold,
        np.ascontiguousarray(event, dtype=np.float64),
        np.asarray(stratum_starts, dtype=np.int64),
        np.asarray(group_stops, dtype=np.int64),
        columns["observed"],
        columns["expected"],
        columns["variance"],
        columns["n_high"],
        columns["n_valid"],
        columns["events"],
    )
    variance = columns["variance"]
    with np.errstate(divide="ignore", invalid="ignore"):
        chisq = (columns["observed"] - columns["expected"]) ** 2 / variance
    columns["chisq"] = np.where(variance > 0, chisq, np.nan)
    return columns
