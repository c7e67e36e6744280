"""What every analysis takes as its ``cohort`` argument, made into one matrix with its ids.

Public entry points type that argument :data:`CohortLike` and document it with
:data:`COHORT_DOC`; :func:`as_cohort_matrix` is the one adapter from any of its forms.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

import numpy as np
import xarray as xr

from ._backend import namespace, to_host
from ._errors import CohortexError
from .store import SCALES, open_cohort

__all__ = [
    "COHORT_DOC",
    "DEVICE_DOC",
    "GROUPBY_DOC",
    "CohortLike",
    "CohortMatrix",
    "as_cohort_dataset",
    "as_cohort_matrix",
    "is_anndata",
    "measurement_levels",
    "shared_docs",
    "to_host_dataset",
]

#: A cohort store's path, an opened cohort (any Dataset with ``expression(sample, gene)``), or
#: a NumPy, CuPy or Dask matrix of shape (n_samples, n_genes).
CohortLike: TypeAlias = str | os.PathLike[str] | xr.Dataset | Any

# docstring fragments shared by the public entry points (numpydoc "Parameters" entries), put
# in place of "{cohort}", "{groupby}" and "{device}" by :func:`shared_docs`
COHORT_DOC = """cohort : path, xarray.Dataset or array of shape (n_samples, n_genes)
        A cohort store, an opened cohort (or any Dataset with ``expression(sample, gene)``), or
        a NumPy, CuPy or Dask matrix (:data:`CohortLike`)."""
GROUPBY_DOC = """groupby : str or sequence of labels
        The sample variable holding the groups (e.g. ``"condition"``), or the labels themselves
        (length n_samples; required for a plain array)."""
DEVICE_DOC = """device : {"auto", "cpu", "gpu"}, default "auto"
        ``"auto"`` takes the GPU when one is available (``COHORTEX_DEVICE`` overrides)."""
_FRAGMENTS = {"{cohort}": COHORT_DOC, "{groupby}": GROUPBY_DOC, "{device}": DEVICE_DOC}

_Function = TypeVar("_Function", bound=Callable[..., Any])


def shared_docs(function: _Function) -> _Function:
    """Put the shared parameter entries into ``function``'s docstring (its placeholders)."""
    if function.__doc__:
        for placeholder, text in _FRAGMENTS.items():
            function.__doc__ = function.__doc__.replace(placeholder, text)
    return function


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

    def sample_variable(self, name: str, parameter: str) -> np.ndarray:
        """The values of the sample variable ``name``, given as the ``parameter`` parameter;
        refused, listing the sample variables, when there is none of that name."""
        variables = self.sample_variables()
        if name not in variables:
            raise CohortexError(
                f"The {parameter!r} parameter must name a sample variable; got {name!r}. "
                f"Sample variables: {', '.join(variables) or '(none)'}."
            )
        assert self.dataset is not None  # a plain matrix has no sample variables
        return np.asarray(self.dataset[name].values)


def as_cohort_matrix(cohort: Any, *, scale: str | None = None) -> CohortMatrix:
    """Accept a store path, a Dataset with ``expression(sample, gene)``, an AnnData or a 2-D
    array; anything else is refused at once.

    Parameters
    ----------
    cohort : path, xarray.Dataset or array of shape (n_samples, n_genes)
    scale : str, optional
        The scale of a plain array (default ``"log2"``); Datasets carry their own.
    """
    from_store = isinstance(cohort, str | os.PathLike)
    if from_store:
        cohort = open_cohort(cohort)
    if is_anndata(cohort):
        from .io import from_anndata

        cohort = from_anndata(cohort, scale=scale)
    if isinstance(cohort, xr.Dataset):
        if "expression" not in cohort:
            raise CohortexError("The Dataset given as 'cohort' has no 'expression' variable.")
        matrix = cohort["expression"].transpose("sample", "gene").data
        dataset: xr.Dataset | None = cohort
        scale = cohort.attrs.get("scale", scale or "log2")
        checked = from_store or cohort.attrs.get("cohortex_format") is not None
    else:
        matrix = cohort if hasattr(cohort, "shape") and hasattr(cohort, "dtype") else None
        if matrix is None and not isinstance(cohort, list | tuple):
            raise CohortexError(
                "A cohort is a store path, an xarray Dataset with 'expression(sample, gene)', an "
                f"AnnData or a samples × genes array; got a {type(cohort).__name__}."
            )
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


