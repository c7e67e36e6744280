"""Calls of up, down or not significant per contrast and gene (limma's ``decideTests``)."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import stats

from .. import fdr as _fdr
from .._cohort import to_host_dataset
from .._errors import CohortexError

__all__ = ["decide"]

DECIDE_METHODS = ("separate", "global", "hierarchical", "nestedF")

# limma's multiplier of the threshold for the genes that pass the F (hierarchical, nestedF),
# by adjustment
_NESTED_ADJUSTMENTS = ("none", "bonferroni", "holm", "bh", "by")


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
    method : {"separate", "global", "hierarchical", "nestedF"}, default "separate"
        Adjust each contrast's p-values on their own, or all contrasts' together (for
        comparing numbers of calls between contrasts); or, as limma, first the genes whose F
        is significant (adjusted across genes), then in each such gene at ``p_value`` times
        the adjustment's share of those genes: ``"hierarchical"``, the gene's contrasts'
        p-values adjusted among themselves; ``"nestedF"``, a sequence of nested F-tests
        (``classifyTestsF``), for seeing which contrasts drive a gene. These two need a
        :func:`fit` result with several contrasts.
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
            f"The 'method' parameter of decide() must be one of {', '.join(DECIDE_METHODS)}; "
            f"got {method!r}."
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
    _fdr.check_method(adjust, "decide()", "adjust")
    host = to_host_dataset(result[["pvalue", effect_name]])
    pvalue = host["pvalue"]
    effect = host[effect_name].values
    values = np.asarray(pvalue.values, dtype=np.float64)
    if pvalue.dims[-1] != "gene":
        raise CohortexError("decide() expects the gene dimension last in the result.")
    if method in ("hierarchical", "nestedF"):
        significant = _within_genes(result, method, p_value, adjust)
    else:
        if method == "global":
            adjusted = _fdr.adjust(values.reshape(1, -1), adjust).reshape(values.shape)
        else:
            adjusted = _fdr.adjust(values, adjust)  # along the gene axis, per contrast
        significant = adjusted < p_value
    called = significant & (np.abs(effect) > lfc)
    calls = np.where(called, np.sign(effect), 0.0).astype(np.int8)
    return xr.DataArray(
        calls,
        dims=pvalue.dims,
        coords=pvalue.coords,
        name="call",
        attrs={"method": method, "p_value": p_value, "lfc": lfc, "adjust": adjust},
    )


def _within_genes(result: xr.Dataset, method: str, p_value: float, adjust: str) -> np.ndarray:
    """limma's ``decideTests(method = "hierarchical" / "nestedF")``: which contrasts of the
    genes whose adjusted F passes are significant, (contrast × gene) booleans."""
    if "F_pvalue" not in result or "F_projection" not in result.attrs:
        raise CohortexError(
            f"decide(method={method!r}) needs a result of de.fit() with several contrasts (its F)."
        )
    if adjust not in _NESTED_ADJUSTMENTS:
        raise CohortexError(
            f"decide(method={method!r}) adjusts with one of {', '.join(_NESTED_ADJUSTMENTS)}; "
            f"got {adjust!r}."
        )
    host = to_host_dataset(result[["F_pvalue", "statistic"]])
    f_p = np.asarray(host["F_pvalue"].values, dtype=np.float64)
    if np.isnan(f_p).any():
        raise CohortexError(f"decide(method={method!r}) needs every gene's F (limma refuses NA).")
    selected = _fdr.adjust(f_p, adjust) < p_value
    passed, n = int(selected.sum()), f_p.size
    share = {
        "none": 1.0,
        "bonferroni": 1.0 / n,
        "holm": 1.0 / (n - passed + 1),
        "bh": passed / n,
        "by": passed / n / float(np.sum(1.0 / np.arange(1, n + 1))),
    }[adjust]
    # limma's df of these tests: df_residual + df_prior (the F's), not the capped df_total
    df2 = result["F_df2"].values if "F_df2" in result else result.attrs["F_df2"]
    df2 = np.broadcast_to(np.asarray(df2, dtype=np.float64), f_p.shape)
    t = np.asarray(host["statistic"].values, dtype=np.float64)  # (contrasts, genes)
    significant = np.zeros(t.shape, dtype=bool)
    genes = np.flatnonzero(selected)
    if method == "hierarchical":  # limma's .classifyTestsP
        with np.errstate(invalid="ignore"):
            p = 2.0 * stats.t.sf(np.abs(t[:, genes]), df2[genes])
        adjusted = _fdr.adjust(p.T, adjust).T  # among each gene's contrasts
        significant[:, genes] = adjusted < p_value * share
        return significant
    projection = np.asarray(result.attrs["F_projection"], dtype=np.float64)  # (r, contrasts)
    rank = projection.shape[0]
    for gene in genes:
        # R's qf(p, r, Inf) is qchisq(p, r) / r (limma's df_prior may be infinite)
        critical = (
            stats.chi2.isf(p_value * share, rank)
            if np.isinf(df2[gene])
            else stats.f.isf(p_value * share, rank, df2[gene]) * rank
        )
        x = t[:, gene].copy()
        # a contrast without a value: limma's NA, not called here as decide() leaves NaN
        # p-values uncalled
        if np.isnan(x).any() or np.sum((projection @ x) ** 2) <= critical:
            continue
        # the largest |t| first; each next contrast joins while the F of the ones so far,
        # their |t| lowered to its own, stays significant (classifyTestsF)
        order = np.argsort(-np.abs(x), kind="stable")
        significant[order[0], gene] = True
        for j in range(1, x.size):
            bigger = order[:j]
            x[bigger] = np.sign(x[bigger]) * abs(x[order[j]])
            if np.sum((projection @ x) ** 2) > critical:
                significant[order[j], gene] = True
            else:
                break
    return significant
