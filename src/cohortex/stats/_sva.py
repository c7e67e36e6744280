"""Surrogate variable analysis's per-block sums, as sva computes them (arrays in, arrays out).

Every step of sva reduces the genes × samples matrix to an (samples × samples) Gram matrix or
to per-gene residual sums of squares, so each is a function of one block of genes (all samples)
that the caller adds up over the blocks:

* :func:`residual_gram` — the residuals of a design's least squares, ``R R'`` (sva's
  ``eigen(t(resid) %*% resid)`` and ``num.sv``'s singular values);
* :func:`centred_gram` — genes centred and weighted, ``Z Z'`` (the iteratively reweighted
  ``dats``, ``ssva``'s controls, the two-step method's selected genes);
* :func:`gram` — the values' own (limma's ``wsva``, which projects the genes on the
  residuals' leading directions);
* :func:`permuted_residual_gram` — each gene's residuals permuted over the samples and fitted
  again (``num.sv``'s null distribution);
* :func:`residual_sums` — per gene, the residual sum of squares of several designs (sva's
  ``f.pvalue``).

Designs arrive as orthonormal bases (``Q`` of a QR), so that a residual is ``Y − Q (Q' Y)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import namespace

__all__ = [
    "centred_gram",
    "gram",
    "permuted_residual_gram",
    "residual_gram",
    "residual_sums",
]


def residual_gram(block: Any, basis: Any, weights: Any = None) -> Any:
    """``R R'`` for the residuals ``R = Y − Q Q' Y`` of a block.

    Parameters
    ----------
    block : array of shape (n_samples, n_genes)
    basis : array of shape (n_samples, p)
        Orthonormal columns spanning the design.
    weights : array of shape (n_genes,), optional
        Each gene's residuals multiplied by it (0 leaves a gene out).

    Returns
    -------
    array of shape (n_samples, n_samples)
    """
    residuals = block - basis @ (basis.T @ block)
    if weights is not None:
        residuals = residuals * weights
    return residuals @ residuals.T


def gram(block: Any, weights: Any = None) -> Any:
    """``Y Y'`` of the values themselves, each gene's multiplied by its weight.

    Parameters
    ----------
    block : array of shape (n_samples, n_genes)
    weights : array of shape (n_genes,), optional

    Returns
    -------
    array of shape (n_samples, n_samples)
    """
    weighted = block if weights is None else block * weights
    return weighted @ weighted.T


def centred_gram(block: Any, weights: Any) -> Any:
    """``Z Z'`` for ``Z = w (Y − mean over samples)``, gene by gene.

    Parameters
    ----------
    block : array of shape (n_samples, n_genes)
    weights : array of shape (n_genes,)

    Returns
    -------
    array of shape (n_samples, n_samples)
    """
    centred = (block - block.mean(axis=0)) * weights
    return centred @ centred.T


def permuted_residual_gram(block: Any, basis: Any, keys: np.ndarray, weights: Any = None) -> Any:
    """``R₀ R₀'`` where each gene's residuals are permuted over the samples and fitted again.

    Parameters
    ----------
    block : array of shape (n_samples, n_genes)
    basis : array of shape (n_samples, p)
        Orthonormal columns spanning the design.
    keys : ndarray of shape (n_samples, n_genes)
        Random numbers on the host: each gene's permutation is their order.
    weights : array of shape (n_genes,), optional
        As for :func:`residual_gram`.

    Returns
    -------
    array of shape (n_samples, n_samples)
    """
    xp = namespace(block)
    residuals = block - basis @ (basis.T @ block)
    order = xp.argsort(xp.asarray(keys), axis=0)
    permuted = xp.take_along_axis(residuals, order, axis=0)
    return residual_gram(permuted, basis, weights)


def residual_sums(block: Any, bases: list[Any]) -> Any:
    """Each gene's residual sum of squares under each design.

    Parameters
    ----------
    block : array of shape (n_samples, n_genes)
    bases : list of arrays of shape (n_samples, p_k)
        Orthonormal columns spanning each design.

    Returns
    -------
    array of shape (len(bases), n_genes)
    """
    xp = namespace(block)
    sums = []
    for basis in bases:
        residuals = block - basis @ (basis.T @ block)
        sums.append((residuals * residuals).sum(axis=0))
    return xp.stack(sums)
