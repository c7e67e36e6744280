"""Exact PCA from the gene × gene co-moment matrix, accumulated over sample chunks in float64
(chunk co-moments merged pairwise), then its eigendecomposition and a second pass for the
scores. O(genes²) memory: up to ``COVARIANCE_MAX_GENES`` selected genes."""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np

from .._backend import namespace, to_host, tree_reduce

__all__ = ["ROWS_PER_CHUNK", "chunk_comoments", "covariance_pca", "merge_comoments"]

ROWS_PER_CHUNK = 2048  # sample rows per block in the streaming passes


def covariance_pca(
    x: da.Array, k: int, mean: np.ndarray, sd: np.ndarray, center: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    xp = namespace(x)
    x = x.rechunk({0: ROWS_PER_CHUNK, 1: -1})
    mean_d, sd_d = xp.asarray(mean), xp.asarray(sd)
    blocks = x.to_delayed()[:, 0]
    parts = [dask.delayed(chunk_comoments)(b, mean_d, sd_d) for b in blocks]
    n, offset, comoment = tree_reduce(parts, merge_comoments).compute()
    if not center:  # the second moment about zero rather than about the mean
        comoment = comoment + xp.outer(offset, offset) * n
    covariance = comoment / (n - 1)
    values, vectors = xp.linalg.eigh(covariance)
    order = xp.argsort(values)[::-1][:k]
    explained, loadings = values[order], vectors[:, order]
    total = float(to_host(xp.trace(covariance)))
    scores = ((x.astype(np.float64) - mean_d) / sd_d) @ loadings
    return to_host(scores.compute()), to_host(loadings), to_host(explained), total


def chunk_comoments(block: Any, mean: Any, sd: Any) -> tuple[int, Any, Any]:
    """(n, mean, co-moment matrix) of one chunk of standardised samples, float64."""
    xp = namespace(block)
    z = (block.astype(xp.float64) - mean) / sd
    chunk_mean = z.mean(axis=0)
    z -= chunk_mean
    return z.shape[0], chunk_mean, z.T @ z


def merge_comoments(a: tuple[int, Any, Any], b: tuple[int, Any, Any]) -> tuple[int, Any, Any]:
    """Pairwise merge of co-moment matrices (Chan et al., in matrix form)."""
    xp = namespace(a[2])
    n = a[0] + b[0]
    delta = b[1] - a[1]
    return n, a[1] + delta * (b[0] / n), a[2] + b[2] + xp.outer(delta, delta) * (a[0] * b[0] / n)
