"""Preranked gene-set enrichment analysis (GSEA): ``gsea()``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import fdr as _fdr
from .._backend import namespace, resolve_device, to_device, to_host
from .._errors import CohortexError
from ._collection import GeneSets

__all__ = ["enrichment_scores", "gsea"]


def gsea(
    ranking: Any,
    gene_sets: GeneSets,
    *,
    by: str = "statistic",
    weight: float = 1.0,
    permutations: int = 1000,
    min_size: int = 15,
    max_size: int = 500,
    seed: int = 0,
    fdr: str = "bh",
    device: str = "auto",
) -> xr.Dataset:
    """Preranked GSEA of every set: enrichment score, normalised score, permutation p-value.

    Genes are ranked by a statistic, largest first. A set's running sum steps up by
    ``|r|^weight / Σ_set |r|^weight`` at its genes and down by ``1 / (N − k)`` elsewhere; the
    enrichment score (ES) is its largest deviation from 0 (Subramanian et al. 2005). The null
    comes from gene sets of the same size drawn at random from the ranking (fgsea's
    ``fgseaSimple``): ``permutations`` draws for every size at once, each draw's first k
    positions forming the random set of size k. ``p = (1 + #{null ≥ ES}) / (1 + #{null ≥ 0})``
    for a positive ES (the mirror for a negative one), ``NES = ES / mean(null of that sign)``.
    The smallest p is therefore about ``1 / permutations``; fgsea's multilevel estimate of
    smaller p-values is not implemented.

    Parameters
    ----------
    ranking : pandas.Series, xarray.DataArray or xarray.Dataset
        A statistic per gene (indexed by gene id), or a DE result whose ``by`` variable ranks
        the genes (one contrast). NaN values are left out.
    gene_sets : GeneSets
    by : str, default "statistic"
        The variable of a Dataset ``ranking`` (e.g. ``"log2fc"``).
    weight : float, default 1.0
        GSEA's ``p``: 0 for the classic Kolmogorov–Smirnov statistic.
    permutations : int, default 1000
    min_size, max_size : int, default 15 and 500
        Sets with fewer or more ranked genes are left out (fgsea's defaults).
    seed : int, default 0
        The random draws come from NumPy's generator on the host whatever the device, so a
        seed gives the same p-values on the CPU and the GPU.
    fdr : str, default "bh"
    device : {"auto", "cpu", "gpu"}, default "auto"
        Where the null (a batched sort and cumulative sum per set size) is computed.

    Returns
    -------
    xarray.Dataset
        On ``gene_set``: ``size``, ``es``, ``nes``, ``pvalue``, ``padj``, ``leading_edge``
        (the set's genes up to the running sum's peak, comma-separated, in rank order).
    """
    if fdr not in _fdr.METHODS:
        raise CohortexError(
            f"The 'fdr' parameter of gsea() must be one of {', '.join(map(repr, _fdr.METHODS))}; "
            f"got {fdr!r}."
        )
    if permutations < 1 or weight < 0:
        raise CohortexError(
            f"gsea() needs permutations >= 1 and weight >= 0; got {permutations}, {weight}."
        )
    on = resolve_device(device)
    statistic = _ranking(ranking, by)
    order = np.argsort(-statistic.to_numpy(), kind="stable")
    genes = statistic.index.to_numpy()[order]
    values = np.abs(statistic.to_numpy()[order]) ** weight
    sets = gene_sets.restrict(genes, min_size=min_size, max_size=max_size)
    if not len(sets):
        raise CohortexError(
            f"No gene set has between {min_size} and {max_size} of the {genes.size} ranked genes."
        )
    position = {g: i for i, g in enumerate(genes)}
    members = [np.sort([position[g] for g in m]) for m in sets.members]
    sizes = np.array([m.size for m in members])
    es = np.empty(len(sets))
    peaks = np.empty(len(sets), dtype=np.int64)
    for size in np.unique(sizes):
        chosen = np.flatnonzero(sizes == size)
        hits = np.stack([members[i] for i in chosen])
        es[chosen], peaks[chosen] = enrichment_scores(hits, values, return_peak=True)
    rng = np.random.default_rng(seed)
    largest = int(sizes.max())
    draws = np.empty((permutations, largest), dtype=np.int64)
    for p in range(permutations):  # random sets of every size: the first k of a random draw
        draws[p] = rng.choice(genes.size, size=largest, replace=False)
    pvalue, nes = np.empty(len(sets)), np.empty(len(sets))
    # the null on the device: for each size, a batched sort and cumulative sum of the draws
    device_draws, device_values = to_device(draws, on), to_device(values, on)
    for size in np.unique(sizes):
        prefix = device_draws[:, :size]
        null = enrichment_scores(namespace(prefix).sort(prefix, axis=1), device_values)
        chosen = np.flatnonzero(sizes == size)
        pvalue[chosen], nes[chosen] = _null_tails(null, es[chosen])
    edges = []
    for s, hits in enumerate(members):
        leading = hits[hits <= peaks[s]] if es[s] >= 0 else hits[hits >= peaks[s]]
        edges.append(",".join(genes[leading]))
    return xr.Dataset(
        {
            "size": ("gene_set", sizes),
            "es": ("gene_set", es),
            "nes": ("gene_set", nes),
            "pvalue": ("gene_set", pvalue),
            "padj": ("gene_set", np.asarray(_fdr.adjust(pvalue, fdr))),
            "leading_edge": ("gene_set", np.asarray(edges, dtype=object)),
        },
        coords={"gene_set": np.asarray(sets.names, dtype=object)},
        attrs={
            "test": "gsea (preranked)",
            "weight": weight,
            "permutations": permutations,
            "seed": seed,
            "n_ranked": int(genes.size),
        },
    )


def _null_tails(null: Any, es: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p-values and NES of the scores ``es`` against one size's null (fgseaSimple's tails):
    counts by binary search in the sorted null of each sign."""
    xp = namespace(null)
    positive = xp.sort(null[null >= 0])
    negative = xp.sort(null[null <= 0])
    n_positive, n_negative = int(positive.size), int(negative.size)
    scores = xp.asarray(es)
    above = n_positive - xp.searchsorted(positive, scores, side="left")  # null >= es
    below = xp.searchsorted(negative, scores, side="right")  # null <= es
    upper = np.asarray(to_host((1 + above) / (1 + n_positive)), dtype=np.float64)
    lower = np.asarray(to_host((1 + below) / (1 + n_negative)), dtype=np.float64)
    mean_positive = float(to_host(positive.mean())) if n_positive else np.nan
    mean_negative = abs(float(to_host(negative.mean()))) if n_negative else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        nes = np.where(es >= 0, es / mean_positive, es / mean_negative)
    return np.where(es >= 0, upper, lower), nes


def enrichment_scores(hits: np.ndarray, values: np.ndarray, *, return_peak: bool = False) -> Any:
    """GSEA's enrichment score of many sets of one size at once.

    Parameters
    ----------
    hits : array of shape (n_sets, k), int
        Each set's positions in the ranking, ascending (NumPy or CuPy).
    values : array of shape (n_genes,)
        ``|statistic|^weight`` in rank order, on the same device.
    return_peak : bool
        Also return the position of each set's extreme.

    Returns
    -------
    es : ndarray of shape (n_sets,)
    peak : ndarray of shape (n_sets,), int (with ``return_peak``)
    """
    xp = namespace(hits)
    n_genes = values.size
    k = hits.shape[1]
    weights = values[hits]
    total = weights.sum(axis=1, keepdims=True)
    # all-zero weights (a set of genes whose statistic is 0): each hit counts the same
    weights = xp.where(total > 0, weights, 1.0)
    total = xp.where(total > 0, total, float(k))
    cumulative = xp.cumsum(weights, axis=1) / total
    misses = (hits - xp.arange(k)) / (n_genes - k)  # misses before each hit, as a fraction
    after = cumulative - misses  # just after each hit
    before = cumulative - weights / total - misses  # just before each hit
    top, bottom = after.max(axis=1), before.min(axis=1)
    es = xp.where(top > -bottom, top, bottom)
    if not return_peak:
        return es
    rows = xp.arange(hits.shape[0])
    peak = xp.where(
        top > -bottom, hits[rows, after.argmax(axis=1)], hits[rows, before.argmin(axis=1)]
    )
    return es, peak


def _ranking(ranking: Any, by: str) -> pd.Series:
    if isinstance(ranking, xr.Dataset):
        if by not in ranking:
            raise CohortexError(f"The result has no {by!r} to rank the genes by.")
        values = ranking[by]
        if values.ndim != 1:
            raise CohortexError(f"Choose one contrast first: {by!r} has dims {values.dims}.")
        ranking = values
    if isinstance(ranking, xr.DataArray):
        ranking = pd.Series(
            np.asarray(to_host(ranking.data), dtype=np.float64),
            index=[str(g) for g in ranking["gene"].values],
        )
    if not isinstance(ranking, pd.Series):
        raise CohortexError("gsea() ranks a pandas Series, a DataArray or a DE result.")
    ranking = ranking.astype(np.float64).dropna()
    ranking.index = ranking.index.astype(str)
    if ranking.index.has_duplicates:
        raise CohortexError("The ranking names a gene twice.")
    if ranking.size < 2:
        raise CohortexError("gsea() needs at least two ranked genes.")
    return ranking
