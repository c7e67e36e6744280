"""What each co-expression module is made of: over-representation of gene sets in it."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .._errors import CohortexError
from ..fdr import check_method
from ..genesets import GeneSets, ora

__all__ = ["module_enrichment"]


def module_enrichment(
    modules: xr.Dataset,
    gene_sets: GeneSets,
    *,
    min_size: int = 5,
    max_size: int | None = 500,
    fdr: str = "bh",
) -> xr.Dataset:
    """Over-representation of every gene set in every module (Fisher's one-sided test), the
    network's genes as the universe: what WGCNA users ask of GO or pathways next.

    Parameters
    ----------
    modules : xarray.Dataset
        :func:`modules`' result.
    gene_sets : GeneSets
        Named by the result's gene ids (``GeneSets.translate`` maps sets of symbols to them).
    min_size, max_size : int, default 5 and 500
        Sets whose size among the network's genes falls outside are left out.
    fdr : str, default "bh"
        The correction across the sets, within each module (as clusterProfiler's
        ``compareCluster``).

    Returns
    -------
    xarray.Dataset
        On (``module``, ``gene_set``), modules 1, 2, … (not the unassigned genes): ``overlap``,
        ``expected``, ``odds_ratio``, ``pvalue``, ``padj``; on ``gene_set``: ``set_size``
        (among the network's genes) and ``description``; on ``module``: ``size``. Attrs
        ``universe_size``, ``fdr``.
    """
    check_method(fdr, "module_enrichment()", "fdr")
    if "label" not in modules or "kme" not in modules:
        raise CohortexError(
            "The 'modules' parameter of module_enrichment() must be the result of modules()."
        )
    labels = np.asarray(modules["label"].values)
    genes = np.asarray(modules["gene"].values).astype(str)
    levels = [int(m) for m in np.asarray(modules["module"].values) if m != 0]
    if not levels:
        raise CohortexError("module_enrichment(): the network has no module.")
    tables = [
        ora(genes[labels == level], gene_sets, genes, min_size=min_size, max_size=max_size, fdr=fdr)
        for level in levels
    ]
    stacked = xr.concat(
        [t[["overlap", "expected", "odds_ratio", "pvalue", "padj"]] for t in tables],
        dim=xr.DataArray(levels, dims="module", name="module"),
    )
    stacked["set_size"] = tables[0]["set_size"]
    stacked["description"] = tables[0]["description"]
    stacked["size"] = ("module", [int(np.sum(labels == level)) for level in levels])
    stacked.attrs = {"universe_size": int(genes.shape[0]), "fdr": fdr}
    return stacked
