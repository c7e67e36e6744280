"""What every analysis takes as its ``cohort`` argument, made into one matrix with its ids."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from ._errors import CohortexError
from .store import SCALES, open_cohort

__all__ = ["CohortMatrix", "as_cohort_matrix"]


@dataclass
class CohortMatrix:
    """A cohort as one (samples × genes) matrix with its ids and scale.

    Attributes
    ----------
    matrix : array of shape (n_samples, n_genes)
        NumPy, CuPy or Dask (a store's is Dask, lazily read).
    sample_ids, gene_ids : ndarray of str
    scale : str
    dataset : xarray.Dataset or None
        The Dataset the matrix came from (for its sample and gene variables).
    finite_checked : bool
        The values were checked for ±inf already (stores refuse them when written).
    """

    matrix: Any
    sample_ids: np.ndarray
    gene_ids: np.ndarray
    scale: str
    dataset: xr.Dataset | None
    finite_checked: bool

    def sample_variables(self) -> list[str]:
        """Names of the Dataset's sample variables (none for a plain matrix)."""
        if self.dataset is None:
            return []
        return [str(v) for v in self.dataset.data_vars if self.dataset[v].dims == ("sample",)]


def as_cohort_matrix(cohort: Any, *, scale: str | None = None) -> CohortMatrix:
    """Accept a store path, a Dataset with ``expression(sample, gene)`` or a 2-D array.

    Parameters
    ----------
    cohort : path, xarray.Dataset or array of shape (n_samples, n_genes)
    scale : str, optional
        The scale of a plain array (default ``"log2"``); Datasets carry their own.
    """
    from_store = isinstance(cohort, str | os.PathLike)
    if from_store:
        cohort = open_cohort(cohort)
    if isinstance(cohort, xr.Dataset):
        if "expression" not in cohort:
            raise CohortexError("The Dataset given as 'cohort' has no 'expression' variable.")
        matrix = cohort["expression"].transpose("sample", "gene").data
        dataset: xr.Dataset | None = cohort
        scale = cohort.attrs.get("scale", scale or "log2")
        checked = from_store or cohort.attrs.get("cohortex_format") is not None
    else:
        matrix = cohort if hasattr(cohort, "shape") and hasattr(cohort, "dtype") else None
        matrix = np.asarray(cohort) if matrix is None else matrix
        dataset, scale, checked = None, scale or "log2", False
    if matrix.ndim != 2:
        raise CohortexError(
            f"The expression matrix must be 2-D (samples × genes); got shape {matrix.shape}."
        )
    if np.dtype(matrix.dtype).kind not in "biuf":
        raise CohortexError(f"Expression values must be numeric; got dtype {matrix.dtype}.")
    if scale not in SCALES:
        raise CohortexError(f"The 'scale' must be one of {', '.join(SCALES)}; got {scale!r}.")
    return CohortMatrix(
        matrix=matrix,
        sample_ids=_ids(dataset, "sample", matrix.shape[0], "S"),
        gene_ids=_ids(dataset, "gene", matrix.shape[1], "G"),
        scale=str(scale),
        dataset=dataset,
        finite_checked=checked,
    )


def _ids(dataset: xr.Dataset | None, dim: str, n: int, prefix: str) -> np.ndarray:
    if dataset is not None and dim in dataset.coords:
        return np.asarray(dataset[dim].values)
    return np.asarray([f"{prefix}{i + 1}" for i in range(n)], dtype=object)
