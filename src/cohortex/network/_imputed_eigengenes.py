"""Module eigengenes of genes with missing values, as WGCNA's ``moduleEigengenes(impute =
TRUE)``, and the genes' correlations with them over the samples each gene has (``signedKME``
with ``use = "p"``). Host only: a module's genes at a time.

Each module's genes are imputed by impute.knn (at most 10 neighbours), scaled, and their first
principal component taken, oriented with their average. Where impute.knn refuses the module (a
sample misses more than 80 % of its genes) or the scaled genes are not all finite (a module of
one gene with missing values), WGCNA's fallback is taken instead: the genes' average weighted
by their connectivity within the module, signed by their covariance with the hub gene.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..stats._impute import knn_imputable, knn_impute
from ..stats._network import pairwise_correlation

__all__ = ["Eigengenes", "imputed_eigengenes", "pairwise_columns", "scale_columns"]

_HUB_POWER = 6.0  # moduleEigengenes' softPower: the fallback's adjacency
_NEIGHBOURS = 10  # moduleEigengenes' impute.knn(k = min(10, genes - 1))


class Eigengenes:
    """Eigengenes of modules.

    Attributes
    ----------
    vectors : ndarray of shape (n_samples, n_modules)
        Unit length for principal components (NaN where a one-gene fallback misses a value).
    var_explained : ndarray of shape (n_modules,)
        The mean squared correlation of the module's genes with its eigengene.
    hub : ndarray of bool, shape (n_modules,)
        Whether the hub-gene fallback replaced the principal component.
    """

    def __init__(self, vectors: np.ndarray, var_explained: np.ndarray, hub: np.ndarray) -> None:
        self.vectors, self.var_explained, self.hub = vectors, var_explained, hub


def imputed_eigengenes(values: np.ndarray, labels: np.ndarray, levels: np.ndarray) -> Eigengenes:
    """The eigengenes of the modules ``levels``.

    Parameters
    ----------
    values : ndarray of shape (n_samples, n_genes), float64
        The genes as measured, NaN where missing.
    labels : ndarray of int, shape (n_genes,)
    levels : ndarray of int, shape (n_modules,)

    Returns
    -------
    Eigengenes
    """
    n_modules = levels.shape[0]
    vectors = np.empty((values.shape[0], n_modules))
    var_explained = np.empty(n_modules)
    hub = np.zeros(n_modules, dtype=bool)
    for j, level in enumerate(levels):
        vectors[:, j], var_explained[j], hub[j] = _eigengene(values[:, labels == level].T)
    return Eigengenes(vectors, var_explained, hub)


def _eigengene(module: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """One module's eigengene from its genes × samples values (R's ``datModule``)."""
    m = module.shape[0]
    missing = np.isnan(module)
    if m > 1 and missing.any():
        if not knn_imputable(missing):
            return _hub_eigengene(module)
        module = knn_impute(module, k=min(_NEIGHBOURS, m - 1))
    scaled = scale_columns(module.T).T
    if not np.isfinite(scaled).all():
        return _hub_eigengene(scaled)
    _, _, vt = np.linalg.svd(scaled, full_matrices=False)
    vector = vt[0]
    var_explained = float(np.mean(_correlations(vector, scaled.T) ** 2))
    average = np.mean(scale_columns(scaled.T), axis=1)
    return _aligned(vector, average), var_explained, False


def _hub_eigengene(module: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """moduleEigengenes' ``subHubs`` fallback: the scaled genes' average weighted by their
    connectivity within the module (``rowMeans(|cov|^6)^3``) and signed by their covariance
    with the hub gene, over the genes each sample has."""
    scaled = scale_columns(module.T)  # samples × genes
    covariance = _pairwise_covariance(scaled)
    covariance[~np.isfinite(covariance)] = 0.0
    k = np.mean(np.abs(covariance) ** _HUB_POWER, axis=1) ** 3
    if k.max() > 1.0:
        k = k - 1.0
    k[np.isnan(k)] = 0.0
    sign = np.sign(covariance[:, int(np.argmax(k))])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        # a sample without any value of a one-gene module has no eigengene value (R's NaN)
        warnings.simplefilter("ignore", RuntimeWarning)
        vector = np.nanmean(scaled * (k * sign / k.sum()), axis=1)
        var_explained = float(np.nanmean(_correlations(vector, module.T) ** 2))
        average = np.nanmean(scaled, axis=1)
    return _aligned(vector, average), var_explained, True


def _aligned(vector: np.ndarray, average: np.ndarray) -> np.ndarray:
    """The eigengene turned to correlate positively with the genes' average (``align = "along
    average"``)."""
    (agreement,) = _correlations(average, vector[:, None])
    return -vector if np.isfinite(agreement) and agreement < 0 else vector


def scale_columns(x: np.ndarray) -> np.ndarray:
    """R's ``scale()`` of the columns: centred by their means and divided by their root mean
    square (``n - 1``), both over the values present."""
    present = ~np.isnan(x)
    count = present.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        centred = x - np.where(present, x, 0.0).sum(axis=0) / count
        spread = np.sqrt(np.nansum(centred * centred, axis=0) / np.maximum(1, count - 1))
        return centred / spread


def pairwise_columns(x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """Pearson's correlations of the columns of ``x`` with those of ``y`` (or ``x``) over the
    rows both have (WGCNA's ``cor(use = "p")``): NaN where undefined.

    Parameters
    ----------
    x : ndarray of shape (n, a)
    y : ndarray of shape (n, b), optional
        The fewer columns: each is correlated with every column of ``x``.

    Returns
    -------
    ndarray of shape (a, b), or (a, a)
    """
    both = x if y is None else np.concatenate([x, y], axis=1)
    present = ~np.isnan(both)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(present, scale_columns(both), 0.0)
    z[~np.isfinite(z)] = 0.0  # a constant column: its correlations come out undefined
    if y is None:
        return pairwise_correlation(z, present.astype(np.float64))
    a = x.shape[1]
    rows = np.arange(a, both.shape[1])
    return pairwise_correlation(z, present.astype(np.float64), rows)[:, :a].T


def _correlations(vector: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``cor(vector, columns, use = "p")``: shape (n_columns,)."""
    return pairwise_columns(columns, vector[:, None])[:, 0]


def _pairwise_covariance(x: np.ndarray) -> np.ndarray:
    """R's ``cov(x, use = "p")``: each pair of columns over the rows both have (NaN for fewer
    than 2)."""
    present = (~np.isnan(x)).astype(np.float64)
    values = np.where(present > 0, x, 0.0)
    count = present.T @ present
    sum_a = values.T @ present
    with np.errstate(invalid="ignore", divide="ignore"):
        products = values.T @ values - sum_a * sum_a.T / count
        return np.where(count > 1, products / (count - 1.0), np.nan)
