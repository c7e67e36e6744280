"""A module's network as edges for Cytoscape and friends: its genes' topological overlap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .._backend import namespace, to_host
from .._cohort import CohortLike, shared_docs
from .._errors import CohortexError
from ..stats._network import adjacency, tom_denominator
from ._data import GeneNetwork

__all__ = ["module_edges"]


@shared_docs
def module_edges(
    cohort: CohortLike,
    modules: xr.Dataset,
    module: int,
    *,
    threshold: float = 0.02,
    device: str = "auto",
    progress: bool | None = None,
) -> pd.DataFrame:
    """The topological overlap of a module's genes as a table of edges, as WGCNA's
    ``exportNetworkToCytoscape(TOM[inModule, inModule], threshold = 0.02)``.

    The TOM of two genes counts the neighbours they share among all the network's genes, so
    it takes one more pass over the cohort: the module's genes' correlations with every gene
    (the network's genes × the module's, not the whole matrix).

    Parameters
    ----------
    {cohort}
        The cohort :func:`modules` was given (with its missing values, if any: pairs of genes
        are then correlated over the samples both have, as :func:`modules`).
    modules : xarray.Dataset
        :func:`modules`' result (its power, network and TOM types are used).
    module : int
        The module's number (0: the unassigned genes).
    threshold : float, default 0.02
        Edges of a smaller TOM are left out (WGCNA's default).
    {device}
    progress : bool, optional

    Returns
    -------
    pandas.DataFrame
        ``from_gene``, ``to_gene``, ``weight`` (the TOM), each pair once, by decreasing weight;
        ``from_kme`` and ``to_kme`` (each gene's kME in the module), so that hubs stand out.
    """
    if "label" not in modules or "power" not in modules.attrs:
        raise CohortexError(
            "The 'modules' parameter of module_edges() must be the result of modules()."
        )
    levels = [int(m) for m in modules["module"].values]
    if module not in levels:
        raise CohortexError(
            f"The 'module' parameter of module_edges() must be one of the result's modules "
            f"{levels}; got {module!r}."
        )
    if not 0.0 <= threshold <= 1.0:
        raise CohortexError(f"The 'threshold' parameter must be in [0, 1]; got {threshold}.")
    genes = np.asarray(modules["gene"].values).astype(str)
    data = GeneNetwork.build(
        cohort,
        genes=None,
        device=device,
        progress=progress,
        who="module_edges",
        gene_ids=genes,
        correlation=False,
        correlation_type=str(modules.attrs.get("correlation_type", "pearson")),
        max_p_outliers=float(modules.attrs.get("max_p_outliers", 1.0)),
    )
    position = {g: i for i, g in enumerate(data.gene_ids.astype(str))}
    members = np.flatnonzero(np.asarray(modules["label"].values) == module)
    rows = np.array([position[g] for g in genes[members]], dtype=np.int64)
    attrs = modules.attrs
    network, tom = str(attrs["network"]), str(attrs["tom"])
    keep_sign = tom == "signed" and network == "unsigned"
    correlation = data.cross_correlation(rows)
    a = adjacency(correlation, float(attrs["power"]), network, keep_sign=keep_sign)
    xp = namespace(a)
    connectivity = xp.abs(a).sum(axis=1)
    shared = a @ a.T  # l_ij + 2 a_ij with a_ii = 1
    within = a[:, xp.asarray(rows)]
    absolute = xp.abs(within) if tom == "signed" else within
    numerator = shared - within
    if tom == "signed":
        numerator = xp.abs(numerator)
    how = str(attrs.get("tom_denominator", "min"))
    denominator = tom_denominator(connectivity, connectivity, how) - absolute
    empty = denominator == 0.0
    overlap = np.asarray(
        to_host(xp.where(empty, 0.0, numerator / xp.where(empty, 1.0, denominator))),
        dtype=np.float64,
    )
    first, second = np.triu_indices(rows.shape[0], k=1)
    weight = overlap[first, second]
    kept = weight >= threshold
    kme = np.asarray(modules["kme"].sel(module=module).values)[members]
    names = genes[members]
    table = pd.DataFrame(
        {
            "from_gene": names[first[kept]],
            "to_gene": names[second[kept]],
            "weight": weight[kept],
            "from_kme": kme[first[kept]],
            "to_kme": kme[second[kept]],
        }
    )
    return table.sort_values("weight", ascending=False, kind="stable").reset_index(drop=True)
