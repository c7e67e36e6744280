"""Least squares for every gene with a shared design: the design matrix from a formula, its
checks, and the one-pass (or, with missing values or weights, per-gene) fit that
:func:`cohortex.de.fit`, ``voom``, ``removeBatchEffect`` and ``camera`` build on."""

from __future__ import annotations

import itertools
import re
import warnings
from dataclasses import dataclass
from typing import Any, NoReturn

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from .._backend import as_device_dask, namespace, to_host, tree_reduce
from .._errors import CohortexError
from ..stats._linear import (
    chunk_sums,
    join_genes,
    join_weighted_genes,
    merge_sums,
    merge_weighted_sums,
    solve_weighted,
    weighted_chunk_sums,
)
from ._gene_columns import TASK_GENES

__all__ = [
    "LeastSquares",
    "check_design",
    "check_residual_df",
    "design_matrix",
    "fit_tiles",
    "formula_like",
    "formula_spec",
    "formula_terms",
    "least_squares",
    "rows_per_task",
    "sample_codes",
    "sample_weights_of",
    "weights_for",
]

_VALUES_PER_TASK = 1_000_000


@dataclass
class LeastSquares:
    """Every gene's least-squares fit (limma's ``lmFit``).

    Attributes
    ----------
    beta : array of shape (p, n_genes)
    coefficient_sd : array of shape (p, n_genes) or None
        Per gene (missing values or weights per observation): ``sqrt(diag((X'WX)⁻¹))``;
        None for a shared design, whose ``sqrt(diag(unscaled_cov))`` is every gene's.
    s2 : array of shape (n_genes,)
    df_residual : float or ndarray of shape (n_genes,) (host)
    average : array of shape (n_genes,)
        Mean of each gene's finite values (limma's ``Amean``).
    unscaled_cov : ndarray of shape (p, p)
        limma's ``cov.coefficients``, whose correlations the contrasts of per-gene
        ``coefficient_sd`` take: ``(X'WX)⁻¹`` of the shared fit (W the weights per sample,
        or none), the unweighted ``(X'X)⁻¹`` when the genes are fitted one by one.
    """

    beta: Any
    coefficient_sd: Any
    s2: Any
    df_residual: float | np.ndarray
    average: Any
    unscaled_cov: np.ndarray


