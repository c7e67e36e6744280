"""A result's adjusted p-values by independent hypothesis weighting (IHW) on a gene covariate,
as DESeq2's ``results(dds, filterFun = ihw)`` does with the mean counts, for any test."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .. import fdr as _fdr
from .._cohort import to_host_dataset
from .._errors import CohortexError

__all__ = ["ihw"]


def ihw(
    result: xr.Dataset,
    covariate: str | Any = "mean_expression",
    alpha: float = 0.1,
    **options: Any,
) -> xr.Dataset:
    """The result with ``padj`` from IHW's weighted adjustment of each contrast's p-values.

    For RNA-seq the genes' mean expression is IHW's covariate of choice (DESeq2 uses the
    mean counts): under the null it tells nothing of a gene's p-value, but genes of low
    expression have less power, so they are weighted down and the well-measured genes up.
    This is :func:`cohortex.fdr.ihw` per contrast; ``deseq(..., ihw=True)`` gives the same.

    Parameters
    ----------
    result : xarray.Dataset
        A result of :func:`fit`, :func:`test`, :func:`glm_ql`, :func:`glm_lrt`,
        :func:`exact_test`, :func:`voom_lm_fit` or :func:`deseq`: ``pvalue`` on ``gene``
        (and ``contrast``).
    covariate : str or array of shape (n_genes,), default "mean_expression"
        A variable of the result on ``gene`` (limma's AveExpr, edgeR's logCPM, DESeq2's
        baseMean) or the values themselves. It must not depend on the p-values under the
        null: not the fold change, the statistic or the p-value.
    alpha : float, default 0.1
        The FDR the weights are learnt for.
    **options
        :func:`cohortex.fdr.ihw`'s other parameters (``n_bins``, ``n_folds``, ``seed``,
        ``method``: "bh" or "bonferroni", ...).

    Returns
    -------
    xarray.Dataset
        A copy with ``padj`` replaced, ``ihw_weight`` beside ``pvalue``, and the attrs
        ``ihw`` (1), ``ihw_covariate`` (its name, or "given") and ``ihw_alpha``. A DESeq2
        result's independent-filtering threshold becomes NaN (IHW replaces it).

    Raises
    ------
    CohortexError
        Where the result has no ``pvalue`` on ``gene``, or the covariate is not a gene
        variable of the result (or of another length), or is one of the test's own outputs.
    """
    if "pvalue" not in result or "gene" not in result["pvalue"].dims:
        raise CohortexError(
            "de.ihw() needs a differential-expression result with 'pvalue' on 'gene'."
        )
    result = to_host_dataset(result)
    name = covariate if isinstance(covariate, str) else "given"
    if isinstance(covariate, str):
        if covariate in ("pvalue", "padj", "statistic", "coefficient", "log2fc"):
            raise CohortexError(
                f"de.ihw()'s covariate {covariate!r} is the test's own output, which depends "
                "on the p-values under the null; use the mean expression."
            )
        if covariate not in result or result[covariate].dims != ("gene",):
            genewise = [str(v) for v in result.data_vars if result[v].dims == ("gene",)]
            raise CohortexError(
                f"The 'covariate' parameter of de.ihw() must name a gene variable of the "
                f"result; got {covariate!r}. Gene variables: {', '.join(genewise) or 'none'}."
            )
        values = result[covariate].values
    else:
        values = np.asarray(covariate)
        if values.shape != (result.sizes["gene"],):
            raise CohortexError(
                f"de.ihw()'s covariate has shape {values.shape}; the result has "
                f"{result.sizes['gene']} genes."
            )
    pvalue = result["pvalue"].transpose(..., "gene")
    p = pvalue.values.reshape(-1, pvalue.sizes["gene"])
    padj = np.empty_like(p)
    weights = np.empty_like(p)
    for row in range(p.shape[0]):
        weighted = _fdr.ihw(p[row], values, alpha, **options)
        padj[row], weights[row] = weighted.adjusted, weighted.weights
    out = result.copy()
    dims = pvalue.dims
    out["padj"] = (dims, padj.reshape(pvalue.shape))
    out["ihw_weight"] = (dims, weights.reshape(pvalue.shape))
    if "filter_threshold" in out:
        out["filter_threshold"] = xr.full_like(out["filter_threshold"], np.nan)
        out["filter_theta"] = xr.full_like(out["filter_theta"], np.nan)
    out.attrs.update(ihw=1, ihw_covariate=name, ihw_alpha=alpha)
    if "independent_filtering" in out.attrs:
        out.attrs["independent_filtering"] = 0
    return out
