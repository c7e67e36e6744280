"""Over-representation of gene sets in a gene list: ``ora()`` and ``ora_de()``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import xarray as xr
from scipy import sparse, stats

from .. import fdr as _fdr
from .._backend import to_host
from .._errors import CohortexError
from ._collection import GeneSets

__all__ = ["ora", "ora_de"]


def ora(
    genes: Iterable[str],
    gene_sets: GeneSets,
    universe: Iterable[str],
    *,
    min_size: int = 5,
    max_size: int | None = 500,
    fdr: str = "bh",
) -> xr.Dataset:
    """Over-representation of every gene set in a gene list (one-sided hypergeometric test).

    With the universe U (every gene that could have been listed, e.g. all tested genes), the
    list L ⊆ U and a set S cut to U: ``overlap = |L ∩ S|`` and ``p = P(X ≥ overlap)`` for
    ``X ~ Hypergeometric(|U|, |S|, |L|)`` — Fisher's exact test, one-sided (``greater``), as
    R's ``phyper(overlap - 1, |S|, |U| - |S|, |L|, lower.tail = FALSE)``. All sets at once: the
    overlaps are one sparse (sets × genes) membership product with the list.

    Parameters
    ----------
    genes : iterable of str
        The list (genes outside the universe are ignored).
    gene_sets : GeneSets
    universe : iterable of str
    min_size, max_size : int, default 5 and 500
        Sets whose size within the universe falls outside are left out (as fgsea's).
    fdr : str, default "bh"
        Correction across the sets (:mod:`cohortex.fdr`).

    Returns
    -------
    xarray.Dataset
        On ``gene_set``: ``description``, ``set_size`` (within the universe), ``overlap``,
        ``expected`` (``|S| |L| / |U|``), ``odds_ratio`` (the sample odds ratio of the 2 × 2
        table), ``pvalue``, ``padj``, ``overlap_genes`` (comma-separated, in list order).
        Attrs ``list_size`` and ``universe_size``.
    """
    _fdr.check_method(fdr, "ora()")
    universe_ids = list(dict.fromkeys(str(g) for g in universe))
    if not universe_ids:
        raise CohortexError("The universe of genes is empty.")
    index = {g: i for i, g in enumerate(universe_ids)}
    listed = [g for g in dict.fromkeys(str(g) for g in genes) if g in index]
    if not listed:
        raise CohortexError("No gene of the list is in the universe.")
    sets = gene_sets.restrict(universe_ids, min_size=min_size, max_size=max_size)
    if not len(sets):
        raise CohortexError(
            f"No gene set has between {min_size} and {max_size} genes in the universe of "
            f"{len(universe_ids)} genes (do the sets and the cohort name genes alike?)."
        )
    rows = np.repeat(np.arange(len(sets)), sets.sizes())
    columns = np.fromiter((index[g] for m in sets.members for g in m), dtype=np.int64)
    membership = sparse.csr_matrix(
        (np.ones(columns.size), (rows, columns)), shape=(len(sets), len(universe_ids))
    )
    in_list = np.zeros(len(universe_ids))
    in_list[[index[g] for g in listed]] = 1.0
    overlap = np.rint(membership @ in_list).astype(np.int64)
    size = sets.sizes()
    n_universe, n_list = len(universe_ids), len(listed)
    pvalue = stats.hypergeom.sf(overlap - 1, n_universe, size, n_list)
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = (overlap * (n_universe - size - n_list + overlap)) / (
            (size - overlap) * (n_list - overlap)
        )
    order = {g: i for i, g in enumerate(listed)}
    overlap_genes = [
        ",".join(sorted((g for g in members if g in order), key=order.__getitem__))
        for members in sets.members
    ]
    return xr.Dataset(
        {
            "description": ("gene_set", np.asarray(sets.descriptions, dtype=object)),
            "set_size": ("gene_set", size),
            "overlap": ("gene_set", overlap),
            "expected": ("gene_set", size * n_list / n_universe),
            "odds_ratio": ("gene_set", odds),
            "pvalue": ("gene_set", pvalue),
            "padj": ("gene_set", np.asarray(_fdr.adjust(pvalue, fdr))),
            "overlap_genes": ("gene_set", np.asarray(overlap_genes, dtype=object)),
        },
        coords={"gene_set": np.asarray(sets.names, dtype=object)},
        attrs={"test": "hypergeometric", "list_size": n_list, "universe_size": n_universe},
    )


def ora_de(
    result: xr.Dataset,
    gene_sets: GeneSets,
    *,
    alpha: float = 0.05,
    lfc: float = 0.0,
    contrast: str | None = None,
    **options: Any,
) -> xr.Dataset:
    """Over-representation among a DE result's up- and down-regulated genes, separately.

    Up: ``padj < alpha`` and ``log2fc > lfc`` (``coefficient`` for :func:`cohortex.de.fit`
    results); down likewise below ``-lfc``. The universe is every gene the result tested
    (a p-value that is not NaN).

    Parameters
    ----------
    result : xarray.Dataset
        A result of :func:`cohortex.de.test` or :func:`cohortex.de.fit`.
    gene_sets : GeneSets
    alpha, lfc : float
    contrast : str, optional
        Which contrast, when the result has several.
    **options
        Passed to :func:`ora` (``min_size``, ``max_size``, ``fdr``).

    Returns
    -------
    xarray.Dataset
        :func:`ora`'s variables on (``direction``, ``gene_set``), direction ``up`` and
        ``down``.
    """
    if "contrast" in result.dims:
        names = [str(c) for c in result["contrast"].values]
        if contrast is None and len(names) > 1:
            raise CohortexError(f"The result has several contrasts; choose one of {names}.")
        result = result.sel(contrast=contrast or names[0])
    effect = "log2fc" if "log2fc" in result else "coefficient"
    if effect not in result or "padj" not in result:
        raise CohortexError("ora_de() needs a DE result with padj and log2fc (or coefficient).")
    genes = np.asarray([str(g) for g in result["gene"].values])
    padj = np.asarray(to_host(result["padj"].values), dtype=float)
    change = np.asarray(to_host(result[effect].values), dtype=float)
    tested = ~np.isnan(np.asarray(to_host(result["pvalue"].values), dtype=float))
    called = tested & (padj < alpha)
    parts = []
    for direction, chosen in (("up", called & (change > lfc)), ("down", called & (change < -lfc))):
        if not chosen.any():
            raise CohortexError(
                f"No gene is {direction} at padj < {alpha} and |{effect}| > {lfc}; nothing to test."
            )
        parts.append(ora(genes[chosen], gene_sets, genes[tested], **options))
    combined = xr.concat(parts, dim="direction", join="outer", coords="minimal")
    return combined.assign_coords(direction=["up", "down"])
