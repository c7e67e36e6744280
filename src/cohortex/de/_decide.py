"""Calls of up, down or not significant per contrast and gene (limma's ``decideTests``)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import fdr as _fdr
from .._cohort import to_host_dataset
from .._errors import CohortexError

__all__ = ["decide"]

DECIDE_METHODS = ("separate", "global")


def decide(
    result: xr.Dataset,
    *,
    method: str = "separate",
    p_value: float = 0.05,
    lfc: float = 0.0,
    adjust: str | None = None,
) -> xr.DataArray:
    """Call each gene up (1), down (−1) or not significant (0) in each contrast.

    As limma's ``decideTests``: the p-values are adjusted, and a gene is called where its
    adjusted p-value is below ``p_value`` and its absolute effect exceeds ``lfc``; the sign is
    that of the effect (``coefficient`` of :func:`fit`, ``log2fc`` of :func:`test`).

    Parameters
    ----------
    result : xarray.Dataset
        A result of :func:`fit` or :func:`test` (not ANOVA: it has no direction).
    method : {"separate", "global"}, default "separate"
        Adjust each contrast's p-values on their own, or all contrasts' together (for
        comparing numbers of calls between contrasts).
    p_value : float, default 0.05
        Threshold on the adjusted p-values.
    lfc : float, default 0
        Threshold on the absolute effect (log2 fold change).
    adjust : str, optional
        Adjustment (:data:`cohortex.fdr.METHODS`); default the one the result used.

    Returns
    -------
    xarray.DataArray of int8
        Shaped like the result's ``pvalue``; attrs name the method and thresholds.
    """
    if method not in DECIDE_METHODS:
        raise CohortexError(
            f"The 'method' parameter of decide() must be 'separate' or 'global'; got {method!r}."
        )
    if not 0 < p_value <= 1:
        raise CohortexError(f"'p_value' must be in (0, 1]; got {p_value!r}.")
    if not lfc >= 0:
        raise CohortexError(f"'lfc' must be a number >= 0; got {lfc!r}.")
    effect_name = "coefficient" if "coefficient" in result else "log2fc"
    if "pvalue" not in result or effect_name not in result:
        raise CohortexError(
            "decide() needs a result of de.fit() or de.test() with a direction (pvalue and "
            "coefficient or log2fc); ANOVA has none."
        )
    adjust = result.attrs.get("fdr", "bh") if adjust is None else adjust
    if adjust not in _fdr.METHODS:
        raise CohortexError(
            f"The 'adjust' parameter of decide() must be one of {', '.join(_fdr.METHODS)}; got "
            f"{adjust!r}."
        )
    host = to_host_dataset(result[["pvalue", effect_name]])
    pvalue = host["pvalue"]
    effect = host[effect_name].values
    values = np.asarray(pvalue.values, dtype=np.float64)
    if method == "global":
        adjusted = _fdr.adjust(values.reshape(1, -1), adjust).reshape(values.shape)
    else:
        adjusted = _fdr.adjust(values, adjust)  # along the gene axis, per contrast
    if pvalue.dims[-1] != "gene":
        raise CohortexError("decide() expects the gene dimension last in the result.")
    called = (adjusted < p_value) & (np.abs(effect) > lfc)
    calls = np.where(called, np.sign(effect), 0.0).astype(np.int8)
    return xr.DataArray(
        calls,
        dims=pvalue.dims,
        coords=pvalue.coords,
        name="call",
        attrs={"method": method, "p_value": p_value, "lfc": lfc, "adjust": adjust},
    )
