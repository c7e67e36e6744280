"""Welch's and Student's t, one-way ANOVA F and the fold changes, per gene from group moments."""

from __future__ import annotations

import functools
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from .. import fdr as _fdr
from .._backend import namespace
from ..stats._moments import GroupMoments, chunk_moments
from ..stats._pvalues import f_sf, log_f_sf, log_t_two_sided, log_t_upper, t_two_sided, t_upper
from ._pairs import pair_columns
from ._result import contrast_dataset

__all__ = [
    "FOLD_CHANGE_FORMULA",
    "anova",
    "log2fc",
    "paired_t",
    "t_log10_pvalue",
    "t_pvalue",
    "t_statistic",
    "t_tests",
]


FOLD_CHANGE_FORMULA = {
    "log2": "mean_group - mean_reference",
    "log1p": "log2((mean(expm1(x))_group + pseudocount) / (mean(expm1(x))_reference + "
    "pseudocount))",
    "counts": "log2((mean_group + pseudocount) / (mean_reference + pseudocount))",
    "linear": "log2((mean_group + pseudocount) / (mean_reference + pseudocount))",
}


def t_tests(
    moments: GroupMoments,
    levels: list[str],
    contrasts: list[tuple[int, list[int]]],
    test: str,
    fdr: str,
    scale: str,
    pseudocount: float,
    alternative: str = "two-sided",
) -> xr.Dataset:
    columns: dict[str, list[Any]] = {}
    for group, reference in contrasts:
        a = moments.select(slice(group, group + 1))
        b = (
            moments.select(reference).pooled()
            if len(reference) > 1
            else moments.select(slice(reference[0], reference[0] + 1))
        )
        statistic, df = t_statistic(a, b, equal_var=test == "student")
        row = _t_columns(
            statistic, df, a, b, (a.count[0], b.count[0]), alternative, scale, pseudocount
        )
        for name, values in row.items():
            columns.setdefault(name, []).append(values)
    return contrast_dataset(columns, levels, contrasts, fdr)


def t_pvalue(statistic: Any, df: Any, alternative: str) -> Any:
    """p-value of t for scipy's ``alternative``: two-sided, greater (group above the
    reference) or less."""
    if alternative == "greater":
        return t_upper(statistic, df)
    if alternative == "less":
        return t_upper(-statistic, df)
    return t_two_sided(statistic, df)


def t_log10_pvalue(statistic: Any, df: Any, alternative: str) -> Any:
    """``log10`` of :func:`t_pvalue`, finite where the p-value underflows to 0."""
    if alternative == "greater":
        log_p = log_t_upper(statistic, df)
    elif alternative == "less":
        log_p = log_t_upper(-statistic, df)
    else:
        log_p = log_t_two_sided(statistic, df)
    return log_p / np.log(10.0)


def t_statistic(a: GroupMoments, b: GroupMoments, *, equal_var: bool) -> tuple[Any, Any]:
    """t and degrees of freedom of group a against group b, per gene (shape (n_genes,))."""
    xp = namespace(a.count)
    n1, n2 = a.count[0], b.count[0]
    var1, var2 = a.variance()[0], b.variance()[0]
    difference = a.mean[0] - b.mean[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        if equal_var:
            df = n1 + n2 - 2.0
            pooled = (a.m2[0] + b.m2[0]) / df
            standard_error = xp.sqrt(pooled * (1.0 / n1 + 1.0 / n2))
        else:
            v1, v2 = var1 / n1, var2 / n2
            standard_error = xp.sqrt(v1 + v2)
            df = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1.0) + v2 * v2 / (n2 - 1.0))
        statistic = difference / standard_error
    if equal_var:  # one value on a side is enough when the other side gives the variance
        untestable = (n1 < 1) | (n2 < 1) | (n1 + n2 < 3)
    else:
        untestable = (n1 < 2) | (n2 < 2)
        # No variance on either side but different means: SciPy takes df = 1 (any df gives
        # p = 0 for t = ±inf), so such a gene counts in the FDR as the clear difference it is.
        df = xp.where(xp.isinf(statistic), 1.0, df)
    statistic = xp.where(untestable, xp.nan, statistic)
    df = xp.where(untestable | xp.isnan(statistic), xp.nan, df)
    return statistic, df


