"""Embeddings of the samples: PCA and t-SNE (private implementation; public in cohortex)."""

from ._pca import pca
from ._tsne import tsne

__all__ = ["pca", "tsne"]
