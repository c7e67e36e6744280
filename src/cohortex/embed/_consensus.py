"""Consensus clustering of the samples (Monti et al. 2003), as ConsensusClusterPlus does it.

Molecular subtypes are found by clustering the samples on their most variable genes; how many
there are is read off the stability of the clusters under resampling. Each of ``reps``
subsamples (a fraction ``p_item`` of the samples) is clustered hierarchically and cut into
k = 2 … ``max_k`` clusters (or partitioned around k medoids, or by k-means); the consensus of
two samples is the fraction of the subsamples holding both in which they share a cluster. The
final clusters are the consensus matrix's own hierarchical clustering, and the consensus CDF's
area (and its relative change with k) is the usual guide to k. The steps are
ConsensusClusterPlus's ``ccRun``, ``CDF`` and ``calcICL``. The subsamples, and k-means'
starting centres, are R's draws after ``set.seed(seed)`` in ConsensusClusterPlus's order (a
subsample, then a start for each k), so a seed gives ConsensusClusterPlus's result for that
seed; or they are given.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import xarray as xr
from scipy.cluster import hierarchy
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import pdist, squareform

from .._backend import take_genes, to_host
from .._cohort import CohortLike, as_cohort_matrix
from .._errors import CohortexError, CohortexWarning
from .._memory import physical_memory
from .._progress import progress_bar
from ..stats._kmeans import hartigan_wong, starting_centres
from ..stats._pam import pam_clusters
from ..stats._r_random import RRandom

__all__ = ["consensus_clusters"]

_DISTANCES = ("pearson", "spearman", "euclidean")
# ConsensusClusterPlus's clusterAlg: hclust and cutree, cluster::pam, kmeans (Hartigan-Wong)
_ALGORITHMS = ("hc", "pam", "km")
_LINKAGES = ("average", "complete", "single", "ward")
_CDF_BINS = 100  # ConsensusClusterPlus's CDF(breaks = 100)
_BATCH = 64  # subsamples per product of memberships


def consensus_clusters(
    cohort: CohortLike,
    *,
    max_k: int = 6,
    reps: int = 1000,
    p_item: float = 0.8,
    genes: int | None = 5000,
    center: bool = True,
    distance: str = "pearson",
    cluster_algorithm: str = "hc",
    inner_linkage: str = "average",
    final_linkage: str = "average",
    seed: int = 0,
    subsamples: np.ndarray | None = None,
    progress: bool | None = None,
) -> xr.Dataset:
    """Consensus clustering of the samples, as ConsensusClusterPlus (``clusterAlg = "hc"``,
    ``"pam"`` or ``"km"``).

    Parameters
    ----------
    cohort : path, xarray.Dataset, AnnData or array of shape (n_samples, n_genes)
        Log-scale values without missing ones.
    max_k : int, default 6
        Clusterings into k = 2 … max_k clusters (``maxK``).
    reps : int, default 1000
        Subsamples (``reps``; ConsensusClusterPlus's vignette uses 1,000).
    p_item : float, default 0.8
        The fraction of the samples in each subsample (``pItem``), ``floor(n · p_item)``.
    genes : int or None, default 5000
        Keep the genes of largest median absolute deviation, as the package's vignette does;
        None keeps every gene.
    center : bool, default True
        Subtract each gene's median first, as the vignette does (``sweep``).
    distance : {"pearson", "spearman", "euclidean"}, default "pearson"
        Between samples: 1 − correlation over the genes, or the Euclidean distance (hc and
        pam; k-means clusters the values themselves, as ConsensusClusterPlus's does).
    cluster_algorithm : {"hc", "pam", "km"}, default "hc"
        How each subsample is clustered (``clusterAlg``): hierarchically, cut at k clusters,
        partitioned around k medoids (``cluster::pam``'s BUILD and SWAP, exactly), or by R's
        ``kmeans(iter.max = 10)`` (Hartigan & Wong's algorithm from centres R draws;
        a warning counts the clusterings that stop before converging, as R warns of each).
    inner_linkage, final_linkage : {"average", "complete", "single", "ward"}
        Of the subsamples' hierarchical clusterings (hc) and of the final clustering of
        1 − consensus (``"ward"`` is R's ``"ward.D2"``).
    seed : int, default 0
        R's ``set.seed(seed)`` (ConsensusClusterPlus's ``seed``): the subsamples are
        ``sort(sample(n, floor(n · p_item)))``, one after another, with k-means' starting
        centres drawn after each, as R draws them.
    subsamples : array of shape (reps, floor(n · p_item)), int, optional
        The subsamples' sample indices (0-based), e.g. another run's; ``reps`` and ``p_item``
        are then not used (k-means' starts still come from ``seed``'s stream).
    progress : bool, optional

    Returns
    -------
    xarray.Dataset
        On ``k`` (2 … max_k), ``sample`` and ``other_sample``: ``consensus(k, sample,
        other_sample)`` (R's ``consensusMatrix``), ``consensus_class(k, sample)`` (the final
        clusters, R's ``consensusClass``, numbered by first appearance as ``cutree``),
        ``cdf(k, consensus_index)`` (the consensus CDF at 100 bins, ``consensus_index`` their
        upper edges), ``area(k)`` and
        ``delta_area(k)`` (its relative change from k − 1; the area itself for k = 2),
        ``cluster_consensus(k, cluster)`` (the mean consensus within each cluster) and
        ``item_consensus(k, sample, cluster)`` (each sample's mean consensus with each
        cluster's members), NaN beyond k clusters. Attrs record the settings and ``n_genes``.

    Raises
    ------
    CohortexError
        For missing values, unknown options, or too few samples for ``max_k``.

    Notes
    -----
    Agreement with ConsensusClusterPlus 1.62 (tests/embed/test_consensus.py), with the same
    seed: consensus matrices, CDF areas and cluster and item consensus to 1e-12, the same
    clusters. Memory: ``max_k + 2`` matrices of n_samples² (float64), refused at once beyond
    the machine's; each subsample's clustering is SciPy's (hc), cluster's PAM or R's kmeans
    (ported), on the host.
    """
    if cluster_algorithm not in _ALGORITHMS:
        raise CohortexError(
            f"The 'cluster_algorithm' parameter of consensus_clusters() must be one of "
            f"{', '.join(_ALGORITHMS)}; got {cluster_algorithm!r}."
        )
    if distance not in _DISTANCES:
        raise CohortexError(
            f"The 'distance' parameter of consensus_clusters() must be one of "
            f"{', '.join(_DISTANCES)}; got {distance!r}."
        )
    for name, value in (("inner_linkage", inner_linkage), ("final_linkage", final_linkage)):
        if value not in _LINKAGES:
            raise CohortexError(
                f"The {name!r} parameter of consensus_clusters() must be one of "
                f"{', '.join(_LINKAGES)}; got {value!r}."
            )
    data = as_cohort_matrix(cohort)
    n = data.matrix.shape[0]
    size = int(np.floor(n * p_item))
    if max_k < 2 or size <= max_k:
        raise CohortexError(
            f"consensus_clusters() needs 2 ≤ max_k < floor(n_samples · p_item) = {size}; "
            f"got max_k = {max_k}."
        )
    needed = (max_k + 2) * 8.0 * n * n  # the k's counts, the sampled counts, the distances
    total = physical_memory()
    if total and needed > total:
        raise CohortexError(
            f"consensus_clusters() of {n} samples holds {max_k + 2} matrices of {n} × {n}: "
            f"about {needed / 2**30:.0f} GB, more than this machine's {total / 2**30:.0f} GB. "
            "Cluster a subset of the samples (or fewer k)."
        )
    values = _prepared(data.matrix, genes, center)
    rng = RRandom(seed)
    if subsamples is not None:
        subsamples = np.asarray(subsamples, dtype=np.int64)
        if subsamples.ndim != 2 or subsamples.min() < 0 or subsamples.max() >= n:
            raise CohortexError(
                "The 'subsamples' parameter of consensus_clusters() must be an array of shape "
                f"(reps, size) of sample indices below {n}."
            )
        reps = len(subsamples)
    # k-means clusters the values themselves, as ConsensusClusterPlus's kmeans(t(d), k)
    dissimilarity = None if cluster_algorithm == "km" else _dissimilarity(values, distance)
    unconverged = 0
    ks = np.arange(2, max_k + 1)
    together = np.zeros((ks.size, n, n))
    sampled = np.zeros((n, n))
    # co-clustering counts as products of one-hot memberships (exact integers in float64),
    # a batch of subsamples per matrix product rather than a scatter per subsample
    memberships: list[list[np.ndarray]] = [[] for _ in ks]
    presence: list[np.ndarray] = []

    def flush() -> None:
        nonlocal sampled
        if not presence:
            return
        present = np.stack(presence, axis=1)
        sampled += present @ present.T
        for j in range(ks.size):
            onehot = np.concatenate(memberships[j], axis=1)
            together[j] += onehot @ onehot.T
            memberships[j].clear()
        presence.clear()

    def draws() -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
        """Each subsample and, for k-means, its starting centres for every k, drawn in R's
        order; the clusterings themselves do not draw, so they can run on threads."""
        for rep in range(reps):
            # ConsensusClusterPlus's sampleCols: sort(sample(n, size))
            members = np.sort(rng.sample(n, size)) - 1 if subsamples is None else subsamples[rep]
            starts = []
            if cluster_algorithm == "km":  # kmeans(t(d[, members]), k, iter.max = 10)
                starts = [starting_centres(values[members], int(k), rng) for k in ks]
            yield members, starts

    def partitions(
        drawn: tuple[np.ndarray, list[np.ndarray]],
    ) -> tuple[np.ndarray, list[np.ndarray], int]:
        members, starts = drawn
        if dissimilarity is None:
            points = values[members]
            runs = [hartigan_wong(points, points[start]) for start in starts]
            return members, [run.cluster - 1 for run in runs], sum(not r.converged for r in runs)
        within = dissimilarity[np.ix_(members, members)]
        if cluster_algorithm == "pam":
            return members, [pam_clusters(within, int(k)) for k in ks], 0
        return members, _cuts(_linkage(within, inner_linkage), ks), 0

    bar = progress_bar(reps, "consensus clustering", progress, unit="subsample")
    threads = (os.cpu_count() or 1) if cluster_algorithm == "km" else 1
    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for members, labels_of_k, stopped in pool.map(partitions, draws()):
                unconverged += stopped
                column = np.zeros(n)
                column[members] = 1.0
                presence.append(column)
                for j, labels in enumerate(labels_of_k):
                    onehot = np.zeros((n, int(ks[j])))
                    onehot[members, labels] = 1.0
                    memberships[j].append(onehot)
                if len(presence) == _BATCH:
                    flush()
                bar.update(1)
        flush()
    finally:
        bar.close()
    if unconverged:
        warnings.warn(
            f"kmeans did not converge in 10 iterations in {unconverged} of "
            f"{reps * ks.size} clusterings of subsamples (R warns of each); their last "
            "partitions are used, as R uses them.",
            CohortexWarning,
            stacklevel=2,
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        consensus = np.where(sampled > 0, together / sampled, 0.0)
    clusters = np.stack(
        [_final_clusters(consensus[j], int(k), final_linkage) for j, k in enumerate(ks)]
    )
    cdf, area = _cdf(consensus)
    delta = np.concatenate([area[:1], np.diff(area) / area[:-1]])
    cluster_consensus, item_consensus = _cluster_and_item_consensus(consensus, clusters, max_k)
    edges = np.arange(1, _CDF_BINS + 1) / _CDF_BINS
    return xr.Dataset(
        {
            "consensus": (("k", "sample", "other_sample"), consensus),
            "consensus_class": (("k", "sample"), clusters),
            "cdf": (("k", "consensus_index"), cdf),
            "area": ("k", area),
            "delta_area": ("k", delta),
            "cluster_consensus": (("k", "cluster"), cluster_consensus),
            "item_consensus": (("k", "sample", "cluster"), item_consensus),
        },
        coords={
            "k": ks,
            "sample": data.sample_ids,
            "other_sample": data.sample_ids,
            "consensus_index": edges,
            "cluster": np.arange(1, max_k + 1),
        },
        attrs={
            "reps": reps,
            "p_item": float(p_item),
            "distance": distance,
            "cluster_algorithm": cluster_algorithm,
            "inner_linkage": inner_linkage,
            "final_linkage": final_linkage,
            "n_genes": int(values.shape[1]),
            "centered": int(center),
            "seed": int(seed),
        },
    )


def _prepared(matrix: Any, genes: int | None, center: bool) -> np.ndarray:
    """The genes of largest MAD, median-centred: (n_samples, genes) float64 on the host."""
    import dask.array as da

    x = matrix if isinstance(matrix, da.Array) else da.asarray(matrix)
    x = x.astype(np.float64).rechunk({0: -1})
    medians = np.asarray(to_host(x.map_blocks(_medians, drop_axis=0, dtype=np.float64).compute()))
    if not np.isfinite(medians).all():
        raise CohortexError("consensus_clusters() needs values without missing or infinite ones.")
    if genes is not None and genes < x.shape[1]:
        spread = np.asarray(to_host(x.map_blocks(_mads, drop_axis=0, dtype=np.float64).compute()))
        keep = np.zeros(x.shape[1], dtype=bool)
        keep[np.argsort(-spread, kind="stable")[:genes]] = True
        x, medians = take_genes(x, keep), medians[keep]
    values = np.asarray(to_host(x.compute()), dtype=np.float64)
    if not np.isfinite(values).all():
        raise CohortexError("consensus_clusters() needs values without missing or infinite ones.")
    return values - medians if center else values


def _medians(block: Any) -> Any:
    return np.median(np.asarray(to_host(block)), axis=0)


def _mads(block: Any) -> Any:
    host = np.asarray(to_host(block))
    return np.median(np.abs(host - np.median(host, axis=0)), axis=0)


def _dissimilarity(values: np.ndarray, distance: str) -> np.ndarray:
    """Between samples (rows): 1 − correlation over the genes, or Euclidean."""
    if distance == "euclidean":  # the differences' squares summed, as R's dist
        return squareform(pdist(values, "euclidean"))
    if distance == "spearman":
        from scipy.stats import rankdata

        values = rankdata(values, axis=1)
    centred = values - values.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.sum(centred * centred, axis=1))
    correlation = (centred @ centred.T) / np.outer(norms, norms)
    out = 1.0 - correlation
    np.fill_diagonal(out, 0.0)
    return out


def _linkage(dissimilarity: np.ndarray, method: str) -> np.ndarray:
    condensed = squareform(np.maximum(dissimilarity, 0.0), checks=False)
    return hierarchy.linkage(condensed, method=method)


def _cuts(tree: np.ndarray, ks: np.ndarray) -> list[np.ndarray]:
    """R's ``cutree(tree, k)`` for each k: the clusters left after the first n − k merges
    (cluster numbers 0 … k − 1, in no particular order).

    Returns
    -------
    list of ndarray of shape (n,), int
    """
    n = tree.shape[0] + 1
    leaf = np.empty(2 * n - 1, dtype=np.int64)  # a leaf of each cluster
    leaf[:n] = np.arange(n)
    ends = np.empty((n - 1, 2), dtype=np.int64)
    for i, (a, b) in enumerate(tree[:, :2].astype(np.int64)):
        ends[i] = leaf[a], leaf[b]
        leaf[n + i] = leaf[a]
    out = []
    for k in ks:
        merges = n - int(k)
        graph = coo_matrix((np.ones(merges), (ends[:merges, 0], ends[:merges, 1])), shape=(n, n))
        _, labels = connected_components(graph, directed=False)
        out.append(labels)
    return out


def _final_clusters(consensus: np.ndarray, k: int, method: str) -> np.ndarray:
    """R's ``cutree(hclust(as.dist(1 − consensus)), k)``: numbered by first appearance."""
    distances = 1.0 - consensus
    np.fill_diagonal(distances, 0.0)
    labels = _cuts(_linkage(distances, method), np.array([k]))[0]
    _, first = np.unique(labels, return_index=True)
    renumber = np.empty(labels.max() + 1, dtype=np.int64)
    renumber[labels[np.sort(first)]] = np.arange(1, first.size + 1)
    return renumber[labels]


def _cdf(consensus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ConsensusClusterPlus's CDF: R's ``hist`` of the lower triangle on 100 right-closed bins
    (its breaks nudged by 1e-9, as R's), cumulated; the area is their sum times 0.01."""
    n = consensus.shape[1]
    lower = np.tril_indices(n, -1)
    breaks = np.arange(_CDF_BINS + 1) * (1.0 / _CDF_BINS)  # R's seq(0, 1, by = 0.01)
    fuzz = 1e-7 * np.median(np.diff(breaks))
    fuzzy = breaks + np.concatenate([[-fuzz], np.full(_CDF_BINS, fuzz)])
    cdfs, areas = [], []
    for matrix in consensus:
        values = matrix[lower]
        counts = np.bincount(np.searchsorted(fuzzy, values, side="left") - 1, minlength=_CDF_BINS)[
            :_CDF_BINS
        ]
        cumulative = np.cumsum(counts) / counts.sum()
        cdfs.append(cumulative)
        area = 0.0
        for b in range(_CDF_BINS):  # in R's order of additions
            area += cumulative[b] * (breaks[b + 1] - breaks[b])
        areas.append(area)
    return np.array(cdfs), np.array(areas)


def _cluster_and_item_consensus(
    consensus: np.ndarray, clusters: np.ndarray, max_k: int
) -> tuple[np.ndarray, np.ndarray]:
    """calcICL's cluster consensus (mean within-cluster pair consensus) and item consensus
    (each sample's mean consensus with a cluster's other members)."""
    n_k, n = clusters.shape
    cluster_consensus = np.full((n_k, max_k), np.nan)
    item_consensus = np.full((n_k, n, max_k), np.nan)
    for j in range(n_k):
        matrix = consensus[j].copy()
        np.fill_diagonal(matrix, 0.0)
        for c in range(1, clusters[j].max() + 1):
            members = clusters[j] == c
            size = int(members.sum())
            within = matrix[np.ix_(members, members)].sum() / 2.0
            denominators = np.where(members, size - 1, size).astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):  # a lone sample: 0 / 0
                cluster_consensus[j, c - 1] = within / (size * (size - 1) / 2.0)
                item_consensus[j, :, c - 1] = matrix[:, members].sum(axis=1) / denominators
    return cluster_consensus, item_consensus
