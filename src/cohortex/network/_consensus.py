"""WGCNA's ``blockwiseConsensusModules``: co-expression modules that several sets of samples
share (two sexes, tissues, cohorts).

Each set has its own network and topological overlap (TOM). The TOMs are calibrated so that
their 95th percentiles agree with the first set's (``TOMₛ^(log q₁ / log qₛ)``), and the
consensus TOM is their smallest value gene pair by gene pair (or a quantile over the sets): two
genes are close only where they are close in every set. The consensus TOM is clustered and cut
as in :func:`blockwise_modules`, a block of genes at a time; a module stays where enough of its
genes follow its eigengene in every set, and modules whose eigengenes correlate closely in every
set are merged. Each set's standardised genes are held in memory (samples × genes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats
from scipy.spatial.distance import squareform
from scipy.special import ndtr
from threadpoolctl import threadpool_limits

from .._backend import resolve_device, to_host
from .._cohort import CohortLike, shared_docs
from .._errors import CohortexError
from .._memory import release_free_memory
from .._progress import progress_bar
from ..stats._blockwise import consensus_cluster_merge, projective_kmeans
from ..stats._impute import IMPUTE_SEED
from ..stats._network import bicor_columns
from ..stats._r_random import RRandom
from ..stats._tree_cut import number_by_size
from ._blockwise import (
    ProductGenes,
    cut_tree,
    given_blocks,
    tom_of_correlation,
    tree_variables,
    within_connectivity,
)
from ._data import HOST_COPIES, GeneNetwork, check_choice, check_memory, check_module_settings
from ._modules import merge_close
from ._pairwise_genes import PairwiseGenes, imputed_scaled
from ._soft_threshold import faq_power
from ._traits import student_pvalue

__all__ = [
    "CALIBRATIONS",
    "consensus_modules",
    "consensus_preclusters",
    "quantile_normalised",
]

CALIBRATIONS = ("single quantile", "full quantile", "none")
_SMALLEST = 3


@shared_docs
def consensus_modules(
    cohorts: Sequence[CohortLike] | Mapping[str, CohortLike],
    *,
    power: float | Sequence[float] | None = None,
    network: str = "unsigned",
    tom: str = "unsigned",
    tom_denominator: str = "min",
    max_block_size: int = 5000,
    blocks: np.ndarray | None = None,
    block_size_penalty_power: float = 5.0,
    n_preclustering_centers: int | None = None,
    seed: int = 54321,
    calibration: str = "single quantile",
    calibration_quantile: float = 0.95,
    consensus_quantile: float = 0.0,
    use_mean: bool = False,
    set_weights: Sequence[float] | None = None,
    min_module_size: int | None = None,
    deep_split: int = 2,
    detect_cut_height: float = 0.995,
    pam_stage: bool = True,
    pam_respects_dendro: bool = True,
    min_core_kme: float = 0.5,
    min_core_kme_size: float | None = None,
    min_kme_to_stay: float = 0.2,
    reassign_threshold: float = 0.0,
    merge_cut_height: float = 0.15,
    correlation_type: str = "pearson",
    max_p_outliers: float = 1.0,
    device: str = "auto",
    progress: bool | None = None,
) -> xr.Dataset:
    """Consensus co-expression modules of several sets of samples, as WGCNA's
    ``blockwiseConsensusModules``, with its defaults.

    Parameters
    ----------
    cohorts : sequence or mapping of cohorts
        Two or more sets of samples (paths, xarray Datasets, AnnData or arrays of shape
        (n_samples, n_genes)), named by the mapping's keys or ``set1``, ``set2``, …. Log-scale
        values (a counts cohort is first made edgeR's log-CPM with TMM factors). The genes that
        every set holds and that vary in every set are used, in the first set's order; infinite
        values are refused. Missing values are taken as ``blockwiseConsensusModules`` takes
        them: genes missing in half of a set's samples or more
        left out and samples missing half of the genes refused (``goodSamplesGenesMS``); the
        pre-clustering takes each set's scaled genes imputed by impute.knn (and, as R, draws
        its start from the state impute.knn leaves R's generator in); each set's TOM, the
        consensus kME rules, the moves and kME correlate over the samples each pair has
        (bicor's medians and caps those samples'); the eigengenes are those of imputed
        modules, with the hub-gene fallback.
    power : float or sequence of float, optional
        The soft threshold β, one for all sets or one per set. By default each set's power as
        WGCNA's FAQ advises for its number of samples (6 beyond 40 samples, R's default; 12
        for signed networks).
    network : {{"unsigned", "signed", "signed hybrid"}}, default "unsigned"
    tom : {{"unsigned", "signed"}}, default "unsigned"
        ``TOMType`` (R's default here is unsigned, unlike ``blockwiseModules``').
    tom_denominator : {{"min", "mean"}}, default "min"
        WGCNA's ``TOMDenom``: the TOM's denominator takes ``min(k_i, k_j)`` or the mean of the
        two genes' connectivities.
    max_block_size : int, default 5000
        The largest block. Where there are more genes they are pre-clustered into blocks
        (``consensusProjectiveKMeans``, its distances the largest over the sets, or their mean
        beyond three sets).
    blocks : ndarray of int, shape (n_genes,), optional
        Each of the first set's genes' block, instead of the pre-clustering.
    block_size_penalty_power : float, default 5
    n_preclustering_centers : int, optional
        Default ``min(n_genes / 20, 100 n_genes / max_block_size)``, as R.
    seed : int, default 54321
        The pre-clustering's random start: R's ``set.seed(seed); sample(n_genes)``, as
        ``consensusProjectiveKMeans`` draws it (where a set is imputed, R's draw follows
        impute.knn's own seed instead, and so does cohortex's).
    calibration : {{"single quantile", "full quantile", "none"}}, default "single quantile"
        ``networkCalibration``: each set's TOM raised to the power that brings its
        ``calibration_quantile`` to the first set's; or the sets' TOMs quantile-normalised
        (preprocessCore's ``normalize.quantiles``: each entry the mean over the sets of the
        entries of its rank); or left as they are.
    calibration_quantile : float, default 0.95
        Taken over every entry of the block's TOM (R, by default, over a sample of 20,000 of
        them: ``sampleForCalibration``; the same for blocks of up to 200 genes).
    consensus_quantile : float, default 0
        The consensus of the sets' TOMs (0: the smallest), of their kME in the module rules
        and of their eigengenes' correlations when merging (R's ``consensusQuantile``,
        ``trimmingConsensusQuantile`` and ``mergeConsensusQuantile``).
    use_mean : bool, default False
        The consensus TOM the sets' (weighted) mean instead of their quantile (R's
        ``useMean``); the module rules and merging keep ``consensus_quantile``.
    set_weights : sequence of float, optional
        With ``use_mean``, each set's weight (R's ``setWeights``; equal by default).
    min_module_size : int, optional
        Default ``min(20, n_genes / 2)``, as R.
    deep_split : int, default 2
    detect_cut_height : float, default 0.995
    pam_stage, pam_respects_dendro : bool, default True, True
    min_core_kme, min_core_kme_size : float, default 0.5 and ``min_module_size / 3``
        A module is dissolved where fewer than ``min_core_kme_size`` of its genes have a
        consensus kME above ``min_core_kme`` (in absolute value in unsigned networks).
    min_kme_to_stay : float, default 0.2
        Genes whose consensus kME is lower leave their module.
    reassign_threshold : float, default 0
        Positive: a gene moves to the module whose eigengenes it follows best where that
        module's combined p-value (Fisher's, of each set's one-sided kME p-value, weighted by
        the sets that agree in sign) is below this times its own module's. 0 moves no gene,
        as R does whatever its ``reassignThresholdPS``: R's test takes the lower tail of the
        chi-square, under which the better module is never ahead.
    merge_cut_height : float, default 0.15
        Modules whose eigengenes' consensus dissimilarity (1 - correlation) is below it are
        merged.
    correlation_type : {{"pearson", "bicor"}}, default "pearson"
        ``corType``: the biweight midcorrelation, robust to outlying samples, for each set's
        network and (without the cap on outliers, as R) the kME rules; the pre-clustering,
        the merging, the eigengenes and the kME returned stay Pearson's, as R's.
    max_p_outliers : float, default 1
        bicor's ``maxPOutliers`` for the networks (1: no cap).
    {device}
    progress : bool, optional

    Returns
    -------
    xarray.Dataset
        On ``gene``: ``label`` (0: none; else 1, 2, … by decreasing size), ``unmerged_label``
        (R's ``unmergedColors``), ``dynamic_label`` (the tree cuts' modules, numbered on from
        block to block), ``block``; on (``gene``, ``set``): ``k_total`` and ``k_within`` in
        each set's network; on (``gene``, ``module``, ``set``): ``kme`` and ``kme_pvalue``; on
        ``module``: ``size``, and ``var_explained(module, set)``. The samples of all sets, one
        after the other (ids prefixed ``<set>:`` where two sets share one), with ``sample_set``
        and ``eigengene(sample, module)``: each sample's eigengenes within its own set (R's
        ``multiMEs``); the sample variables every set has (:func:`module_traits` of the
        result relates them to the eigengenes in each set, and gives their consensus). One
        set's samples: ``result.isel(sample=result["sample_set"].values == name)``. Each
        block's tree as :func:`blockwise_modules`. Attrs: ``sets``, ``power`` (one per
        set), the settings, ``n_modules``, ``n_genes``, ``n_genes_not_shared`` (held by some
        sets only, constant or missing in half the samples of some), ``n_genes_missing`` and
        ``missing_share`` (one per set, as :func:`modules`), ``hub_eigengenes`` (the modules
        whose eigengene is the hub gene's in some set), ``n_samples`` (one per set).

    Raises
    ------
    CohortexError
        For fewer than two sets, fewer than 4 samples in a set or 3 shared varying genes,
        infinite values, samples missing half of the genes, two
        genes of a block sharing fewer than 2 samples in a set, settings out of range, or the
        sets' genes and a block's matrices beyond the machine's memory.

    Notes
    -----
    Held to WGCNA 1.72 (tests/network/test_consensus_modules.py, and with missing values
    tests/network/test_missing_consensus.py): given R's blocks, each block's tree, the modules
    gene for gene before and after merging, and each set's eigengenes to 1e-8; by default, the
    pre-clustering's blocks. As in
    :func:`blockwise_modules`, the pre-clustering refreshes the centres of the clusters that
    changed, where R refreshes those at their ranks among the changed ones.
    """
    who = "consensus_modules"
    names, given = _named_sets(cohorts, who)
    check_module_settings(
        who,
        network=network,
        tom=tom,
        tom_denominator=tom_denominator,
        deep_split=deep_split,
        merge_cut_height=merge_cut_height,
        power=None,
    )
    check_choice(who, "calibration", calibration, CALIBRATIONS)
    for name, value, low, high in (
        ("calibration_quantile", calibration_quantile, 0.0, 1.0),
        ("consensus_quantile", consensus_quantile, 0.0, 1.0),
        ("min_core_kme", min_core_kme, -1.0, 1.0),
        ("min_kme_to_stay", min_kme_to_stay, -1.0, 1.0),
        ("reassign_threshold", reassign_threshold, 0.0, 1.0),
    ):
        if not low <= value <= high:
            raise CohortexError(
                f"The {name!r} parameter of {who}() must be between {low:g} and {high:g}; got "
                f"{value}."
            )
    if not 0.0 < calibration_quantile < 1.0:
        raise CohortexError(
            f"The 'calibration_quantile' parameter of {who}() must be strictly between 0 and "
            f"1; got {calibration_quantile}."
        )
    if max_block_size < _SMALLEST:
        raise CohortexError(
            f"The 'max_block_size' parameter of {who}() must be at least {_SMALLEST}; got "
            f"{max_block_size}."
        )
    weights = _set_weights(use_mean, set_weights, len(given), who)
    check_choice(who, "correlation_type", correlation_type, ("pearson", "bicor"))  # corType
    nets = [
        GeneNetwork.build(
            c,
            genes=None,
            device=device,
            progress=progress,
            who=who,
            correlation=False,
            correlation_type=correlation_type,
            max_p_outliers=max_p_outliers,
        )
        for c in given
    ]
    first = nets[0].gene_ids
    shared = first[np.logical_and.reduce([np.isin(first, n.gene_ids) for n in nets])]
    n_genes = int(shared.shape[0])
    if n_genes < _SMALLEST:
        raise CohortexError(
            f"{who}() needs at least {_SMALLEST} genes that every set holds and that vary in "
            f"every set; the sets share {n_genes}."
        )
    all_ids = np.unique(np.concatenate([n.data.gene_ids for n in nets]).astype(str))
    sizes = [n.n_samples for n in nets]
    powers, source = _powers(power, sizes, network, who)
    block_of = (
        given_blocks(nets[0].data.gene_ids, shared, blocks, who) if blocks is not None else None
    )
    largest = (
        int(np.bincount(block_of).max()) if block_of is not None else min(max_block_size, n_genes)
    )
    on = resolve_device(device)
    copies = 5.0 if any(n.missing for n in nets) else 2.0  # values, presence, imputed copies
    check_memory(
        who,
        8.0 * (copies * sum(sizes) * n_genes + (HOST_COPIES[on] + 2.0) * largest * largest),
        f"holds {sum(sizes)} samples × {n_genes} genes and blocks of {largest} × {largest} genes",
        "Take smaller blocks (max_block_size=).",
    )
    if min_module_size is None:
        min_module_size = min(20, math.ceil(n_genes / 2))
    if min_module_size < 1:
        raise CohortexError(
            f"The 'min_module_size' parameter of {who}() must be at least 1; got {min_module_size}."
        )
    core_size = min_module_size / 3 if min_core_kme_size is None else min_core_kme_size
    signed = network != "unsigned"
    bicor = correlation_type == "bicor"

    bar = progress_bar(2, who, progress, unit="step", delay=2.0)
    try:
        bar.set_postfix(step="pre-clustering")
        sets_genes, zs, sources, imputation = _set_genes(nets, shared, bicor, max_p_outliers)
        if block_of is None:
            block_of = np.zeros(n_genes, dtype=np.int64)
            if n_genes > max_block_size:
                centers = n_preclustering_centers or int(
                    min(n_genes / 20, 100 * n_genes / max_block_size)
                )
                # R draws the start after imputing, from the state impute.knn leaves
                start = (imputation or RRandom(seed)).sample(n_genes, n_genes) - 1
                block_of = consensus_preclusters(
                    zs,
                    start,
                    n_centers=centers,
                    max_block_size=max_block_size,
                    size_penalty_power=block_size_penalty_power,
                    imputed=sources if imputation is not None else None,
                )
        del zs, sources
        n_blocks = int(block_of.max()) + 1
        bar.total = n_blocks + 2
        bar.update(1)
        dynamic = np.zeros(n_genes, dtype=np.int64)
        labels = np.zeros(n_genes, dtype=np.int64)
        eigengenes: list[list[Any]] = []
        label_index: list[int] = []
        trees: list[tuple[np.ndarray, np.ndarray, int]] = []
        used = 0
        for b in range(n_blocks):
            bar.set_postfix(step=f"block {b + 1}")
            members = np.flatnonzero(block_of == b)
            cut = np.zeros(members.shape[0], dtype=np.int64)
            merge, height = np.zeros((0, 2), dtype=np.int64), np.zeros(0)
            if members.shape[0] >= 2:
                dist = _consensus_dissimilarity(
                    [g.network for g in sets_genes],
                    members,
                    powers,
                    network=network,
                    tom=tom,
                    tom_denominator=tom_denominator,
                    calibration=calibration,
                    calibration_quantile=calibration_quantile,
                    consensus_quantile=consensus_quantile,
                    weights=weights,
                    who=who,
                )
                cut, merge, height = cut_tree(
                    dist,
                    min_module_size=min_module_size,
                    deep_split=deep_split,
                    cut_height=detect_cut_height,
                    pam_stage=pam_stage,
                    pam_respects_dendro=pam_respects_dendro,
                )
                del dist
                release_free_memory()
            trees.append((merge, height, b + 1))
            if np.any(cut > 0):
                cut[cut > 0] += used
                used = int(cut.max())
                dynamic[members] = cut
                for label in np.unique(cut[cut > 0]):
                    kept = _module_rules(
                        sets_genes,
                        members[cut == label],
                        signed=signed,
                        consensus_quantile=consensus_quantile,
                        min_core_kme=min_core_kme,
                        min_core_kme_size=core_size,
                        min_kme_to_stay=min_kme_to_stay,
                        min_module_size=min_module_size,
                    )
                    if kept is not None:
                        staying, us = kept
                        labels[staying] = label
                        eigengenes.append(us)
                        label_index.append(int(label))
            bar.update(1)
        bar.set_postfix(step="moves, merging, kME, connectivity")
        if eigengenes and reassign_threshold > 0.0:
            labels = _reassign(
                [g.kme for g in sets_genes],
                labels,
                eigengenes,
                np.array(label_index),
                sizes,
                signed=signed,
                threshold=reassign_threshold,
                min_module_size=min_module_size,
            )
        del eigengenes

        final = merge_close(
            labels,
            merge_cut_height,
            partial(_eigengene_correlations, [g.pearson for g in sets_genes], consensus_quantile),
        )
        levels = np.unique(final)
        eigen_sets, explained, hubs, kme, k_total, k_within = [], [], [], [], [], []
        for genes_of, p in zip(sets_genes, powers, strict=True):
            eigen, share, hub = genes_of.pearson.eigengenes(final, levels)
            eigen_sets.append(eigen)
            explained.append(share)
            hubs.append(hub)
            kme.append(genes_of.pearson.kme(eigen))
            k_total.append(genes_of.network.connectivity(p, network))
            k_within.append(within_connectivity(genes_of.network, final, levels, p, network))
        del sets_genes
        bar.update(1)
    finally:
        bar.close()

    module_sizes = np.array([int(np.sum(final == level)) for level in levels])
    kme_all = np.stack(kme, axis=2)
    result = xr.Dataset(
        {
            "label": ("gene", final),
            "unmerged_label": ("gene", labels),
            "dynamic_label": ("gene", dynamic),
            "block": ("gene", block_of + 1),
            "k_total": (("gene", "set"), np.column_stack(k_total)),
            "k_within": (("gene", "set"), np.column_stack(k_within)),
            "kme": (("gene", "module", "set"), kme_all),
            "kme_pvalue": (
                ("gene", "module", "set"),
                student_pvalue(kme_all, np.asarray(sizes)[None, None, :]),
            ),
            "size": ("module", module_sizes),
            "var_explained": (("module", "set"), np.column_stack(explained)),
            "eigengene": (("sample", "module"), np.concatenate(eigen_sets, axis=0)),
            **tree_variables(trees),
            "sample_set": ("sample", np.repeat(np.asarray(names), sizes)),
        },
        coords={
            "gene": shared,
            "sample": _sample_ids(nets, names),
            "module": levels,
            "set": np.asarray(names),
        },
        attrs={
            "sets": list(names),
            "power": [float(p) for p in powers],
            "power_source": source,
            "network": network,
            "tom": tom,
            "tom_denominator": tom_denominator,
            "correlation_type": correlation_type,
            "max_p_outliers": float(max_p_outliers),
            "calibration": calibration,
            "calibration_quantile": float(calibration_quantile),
            "consensus_quantile": float(consensus_quantile),
            "use_mean": int(use_mean),
            "set_weights": [float(w) for w in weights] if weights is not None else [],
            "max_block_size": int(max_block_size),
            "n_blocks": n_blocks,
            "min_module_size": int(min_module_size),
            "deep_split": int(deep_split),
            "pam_stage": int(pam_stage),
            "pam_respects_dendro": int(pam_respects_dendro),
            "cut_height": float(detect_cut_height),
            "min_core_kme": float(min_core_kme),
            "min_core_kme_size": float(core_size),
            "min_kme_to_stay": float(min_kme_to_stay),
            "reassign_threshold": float(reassign_threshold),
            "merge_cut_height": float(merge_cut_height),
            "n_modules": int(np.sum(levels > 0)),
            "n_genes": n_genes,
            "n_genes_not_shared": int(all_ids.shape[0] - n_genes),
            "n_genes_missing": [n.n_sparse for n in nets],
            "missing_share": [n.missing_share for n in nets],
            "hub_eigengenes": [int(level) for level in levels[np.any(hubs, axis=0)]],
            "n_samples": [int(n) for n in sizes],
            "transform": nets[0].transform,
        },
    )
    return _with_shared_sample_variables(result, nets)


class _SetGenes(NamedTuple):
    """A set's genes in the roles consensus modules give them (one object for all three where
    the set has missing values)."""

    network: ProductGenes | PairwiseGenes  # the TOMs and connectivities
    kme: ProductGenes | PairwiseGenes  # the kME rules and moves (bicor's without a cap)
    pearson: ProductGenes | PairwiseGenes  # eigengenes, their merging and kME


def _set_genes(
    nets: list[GeneNetwork], shared: np.ndarray, bicor: bool, max_p_outliers: float
) -> tuple[list[_SetGenes], list[Any], list[Any], RRandom | None]:
    """Each set's shared genes in memory: their roles, their standardised values for the
    pre-clustering and its principal components' genes (the scaled genes imputed where a set
    misses values, as consensusProjectiveKMeans), and R's generator as the last imputation
    left it (None: no set was imputed)."""
    sets_genes, zs, sources = [], [], []
    imputation: RRandom | None = None
    for net in nets:
        positions = pd.Index(net.gene_ids.astype(str)).get_indexer(shared.astype(str))
        index = net.xp.asarray(positions)
        raw = net.read()[:, index]
        if bool(net.xp.isnan(raw).any()):
            measured = np.asarray(to_host(raw), dtype=np.float64)
            z_all, present = net.pairwise_inputs()
            parts = (z_all[:, index], present[:, index], measured, shared, net.who)
            genes = PairwiseGenes(*parts)
            imputation = RRandom(IMPUTE_SEED)
            source = net.xp.asarray(imputed_scaled(measured, imputation))
            z = net.standardised(source)
            if bicor:  # each pair's medians over its shared samples; the kME rules uncapped
                roles = (PairwiseGenes(*parts, max_p_outliers), PairwiseGenes(*parts, 1.0), genes)
                sets_genes.append(_SetGenes(*roles))
            else:
                sets_genes.append(_SetGenes(genes, genes, genes))
        else:
            z = net.standardised(raw)
            columns = net.prepared(values=raw) if bicor else z
            uncapped = bicor and max_p_outliers < 1.0
            kme_columns = net.prepared(1.0, values=raw) if uncapped else columns
            sets_genes.append(
                _SetGenes(
                    network=ProductGenes(z, columns, None),
                    kme=ProductGenes(z, kme_columns, _prepared if bicor else None),
                    pearson=ProductGenes(z, z, None),
                )
            )
            source = z
        zs.append(z)
        sources.append(source)
        del raw
    return sets_genes, zs, sources, imputation


def consensus_preclusters(
    sets: Sequence[Any],
    start: np.ndarray,
    *,
    n_centers: int,
    max_block_size: int,
    size_penalty_power: float = 5.0,
    imputed: Sequence[Any] | None = None,
) -> np.ndarray:
    """``consensusProjectiveKMeans``' blocks: k-means of the genes over the sets from a random
    start, then the smaller clusters joined while below ``max_block_size``.

    Parameters
    ----------
    sets : sequence of arrays of shape (n_samples_s, n_genes)
        Each set's genes, centred and of unit length (the standardised ``imputed`` genes, where
        given).
    start : ndarray of int, shape (n_genes,)
        A permutation of 0 … n_genes - 1: gene ``g`` starts in cluster ``start[g] mod
        n_centers`` (R's ``sample(nGenes)``, less one).
    n_centers : int
    max_block_size : int
    size_penalty_power : float, default 5
    imputed : sequence of arrays of shape (n_samples_s, n_genes), optional
        Each set's genes whose principal components are the centres: the scaled genes imputed
        (not centred) where the set misses values, else the set's ``sets`` array itself.

    Returns
    -------
    ndarray of int, shape (n_genes,)
        Each gene's block, 0 … n_blocks - 1 by decreasing size.
    """
    n_centers = max(1, min(int(n_centers), start.shape[0]))
    mean_of_sets = len(sets) > 3  # R's useMean
    with threadpool_limits(1, user_api="blas"):  # many small products: see preclusters()
        membership, _, centers = projective_kmeans(
            sets,
            np.asarray(start) % n_centers,
            preferred_size=max_block_size,
            size_penalty_power=size_penalty_power,
            mean_of_sets=mean_of_sets,
            pcs_of=imputed,
        )
        merged = consensus_cluster_merge(
            sets,
            membership,
            centers,
            max_size=max_block_size,
            mean_of_sets=mean_of_sets,
            pcs_of=imputed,
        )
    return number_by_size(merged + 1) - 1


def _named_sets(
    cohorts: Sequence[CohortLike] | Mapping[str, CohortLike], who: str
) -> tuple[list[str], list[CohortLike]]:
    if isinstance(cohorts, xr.Dataset):  # a Mapping of its variables, but one cohort
        given: list[CohortLike] = [cohorts]
        names = ["set1"]
    elif isinstance(cohorts, Mapping):
        names, given = [str(k) for k in cohorts], list(cohorts.values())
    elif isinstance(cohorts, Sequence) and not isinstance(cohorts, str):
        given = list(cohorts)
        names = [f"set{i + 1}" for i in range(len(given))]
    else:
        raise CohortexError(
            f"The 'cohorts' parameter of {who}() must be a list of cohorts or a mapping from "
            f"set names to cohorts; got {type(cohorts).__name__}."
        )
    if len(given) < 2:
        raise CohortexError(
            f"{who}() needs two or more sets of samples; got {len(given)}. For one, use "
            "network.blockwise_modules()."
        )
    if len(set(names)) != len(names):
        raise CohortexError(f"The sets of {who}() need distinct names; got {names}.")
    return names, given


def _powers(
    power: float | Sequence[float] | None, sizes: list[int], network: str, who: str
) -> tuple[list[float], str]:
    if power is None:
        return [float(faq_power(n, network)) for n in sizes], "WGCNA FAQ"
    values = [float(power)] * len(sizes) if np.ndim(power) == 0 else [float(p) for p in power]  # type: ignore[union-attr,arg-type]
    if len(values) != len(sizes):
        raise CohortexError(
            f"The 'power' parameter of {who}() needs one power or one per set ({len(sizes)}); "
            f"got {len(values)}."
        )
    if not all(np.isfinite(p) and p > 0 for p in values):
        raise CohortexError(f"The 'power' parameter of {who}() must be positive; got {values}.")
    return values, "given"


def _set_weights(
    use_mean: bool, set_weights: Sequence[float] | None, n_sets: int, who: str
) -> np.ndarray | None:
    """The sets' weights for a mean consensus, summing to 1 (None: a quantile consensus)."""
    if not use_mean:
        if set_weights is not None:
            raise CohortexError(
                f"The 'set_weights' parameter of {who}() weighs the mean consensus: give "
                "use_mean=True too (R ignores setWeights without useMean)."
            )
        return None
    weights = np.ones(n_sets) if set_weights is None else np.asarray(set_weights, dtype=float)
    if weights.shape != (n_sets,) or not np.all(np.isfinite(weights)) or weights.min() < 0:
        raise CohortexError(
            f"The 'set_weights' parameter of {who}() needs one finite, non-negative weight per "
            f"set ({n_sets}); got {list(np.atleast_1d(weights))}."
        )
    if weights.sum() <= 0:
        raise CohortexError(f"The 'set_weights' of {who}() must not all be 0.")
    return weights / weights.sum()


def _consensus(each: list[np.ndarray], quantile: float) -> np.ndarray:
    """The sets' values made one: the smallest (quantile 0) or R's quantile (type 7)."""
    if quantile == 0.0:
        out = each[0].copy()
        for other in each[1:]:
            np.minimum(out, other, out=out)
        return out
    return np.quantile(np.stack(each), quantile, axis=0)


def _prepared(u: Any) -> Any:
    """bicor's columns (no cap on outliers) of eigengenes (n_samples, k)."""
    return bicor_columns(u, 1.0)


def _eigengene_correlations(
    sets_genes: list[ProductGenes | PairwiseGenes],
    consensus_quantile: float,
    labels: np.ndarray,
    modules: np.ndarray,
) -> np.ndarray:
    """The consensus over the sets of the modules' eigengenes' Pearson correlations
    (mergeCloseModules of several sets)."""
    each = [genes.eigengene_correlations(labels, modules) for genes in sets_genes]
    return _consensus(each, consensus_quantile)


def _consensus_dissimilarity(
    sets_genes: list[ProductGenes | PairwiseGenes],
    members: np.ndarray,
    powers: list[float],
    *,
    network: str,
    tom: str,
    tom_denominator: str,
    calibration: str,
    calibration_quantile: float,
    consensus_quantile: float,
    weights: np.ndarray | None,
    who: str,
) -> np.ndarray:
    """A block's ``1 -`` consensus TOM: each set's TOM (its upper triangle) calibrated to the
    first set's quantile, then their consensus (their quantile, or with ``weights`` their
    weighted mean). Shape (m, m), on the host."""
    similarities: list[np.ndarray] = []
    reference = 0.0
    keep_all = consensus_quantile > 0.0 or calibration == "full quantile" or weights is not None
    for s, (genes, p) in enumerate(zip(sets_genes, powers, strict=True)):
        dist = tom_of_correlation(
            genes.block_correlation(members),
            power=p,
            network=network,
            tom=tom,
            denominator=tom_denominator,
        )
        similarity = 1.0 - squareform(dist, checks=False)
        del dist
        if calibration == "single quantile":
            q = float(np.quantile(similarity, calibration_quantile, method="median_unbiased"))
            if not 0.0 < q < 1.0:
                raise CohortexError(
                    f"{who}(): the {calibration_quantile} quantile of set {s + 1}'s TOM is {q}, "
                    "so it cannot be calibrated; take calibration='none'."
                )
            if s == 0:
                reference = q
            else:
                similarity **= math.log(reference) / math.log(q)
        if similarities and not keep_all:
            np.minimum(similarities[0], similarity, out=similarities[0])
        else:
            similarities.append(similarity)
    if calibration == "full quantile":
        similarities = quantile_normalised(similarities)
    if weights is not None:
        consensus = sum(w * s for w, s in zip(weights, similarities, strict=True))
    else:
        consensus = _consensus(similarities, consensus_quantile)
    del similarities
    return squareform(1.0 - consensus)


def quantile_normalised(columns: list[np.ndarray]) -> list[np.ndarray]:
    """preprocessCore's ``normalize.quantiles``: each value replaced by the mean over the
    columns of their values of its rank; tied values by that of their average rank (the mean
    of two neighbouring ranks' where it falls between them).

    Parameters
    ----------
    columns : list of ndarray, each of shape (n,)

    Returns
    -------
    list of ndarray, each of shape (n,)
    """
    target = np.mean([np.sort(c) for c in columns], axis=0)
    out = []
    for column in columns:
        ranks = stats.rankdata(column, method="average")
        index = np.floor(ranks).astype(np.int64) - 1
        values = target[index]
        between = ranks - np.floor(ranks) > 0.4  # preprocessCore's test
        values[between] = 0.5 * (target[index[between]] + target[index[between] + 1])
        out.append(values)
    return out


def _module_rules(
    sets_genes: list[_SetGenes],
    genes: np.ndarray,
    *,
    signed: bool,
    consensus_quantile: float,
    min_core_kme: float,
    min_core_kme_size: float,
    min_kme_to_stay: float,
    min_module_size: int,
) -> tuple[np.ndarray, list[Any]] | None:
    """blockwiseConsensusModules' rules for a module: dissolved (None) where fewer than
    ``min_core_kme_size`` genes have a consensus kME above ``min_core_kme``; genes of consensus
    kME below ``min_kme_to_stay`` leave, and the module is dissolved if fewer than
    ``min_module_size`` remain. Else the genes that stay and each set's eigengene of all its
    genes (as R keeps them)."""
    us, columns = [], []
    for set_genes in sets_genes:
        u = set_genes.pearson.eigengene(genes)
        us.append(u)
        columns.append(set_genes.kme.network_kme(genes, [u])[:, 0])
    kme = np.column_stack(columns)
    if not signed:
        kme = np.abs(kme)
    consensus = np.quantile(kme, consensus_quantile, axis=1)
    if int(np.sum(consensus > min_core_kme)) < min_core_kme_size:
        return None
    staying = genes[consensus >= min_kme_to_stay]
    if staying.shape[0] < genes.shape[0] and staying.shape[0] < min_module_size:
        return None
    return staying, us


def _reassign(
    sets_genes: list[ProductGenes | PairwiseGenes],
    labels: np.ndarray,
    eigengenes: list[list[Any]],
    label_index: np.ndarray,
    n_samples: list[int],
    *,
    signed: bool,
    threshold: float,
    min_module_size: int,
) -> np.ndarray:
    """Genes move to the module whose eigengenes they follow best over the sets, where its
    combined p-value is below ``threshold`` times their own module's; modules left with fewer
    than ``min_module_size`` genes by it are dissolved.

    The combined evidence is R's: each set's one-sided p-value of the kME by Fisher's z,
    ``-2 Σ log p`` weighted by the share of sets whose kME is positive; it is compared on a
    chi-square of ``2 × n_sets`` degrees of freedom, upper tail (Fisher's method).
    """
    n_sets = len(sets_genes)
    assigned = np.flatnonzero(labels > 0)
    log_p = np.zeros((assigned.shape[0], label_index.shape[0]))
    signs = np.zeros_like(log_p)
    for s, genes in enumerate(sets_genes):
        kme = genes.network_kme(assigned, [us[s] for us in eigengenes])
        if not signed:
            kme = np.abs(kme)
        with np.errstate(divide="ignore"):
            log_p += -2.0 * np.log(ndtr(-np.arctanh(kme) * math.sqrt(n_samples[s] - 3)))
        signs += np.sign(kme)
    score = log_p * (n_sets + signs) / (2 * n_sets)
    score[~np.isfinite(score)] = 0.001
    best = score.max(axis=1)
    own = labels[assigned]
    out = labels.copy()
    dissolved = []
    for j, label in enumerate(label_index):
        rows = np.flatnonzero(own == label)
        candidates = rows[best[rows] > score[rows, j]]
        if candidates.shape[0] == 0:
            continue
        with np.errstate(invalid="ignore"):
            gap = stats.chi2.logsf(best[candidates], 2 * n_sets) - stats.chi2.logsf(
                score[candidates, j], 2 * n_sets
            )
        moving = candidates[np.isfinite(gap) & (gap < math.log(threshold))]
        if moving.shape[0] == 0:
            continue
        out[assigned[moving]] = label_index[np.argmax(score[moving], axis=1)]
        if rows.shape[0] - moving.shape[0] < min_module_size:
            dissolved.append(label)
    out[np.isin(out, dissolved)] = 0
    return out


def _sample_ids(nets: list[GeneNetwork], names: list[str]) -> np.ndarray:
    """The sets' samples one after the other, prefixed by their set where two sets share an
    id."""
    ids = [np.asarray(n.sample_ids).astype(str) for n in nets]
    joined = np.concatenate(ids)
    if np.unique(joined).shape[0] == joined.shape[0]:
        return joined
    return np.concatenate([np.char.add(f"{name}:", i) for name, i in zip(names, ids, strict=True)])


def _with_shared_sample_variables(result: xr.Dataset, nets: list[GeneNetwork]) -> xr.Dataset:
    """``result`` with the sample variables that every set has, the sets' samples joined."""
    shared = [v for v in nets[0].data.sample_variables() if v != "sample_set"]
    for net in nets[1:]:
        shared = [v for v in shared if v in net.data.sample_variables()]
    for name in shared:
        parts = []
        for net in nets:
            assert net.data.dataset is not None
            parts.append(np.asarray(net.data.dataset[name].values))
        result[name] = ("sample", np.concatenate(parts))
    return result