def rows_per_task(n_genes: int) -> int:
    """Samples per task of a pass that holds every gene: a float64 (rows × genes) temporary of
    ~8 MB, whatever the store's tiles (rechunked from them in one step, so no wider band of
    rows is ever assembled). Larger bands gain no speed and, freed by several threads, pile
    up in the allocator: ~32 MB bands put voom + the weighted fit at 1.45 GB peak RSS."""
    return int(max(64, min(2048, _VALUES_PER_TASK // max(n_genes, 1))))


def fit_tiles(x: da.Array) -> da.Array:
    """``x`` in the tiles a pass of per-gene sums reads: the store's own while a tile holds at
    most 2 × ~1M values (no rechunk), else tiles of :data:`TASK_GENES` genes and
    ``rows_per_task(TASK_GENES)`` samples (~8 MB of float64), split from the given chunks."""
    if max(x.chunks[0]) * max(x.chunks[1]) <= 2 * _VALUES_PER_TASK:
        return x
    genes = min(x.shape[1], TASK_GENES)
    return x.rechunk({0: rows_per_task(genes), 1: genes})


def least_squares(
    x: da.Array, design: np.ndarray, weights: da.Array | np.ndarray | None
) -> LeastSquares:
    """Fit ``design`` (n_samples × p) to every gene of ``x`` (Dask).

    ``weights``: precision weights (Dask, samples × genes), one positive weight per sample
    (a host vector), or None. One pass of shared-design sums without weights or with one
    weight per sample; a second, per-gene pass when that finds missing values (or the first
    when the weights are per observation). Both read ``x`` in :func:`fit_tiles`, add up each
    column of tiles (a balanced tree) and join the columns along genes.
    """
    shifted = _spans_constant(design)
    per_sample = isinstance(weights, np.ndarray)
    x = fit_tiles(x)
    edges = np.cumsum((0, *x.chunks[0]))
    rows = [design[a:b] for a, b in itertools.pairwise(edges)]
    tiles = x.to_delayed()
    if weights is None or per_sample:
        own = [None if weights is None else weights[a:b] for a, b in itertools.pairwise(edges)]
        columns = [
            tree_reduce(
                [
                    dask.delayed(chunk_sums)(tiles[i, j], rows[i], shifted, own[i])
                    for i in range(tiles.shape[0])
                ],
                merge_sums,
            )
            for j in range(tiles.shape[1])
        ]
        (columns,) = dask.compute(columns)
        sums = join_genes(columns)
        xp = namespace(sums.xy)
        if bool(to_host(xp.all(xp.isfinite(sums.yy)))):  # else missing values: per gene
            xtx_inverse = np.linalg.inv(sums.xtx)
            b_shifted = xp.asarray(xtx_inverse) @ sums.xy  # coefficients of Ỹ (p × genes)
            rss = xp.maximum(sums.yy - xp.sum(b_shifted * sums.xy, axis=0), 0.0)
            beta = b_shifted
            if shifted:  # (X'WX)⁻¹X'W1 solves X e = 1: the shift goes back onto the coefficients
                e = xtx_inverse @ sums.xsum
                beta = b_shifted + xp.asarray(e)[:, None] * sums.shift[None, :]
            df = float(design.shape[0] - design.shape[1])
            average = sums.shift + sums.plain_sum / design.shape[0]
            # with weights per sample too, as limma's lm.series: one (X'WX)⁻¹ for all genes
            return LeastSquares(beta, None, rss / df, df, average, xtx_inverse)
    observation_weights: da.Array | None = None
    if isinstance(weights, np.ndarray):  # missing values: each gene on its own observations
        column = da.from_array(weights, chunks=(x.chunks[0],))[:, None]
        observation_weights = da.broadcast_to(column, x.shape, chunks=x.chunks)
        if namespace(x) is not np:
            observation_weights = as_device_dask(observation_weights)
    elif weights is not None:
        observation_weights = weights.rechunk(x.chunks)
    weight_tiles = (
        np.full(tiles.shape, None, dtype=object)
        if observation_weights is None
        else observation_weights.to_delayed()
    )
    columns = [
        tree_reduce(
            [
                dask.delayed(weighted_chunk_sums)(tiles[i, j], weight_tiles[i, j], rows[i], shifted)
                for i in range(tiles.shape[0])
            ],
            merge_weighted_sums,
        )
        for j in range(tiles.shape[1])
    ]
    (columns,) = dask.compute(columns)
    wsums = join_weighted_genes(columns)
    beta, coefficient_sd, s2, df = solve_weighted(wsums, shifted)
    with np.errstate(invalid="ignore"):  # a gene without a value: NaN, as limma's NA
        average = wsums.total / wsums.seen
    unscaled = np.linalg.inv(design.T @ design)  # limma's lm.series: the unweighted design's
    return LeastSquares(beta, coefficient_sd, s2, np.asarray(to_host(df)), average, unscaled)


def design_matrix(
    design: Any, dataset: xr.Dataset | None, n_samples: int
) -> tuple[np.ndarray, list[str], str | None]:
    if isinstance(design, str):
        matrix = _formula_matrix(design, dataset)
        return np.asarray(matrix, dtype=np.float64), [str(c) for c in matrix.columns], design
    if isinstance(design, pd.DataFrame):
        values, names = design.to_numpy(dtype=np.float64), [str(c) for c in design.columns]
    else:
        values = np.asarray(design, dtype=np.float64)
        if values.ndim != 2:
            raise CohortexError(f"The design matrix must be 2-D; got shape {values.shape}.")
        names = [f"x{i}" for i in range(values.shape[1])]
    if values.shape[0] != n_samples:
        raise CohortexError(
            f"The design matrix has {values.shape[0]} rows; the cohort has {n_samples} samples."
        )
    if np.isnan(values).any():
        bad = [names[j] for j in np.flatnonzero(np.isnan(values).any(axis=0))]
        raise CohortexError(f"The design matrix has missing values in: {', '.join(bad)}.")
    return values, names, None


def _formula_matrix(design: str, dataset: xr.Dataset | None) -> Any:
    """formulaic's model matrix of ``design`` on the sample variables."""
    import formulaic

    samples = _sample_frame(dataset)
    try:
        # the formula sees the sample variables, formulaic's transforms and numpy, not
        # this function's local names (formulaic's default context is the caller's frame)
        context = {"np": np, "numpy": np}
        matrix = formulaic.model_matrix(design, samples, na_action="raise", context=context)
    except Exception as error:  # formulaic raises several types; name the cause
        _formula_error(design, error)
    return matrix


def _sample_frame(dataset: xr.Dataset | None) -> pd.DataFrame:
    if dataset is None:
        raise CohortexError(
            "A formula design needs a cohort with sample variables; for a plain array pass "
            "the design matrix."
        )
    return pd.DataFrame(
        {
            str(v): _missing_as_nan(np.asarray(dataset[v].values))
            for v in dataset.data_vars
            if dataset[v].dims == ("sample",)
        }
    )


def _formula_error(design: str, error: Exception) -> NoReturn:
    message = str(error)
    if "null values" in message:
        name = re.search(r"`([^`]+)`", message)
        raise CohortexError(
            f"The design {design!r} uses {name.group(1) if name else 'a variable'}, "
            "which has missing values; drop or impute those samples first."
        ) from None
    raise CohortexError(f"The design formula {design!r} could not be used: {message}") from None


def formula_spec(design: str, dataset: xr.Dataset | None) -> tuple[np.ndarray, list[str], Any]:
    """:func:`design_matrix` of a formula with formulaic's model spec, which encodes other
    samples' variables alike (:func:`formula_like`)."""
    matrix = _formula_matrix(design, dataset)
    names = [str(c) for c in matrix.columns]
    return np.asarray(matrix, dtype=np.float64), names, matrix.model_spec


def formula_like(spec: Any, dataset: xr.Dataset | None) -> tuple[np.ndarray, list[str]]:
    """The columns of ``spec`` (from :func:`formula_spec`) for ``dataset``'s samples: the same
    levels and reference, so that a fitted model's coefficients apply; a level the fit never
    saw is refused, not encoded as the reference (formulaic's default, with a warning)."""
    from formulaic.errors import DataMismatchWarning

    design = str(spec.formula)
    samples = _sample_frame(dataset)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataMismatchWarning)
        try:
            matrix = spec.get_model_matrix(samples, na_action="raise")
        except DataMismatchWarning as mismatch:
            raise CohortexError(
                f"The samples' variables do not fit the model's {design!r}: {mismatch}"
            ) from None
        except Exception as error:  # formulaic raises several types; name the cause
            _formula_error(design, error)
    return np.asarray(matrix, dtype=np.float64), [str(c) for c in matrix.columns]


def formula_terms(design: str, dataset: xr.Dataset | None) -> list[str]:
    """The term of each column of :func:`design_matrix` of the formula ``design`` (e.g.
    ``grade`` for ``grade[T.b]``; ``1`` for the intercept)."""
    matrix = _formula_matrix(design, dataset)
    labels = [""] * matrix.shape[1]
    for term, where in matrix.model_spec.term_slices.items():
        for j in range(where.start, where.stop):
            labels[j] = str(term)
    return labels


def _missing_as_nan(values: np.ndarray) -> np.ndarray:
    """Stores keep a missing label as ""; formulaic must see it as missing."""
    if values.dtype.kind in "OUST":
        return np.asarray([np.nan if v == "" else v for v in values], dtype=object)
    return values


def check_design(design: np.ndarray, names: list[str]) -> None:
    n, p = design.shape
    if p > n:
        raise CohortexError(
            f"The design has more coefficients ({p}) than samples ({n}); it cannot be fitted."
        )
    aliased: list[str] = []
    kept: list[int] = []
    for j in range(p):
        candidate = [*kept, j]
        if np.linalg.matrix_rank(design[:, candidate]) == len(candidate):
            kept.append(j)
        else:
            aliased.append(names[j])
    if aliased:
        raise CohortexError(
            "The design is rank-deficient: these columns are linear combinations of earlier "
            "ones (aliased): " + ", ".join(aliased) + "."
        )


def check_residual_df(design: np.ndarray) -> None:
    """Refuse a design (n_samples × p) that leaves no residual degrees of freedom."""
    n, p = design.shape
    if n <= p:
        raise CohortexError(
            f"The design leaves no residual degrees of freedom ({n} samples, {p} "
            "coefficients); variances cannot be estimated."
        )


def _spans_constant(design: np.ndarray) -> bool:
    ones = np.ones(design.shape[0])
    solution, *_ = np.linalg.lstsq(design, ones, rcond=None)
    return bool(np.allclose(design @ solution, ones, atol=1e-8))


def sample_codes(
    labels: Any, data: Any, n_samples: int, parameter: str, what: str | None = None
) -> tuple[np.ndarray, str]:
    """Each sample's label (a sample variable named by ``parameter``'s value, or the labels
    themselves) as codes 0 … n_levels − 1, and the labels' name.

    ``what`` names one label in the errors (default: the parameter's name).
    """
    what = what or parameter
    if isinstance(labels, str):
        values, name = data.sample_variable(labels, parameter), labels
    else:
        values, name = np.asarray(labels), parameter
    if values.shape != (n_samples,):
        raise CohortexError(
            f"The {parameter!r} labels must be one per sample ({n_samples}); got shape "
            f"{values.shape}."
        )
    missing = pd.isna(values) | (values == "")
    if missing.any():
        raise CohortexError(
            f"The {what} of {int(missing.sum())} samples is missing (the first: sample "
            f"{int(np.flatnonzero(missing)[0])}); every sample needs one."
        )
    _, codes = np.unique(values.astype(str), return_inverse=True)
    return codes.astype(np.int64), name


def sample_weights_of(weights: Any, n_samples: int) -> np.ndarray | None:
    """One positive, finite weight per sample as a host vector, or None for anything else
    (per-observation weights, none, a weight ≤ 0: those take the per-gene path)."""
    if weights is None:
        return None
    if isinstance(weights, xr.DataArray):
        if weights.dims != ("sample",):
            return None
        weights = weights.data
    if getattr(weights, "shape", None) != (n_samples,):
        return None
    values = np.asarray(to_host(weights.compute() if isinstance(weights, da.Array) else weights))
    values = values.astype(np.float64)
    return values if bool(np.all(np.isfinite(values) & (values > 0))) else None


def weights_for(weights: Any, data: Any, x: Any) -> Any:
    """The precision weights as a Dask array in the chunks of ``x``, or None."""
    if weights is None:
        dataset = data.dataset
        if dataset is None or "weights" not in dataset:
            return None
        weights = dataset["weights"].transpose("sample", "gene").data
    if isinstance(weights, xr.DataArray):
        weights = weights.transpose(*[d for d in ("sample", "gene") if d in weights.dims]).data
    n_samples, n_genes = x.shape
    shape = tuple(weights.shape)
    if shape == (n_samples,):  # a view: one weight per sample, never a (samples × genes) copy
        column = weights if isinstance(weights, da.Array) else da.from_array(weights)
        column = column.rechunk((x.chunks[0],))[:, None]
        weights = da.broadcast_to(column, (n_samples, n_genes), chunks=x.chunks)
    elif shape != (n_samples, n_genes):
        raise CohortexError(
            f"The weights must have shape ({n_samples}, {n_genes}) (samples × genes) or "
            f"({n_samples},) (one per sample); got {shape}."
        )
    chunked = weights if isinstance(weights, da.Array) else da.from_array(weights, chunks=x.chunks)
    chunked = chunked.rechunk(x.chunks)
    if namespace(x) is not np:
        chunked = as_device_dask(chunked)
    return chunked
