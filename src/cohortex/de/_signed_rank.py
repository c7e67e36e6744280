"""The paired Wilcoxon signed-rank test of every gene: the pairs' differences in gene blocks
that hold every pair, ranked on their device (``stats/_signed_ranks.py``)."""

from __future__ import annotations

import functools
from typing import Any

import dask.array as da
import numpy as np

from .._backend import namespace
from ..stats._pvalues import log_normal_two_sided_upper
from ..stats._signed_ranks import signed_rank_pvalues, signed_rank_sums
from ._pairs import pair_columns
from ._ttest import log2fc

__all__ = ["signed_rank"]


def signed_rank(
    x: da.Array,
    group_rows: np.ndarray,
    reference_rows: np.ndarray,
    *,
    omit_nan: bool,
    alternative: str,
    scale: str,
    pseudocount: float,
    count_infinite: bool,
) -> tuple[dict[str, Any], Any]:
    """The Wilcoxon signed-rank test (``scipy.stats.wilcoxon``) of group − reference per gene.

    Parameters
    ----------
    x : dask.array.Array of shape (n_samples, n_genes)
    group_rows, reference_rows : ndarray of shape (n_pairs,)
        The two samples of each pair.

    Returns
    -------
    columns : dict of arrays of shape (n_genes,)
        statistic (W+, the rank sum of the positive differences), pvalue, log2fc,
        mean_group, mean_reference, n_group and n_reference (the pairs compared; with
        ``omit_nan`` those with both values).
    infinite : array of shape (n_genes,) or None
        Per-gene numbers of ±inf values, when counted.
    """
    both, stacked = pair_columns(
        x,
        group_rows,
        reference_rows,
        functools.partial(_block, omit_nan=omit_nan, alternative=alternative),
        omit_nan=omit_nan,
        linear=scale == "log1p",
        count_infinite=count_infinite,
    )
    a, b = both.select(slice(0, 1)), both.select(slice(1, 2))
    columns = {
        "statistic": stacked["w_plus"],
        "pvalue": stacked["pvalue"],
        "log10_pvalue": stacked["log10_pvalue"],
        "log2fc": log2fc(a, b, scale, pseudocount),
        "mean_group": a.mean[0],
        "mean_reference": b.mean[0],
        "n_group": stacked["n_pairs"],
        "n_reference": stacked["n_pairs"],
    }
    return columns, both.infinite


def _block(d: Any, omit_nan: bool, alternative: str) -> dict[str, Any]:
    """W+, p and pairs used of one (pairs × genes) block of differences."""
    xp = namespace(d)
    d = xp.ascontiguousarray(d.T)
    sums = signed_rank_sums(d)
    pvalue = signed_rank_pvalues(sums, alternative)
    # exact and permutation p-values (≤ 50 pairs) are far from underflow; the normal one in logs
    z = sums["z"] if alternative != "less" else -sums["z"]
    log_normal = log_normal_two_sided_upper(xp.abs(z) if alternative == "two-sided" else z)
    if alternative != "two-sided":
        log_normal = log_normal - np.log(2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log10_pvalue = xp.where(pvalue < 1e-300, log_normal / np.log(10.0), xp.log10(pvalue))
    w_plus = xp.where(sums["n_nonzero"] > 0, sums["w_plus"], xp.nan)
    n_pairs = sums["n_pairs"]
    if not omit_nan:  # a NaN in any pair makes the gene's result NaN, as scipy's "propagate"
        missing = xp.any(xp.isnan(d), axis=-1)
        pvalue = xp.where(missing, xp.nan, pvalue)
        log10_pvalue = xp.where(missing, xp.nan, log10_pvalue)
        w_plus = xp.where(missing, xp.nan, w_plus)
        n_pairs = xp.where(missing, d.shape[-1], n_pairs)  # the pairs compared, as the t-test
    return {
        "w_plus": w_plus,
        "pvalue": pvalue,
        "log10_pvalue": log10_pvalue,
        "n_pairs": n_pairs,
    }
