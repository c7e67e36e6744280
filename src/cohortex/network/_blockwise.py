"""WGCNA's ``blockwiseModules``: co-expression modules of more genes than one genes × genes
matrix can hold.

The genes are pre-clustered into blocks of at most ``max_block_size`` (projective k-means);
each block gets its own TOM, tree and hybrid cut; modules whose eigengene few genes follow are
dissolved and genes that follow it weakly leave; genes move to another block's module whose
eigengene they follow far better; modules whose eigengenes correlate closely are merged. The
standardised genes are held in memory (samples × genes): every step is then a product with
them, and no genes × genes matrix larger than a block is ever formed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform
from threadpoolctl import threadpool_limits

from .._backend import namespace, resolve_device, to_host
from .._cohort import CohortLike, shared_docs
from .._errors import CohortexError
from .._memory import release_free_memory
from .._progress import progress_bar
from ..stats._blockwise import (
    eigengene,
    fisher_pvalue,
    projective_kmeans,
    size_restricted_merge,
)
from ..stats._network import (
    adjacency_matrix,
    adjacency_sums,
    bicor_columns,
    correlation_from_gram,
    tom_dissimilarity,
)
from ..stats._r_random import RRandom
from ..stats._tree_cut import cutree_hybrid, number_by_size, r_merge
from ._data import HOST_COPIES, GeneNetwork, check_choice, check_memory, check_module_settings
from ._modules import merge_close
from ._pairwise_genes import PairwiseGenes, imputed_scaled
from ._soft_threshold import faq_power
from ._traits import student_pvalue

__all__ = [
    "ProductGenes",
    "block_dissimilarity",
    "blockwise_modules",
    "connectivity",
    "cut_tree",
    "given_blocks",
    "module_eigengenes",
    "preclusters",
    "tree_variables",
    "within_connectivity",
]

_ROW_VALUES = 1 << 24  # values of a block of rows of correlations: 128 MB of float64


@shared_docs
def blockwise_modules(
    cohort: CohortLike,
    *,
    power: float | None = None,
    network: str = "unsigned",
    tom: str = "signed",
    tom_denominator: str = "min",
    max_block_size: int = 5000,
    blocks: np.ndarray | None = None,
    block_size_penalty_power: float = 5.0,
    n_preclustering_centers: int | None = None,
    seed: int = 54321,
    min_module_size: int | None = None,
    deep_split: int = 2,
    detect_cut_height: float = 0.995,
    pam_stage: bool = True,
    pam_respects_dendro: bool = True,
    min_core_kme: float = 0.5,
    min_core_kme_size: float | None = None,
    min_kme_to_stay: float = 0.3,
    reassign_threshold: float = 1e-6,
    merge_cut_height: float = 0.15,
    genes: int | None = None,
    correlation_type: str = "pearson",
    max_p_outliers: float = 1.0,
    device: str = "auto",
    progress: bool | None = None,
) -> xr.Dataset:
    """Co-expression modules of all genes, a block of genes at a time, as WGCNA's
    ``blockwiseModules``, with its defaults.

    Parameters
    ----------
    {cohort}
        Log-scale values (a counts cohort is first made edgeR's log-CPM with TMM factors);
        genes that do not vary are left out, infinite values refused. Missing values are taken
        as ``blockwiseModules`` takes them: genes missing in half the samples or more left out
        and samples missing half of the genes refused (``goodSamplesGenes``); the
        pre-clustering takes the scaled genes imputed by impute.knn; the blocks' TOMs, the kME
        rules, the moves and kME correlate over the samples each pair has (``use = "p"``;
        bicor's medians and caps those samples'); the eigengenes are those of imputed modules
        (``moduleEigengenes(impute = TRUE)``, with its hub-gene fallback).
    power : float, optional
        The soft threshold β. By default the power WGCNA's FAQ advises for the number of
        samples (6 beyond 40 samples, as ``blockwiseModules``' default; 12 for signed
        networks); :func:`soft_threshold` of the most variable genes estimates one.
    network : {{"unsigned", "signed", "signed hybrid"}}, default "unsigned"
    tom : {{"unsigned", "signed"}}, default "signed"
        ``blockwiseModules``' ``TOMType``; signed keeps the correlations' signs in the TOM's
        sums of an unsigned network.
    tom_denominator : {{"min", "mean"}}, default "min"
        WGCNA's ``TOMDenom``: the TOM's denominator takes ``min(k_i, k_j)`` or the mean of the
        two genes' connectivities.
    max_block_size : int, default 5000
        The largest block. Where there are more genes, they are pre-clustered into blocks
        (``projectiveKMeans``); each block's TOM takes about ``32 × max_block_size²`` bytes.
    blocks : ndarray of int, shape (n_genes,), optional
        Each of the cohort's genes' block, instead of the pre-clustering (``blocks`` of R).
    block_size_penalty_power : float, default 5
        How strongly the pre-clustering keeps clusters within ``max_block_size``.
    n_preclustering_centers : int, optional
        Default ``min(n_genes / 20, 100 n_genes / max_block_size)``, as R.
    seed : int, default 54321
        The pre-clustering's random start: R's ``set.seed(seed); sample(n_genes)``, as
        ``projectiveKMeans`` draws it.
    min_module_size : int, optional
        Default ``min(20, n_genes / 2)``, as R.
    deep_split : int, default 2
    detect_cut_height : float, default 0.995
        The tree cut's height.
    pam_stage, pam_respects_dendro : bool, default True, True
    min_core_kme, min_core_kme_size : float, default 0.5 and ``min_module_size / 3``
        A module is dissolved where fewer than ``min_core_kme_size`` of its genes correlate
        with its eigengene above ``min_core_kme`` (in absolute value in unsigned networks).
    min_kme_to_stay : float, default 0.3
        Genes correlating less with their module's eigengene leave it.
    reassign_threshold : float, default 1e-6
        A gene moves to the module whose eigengene it follows best where the ratio of the
        Fisher p-values of that kME and of its own module's kME is below this.
    merge_cut_height : float, default 0.15
        Modules whose eigengenes' dissimilarity (1 - correlation) is below it are merged.
    genes : int, optional
        Only the ``genes`` most variable genes (all that vary by default).
    correlation_type : {{"pearson", "bicor"}}, default "pearson"
        ``corType``: bicor (the biweight midcorrelation, robust to outlying samples) is then
        used throughout, as R's ``useCorOptionsThroughout``: the blocks' adjacency, the kME
        rules, the moves and the merging (the eigengenes stay principal components, the kME
        returned Pearson's, as ``signedKME``).
    max_p_outliers : float, default 1
        bicor's ``maxPOutliers`` (1: no cap; WGCNA's FAQ suggests 0.05 or 0.1).
    {device}
    progress : bool, optional

    Returns
    -------
    xarray.Dataset
        As :func:`modules`: on ``gene`` ``label`` (0: none; else 1, 2, … by decreasing size),
        ``unmerged_label`` (before the final merging, R's ``unmergedColors``),
        ``dynamic_label`` (the tree cuts' modules, numbered on from block to block),
        ``block``, ``k_total``, ``k_within``, ``kme(gene, module)``, ``kme_pvalue``; on
        ``module`` ``size``, ``var_explained``, ``eigengene(sample, module)``; each block's tree
        as ``tree_merge(merge, pair)``, ``tree_height(merge)`` and ``tree_block(merge)`` (its
        merges number the block's genes in the cohort's order, as R's ``blockGenes``); the
        sample variables. Attrs as :func:`modules` (``n_genes_missing``, ``missing_share`` and
        ``hub_eigengenes`` included), with ``n_blocks`` and the settings.

    Raises
    ------
    CohortexError
        For fewer than 4 samples or 3 varying genes, infinite values, samples missing half of
        the genes, two genes of a block sharing fewer than 2
        samples, settings out of range, or the cohort's copies and a block's matrices beyond
        the machine's memory.

    Notes
    -----
    Held to WGCNA 1.72 (tests/network/test_blockwise.py, and with missing values
    tests/network/test_missing_blockwise.py): given R's blocks, every module gene for gene
    and the eigengenes to 1e-8; by default, the pre-clustering's blocks.
    Two departures, where R's code does what it did not mean to: the pre-clustering refreshes
    the centres of the clusters that changed (R refreshes those at their ranks among the changed
    ones), and a gene moved to another module is given that module's label (R gives the
    module's column among the eigengenes, another label once a module was dissolved).
    """
    who = "blockwise_modules"
    check_module_settings(
        who,
        network=network,
        tom=tom,
        tom_denominator=tom_denominator,
        deep_split=deep_split,
        merge_cut_height=merge_cut_height,
        power=power,
    )
    check_choice(who, "correlation_type", correlation_type, ("pearson", "bicor"))  # R's corType
    for name, value in (("min_core_kme", min_core_kme), ("min_kme_to_stay", min_kme_to_stay)):
        if not -1.0 <= value <= 1.0:
            raise CohortexError(
                f"The {name!r} parameter of {who}() is a correlation, between -1 and 1; got "
                f"{value}."
            )
    if max_block_size < 3:
        raise CohortexError(
            f"The 'max_block_size' parameter of {who}() must be at least 3; got {max_block_size}."
        )
    data = GeneNetwork.build(
        cohort,
        genes=genes,
        device=device,
        progress=progress,
        who=who,
        correlation=False,
        correlation_type=correlation_type,
        max_p_outliers=max_p_outliers,
    )
    bicor = correlation_type == "bicor"
    n, n_genes = data.n_samples, data.n_genes
    block_of = (
        given_blocks(data.data.gene_ids, data.gene_ids, blocks, who) if blocks is not None else None
    )
    largest = (
        int(np.bincount(block_of).max()) if block_of is not None else min(max_block_size, n_genes)
    )
    on = resolve_device(device)
    check_memory(
        who,
        # the values, their standardised and imputed copies and presence, with missing values
        8.0
        * (
            (5.0 if data.missing else 3.0 if bicor else 2.0) * n * n_genes
            + HOST_COPIES[on] * largest * largest
        ),
        f"holds {n} samples × {n_genes} genes and blocks of {largest} × {largest} genes",
        "Take smaller blocks (max_block_size=) or the most variable genes (genes=).",
    )
    if min_module_size is None:
        min_module_size = min(20, math.ceil(n_genes / 2))
    if min_module_size < 1:
        raise CohortexError(
            f"The 'min_module_size' parameter of {who}() must be at least 1; got {min_module_size}."
        )
    core_size = min_module_size / 3 if min_core_kme_size is None else min_core_kme_size
    if power is None:
        power, source = float(faq_power(n, network)), "WGCNA FAQ"
    else:
        power, source = float(power), "given"

    bar = progress_bar(2, who, progress, unit="step", delay=2.0)
    try:
        bar.set_postfix(step="pre-clustering")
        raw = data.read()  # one pass over the cohort
        genes_of: ProductGenes | PairwiseGenes
        if data.missing:  # the pre-clustering takes the scaled genes, imputed
            measured = np.asarray(to_host(raw), dtype=np.float64)
            genes_of = PairwiseGenes(
                *data.pairwise_inputs(),
                measured,
                data.gene_ids,
                who,
                max_p_outliers if bicor else None,
            )
            xp = namespace(raw)
            pcs_of = xp.asarray(imputed_scaled(measured))
            z = data.standardised(pcs_of)
        else:
            z = data.standardised(raw)
            # the columns whose products are the network's correlations, and the same for a
            # vector
            columns = data.prepared(values=raw) if bicor else z
            prepare = partial(_prepared, max_p_outliers=max_p_outliers) if bicor else None
            genes_of, pcs_of = ProductGenes(z, columns, prepare), None
        del raw
        if block_of is None:
            block_of = np.zeros(n_genes, dtype=np.int64)
            if n_genes > max_block_size:
                centers = n_preclustering_centers or int(
                    min(n_genes / 20, 100 * n_genes / max_block_size)
                )
                block_of = preclusters(
                    z,
                    RRandom(seed).sample(n_genes, n_genes) - 1,
                    n_centers=centers,
                    max_block_size=max_block_size,
                    size_penalty_power=block_size_penalty_power,
                    imputed=pcs_of,
                )
        del z, pcs_of
        n_blocks = int(block_of.max()) + 1
        bar.total = n_blocks + 2  # the pre-clustering, each block, then the whole network
        bar.update(1)
        signed = network != "unsigned"
        dynamic = np.zeros(n_genes, dtype=np.int64)
        labels = np.zeros(n_genes, dtype=np.int64)
        eigengenes: list[Any] = []
        label_index: list[int] = []
        trees: list[tuple[np.ndarray, np.ndarray, int]] = []
        used = 0
        for b in range(n_blocks):
            bar.set_postfix(step=f"block {b + 1}")
            members = np.flatnonzero(block_of == b)
            cut, merge, height = _block_modules(
                genes_of,
                members,
                power=power,
                network=network,
                tom=tom,
                denominator=tom_denominator,
                min_module_size=min_module_size,
                deep_split=deep_split,
                cut_height=detect_cut_height,
                pam_stage=pam_stage,
                pam_respects_dendro=pam_respects_dendro,
            )
            trees.append((merge, height, b + 1))
            if np.any(cut > 0):
                cut[cut > 0] += used
                used = int(cut.max())
                dynamic[members] = cut
                for label, u, staying in _kme_rules(
                    genes_of,
                    members,
                    cut,
                    signed=signed,
                    min_core_kme=min_core_kme,
                    min_core_kme_size=core_size,
                    min_kme_to_stay=min_kme_to_stay,
                    min_module_size=min_module_size,
                ):
                    labels[staying] = label
                    eigengenes.append(u)
                    label_index.append(label)
            bar.update(1)
        bar.set_postfix(step="moves, merging, kME, connectivity")
        if eigengenes:
            labels = _reassign(
                genes_of,
                labels,
                eigengenes,
                np.array(label_index),
                signed=signed,
                n_samples=n,
                threshold=reassign_threshold,
                min_module_size=min_module_size,
            )
        del eigengenes
        final = merge_close(labels, merge_cut_height, genes_of.eigengene_correlations)
        release_free_memory()
        levels = np.unique(final)
        eigen, var_explained, hub = genes_of.eigengenes(final, levels)
        kme = genes_of.kme(eigen)
        k_total = genes_of.connectivity(power, network)
        k_within = within_connectivity(genes_of, final, levels, power, network)
        del genes_of
        bar.update(1)
    finally:
        bar.close()
    sizes = np.array([int(np.sum(final == level)) for level in levels])
    result = xr.Dataset(
        {
            "label": ("gene", final),
            "unmerged_label": ("gene", labels),
            "dynamic_label": ("gene", dynamic),
            "block": ("gene", block_of + 1),
            "k_total": ("gene", k_total),
            "k_within": ("gene", k_within),
            "kme": (("gene", "module"), kme),
            "kme_pvalue": (("gene", "module"), student_pvalue(kme, n)),
            "size": ("module", sizes),
            "var_explained": ("module", var_explained),
            "eigengene": (("sample", "module"), eigen),
            **tree_variables(trees),
        },
        coords={"gene": data.gene_ids, "sample": data.sample_ids, "module": levels},
        attrs={
            "power": power,
            "power_source": source,
            "network": network,
            "tom": tom,
            "tom_denominator": tom_denominator,
            "correlation_type": correlation_type,
            "max_p_outliers": float(max_p_outliers),
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
            "n_genes_constant": data.n_constant,
            "n_genes_missing": data.n_sparse,
            "missing_share": data.missing_share,
            "hub_eigengenes": [int(level) for level in levels[hub]],
            "n_samples": n,
            "transform": data.transform,
        },
    )
    return data.with_sample_variables(result)


def tree_variables(trees: list[tuple[np.ndarray, np.ndarray, int]]) -> dict[str, Any]:
    """The blocks' trees as a result's variables: ``tree_merge(merge, pair)``,
    ``tree_height(merge)`` and ``tree_block(merge)``.

    Parameters
    ----------
    trees : list of (merge, height, block)
        Each block's R ``hclust`` merges, shape (m - 1, 2), heights (m - 1,) and number.
    """
    merges = [t[0] for t in trees]
    return {
        "tree_merge": (("merge", "pair"), np.concatenate(merges, axis=0)),
        "tree_height": ("merge", np.concatenate([t[1] for t in trees])),
        "tree_block": ("merge", np.repeat([t[2] for t in trees], [m.shape[0] for m in merges])),
    }


def preclusters(
    z: Any,
    start: np.ndarray,
    *,
    n_centers: int,
    max_block_size: int,
    size_penalty_power: float = 5.0,
    imputed: Any = None,
) -> np.ndarray:
    """``projectiveKMeans``' blocks: k-means of the genes from a random start, then the
    smaller clusters joined up to ``max_block_size``.

    Parameters
    ----------
    z : array of shape (n_samples, n_genes)
        Genes centred and of unit length (the standardised ``imputed`` genes, where given).
    start : ndarray of int, shape (n_genes,)
        A permutation of 0 … n_genes - 1: gene ``g`` starts in cluster ``start[g] mod
        n_centers`` (R's ``sample(nGenes)``, less one).
    n_centers : int
    max_block_size : int
    size_penalty_power : float, default 5
    imputed : array of shape (n_samples, n_genes), optional
        Genes with missing values scaled and imputed (:func:`imputed_scaled`), no longer
        centred: the centres are their principal components, as R's.

    Returns
    -------
    ndarray of int, shape (n_genes,)
        Each gene's block, 0 … n_blocks - 1 by decreasing size.
    """
    n_centers = max(1, min(int(n_centers), start.shape[0]))
    # thousands of small eigenproblems: one BLAS thread (NumPy's and SciPy's OpenBLAS pools
    # spinning against each other made them 2× slower on two cores)
    with threadpool_limits(1, user_api="blas"):
        membership, sizes, centers = projective_kmeans(
            [z],
            np.asarray(start) % n_centers,
            preferred_size=max_block_size,
            size_penalty_power=size_penalty_power,
            pcs_of=None if imputed is None else [imputed],
        )
        merged = size_restricted_merge(
            z, membership, sizes, centers[0], max_size=max_block_size, pcs_of=imputed
        )
    return number_by_size(merged + 1) - 1


def given_blocks(
    all_genes: np.ndarray, used_genes: np.ndarray, blocks: np.ndarray, who: str
) -> np.ndarray:
    """The blocks of the genes used, 0 … n_blocks - 1 in the order of the values given.

    Parameters
    ----------
    all_genes : ndarray, shape (n_all,)
        The cohort's genes, which ``blocks`` follows.
    used_genes : ndarray, shape (n_genes,)
        The genes of the network, in the cohort's order.
    blocks : ndarray, shape (n_all,)
    who : str

    Returns
    -------
    ndarray of int, shape (n_genes,)
    """
    given = np.asarray(blocks)
    if given.ndim != 1 or given.shape[0] != all_genes.shape[0]:
        raise CohortexError(
            f"The 'blocks' parameter of {who}() needs one block per gene of the cohort "
            f"({all_genes.shape[0]}); got shape {given.shape}."
        )
    used = np.isin(all_genes.astype(str), used_genes.astype(str))
    blockless = used & pd.isna(given)  # genes the network leaves out may have none
    if blockless.any():
        names = ", ".join(str(g) for g in all_genes[blockless][:5])
        raise CohortexError(
            f"The 'blocks' parameter of {who}() gives no block to {int(blockless.sum())} genes "
            f"the network uses ({names}{', …' if blockless.sum() > 5 else ''}); give each a "
            "block (only genes left out, constant or missing in half the samples, may have "
            "none)."
        )
    _, index = np.unique(given[used], return_inverse=True)
    return index.astype(np.int64)


def _block_modules(
    genes_of: ProductGenes | PairwiseGenes,
    members: np.ndarray,
    *,
    power: float,
    network: str,
    tom: str,
    denominator: str = "min",
    **cut: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One block's TOM, tree of 1 - TOM and hybrid cut (:func:`cut_tree`'s ``cut``
    settings): labels (0: none), merges, heights."""
    if members.shape[0] < 2:
        return np.zeros(members.shape[0], dtype=np.int64), np.zeros((0, 2), np.int64), np.zeros(0)
    dist = tom_of_correlation(
        genes_of.block_correlation(members),
        power=power,
        network=network,
        tom=tom,
        denominator=denominator,
    )
    return cut_tree(dist, **cut)


def block_dissimilarity(
    columns: Any,
    members: np.ndarray,
    *,
    power: float,
    network: str,
    tom: str,
    denominator: str = "min",
) -> np.ndarray:
    """A block's ``1 - TOM``.

    Parameters
    ----------
    columns : array of shape (n_samples, n_genes)
        The genes as columns whose products are their correlations.
    members : ndarray of int, shape (m,)
        The block's genes.
    power : float
    network, tom : str
    denominator : {"min", "mean"}, default "min"

    Returns
    -------
    ndarray of shape (m, m), float64, on the host
    """
    xp = namespace(columns)
    block = columns[:, xp.asarray(members)]
    correlation = correlation_from_gram(block.T @ block)
    del block
    return tom_of_correlation(
        correlation, power=power, network=network, tom=tom, denominator=denominator
    )


def tom_of_correlation(
    correlation: Any, *, power: float, network: str, tom: str, denominator: str = "min"
) -> np.ndarray:
    """``1 - TOM`` of a block's correlations (m, m), on the host (the correlations may be
    overwritten)."""
    keep_sign = tom == "signed" and network == "unsigned"
    dissimilarity, _ = tom_dissimilarity(
        adjacency_matrix(correlation, power, network, keep_sign=keep_sign),
        signed=tom == "signed",
        denominator=denominator,
    )
    return np.asarray(to_host(dissimilarity), dtype=np.float64)


def cut_tree(
    dist: np.ndarray,
    *,
    min_module_size: int,
    deep_split: int,
    cut_height: float,
    pam_stage: bool,
    pam_respects_dendro: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The average-linkage tree of a block's dissimilarities and its hybrid cut.

    Parameters
    ----------
    dist : ndarray of shape (m, m)
        Symmetric, 0 on the diagonal.
    min_module_size, deep_split, cut_height, pam_stage, pam_respects_dendro
        ``cutreeDynamic``'s settings.

    Returns
    -------
    labels : ndarray of int, shape (m,)
        0: none.
    merge : ndarray of int, shape (m - 1, 2)
        R's ``hclust`` merges.
    height : ndarray of shape (m - 1,)
    """
    merge, height = r_merge(hierarchy.linkage(squareform(dist, checks=False), "average"))
    labels = cutree_hybrid(
        merge,
        height,
        dist,
        min_cluster_size=min_module_size,
        deep_split=deep_split,
        cut_height=cut_height,
        pam_stage=pam_stage,
        pam_respects_dendro=pam_respects_dendro,
    )
    return np.asarray(labels, dtype=np.int64), merge, height


def _kme_rules(
    genes_of: ProductGenes | PairwiseGenes,
    members: np.ndarray,
    cut: np.ndarray,
    *,
    signed: bool,
    min_core_kme: float,
    min_core_kme_size: float,
    min_kme_to_stay: float,
    min_module_size: int,
) -> Iterator[tuple[int, Any, np.ndarray]]:
    """blockwiseModules' rules for a block's modules: dissolve those where fewer than
    ``min_core_kme_size`` genes have kME above ``min_core_kme``; send away genes with kME below
    ``min_kme_to_stay``, and dissolve the module if fewer than ``min_module_size`` remain.

    kME is the network's correlation of each gene with its module's eigengene. Yields each
    module kept: its label, its eigengene (of all its genes, as R keeps it) and the genes that
    stay.
    """
    for label in np.unique(cut[cut > 0]):
        genes = members[cut == label]
        u = genes_of.eigengene(genes)
        kme = genes_of.network_kme(genes, [u])[:, 0]
        if not signed:
            kme = np.abs(kme)
        if int(np.sum(kme > min_core_kme)) < min_core_kme_size:
            continue
        staying = genes[kme >= min_kme_to_stay]
        if staying.shape[0] < genes.shape[0] and staying.shape[0] < min_module_size:
            continue
        yield int(label), u, staying


class ProductGenes:
    """Genes without missing values as blockwise_modules correlates them: products of columns
    held in memory.

    Parameters
    ----------
    z : array of shape (n_samples, n_genes)
        The genes centred and of unit length (the eigengenes, kME).
    columns : array of shape (n_samples, n_genes)
        Those whose products are the network's correlations (``z``, or bicor's columns).
    prepare : callable, optional
        Makes vectors such columns (None: Pearson's, ``columns`` is ``z``).
    """

    def __init__(self, z: Any, columns: Any, prepare: Callable[[Any], Any] | None) -> None:
        self.z, self.columns, self.prepare = z, columns, prepare
        self.xp = namespace(z)

    def take(self, genes: np.ndarray) -> ProductGenes:
        """Some of the genes."""
        index = self.xp.asarray(genes)
        return ProductGenes(self.z[:, index], self.columns[:, index], self.prepare)

    def block_correlation(self, members: np.ndarray) -> Any:
        """The network's correlations among ``members`` (m, m), on the genes' device."""
        block = self.columns[:, self.xp.asarray(members)]
        return correlation_from_gram(block.T @ block)

    def eigengene(self, genes: np.ndarray) -> Any:
        """The eigengene of a module of ``genes`` (n_samples,), on the genes' device."""
        u, _ = eigengene(self.z[:, self.xp.asarray(genes)])
        return u

    def network_kme(self, genes: np.ndarray, vectors: list[Any]) -> np.ndarray:
        """The network's correlations of ``genes`` with unit-length centred ``vectors``:
        shape (len(genes), len(vectors)), on the host."""
        stacked = self.xp.stack(vectors, axis=1)
        if self.prepare is not None:
            stacked = self.prepare(stacked)
        products = self.columns[:, self.xp.asarray(genes)].T @ stacked
        return np.asarray(to_host(products), dtype=np.float64)

    def kme(self, vectors: np.ndarray) -> np.ndarray:
        """Pearson's correlations of every gene with unit-length centred ``vectors`` (n_samples,
        k) (``signedKME``): shape (n_genes, k), on the host."""
        return np.asarray(to_host(self.z.T @ self.xp.asarray(vectors)), dtype=np.float64)

    def eigengenes(
        self, labels: np.ndarray, levels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The modules' eigengenes (n_samples, k), their variance explained (k,) and whether
        each is a hub-gene fallback (never here), on the host."""
        eigen, values = module_eigengenes(self.z, labels, levels)
        sizes = np.array([np.sum(labels == level) for level in levels])
        return (
            np.asarray(to_host(eigen), dtype=np.float64),
            values / sizes,
            np.zeros(levels.shape[0], dtype=bool),
        )

    def eigengene_correlations(self, labels: np.ndarray, modules: np.ndarray) -> np.ndarray:
        """The network's correlations of the modules' eigengenes (mergeCloseModules' measure;
        bicor's where the network's is)."""
        eigen, _ = module_eigengenes(self.z, labels, modules)
        if self.prepare is not None:
            eigen = self.prepare(eigen)
        return np.asarray(to_host(eigen.T @ eigen), dtype=np.float64)

    def connectivity(self, power: float, network: str) -> np.ndarray:
        """Each gene's adjacency summed over the other genes (n_genes,)."""
        return connectivity(self.columns, power, network)


def _prepared(x: Any, *, max_p_outliers: float) -> Any:
    """bicor's prepared columns of a vector (n_samples,) or of columns (n_samples, k)."""
    if x.ndim == 1:
        return bicor_columns(x[:, None], max_p_outliers)[:, 0]
    return bicor_columns(x, max_p_outliers)


def module_eigengenes(z: Any, labels: np.ndarray, modules: np.ndarray) -> tuple[Any, np.ndarray]:
    """Each module's eigengene (a column, on ``z``'s device) and its eigenvalue."""
    xp = namespace(z)
    columns, values = [], []
    for module in modules:
        u, value = eigengene(z[:, xp.asarray(np.flatnonzero(labels == module))])
        columns.append(u)
        values.append(value)
    return xp.stack(columns, axis=1), np.asarray(values)


def _reassign(
    genes_of: ProductGenes | PairwiseGenes,
    labels: np.ndarray,
    eigengenes: list[Any],
    label_index: np.ndarray,
    *,
    signed: bool,
    n_samples: int,
    threshold: float,
    min_module_size: int,
) -> np.ndarray:
    """blockwiseModules' reassignment: a gene goes to the module whose eigengene it follows
    best where that kME's Fisher p-value is below ``threshold`` times its own module's; modules
    left with fewer than ``min_module_size`` genes by it are dissolved."""
    assigned = np.flatnonzero(labels > 0)
    kme = genes_of.network_kme(assigned, eigengenes)
    if not signed:
        kme = np.abs(kme)
    own = labels[assigned]
    out = labels.copy()
    dissolved = []
    for j, label in enumerate(label_index):
        rows = np.flatnonzero(own == label)
        best = kme[rows].max(axis=1)
        candidates = rows[kme[rows, j] < best]
        if candidates.shape[0] == 0:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = fisher_pvalue(best[kme[rows, j] < best], n_samples) / fisher_pvalue(
                kme[candidates, j], n_samples
            )
        moving = candidates[np.isfinite(ratio) & (ratio < threshold)]
        if moving.shape[0] == 0:
            continue
        out[assigned[moving]] = label_index[np.argmax(kme[moving], axis=1)]
        if rows.shape[0] - moving.shape[0] < min_module_size:
            dissolved.append(label)
    out[np.isin(out, dissolved)] = 0
    return out


def _gene_rows(n_genes: int, n_columns: int) -> list[slice]:
    rows = max(1, _ROW_VALUES // max(n_columns, 1))
    return [slice(s, min(n_genes, s + rows)) for s in range(0, n_genes, rows)]


def connectivity(z: Any, power: float, network: str) -> np.ndarray:
    """Row sums of the adjacency of the genes of ``z`` among themselves, less the diagonal
    (over all genes: intramodularConnectivity's kTotal), from blocks of rows of their
    correlations."""
    xp = namespace(z)
    n_genes = z.shape[1]
    out = np.empty(n_genes)
    for rows in _gene_rows(n_genes, n_genes):
        cor = z.T @ z[:, rows]  # its columns are the genes of ``rows``
        index = xp.arange(cor.shape[1])
        cor[index + rows.start, index] = 1.0
        out[rows] = np.asarray(to_host(adjacency_sums(cor, power, network)))
    return out


def within_connectivity(
    genes_of: ProductGenes | PairwiseGenes,
    labels: np.ndarray,
    levels: np.ndarray,
    power: float,
    network: str,
) -> np.ndarray:
    """intramodularConnectivity's kWithin: each gene's adjacency summed over its module's other
    genes (0 in modules of fewer than 3 genes, as WGCNA); shape (n_genes,)."""
    out = np.zeros(labels.shape[0])
    for level in levels:
        genes = np.flatnonzero(labels == level)
        if genes.shape[0] >= 3:
            out[genes] = genes_of.take(genes).connectivity(power, network)
    return out
