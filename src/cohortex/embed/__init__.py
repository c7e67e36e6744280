"""Embeddings of the samples: PCA, t-SNE and limma's MDS (private implementation; public in
cohortex), and consensus clustering of the samples."""

from ._consensus import consensus_clusters
from ._mds import mds
from ._pca import pca
from ._tsne import tsne

__all__ = ["consensus_clusters", "mds", "pca", "tsne"]
