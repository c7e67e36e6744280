"""Embeddings of the samples: PCA and t-SNE (private implementation; public in cohortex), and
consensus clustering of the samples."""

from ._consensus import consensus_clusters
from ._pca import pca
from ._tsne import tsne

__all__ = ["consensus_clusters", "pca", "tsne"]
