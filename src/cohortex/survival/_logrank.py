"""Per-gene log-rank tests of high against low expression: ``logrank()``."""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from .. import fdr as _fdr
from .._backend import namespace, resolve_device
from .._cohort import CohortLike, as_cohort_matrix, shared_docs, to_host_dataset
from .._errors import CohortexError
from ..stats._cox import RiskSets
from ..stats._logrank import logrank_columns
from ..stats._pvalues import normal_two_sided_upper
from ._blocks import map_gene_blocks
from ._outcome import Outcome

__all__ = ["logrank"]


@shared_docs
def logrank(
    cohort: CohortLike,
    time: str | Any,
    event: str | Any,
    *,
    quantile: float = 0.5,
    strata: str | Any | None = None,
    fdr: str = "bh",
    device: str = "auto",
) -> xr.Dataset:
    """The log-rank test of every gene's high-expression samples against the rest.

    As R's ``survdiff(Surv(time, event) ~ (x > quantile(x, q)))`` per gene (``+ strata(...)``
    when given), on the samples where the gene is observed: "high" is above the gene's
    ``quantile`` (R's default type 7; the median by default), ties at it go low.

    Parameters
    ----------
    {cohort}
    time, event : str or sequence
        As for :func:`cox`.
    quantile : float, default 0.5
        Where each gene's samples split.
    strata : str or sequence, optional
        A sample variable: the test sums over its levels (R's ``strata()``).
    fdr : str, default "bh"
    {device}

    Returns
    -------
    xarray.Dataset
        On ``gene``: ``statistic`` (χ², 1 df), ``pvalue``, ``padj``, ``observed_high`` and
        ``expected_high`` (events of the high group, and under no difference), the same
        ``_low``, ``hazard_ratio`` (the log-rank estimate (O/E high) / (O/E low)),
        ``n_high``, ``n_low``.
    """
    if not 0 < quantile < 1:
        raise CohortexError(f"'quantile' must be in (0, 1); got {quantile!r}.")
    _fdr.check_method(fdr, "logrank()")
    on = resolve_device(device)
    data = as_cohort_matrix(cohort)
    outcome = Outcome.resolve(data.dataset, time, event, strata, data.sample_ids)
    if outcome.event.sum() == 0:
        raise CohortexError("No sample has an event: a log-rank test has nothing to compare.")
    risk = RiskSets.build(outcome.time, outcome.event, outcome.strata)
    # the compiled CPU twin holds nothing of the block's size but a converted copy of it where
    # the dtype needs one; the xp body about twelve float64 temporaries
    per_gene = 2 if on == "cpu" else 12
    columns = map_gene_blocks(data.matrix, on, per_gene, logrank_columns, risk, quantile)
    xp = namespace(columns["chisq"])
    with np.errstate(divide="ignore", invalid="ignore"):
        observed_low = columns["events"] - columns["observed"]
        expected_low = columns["events"] - columns["expected"]
        ratio = (columns["observed"] / columns["expected"]) / (observed_low / expected_low)
    result = xr.Dataset(
        {
            "statistic": ("gene", columns["chisq"]),
            "pvalue": ("gene", normal_two_sided_upper(xp.sqrt(columns["chisq"]))),
            "padj": ("gene", _fdr.adjust(normal_two_sided_upper(xp.sqrt(columns["chisq"])), fdr)),
            "observed_high": ("gene", columns["observed"]),
            "expected_high": ("gene", columns["expected"]),
            "observed_low": ("gene", observed_low),
            "expected_low": ("gene", expected_low),
            "hazard_ratio": ("gene", ratio),
            "n_high": ("gene", columns["n_high"].astype(xp.int64)),
            "n_low": ("gene", (columns["n_valid"] - columns["n_high"]).astype(xp.int64)),
        },
        coords={"gene": data.gene_ids},
        attrs={
            "test": "log-rank",
            "quantile": quantile,
            "strata": "" if strata is None else (strata if isinstance(strata, str) else "given"),
            "fdr": fdr,
        },
    )
    keep_on_device = namespace(data.matrix) is not np and not isinstance(data.matrix, da.Array)
    return result if keep_on_device else to_host_dataset(result)
