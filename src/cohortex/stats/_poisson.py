"""edgeR's Poisson fit, ``glmFit(y, design, lib.size =, dispersion = 0, prior.count = 0)``.

edgeR's voomLmFit takes it to find the exact zeros of rows with zero counts: the counts of
zero whose fitted value is below 1e-4. Which zeros those are depends on how far the fit went
towards a fitted value of 0, so the fit makes edgeR's choices: a one-way layout (as many
distinct design rows as columns) has its closed form, each group's ``log(Σy / Σlib)``; any
other design edgeR's Levenberg-damped Fisher scoring (:func:`nb_glm_fit` with a dispersion of
0). Host only (numba): the rows are the few with zeros, each a loop over its samples.
"""

from __future__ import annotations

import numpy as np

from ._negative_binomial import nb_glm_fit, one_way_groups

__all__ = ["poisson_basis", "poisson_coefficients"]


def poisson_basis(design: np.ndarray) -> np.ndarray:
    """The basis of the Poisson fit's log means (n_samples × q): the group indicators of a
    one-way layout, else ``design`` itself."""
    groups = _one_way_groups(np.asarray(design, dtype=np.float64))
    return design if groups is None else groups


def _one_way_groups(design: np.ndarray) -> np.ndarray | None:
    """The group indicators (n_samples × p) when ``design`` is a one-way layout, else None."""
    oneway = one_way_groups(design)
    if oneway is None:
        return None
    codes = oneway[0]
    return (codes[:, None] == np.arange(design.shape[1])[None, :]).astype(np.float64)


def poisson_coefficients(counts: np.ndarray, design: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The Poisson fit's coefficients on :func:`poisson_basis` (q × n_genes).

    Parameters
    ----------
    counts : ndarray of shape (n_samples, n_genes)
    design : ndarray of shape (n_samples, p)
        Of full rank.
    offsets : ndarray of shape (n_samples,)
        ``log(library size)``.

    Returns
    -------
    ndarray of shape (q, n_genes)
        The fitted means are ``exp(poisson_basis(design) @ coefficients + offsets)``. A group
        of a one-way layout with no count has -1e8 (edgeR's floor: a fitted 0), a gene with
        no count under another design NaN (edgeR: NA coefficients, fitted 0).
    """
    counts = np.asarray(counts, dtype=np.float64)
    design = np.asarray(design, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.float64)
    groups = _one_way_groups(design)
    if groups is not None:  # edgeR's mglmOneWay, Poisson: each group's log(Σy / Σlib)
        library = groups.T @ np.exp(offsets)
        with np.errstate(divide="ignore"):
            rates = np.log((groups.T @ counts) / library[:, None])
        return np.maximum(rates, -1e8)
    fit = nb_glm_fit(counts, design, offsets, np.zeros(counts.shape[1]))
    return fit.coefficients
