"""The best split of each gene's samples for survival, with p-values that allow for the search
(R's maxstat)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import xarray as xr

from .. import fdr as _fdr
from .._backend import namespace, resolve_device, to_host
from .._cohort import CohortLike, as_cohort_matrix, shared_docs
from .._errors import CohortexError, CohortexWarning
from ..stats._cutpoint import cumulative_hazard, cutpoint_columns, logrank_scores
from ._blocks import map_gene_blocks
from ._outcome import Outcome

__all__ = ["CUTPOINT_PVALUES", "cutpoint"]

CUTPOINT_PVALUES = ("Lau94", "Lau92")


@shared_docs
def cutpoint(
    cohort: CohortLike,
    time: str | Any,
    event: str | Any,
    *,
    minprop: float = 0.1,
    maxprop: float = 0.9,
    pvalue: str = "Lau94",
    fdr: str = "bh",
    device: str = "auto",
) -> xr.Dataset:
    """Each gene's best cutpoint for survival: the maximally selected log-rank statistic, as
    R's ``maxstat.test(Surv(time, event) ~ gene, smethod = "LogRank", pmethod = pvalue)``.

    Splitting the samples at the expression where their survival differs most, then testing
    that split as if it had been chosen beforehand (what a minimal p-value of log-rank tests
    does), finds differences in noise: the p-values here allow for the search over splits.

    Parameters
    ----------
    {cohort}
    time, event : str or sequence
        As for :func:`cox`.
    minprop, maxprop : float, default 0.1, 0.9
        The lower group holds between these shares of the samples (maxstat's).
    pvalue : {{"Lau94", "Lau92"}}, default "Lau94"
        Lausen, Sauerbrei & Schumacher's (1994) improved Bonferroni bound, or Lausen &
        Schumacher's (1992) asymptotic one; both are capped at 1 (maxstat's can exceed it).
    fdr : str, default "bh"
    {device}

    Returns
    -------
    xarray.Dataset
        On ``gene``: ``statistic`` (maxstat's M, the largest standardised log-rank
        statistic), ``cutpoint`` (the estimated cutpoint: samples up to it are "low"),
        ``n_low``, ``n_high``, ``pvalue``, ``padj``, ``pvalue_lau94`` and ``pvalue_lau92``,
        ``observed_high``/``expected_high`` and ``_low`` (events, and as survdiff expects them
        at the cutpoint), ``hazard_ratio`` (high against low, the log-rank estimate (O/E high)
        / (O/E low)). A gene with missing values is tested on its observed samples (their
        log-rank scores and allowed splits recomputed, as maxstat of its complete cases); NaN
        where a gene allows no split (too few samples, or all values tied; a warning counts
        them). Attrs: ``pvalue_method``, ``minprop``, ``maxprop``, ``fdr``.

    Notes
    -----
    Agreement with maxstat 0.7-25 and survival's ``survdiff`` (tests/survival/
    test_cutpoint.py): 1e-10, with tied times and tied expression values.
    """
    if pvalue not in CUTPOINT_PVALUES:
        raise CohortexError(
            f"The 'pvalue' parameter of cutpoint() must be one of "
            f"{', '.join(repr(p) for p in CUTPOINT_PVALUES)}; got {pvalue!r}."
        )
    if not 0.0 < minprop < maxprop < 1.0:
        raise CohortexError(
            "The 'minprop' and 'maxprop' parameters of cutpoint() must satisfy "
            f"0 < minprop < maxprop < 1; got {minprop} and {maxprop}."
        )
    _fdr.check_method(fdr, "cutpoint()")
    on = resolve_device(device)
    data = as_cohort_matrix(cohort)
    outcome = Outcome.resolve(data.dataset, time, event, None, data.sample_ids)
    if outcome.event.sum() == 0:
        raise CohortexError("No sample has an event: a log-rank statistic has nothing to compare.")
    n = outcome.time.shape[0]
    lowest, highest = max(1, math.floor(n * minprop)), math.floor(n * maxprop)
    if highest < lowest:
        raise CohortexError(
            f"cutpoint() of {n} samples allows no split between minprop {minprop} and maxprop "
            f"{maxprop}."
        )
    scores = logrank_scores(outcome.time, outcome.event)
    hazard = cumulative_hazard(outcome.time, outcome.event)
    log_ratio = math.log(maxprop * (1 - minprop) / ((1 - maxprop) * minprop))
    columns = map_gene_blocks(
        data.matrix,
        on,
        14,
        _columns,
        scores,
        outcome.event,
        hazard,
        lowest,
        highest,
        log_ratio,
    )
    xp = namespace(columns["statistic"])
    # each gene's samples: all of them, or for a gene with missing values its observed ones
    samples = np.full(data.matrix.shape[1], float(n))
    events = np.full(data.matrix.shape[1], float(outcome.event.sum()))
    for gene in np.flatnonzero(np.asarray(to_host(columns["missing"])) > 0):
        values = _gene_column(data.matrix, int(gene))
        observed = ~np.isnan(values)
        samples[gene], events[gene] = observed.sum(), outcome.event[observed].sum()
        _observed_only(columns, int(gene), values, outcome, (minprop, maxprop), log_ratio)
    samples_d, events_d = xp.asarray(samples), xp.asarray(events)
    observed_high = events_d - columns["observed_low"]
    expected_high = events_d - columns["expected_low"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (observed_high / expected_high) / (
            columns["observed_low"] / columns["expected_low"]
        )
    chosen = columns[f"pvalue_{pvalue.lower()}"]
    unsplit = int(xp.isnan(columns["statistic"]).sum())
    if unsplit:
        warnings.warn(
            f"cutpoint(): {unsplit} genes allow no split between minprop and maxprop (too few "
            "observed samples, or their values tied); their results are NaN.",
            CohortexWarning,
            stacklevel=2,
        )
    return xr.Dataset(
        {
            "statistic": ("gene", columns["statistic"]),
            "cutpoint": ("gene", columns["cutpoint"]),
            "n_low": ("gene", columns["n_low"]),
            "n_high": ("gene", samples_d - columns["n_low"]),
            "pvalue": ("gene", chosen),
            "padj": ("gene", _fdr.adjust(chosen, fdr)),
            "pvalue_lau94": ("gene", columns["pvalue_lau94"]),
            "pvalue_lau92": ("gene", columns["pvalue_lau92"]),
            "observed_high": ("gene", observed_high),
            "expected_high": ("gene", expected_high),
            "observed_low": ("gene", columns["observed_low"]),
            "expected_low": ("gene", columns["expected_low"]),
            "hazard_ratio": ("gene", ratio),
        },
        coords={"gene": data.gene_ids},
        attrs={
            "pvalue_method": pvalue,
            "minprop": float(minprop),
            "maxprop": float(maxprop),
            "fdr": fdr,
        },
    )


def _gene_column(matrix: Any, gene: int) -> np.ndarray:
    column = matrix[:, gene]
    if hasattr(column, "compute"):
        column = column.compute()
    return np.asarray(to_host(column), dtype=np.float64)


def _observed_only(
    columns: dict[str, Any],
    gene: int,
    values: np.ndarray,
    outcome: Outcome,
    proportions: tuple[float, float],
    log_ratio: float,
) -> None:
    """A gene with missing values (``values``, its column) on its observed samples: its
    log-rank scores, hazards and allowed splits recomputed there, as maxstat of that gene's
    complete cases; ``columns`` filled in at ``gene``."""
    observed = ~np.isnan(values)
    time, event = outcome.time[observed], outcome.event[observed]
    n = int(observed.sum())
    lowest = max(1, math.floor(n * proportions[0]))
    highest = math.floor(n * proportions[1])
    if n < 3 or event.sum() == 0 or highest < lowest:
        return
    found = cutpoint_columns(
        values[observed][:, None],
        logrank_scores(time, event),
        event,
        cumulative_hazard(time, event),
        lowest,
        highest,
        log_ratio,
    )
    for name, value in found.items():
        if name != "missing":
            columns[name][gene] = float(value[0])


def _columns(
    block: Any,
    scores: np.ndarray,
    events: np.ndarray,
    hazard: np.ndarray,
    lowest: int,
    highest: int,
    log_ratio: float,
) -> dict[str, Any]:
    xp = namespace(block)
    return cutpoint_columns(
        block,
        xp.asarray(scores),
        xp.asarray(events),
        xp.asarray(hazard),
        lowest,
        highest,
        log_ratio,
    )
