"""limma's ``lmFit(method = "robust")``: every gene's Huber M-estimate (MASS's ``rlm``,
``stats._rlm``), as the least-squares fit that :func:`cohortex.de.fit` moderates."""

from __future__ import annotations

import warnings
from typing import Any

import dask.array as da
import numpy as np

from .._errors import CohortexWarning
from ..stats._rlm import huber_fits
from ._gene_columns import TASK_GENES, per_gene
from ._least_squares import LeastSquares

__all__ = ["robust_least_squares"]


def robust_least_squares(
    matrix: Any, design: np.ndarray, weights: da.Array | None, n_genes: int
) -> LeastSquares:
    """Every gene's robust fit, as limma's ``mrlm``.

    Parameters
    ----------
    matrix : array of shape (n_samples, n_genes)
        NumPy, CuPy or Dask; NaN where missing.
    design : ndarray, shape (n_samples, p)
    weights : Dask array of shape (n_samples, n_genes), optional
        Precision weights (``weights_for``'s); a weight ≤ 0 leaves the value out.
    n_genes : int

    Returns
    -------
    LeastSquares
        Per gene: the coefficients, ``sqrt(diag((X'WX)⁻¹))`` of the last Huber weights, the
        scale squared as ``s2`` and observed samples − p as the residual df; ``unscaled_cov``
        the unweighted ``(X'X)⁻¹`` (limma's ``cov.coefficients``).
    """
    n, p = design.shape
    values = matrix if isinstance(matrix, da.Array) else da.from_array(matrix)
    values = values.rechunk((-1, TASK_GENES))
    stacked = values
    if weights is not None:  # one tile of 2n rows: the values over their weights
        stacked = da.concatenate([values, weights], axis=0).rechunk((-1, values.chunks[1]))

    def fits(tile: np.ndarray, _: list[np.ndarray]) -> np.ndarray:
        observed = tile[:n]
        with warnings.catch_warnings():  # a gene without values: NaN, as limma's Amean
            warnings.simplefilter("ignore", RuntimeWarning)
            average = np.nanmean(observed, axis=0)  # limma's Amean, whatever the weights
        fitted = huber_fits(observed, design, None if weights is None else tile[n:])
        return np.vstack([fitted, average[None, :]])

    out = per_gene(stacked, fits, 2 * p + 5)
    unconverged = int(np.sum(out[2 * p + 2] == 0))
    singular = int(np.sum(out[2 * p + 3] == 1))
    if unconverged:
        warnings.warn(
            f"The robust fit (rlm) did not converge in 20 steps for {unconverged} of "
            f"{n_genes} genes; their last steps are kept, as rlm keeps them (and warns of each).",
            CohortexWarning,
            stacklevel=3,
        )
    if singular:
        warnings.warn(
            f"{singular} genes' observed samples leave the design singular; their robust fits "
            "are NaN (R's rlm stops at such a gene).",
            CohortexWarning,
            stacklevel=3,
        )
    return LeastSquares(
        beta=out[:p],
        coefficient_sd=out[p : 2 * p],
        s2=out[2 * p] ** 2,
        df_residual=out[2 * p + 1],
        average=out[2 * p + 4],
        unscaled_cov=np.linalg.inv(design.T @ design),
    )
