"""Log-rank tests of many genes at once, on ``xp`` (R's ``survdiff`` with ``rho = 0``).

For each gene the samples split into "high" (expression above the gene's ``quantile``, R's
type-7 quantile of its observed values) and the rest. With the samples sorted by (stratum,
time), at every event time t of a stratum: n_t samples at risk (n1_t of them high), d_t
events (d1_t high), summed over times and strata::

    O = Σ d1_t,   E = Σ d_t n1_t / n_t,
    V = Σ d_t (n1_t / n_t) (1 − n1_t / n_t) (n_t − d_t) / (n_t − 1),   χ² = (O − E)² / V

on 1 degree of freedom. At-risk counts are cumulative sums over the samples sorted from the
latest time, read at the last sample of each tied time (:mod:`cohortex.stats._cox`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import namespace
from ._cox import RiskSets, group_sums, risk_sums

__all__ = ["high_expression", "logrank_block", "logrank_columns"]


def high_expression(x: Any, quantile: float) -> Any:
    """Samples above each gene's ``quantile`` (type 7, over its non-NaN values).

    Parameters
    ----------
    x : array of shape (n_samples, n_genes)

    Returns
    -------
    array of shape (n_samples, n_genes), bool
        False where ``x`` is NaN.
    """
    xp = namespace(x)
    ordered = xp.sort(x, axis=0)  # NaN last
    count = xp.sum(~xp.isnan(x), axis=0)
    position = quantile * xp.maximum(count - 1, 0)
    low = xp.floor(position).astype(xp.int64)
    high = xp.minimum(low + 1, xp.maximum(count - 1, 0))
    lower = xp.take_along_axis(ordered, low[None, :], axis=0)[0]
    upper = xp.take_along_axis(ordered, high[None, :], axis=0)[0]
    threshold = lower + (position - low) * (upper - lower)
    with np.errstate(invalid="ignore"):
        return x > threshold[None, :]


def logrank_block(high: Any, valid: Any, risk: RiskSets) -> dict[str, Any]:
    """Observed and expected events of the high group, their variance and χ², per gene.

    Parameters
    ----------
    high, valid : arrays of shape (n_samples, n_genes), bool
        In risk-set order: the high group, and the samples each gene's test uses.
    risk : RiskSets

    Returns
    -------
    dict of arrays of shape (n_genes,)
        ``observed``, ``expected`` (of the high group), ``variance``, ``chisq``,
        ``n_high``.
    """
    xp = namespace(valid)
    in_test = valid.astype(xp.float64)
    in_high = (high & valid).astype(xp.float64)
    events = xp.asarray(risk.event)[:, None]
    starts, stops = xp.asarray(risk.starts), xp.asarray(risk.stops)
    n = risk_sums(in_test, risk.strata, risk.stops)
    n1 = risk_sums(in_high, risk.strata, risk.stops)
    d = group_sums(events * in_test, starts, stops)
    d1 = group_sums(events * in_high, starts, stops)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = xp.where(n > 0, n1 / n, 0.0)
        expected = xp.sum(d * share, axis=0)
        spread = xp.where(n > 1, (n - d) / (n - 1.0), 0.0)
        variance = xp.sum(d * share * (1.0 - share) * spread, axis=0)
        observed = xp.sum(d1, axis=0)
        chisq = (observed - expected) ** 2 / variance
    return {
        "observed": observed,
        "expected": expected,
        "variance": variance,
        "chisq": xp.where(variance > 0, chisq, xp.nan),
        "n_high": xp.sum(in_high, axis=0),
    }


def logrank_columns(
    block: Any, risk: RiskSets, quantile: float, *, compiled: bool = True
) -> dict[str, Any]:
    """The log-rank test of every gene of ``block``: high (above ``quantile``) against the rest.

    Parameters
    ----------
    block : array of shape (n_samples, n_genes)
        Expression in the samples' own order; NaN leaves a sample out of that gene's test.
    risk : RiskSets
    quantile : float
    compiled : bool, default True
        On the CPU, the compiled twin (:mod:`cohortex.stats._cpu.logrank`): a selection per
        gene and one pass over the samples instead of a sort and about ten (samples × genes)
        temporaries.

    Returns
    -------
    dict of arrays of shape (n_genes,)
        As :func:`logrank_block`, with ``events`` and ``n_valid`` (of the samples tested).
    """
    xp = namespace(block)
    if compiled and xp is np:
        from ._cpu.logrank import logrank_compiled  # numba: CPU only

        return logrank_compiled(
            block,
            risk.order,
            risk.event,
            np.asarray([start for start, _ in risk.strata], dtype=np.int64),
            risk.stops,
            quantile,
        )
    x = xp.asarray(block, dtype=xp.float64)[xp.asarray(risk.order)]
    valid = ~xp.isnan(x)
    columns = logrank_block(high_expression(x, quantile), valid, risk)
    columns["events"] = xp.sum(xp.asarray(risk.event)[:, None] * valid, axis=0)
    columns["n_valid"] = xp.sum(valid, axis=0).astype(xp.float64)
    return columns
