"""limma's ``geneSetTest``/``wilcoxGST``: rank-sum tests of each set's statistics against the
other genes'."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .. import fdr as _fdr
from .._cohort import shared_docs
from .._errors import CohortexError
from ._camera import rank_sum_tests
from ._collection import GeneSets
from ._gsea import ranking_of

__all__ = ["ALTERNATIVES", "gene_set_test"]

# limma's alternatives and their aliases
ALTERNATIVES = {
    "mixed": "mixed",
    "either": "either",
    "two.sided": "either",
    "up": "up",
    "greater": "up",
    "down": "down",
    "less": "down",
}


@shared_docs
def gene_set_test(
    statistics: Any,
    gene_sets: GeneSets,
    *,
    by: str = "statistic",
    alternative: str = "mixed",
    fdr: str = "bh",
) -> xr.Dataset:
    """limma's ``geneSetTest`` (``ranks.only = TRUE``, i.e. ``wilcoxGST``) of every set.

    The Wilcoxon rank-sum test of the set's statistics against all the genes', as limma's
    ``rankSumTestWithCorrelation`` with no inter-gene correlation: a competitive test that
    treats the genes as independent (:func:`camera_pr` allows for their correlation, which
    is nearly always positive; prefer it where the genes' correlation matters).

    Parameters
    ----------
    statistics : pandas.Series, xarray.DataArray or xarray.Dataset
        A statistic per gene, or a DE result of one contrast (its ``by`` variable).
    gene_sets : GeneSets
    by : str, default "statistic"
    alternative : {{"mixed", "either", "up", "down"}}, default "mixed"
        ``mixed``: the set's |statistics| rank high (changed in either direction, mixed
        within the set); ``up``/``down``: they rank high/low (``greater``/``less``);
        ``either``: up or down, two-sided (``two.sided``). Statistics all of one sign (an F,
        a p-value) allow only ``mixed``, as in limma.
    {fdr}

    Returns
    -------
    xarray.Dataset
        On ``gene_set``: ``n_genes``, ``pvalue``, ``padj``.
    """
    if alternative not in ALTERNATIVES:
        raise CohortexError(
            f"gene_set_test()'s 'alternative' must be one of "
            f"{', '.join(map(repr, ALTERNATIVES))}; got {alternative!r}."
        )
    _fdr.check_method(fdr, "gene_set_test()")
    chosen = ALTERNATIVES[alternative]
    ranking = ranking_of(statistics, by, "gene_set_test()")
    values = ranking.to_numpy()
    one_sign = bool(np.all(values >= 0) or np.all(values <= 0))
    if one_sign and chosen != "mixed":
        raise CohortexError(
            "The statistics all have one sign (an F-like statistic): only "
            "alternative='mixed' is possible, as in limma."
        )
    if chosen == "mixed":
        values = np.abs(values)
    genes = list(ranking.index)
    sets = gene_sets.restrict(genes, min_size=1)
    if not len(sets):
        raise CohortexError("No gene set has a ranked gene (translate the names?).")
    index = {g: i for i, g in enumerate(genes)}
    members = [np.fromiter((index[g] for g in m), dtype=np.int64) for m in sets.members]
    less, greater = rank_sum_tests(values, members, np.zeros(len(members)), np.inf)
    pvalue = {
        "mixed": greater,
        "up": greater,
        "down": less,
        "either": np.minimum(2.0 * np.minimum(less, greater), 1.0),  # a p-value is at most 1
    }[chosen]
    return xr.Dataset(
        {
            "n_genes": ("gene_set", np.array([m.size for m in members])),
            "pvalue": ("gene_set", pvalue),
            "padj": ("gene_set", np.asarray(_fdr.adjust(pvalue, fdr))),
        },
        coords={"gene_set": np.asarray(sets.names, dtype=object)},
        attrs={"test": "gene_set_test (limma's wilcoxGST)", "alternative": chosen},
    )