def is_anndata(cohort: Any) -> bool:
    """Whether ``cohort`` is an AnnData object (without importing anndata)."""
    return type(cohort).__module__.split(".")[0] == "anndata" and hasattr(cohort, "obs")


def as_cohort_dataset(cohort: Any) -> Any:
    """A store path opened, an AnnData as a Dataset (:func:`cohortex.io.from_anndata`);
    anything else as it is, for the caller to check."""
    if isinstance(cohort, str | os.PathLike):
        return open_cohort(cohort)
    if is_anndata(cohort):
        from .io import from_anndata

        return from_anndata(cohort)
    return cohort


def _ids(dataset: xr.Dataset | None, dim: str, n: int, prefix: str) -> np.ndarray:
    if dataset is not None and dim in dataset.coords:
        return np.asarray(dataset[dim].values)
    return np.asarray([f"{prefix}{i + 1}" for i in range(n)], dtype=object)


def to_host_dataset(ds: xr.Dataset) -> xr.Dataset:
    """A result with every array on the host (NumPy)."""
    if all(namespace(var.data) is np for var in ds.data_vars.values()):
        return ds
    return ds.copy(data={name: to_host(var.data) for name, var in ds.data_vars.items()})


def measurement_levels(values: np.ndarray) -> int:
    """The distinct values of sample labels that read as a measurement, else 0.

    A measurement (an age, a score) is fractional numbers most samples hold alone; whole
    numbers are codes, and a few fractional values levels (doses 0.5, 1, 2), so both group.
    """
    if values.dtype.kind != "f":
        return 0
    finite = values[np.isfinite(values)]
    distinct = len(np.unique(finite))
    if np.any(finite != np.round(finite)) and distinct > finite.size / 2:
        return distinct
    return 0


def finite_gene_moments(
    x: Any,
    who: str,
    advice: str,
    *also: Any,
    first: Callable[..., None] | None = None,
    progress: bool | None = None,
) -> tuple[Any, ...]:
    """Each gene's mean and variance over the samples (``n − 1``), in one pass over a Dask
    matrix, computed with ``also`` (more lazy values of the same pass).

    Missing or infinite values are refused, naming ``who`` and the ``advice`` in parentheses;
    ``first(*also computed)`` runs its own checks before that one.

    Returns
    -------
    (mean, variance, *also) : ndarrays of shape (n_genes,) on the host, then ``also`` computed
    """
    moments, *computed = _gene_moments(x, who, False, also, progress)
    if first is not None:
        first(*computed)
    n = x.shape[0]
    mean = np.asarray(to_host(moments.mean[0]), dtype=np.float64)
    variance = np.asarray(to_host(moments.m2[0]), dtype=np.float64) / (n - 1)
    if np.asarray(to_host(moments.infinite)).any() or not np.isfinite(mean).all():
        raise CohortexError(
            f"{who}() needs finite values: the cohort holds missing or infinite values ({advice})."
        )
    return (mean, variance, *computed)


def present_gene_moments(
    x: Any, who: str, advice: str, progress: bool | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each gene's mean and variance (``count − 1``) over the samples that have a value, and
    that count, in one pass over a Dask matrix. Infinite values are refused, as
    :func:`finite_gene_moments`.

    Returns
    -------
    (mean, variance, count) : ndarrays of shape (n_genes,) on the host
        The variance is NaN for fewer than 2 values.
    """
    (moments,) = _gene_moments(x, who, True, (), progress)
    count = np.asarray(to_host(moments.count[0]), dtype=np.float64)
    mean = np.asarray(to_host(moments.mean[0]), dtype=np.float64)
    m2 = np.asarray(to_host(moments.m2[0]), dtype=np.float64)
    if np.asarray(to_host(moments.infinite)).any():
        raise CohortexError(
            f"{who}() needs finite values: the cohort holds infinite values ({advice})."
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = np.where(count > 1, m2 / (count - 1), np.nan)
    return mean, variance, count


def _gene_moments(
    x: Any, who: str, omit_nan: bool, also: tuple[Any, ...], progress: bool | None
) -> list[Any]:
    """The one pass of the genes' moments (missing values left out where ``omit_nan``), with
    ``also`` computed beside them."""
    import dask

    from ._progress import dask_progress
    from .stats._moments import group_moments

    n = x.shape[0]
    with dask_progress(who, progress):
        return list(
            dask.compute(
                group_moments(x, np.zeros(n, np.int64), 1, omit_nan=omit_nan, count_infinite=True),
                *also,
            )
        )
