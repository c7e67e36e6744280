"""Enrichment of a gene module for known gene sets (hypergeometric test, Fisher's method)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import xarray as xr
from scipy import stats

from .._errors import CohortexError
from ..genesets import GeneSets

__all__ = ["enrichment"]


def enrichment(
    module: Iterable[str],
    gene_sets: Iterable[str] | Mapping[str, Iterable[str]] | GeneSets,
    universe: Iterable[str],
) -> xr.Dataset:
    """Over-representation of gene sets in a module.

    For each gene set S, with universe U, module M ⊆ U: ``overlap = |M ∩ S|`` and the
    one-sided hypergeometric p-value ``P(X ≥ overlap)`` for X ~ Hypergeometric(|U|, |S ∩ U|,
    |M|). Several sets are also combined by Fisher's method (``-2 Σ log p`` on ``2k`` degrees
    of freedom), as across the diseases of Dwivedi et al.

    Parameters
    ----------
    module : iterable of str
        Genes of the module (those outside the universe are ignored).
    gene_sets : iterable of str, mapping of name to iterable of str, or GeneSets
        One gene set, or several by name (a :class:`cohortex.genesets.GeneSets`, e.g. from a
        GMT file; :func:`cohortex.genesets.ora` adds FDR, odds ratios and overlap genes).
    universe : iterable of str
        All genes that could have been in the module (e.g. the model's genes).

    Returns
    -------
    xarray.Dataset
        On ``gene_set``: ``overlap``, ``set_size``, ``pvalue``; attrs ``module_size``,
        ``universe_size`` and ``combined_pvalue`` (Fisher).
    """
    universe_set = {str(g) for g in universe}
    if not universe_set:
        raise CohortexError("The universe of genes is empty.")
    module_set = {str(g) for g in module} & universe_set
    if isinstance(gene_sets, GeneSets):
        gene_sets = dict(zip(gene_sets.names, gene_sets.members, strict=True))
    if isinstance(gene_sets, Mapping):
        named = {str(k): {str(g) for g in v} & universe_set for k, v in gene_sets.items()}
    else:
        named = {"gene_set": {str(g) for g in gene_sets} & universe_set}
    names = list(named)
    overlap = np.array([len(module_set & named[n]) for n in names])
    sizes = np.array([len(named[n]) for n in names])
    pvalues = stats.hypergeom.sf(overlap - 1, len(universe_set), sizes, len(module_set))
    combined = float(stats.combine_pvalues(pvalues, method="fisher").pvalue)
    return xr.Dataset(
        {
            "overlap": ("gene_set", overlap),
            "set_size": ("gene_set", sizes),
            "pvalue": ("gene_set", pvalues),
        },
        coords={"gene_set": names},
        attrs={
            "module_size": len(module_set),
            "universe_size": len(universe_set),
            "combined_pvalue": combined,
        },
    )