def log2fc(a: GroupMoments, b: GroupMoments, scale: str, pseudocount: float) -> Any:
    xp = namespace(a.count)
    if scale == "log2":
        return a.mean[0] - b.mean[0]
    if scale == "log1p":
        top, bottom = a.linear_mean[0], b.linear_mean[0]
    else:
        top, bottom = a.mean[0], b.mean[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return xp.log2((top + pseudocount) / (bottom + pseudocount))


def anova(moments: GroupMoments, levels: list[str], fdr: str) -> xr.Dataset:
    xp = namespace(moments.count)
    everyone = moments.pooled()
    counts = moments.count
    k = xp.sum(counts > 0, axis=0).astype(xp.float64)  # groups with values, per gene
    n = everyone.count[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = xp.sum(counts * (moments.mean - everyone.mean) ** 2, axis=0)
        within = xp.sum(moments.m2, axis=0)
        df_between = k - 1.0
        df_within = n - k
        statistic = (between / df_between) / (within / df_within)
    statistic = xp.where((df_between > 0) & (df_within > 0), statistic, xp.nan)
    pvalue = f_sf(statistic, df_between, df_within)
    ds = xr.Dataset(
        {
            "statistic": ("gene", statistic),
            "pvalue": ("gene", pvalue),
            "padj": ("gene", _fdr.adjust(pvalue, fdr)),
            "log10_pvalue": ("gene", log_f_sf(statistic, df_between, df_within) / np.log(10.0)),
            "df_between": ("gene", df_between),
            "df_within": ("gene", df_within),
            "mean": (("group", "gene"), moments.mean),
            "count": (("group", "gene"), counts.astype(xp.int64)),
        },
        coords={"group": levels},
    )
    return ds


def paired_t(
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
    """The paired t-test (``scipy.stats.ttest_rel``) of every gene, in one pass.

    Parameters
    ----------
    x : dask.array.Array of shape (n_samples, n_genes)
    group_rows, reference_rows : ndarray of shape (n_pairs,)
        The two samples of each pair.

    Returns
    -------
    columns : dict of arrays of shape (n_genes,)
        statistic, pvalue, log2fc, df, mean_group, mean_reference, n_group, n_reference (the
        pairs used).
    infinite : array of shape (n_genes,) or None
        Per-gene numbers of ±inf values, when counted.
    """
    xp = namespace(x)
    both, moments = pair_columns(
        x,
        group_rows,
        reference_rows,
        functools.partial(_difference_moments, omit_nan=omit_nan),
        omit_nan=omit_nan,
        linear=scale == "log1p",
        count_infinite=count_infinite,
    )
    differences = GroupMoments(moments["count"], moments["mean"], moments["m2"])
    n = differences.count[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = differences.mean[0] / xp.sqrt(differences.variance()[0] / n)
        df = n - 1.0
    statistic = xp.where(n < 2, xp.nan, statistic)
    df = xp.where(xp.isnan(statistic), xp.nan, df)
    a, b = both.select(slice(0, 1)), both.select(slice(1, 2))
    columns = _t_columns(statistic, df, a, b, (n, n), alternative, scale, pseudocount)
    return columns, both.infinite


def _difference_moments(d: Any, omit_nan: bool) -> dict[str, Any]:
    """Moments of a block of the pairs' differences, of shape (n_pairs, block_genes)."""
    moments = chunk_moments(d, np.zeros(d.shape[0], dtype=np.int64), 1, omit_nan)
    return {"count": moments.count, "mean": moments.mean, "m2": moments.m2}


def _t_columns(
    statistic: Any,
    df: Any,
    a: GroupMoments,
    b: GroupMoments,
    counts: tuple[Any, Any],
    alternative: str,
    scale: str,
    pseudocount: float,
) -> dict[str, Any]:
    """A t-test's result columns for one contrast (group ``a`` against ``b``)."""
    return {
        "statistic": statistic,
        "pvalue": t_pvalue(statistic, df, alternative),
        "log10_pvalue": t_log10_pvalue(statistic, df, alternative),
        "log2fc": log2fc(a, b, scale, pseudocount),
        "df": df,
        "mean_group": a.mean[0],
        "mean_reference": b.mean[0],
        "n_group": counts[0],
        "n_reference": counts[1],
    }
