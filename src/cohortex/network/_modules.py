"""WGCNA's co-expression modules, as its tutorial's step-by-step network construction.

adjacency → TOMsimilarity → hclust(average) of 1 - TOM → cutreeDynamic (the hybrid cut) →
mergeCloseModules → moduleEigengenes, signedKME and intramodularConnectivity.

Everything after the correlations is read from the genes × genes correlation matrix ``C``
rather than from the data: a module's eigengene is its standardised genes' first principal
component, so with ``u`` the leading eigenvector of the module's block of ``C`` (eigenvalue
``λ``), the eigengene is ``Z u / √((n - 1) λ)``, the share of variance it explains is
``λ / m``, a gene's kME is ``(C u)_g / √λ`` and two eigengenes correlate as
``uᵢᵀ C uⱼ / √(λᵢ λⱼ)``. Only the eigengenes themselves take a pass over the cohort.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg
import xarray as xr
from scipy.cluster import hierarchy
from scipy.sparse.linalg import eigsh
from scipy.spatial.distance import squareform

from .._backend import namespace, to_host
from .._cohort import CohortLike, shared_docs
from .._errors import CohortexError
from .._memory import release_free_memory
from .._progress import progress_bar
from ..stats._blockwise import DENSE_EIGEN_SIZE
from ..stats._network import (
    adjacency_matrix,
    adjacency_sums,
    tom_dissimilarity,
)
from ..stats._tree_cut import (
    cutree_hybrid,
    default_cut_height,
    number_by_size,
    r_merge,
)
from ._data import GeneNetwork, check_module_settings
from ._imputed_eigengenes import imputed_eigengenes, pairwise_columns
from ._soft_threshold import DEFAULT_POWERS, faq_power, fit_table
from ._traits import student_pvalue

__all__ = ["merge_close", "modules"]


@shared_docs
def modules(
    cohort: CohortLike,
    *,
    power: float | None = None,
    network: str = "unsigned",
    tom: str = "unsigned",
    tom_denominator: str = "min",
    min_module_size: int = 30,
    deep_split: int = 2,
    pam_stage: bool = True,
    pam_respects_dendro: bool = False,
    cut_height: float | None = None,
    merge_cut_height: float = 0.25,
    genes: int | None = None,
    correlation_type: str = "pearson",
    max_p_outliers: float = 1.0,
    device: str = "auto",
    progress: bool | None = None,
) -> xr.Dataset:
    """Co-expression modules of the genes, as WGCNA's step-by-step network construction.

    The soft-thresholded correlations make a weighted network; its topological overlap
    (TOM: how many neighbours two genes share) is clustered by average linkage; the tree is
    cut by dynamicTreeCut's hybrid method; modules whose eigengenes correlate above
    ``1 - merge_cut_height`` are merged. The defaults are those of WGCNA's tutorial
    (``cutreeDynamic(deepSplit = 2, pamRespectsDendro = FALSE, minClusterSize = 30)``,
    ``mergeCloseModules(cutHeight = 0.25)``).

    Parameters
    ----------
    {cohort}
        Log-scale values (a counts cohort is first made edgeR's log-CPM with TMM factors);
        genes that do not vary are left out, infinite values refused. Missing values (NaN)
        are taken as WGCNA's defaults take them: each pair of genes is correlated over the
        samples both have (``cor(use = "p")``; bicor's medians and Spearman's ranks those
        samples'), each module's genes are
        imputed by impute.knn before its eigengene (``moduleEigengenes(impute = TRUE)``), and
        kME is each gene's correlation with the eigengenes over its samples. Genes missing in
        half the samples or more (or present in fewer than 4) are left out, and samples
        missing half of the genes refused, as WGCNA's ``goodSamplesGenes``. The cohort is
        then held in memory.
    power : float, optional
        The soft threshold β. By default the lowest power whose scale-free fit R² exceeds
        0.85 (``pickSoftThreshold``'s estimate, from the same correlations), or where none
        does, the power WGCNA's FAQ advises for the number of samples (6 beyond 40 samples,
        12 for signed networks).
    network : {{"unsigned", "signed", "signed hybrid"}}, default "unsigned"
        Adjacency ``|c|^β``, ``((1 + c) / 2)^β``, or ``c^β`` for ``c > 0``.
    tom : {{"unsigned", "signed"}}, default "unsigned"
        WGCNA's ``TOMType``; the signed TOM of an unsigned network keeps the correlations'
        signs in its sums (WGCNA's ``TOMsimilarityFromExpr``).
    tom_denominator : {{"min", "mean"}}, default "min"
        WGCNA's ``TOMDenom``: the TOM's denominator takes ``min(k_i, k_j)`` or the mean of the
        two genes' connectivities.
    min_module_size : int, default 30
        dynamicTreeCut's ``minClusterSize``.
    deep_split : int, default 2
        0 … 4: how readily branches split into modules.
    pam_stage, pam_respects_dendro : bool, default True, False
        Whether genes left over by the tree cut go to the nearest module close enough, and
        only to modules on their own branch.
    cut_height : float, optional
        The tree's cut (default: 99 % of the heights' range above their 5 % quantile).
    merge_cut_height : float, default 0.25
        Modules whose eigengenes' dissimilarity (1 - correlation) is below it are merged,
        repeatedly, as ``mergeCloseModules(iterate = TRUE)``.
    genes : int, optional
        Only the ``genes`` most variable genes (all that vary by default). The network holds
        genes × genes matrices: float64, about 32 bytes per gene pair on a CPU.
    correlation_type : {{"pearson", "bicor", "spearman"}}, default "pearson"
        The adjacency's correlation (``adjacency(corFnc = "bicor")``, or ``corOptions =
        list(method = "spearman")``): the biweight midcorrelation is robust to outlying
        samples, Spearman's to any monotone scale. The eigengenes, their merging and kME stay
        Pearson's, as ``moduleEigengenes``, ``mergeCloseModules`` and ``signedKME`` by default
        (which also needs Pearson's matrix: one more genes × genes matrix).
    max_p_outliers : float, default 1
        bicor's ``maxPOutliers`` (1: no cap; WGCNA's FAQ suggests 0.05 or 0.1).
    {device}
    progress : bool, optional

    Returns
    -------
    xarray.Dataset
        On ``gene``: ``label``, its module (0: none, WGCNA's grey; else 1, 2, … by decreasing
        size), ``dynamic_label`` (the tree cut's modules before merging, as cutreeDynamic
        numbers them), ``k_total`` and ``k_within`` (``intramodularConnectivity``: 0 in
        modules of fewer than 3 genes), ``kme(gene, module)`` (``signedKME``: each gene's
        correlation with each eigengene) and ``kme_pvalue`` (``corPvalueStudent``). On
        ``module`` (0 first where there are unassigned genes): ``size``, ``var_explained`` and
        ``eigengene(sample, module)`` (``moduleEigengenes``: the standardised module genes'
        first principal component, unit length, oriented with their average). The tree:
        ``tree_merge(merge, pair)`` and ``tree_height(merge)`` as
        R's ``hclust``. The cohort's sample variables (for :func:`module_traits`). Attrs:
        ``power``, ``power_source`` ("given", "scale-free fit" or "WGCNA FAQ"), ``network``,
        ``tom``, ``correlation_type``, ``max_p_outliers``, ``min_module_size``,
        ``deep_split``, ``pam_stage``, ``pam_respects_dendro``, ``cut_height`` (as used),
        ``merge_cut_height``, ``n_modules``, ``n_genes``, ``n_genes_constant``,
        ``n_genes_missing`` (left out for missing values), ``missing_share`` (of the used
        genes' values), ``hub_eigengenes`` (the modules whose eigengene is WGCNA's hub-gene
        fallback: a sample misses more than 80 % of their genes, or a module of one gene with
        missing values), ``n_samples``, ``transform``.

    Raises
    ------
    CohortexError
        For fewer than 4 samples or 3 varying genes, infinite values, samples missing half of
        the genes, a pair of genes sharing fewer than 2 samples, settings out of range, or
        genes × genes matrices beyond the machine's memory.

    Notes
    -----
    Agreement with WGCNA 1.72 and dynamicTreeCut 1.63 (tests/network/test_modules.py): the
    TOM to 1e-12, the tree's merges exactly, the modules gene for gene, eigengenes and kME
    to 1e-8; with missing values the same, impute 1.72 included
    (tests/network/test_missing_values.py). The merged modules are numbered by size, where R
    keeps one of the merged modules' numbers.
    """
    who = "modules"
    check_module_settings(
        who,
        network=network,
        tom=tom,
        tom_denominator=tom_denominator,
        deep_split=deep_split,
        merge_cut_height=merge_cut_height,
        power=power,
    )
    if min_module_size < 1:
        raise CohortexError(
            f"The 'min_module_size' parameter of modules() must be at least 1; got "
            f"{min_module_size}."
        )
    data = GeneNetwork.build(
        cohort,
        genes=genes,
        device=device,
        progress=progress,
        who=who,
        correlation_type=correlation_type,
        max_p_outliers=max_p_outliers,
    )
    correlation = data.correlation  # the adjacency's: Pearson's or bicor
    if power is None:
        estimate = fit_table(correlation, DEFAULT_POWERS, network, 0.85).attrs["power_estimate"]
        power, source = (
            (estimate, "scale-free fit")
            if estimate > 0
            else (faq_power(data.n_samples, network), "WGCNA FAQ")
        )
    else:
        source = "given"
    power = float(power)

    # the host's steps, each seconds to minutes for tens of thousands of genes
    bar = progress_bar(4, "modules", progress, unit="step", delay=2.0)
    try:
        bar.set_postfix(step="topological overlap")
        keep_sign = tom == "signed" and network == "unsigned"
        dissimilarity, connectivity = tom_dissimilarity(
            adjacency_matrix(correlation, power, network, keep_sign=keep_sign),
            signed=tom == "signed",
            denominator=tom_denominator,
        )
        dist = np.asarray(to_host(dissimilarity), dtype=np.float64)
        del dissimilarity
        k_total = np.asarray(to_host(connectivity), dtype=np.float64) - 1.0
        release_free_memory()
        bar.update(1)
        bar.set_postfix(step="gene tree")
        merge, height = r_merge(hierarchy.linkage(squareform(dist, checks=False), "average"))
        bar.update(1)
        bar.set_postfix(step="tree cut")
        used_cut = (
            default_cut_height(height) if cut_height is None else min(cut_height, height.max())
        )
        dynamic = cutree_hybrid(
            merge,
            height,
            dist,
            min_cluster_size=min_module_size,
            deep_split=deep_split,
            cut_height=cut_height,
            pam_stage=pam_stage,
            pam_respects_dendro=pam_respects_dendro,
        )
        del dist
        release_free_memory()
        bar.update(1)
        bar.set_postfix(step="merging")
        if data.missing:
            measured = np.asarray(to_host(data.read()), dtype=np.float64)
            labels = merge_close(
                dynamic,
                merge_cut_height,
                lambda labels, proper: pairwise_columns(
                    imputed_eigengenes(measured, labels, proper).vectors
                ),
            )
        else:
            pearson = correlation if correlation_type == "pearson" else data.pearson_correlation()
            labels = _merge_close(pearson, dynamic, merge_cut_height)
        bar.update(1)
    finally:
        bar.close()

    levels = np.unique(labels)
    sizes = np.array([int(np.sum(labels == level)) for level in levels])
    if data.missing:  # moduleEigengenes(impute = TRUE) and signedKME(use = "p")
        found = imputed_eigengenes(measured, labels, levels)
        eigengenes, var_explained, hub = found.vectors, found.var_explained, found.hub
        kme = pairwise_columns(measured, eigengenes)
    else:
        vectors, values = _eigenvectors(pearson, labels, levels)
        xp = namespace(pearson)
        kme = np.asarray(to_host(pearson @ xp.asarray(vectors)), dtype=np.float64)
        kme /= np.sqrt(values)
        eigengenes = data.scores(vectors / np.sqrt((data.n_samples - 1) * values))
        var_explained, hub = values / sizes, np.zeros(levels.shape[0], dtype=bool)
    k_within = _within_connectivity(correlation, labels, levels, power, network)

    result = xr.Dataset(
        {
            "label": ("gene", labels),
            "dynamic_label": ("gene", dynamic),
            "k_total": ("gene", k_total),
            "k_within": ("gene", k_within),
            "kme": (("gene", "module"), kme),
            "kme_pvalue": (("gene", "module"), student_pvalue(kme, data.n_samples)),
            "size": ("module", sizes),
            "var_explained": ("module", var_explained),
            "eigengene": (("sample", "module"), eigengenes),
            "tree_merge": (("merge", "pair"), merge),
            "tree_height": ("merge", height),
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
            "min_module_size": int(min_module_size),
            "deep_split": int(deep_split),
            "pam_stage": int(pam_stage),
            "pam_respects_dendro": int(pam_respects_dendro),
            "cut_height": float(used_cut),
            "merge_cut_height": float(merge_cut_height),
            "n_modules": int(np.sum(levels > 0)),
            "n_genes": data.n_genes,
            "n_genes_constant": data.n_constant,
            "n_genes_missing": data.n_sparse,
            "missing_share": data.missing_share,
            "hub_eigengenes": [int(level) for level in levels[hub]],
            "n_samples": data.n_samples,
            "transform": data.transform,
        },
    )
    return data.with_sample_variables(result)


def _block(correlation: Any, genes: np.ndarray) -> np.ndarray:
    """The correlations among ``genes``, on the host."""
    xp = namespace(correlation)
    index = xp.asarray(genes)
    return np.asarray(to_host(correlation[xp.ix_(index, index)]), dtype=np.float64)


def _leading(block: np.ndarray) -> tuple[np.ndarray, float]:
    """The leading eigenvector (unit length, summing to ≥ 0) and eigenvalue of a symmetric
    matrix: LAPACK for small ones, Lanczos to machine precision beyond ``DENSE_EIGEN_SIZE``."""
    m = block.shape[0]
    if m <= DENSE_EIGEN_SIZE:
        values, vectors = scipy.linalg.eigh(block, subset_by_index=[m - 1, m - 1])
    else:
        values, vectors = eigsh(block, k=1, which="LA", v0=np.ones(m), tol=0.0)
    vector = vectors[:, 0]
    if vector.sum() < 0:  # moduleEigengenes: aligned with the module's average expression
        vector = -vector
    return vector, float(values[0])


def _eigenvectors(
    correlation: Any, labels: np.ndarray, levels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each module's leading eigenvector, as a column over all genes, and its eigenvalue."""
    vectors = np.zeros((labels.shape[0], levels.shape[0]))
    values = np.empty(levels.shape[0])
    for j, level in enumerate(levels):
        genes = np.flatnonzero(labels == level)
        vector, value = _leading(_block(correlation, genes))
        vectors[genes, j] = vector
        values[j] = value
    return vectors, values


def _merge_close(correlation: Any, labels: np.ndarray, cut_height: float) -> np.ndarray:
    """:func:`merge_close` with the eigengenes' correlations read from the genes' correlation
    matrix: ``uᵢᵀ C uⱼ / √(λᵢ λⱼ)``."""
    xp = namespace(correlation)

    def between(labels: np.ndarray, proper: np.ndarray) -> np.ndarray:
        vectors, values = _eigenvectors(correlation, labels, proper)
        projected = np.asarray(to_host(correlation @ xp.asarray(vectors)), dtype=np.float64)
        return vectors.T @ projected / np.sqrt(np.outer(values, values))

    return merge_close(labels, cut_height, between)


def merge_close(
    labels: np.ndarray,
    cut_height: float,
    between: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """mergeCloseModules(iterate = TRUE): join modules whose eigengenes' average-linkage tree
    of ``1 - cor`` joins below ``cut_height``; repeat while modules are joined.

    Parameters
    ----------
    labels : ndarray of int, shape (n_genes,)
        0: no module.
    cut_height : float
    between : callable
        ``between(labels, modules)``: the correlations of those modules' eigengenes, shape
        (n_modules, n_modules).

    Returns
    -------
    ndarray of int, shape (n_genes,)
        Numbered by decreasing size (0 stays 0).
    """
    labels = labels.copy()
    while True:
        proper = np.unique(labels[labels > 0])
        if proper.shape[0] < 2:
            break
        correlations = between(labels, proper)
        dissimilarity = 1.0 - (correlations + correlations.T) / 2.0
        np.fill_diagonal(dissimilarity, 0.0)
        tree = hierarchy.linkage(squareform(dissimilarity, checks=False), "average")
        groups = hierarchy.fcluster(tree, t=cut_height, criterion="distance")
        merged = labels.copy()
        for group in np.unique(groups):
            members = proper[groups == group]
            merged[np.isin(labels, members)] = members.min()
        joined = np.unique(merged).shape[0] < np.unique(labels).shape[0]
        labels = merged
        if not joined:
            break
    return number_by_size(labels)


def _within_connectivity(
    correlation: Any, labels: np.ndarray, levels: np.ndarray, power: float, network: str
) -> np.ndarray:
    """intramodularConnectivity's kWithin: each gene's adjacency to its module's other genes
    (0 in modules of fewer than 3 genes, as WGCNA)."""
    out = np.zeros(labels.shape[0])
    for level in levels:
        genes = np.flatnonzero(labels == level)
        if genes.shape[0] >= 3:
            out[genes] = adjacency_sums(_block(correlation, genes), power, network)
    return out
