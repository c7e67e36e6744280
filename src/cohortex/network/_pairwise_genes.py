"""Genes with missing values as WGCNA's ``blockwiseModules`` takes them: each pair correlated
over the samples both have (``cor(use = "p")`` or ``bicor(use = "p")``, as its blocks' TOMs),
each gene with an eigengene over its own samples (its kME rules and moves), and the eigengenes
of modules imputed by impute.knn (``moduleEigengenes(impute = TRUE)``).

The pre-clustering takes the genes scaled and then imputed by impute.knn, as WGCNA's
``projectiveKMeans``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import namespace, to_host
from ..stats._impute import knn_impute
from ..stats._network import (
    bicor_columns,
    pairwise_adjacency_sums,
    pairwise_bicor,
    pairwise_bicor_adjacency_sums,
    pairwise_correlation,
)
from ..stats._r_random import RRandom
from ._data import refuse_undefined
from ._imputed_eigengenes import imputed_eigengenes, pairwise_columns, scale_columns

__all__ = ["PairwiseGenes", "imputed_scaled"]


class PairwiseGenes:
    """Genes with missing values.

    Parameters
    ----------
    z : array of shape (n_samples, n_genes), float64
        The genes standardised by their own means and sds, 0 where missing.
    present : array of shape (n_samples, n_genes), float64
        1 where a value is present, else 0.
    measured : ndarray of shape (n_samples, n_genes), float64
        The values, NaN where missing, on the host.
    gene_ids : ndarray of str, shape (n_genes,)
    who : str
        The function that refuses undefined correlations.
    max_p_outliers : float, optional
        The network's correlation is bicor with this cap on outliers (Pearson's if None): the
        blocks' TOMs, the kME rules and moves, the merging (``useCorOptionsThroughout``) and
        the connectivities; the final kME stays Pearson's, as ``signedKME``.
    """

    def __init__(
        self,
        z: Any,
        present: Any,
        measured: np.ndarray,
        gene_ids: np.ndarray,
        who: str,
        max_p_outliers: float | None = None,
    ) -> None:
        self.z, self.present, self.measured = z, present, measured
        self.gene_ids, self.who, self.max_p_outliers = gene_ids, who, max_p_outliers

    def take(self, genes: np.ndarray) -> PairwiseGenes:
        """Some of the genes."""
        index = namespace(self.z).asarray(genes)
        return PairwiseGenes(
            self.z[:, index],
            self.present[:, index],
            self.measured[:, genes],
            self.gene_ids[genes],
            self.who,
            self.max_p_outliers,
        )

    def correlation(self, rows: np.ndarray | None = None) -> Any:
        """The genes' correlations (all, or the rows of ``rows``), refused where undefined.

        Returns
        -------
        array of shape (m, n_genes), float64, on the genes' device
        """
        if self.max_p_outliers is None:
            out = pairwise_correlation(self.z, self.present, rows)
        else:
            xp = namespace(self.z)
            out = xp.asarray(pairwise_bicor(self.measured, rows, self.max_p_outliers))
        refuse_undefined(
            out, self.gene_ids if rows is None else self.gene_ids[rows], self.gene_ids, self.who
        )
        return out

    def block_correlation(self, members: np.ndarray) -> Any:
        """The correlations among ``members`` (m, m), on the genes' device."""
        return self.take(members).correlation()

    def network_kme(self, genes: np.ndarray, vectors: list[np.ndarray]) -> np.ndarray:
        """The network's correlations of ``genes`` with each of ``vectors`` (n_samples,),
        each over the samples both have: shape (len(genes), len(vectors)), on the host."""
        stacked = np.stack(vectors, axis=1)
        if self.max_p_outliers is None:
            return pairwise_columns(self.measured[:, genes], stacked)
        both = np.concatenate([stacked, self.measured[:, genes]], axis=1)
        rows = np.arange(stacked.shape[1])
        out = pairwise_bicor(both, rows, self.max_p_outliers)[:, stacked.shape[1] :].T
        return np.ascontiguousarray(out)

    def kme(self, vectors: np.ndarray) -> np.ndarray:
        """Every gene's correlations with the columns of ``vectors`` (n_samples, k), over the
        samples both have (``signedKME(use = "p")``): shape (n_genes, k), on the host."""
        return pairwise_columns(self.measured, vectors)

    def eigengene(self, genes: np.ndarray) -> np.ndarray:
        """The eigengene of a module of ``genes``, imputed: shape (n_samples,), on the host."""
        found = imputed_eigengenes(
            self.measured[:, genes], np.ones(genes.shape[0], dtype=np.int64), np.array([1])
        )
        return found.vectors[:, 0]

    def eigengenes(
        self, labels: np.ndarray, levels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The modules' eigengenes (n_samples, k), their variance explained (k,) and whether
        each is the hub-gene fallback (k,), on the host."""
        found = imputed_eigengenes(self.measured, labels, levels)
        return found.vectors, found.var_explained, found.hub

    def eigengene_correlations(self, labels: np.ndarray, modules: np.ndarray) -> np.ndarray:
        """The network's correlations of the modules' imputed eigengenes (mergeCloseModules'
        measure)."""
        vectors = imputed_eigengenes(self.measured, labels, modules).vectors
        if self.max_p_outliers is None:
            return pairwise_columns(vectors)
        columns = bicor_columns(vectors, self.max_p_outliers)
        return columns.T @ columns

    def connectivity(self, power: float, network: str) -> np.ndarray:
        """Each gene's adjacency summed over the other genes (n_genes,), on the host; refused
        where a pair's correlation is undefined."""
        if self.max_p_outliers is None:
            sums = np.asarray(
                to_host(pairwise_adjacency_sums(self.z, self.present, power, network)),
                dtype=np.float64,
            )
        else:
            sums = pairwise_bicor_adjacency_sums(self.measured, power, network, self.max_p_outliers)
        undefined = np.flatnonzero(np.isnan(sums))
        if undefined.shape[0]:
            self.correlation(undefined[:1])  # names the pair
        return sums


def imputed_scaled(measured: np.ndarray, rng: RRandom | None = None) -> np.ndarray:
    """projectiveKMeans' genes: scaled (R's ``scale``) and imputed by impute.knn with its
    defaults, ``t(impute.knn(t(scale(x)))$data)``.

    Parameters
    ----------
    measured : ndarray of shape (n_samples, n_genes), NaN where missing
    rng : RRandom, optional
        R's generator set to impute.knn's seed, left in the state impute.knn leaves it.

    Returns
    -------
    ndarray of shape (n_samples, n_genes), float64
    """
    return knn_impute(scale_columns(measured).T, rng=rng).T.copy()
