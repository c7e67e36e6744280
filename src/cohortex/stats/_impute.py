"""The k-nearest-neighbour imputation of Bioconductor's impute package (``impute.knn``), as
WGCNA's ``moduleEigengenes`` uses it for a module's genes (host only).

Each row (gene) with missing values takes, at each missing column (sample), the average of its
``k`` nearest rows that have a value there; the distance of two rows is the mean squared
difference over the columns both have. Rows missing more than ``row_max`` of their columns
take the column's mean instead. Beyond ``max_p`` rows the rows are first split in two by
two-means clustering from a random start (R's ``sample`` after ``set.seed(rng.seed)``), and
each part imputed on its own (recursively). The loops follow impute's Fortran (``knnimp``,
``misdis``, ``porder``, ``misave``, ``twomis``) and keep its summation order, so that the
neighbours chosen are R's, ties broken by the lower row as R's.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .._errors import CohortexError
from .._jit import njit
from ._r_random import RRandom

__all__ = ["IMPUTE_SEED", "knn_imputable", "knn_impute"]

IMPUTE_SEED = 362436069  # impute.knn's rng.seed
_FAR = 1e10  # misdis: the distance of rows with no column in common


def knn_imputable(missing: np.ndarray, col_max: float = 0.8) -> bool:
    """Whether :func:`knn_impute` takes the matrix: no column misses more than ``col_max`` of
    its rows (impute.knn stops otherwise).

    Parameters
    ----------
    missing : ndarray of bool, shape (p, n)
    """
    return not bool((missing.sum(axis=0) > col_max * missing.shape[0]).any())


def knn_impute(
    x: np.ndarray,
    k: int = 10,
    *,
    row_max: float = 0.5,
    col_max: float = 0.8,
    max_p: int = 1500,
    seed: int = IMPUTE_SEED,
    rng: RRandom | None = None,
) -> np.ndarray:
    """``impute.knn(x, k, rowmax, colmax, maxp, rng.seed)$data``.

    Parameters
    ----------
    x : ndarray of shape (p, n), float64
        Rows (genes) × columns (samples), NaN where missing. Not modified.
    k : int, default 10
        Neighbours (at most ``p - 1``).
    row_max, col_max : float, default 0.5, 0.8
        Rows missing more than ``row_max`` of their columns take the columns' means; a column
        missing more than ``col_max`` of its rows is refused.
    max_p : int, default 1500
        Larger matrices are split by two-means clustering first.
    seed : int
        R's seed for the clustering's random start.
    rng : RRandom, optional
        R's generator, already set to ``seed``, to draw from instead: the caller then holds the
        state impute.knn leaves R's generator in (it does not restore the one before).

    Returns
    -------
    ndarray of shape (p, n), float64
        NaN only where no value could be imputed (a column with no value at all).

    Notes
    -----
    impute's own quirks are kept, as they shape R's results: a part of the split of at most
    ``k`` rows keeps 0 for its missing values (impute's ``meanimp`` looks for NA where they are
    already 0), as does a single row beyond ``row_max``; the two-means clustering reads missing
    values as 0; the columns' means read the first row's first value as 0 (``x[imiss] <- 0``
    with ``imiss`` an integer matrix sets ``x[1]``) where any value is missing.
    """
    x = np.asarray(x, dtype=np.float64)
    p, n = x.shape
    missing = np.isnan(x)
    if not knn_imputable(missing, col_max):
        raise CohortexError(
            f"knn_impute: a column has more than {round(col_max * 100)} % missing values."
        )
    if not 1 <= k < p:
        raise CohortexError(f"knn_impute: k must be between 1 and {p - 1} (rows - 1); got {k}.")
    values = np.where(missing, 0.0, x)
    omit = missing.sum(axis=1) > math.trunc(row_max * n)
    kept_values, kept_missing = values[~omit], missing[~omit]
    rng = RRandom(seed) if rng is None else rng
    imputed = _internal(kept_values.copy(), kept_missing, k, max_p, rng)
    unresolved = np.isnan(imputed)
    if omit.any() or unresolved.any():
        averaged = kept_values.copy()
        if kept_missing.any():  # impute's mean.miss: x[imiss] <- 0 with an integer imiss
            averaged[0, 0] = 0.0
        means = _column_means(averaged, kept_missing)
        if unresolved.any() and imputed.shape[0] > 1:
            imputed[unresolved] = np.broadcast_to(means, imputed.shape)[unresolved]
        out = np.zeros((p, n))
        out[~omit] = imputed
        omitted = values[omit]
        if omitted.shape[0] > 1:
            gaps = missing[omit]
            omitted[gaps] = np.broadcast_to(means, omitted.shape)[gaps]
        out[omit] = omitted
        return out
    return imputed


def _column_means(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """mean.miss: each column's mean over the rows that have it (NaN where none)."""
    count = (~missing).sum(axis=0)
    total = _ordered_column_sums(values, missing)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _internal(
    values: np.ndarray, missing: np.ndarray, k: int, max_p: int, rng: RRandom
) -> np.ndarray:
    """knnimp.internal: the neighbours' averages (NaN where no neighbour has the column), or the
    split beyond ``max_p`` rows. ``values`` holds 0 where missing."""
    if values.shape[0] > max_p:
        return _split(values, missing, k, max_p, rng)
    imputed = values.copy()
    _knn_rows(values, missing, k, imputed)
    return imputed


def _split(values: np.ndarray, missing: np.ndarray, k: int, max_p: int, rng: RRandom) -> np.ndarray:
    """knnimp.split: two-means clusters from two random rows, each imputed on its own."""
    starts = rng.sample(values.shape[0], 2) - 1
    cluster = _two_means(values, starts)
    for part in (0, 1):
        index = cluster == part
        if int(index.sum()) > k:  # impute's meanimp leaves the smaller parts as they are
            values[index] = _internal(values[index], missing[index], k, max_p, rng)
    return values


@njit(cache=True)
def _ordered_column_sums(values, missing):  # type: ignore[no-untyped-def]
    """Each column's sum over the rows that have it, row after row (misave's order)."""
    p, n = values.shape
    out = np.zeros(n)
    for c in range(n):
        for j in range(p):
            if not missing[j, c]:
                out[c] += values[j, c]
    return out


@njit(cache=True)
def _distances(row, row_missing, values, missing, out):  # type: ignore[no-untyped-def]
    """misdis: each row's mean squared difference from ``row`` over the columns both have
    (``row`` and ``values`` finite: 0 where missing, as knnimp.internal holds them)."""
    p, n = values.shape
    for j in range(p):
        total = 0.0
        count = 0
        for c in range(n):  # no branch: the values are finite (0) where missing
            both = not (row_missing[c] or missing[j, c])
            d = row[c] - values[j, c]
            total += d * d * both  # adding 0.0 leaves the sum as the skipped term would
            count += both
        out[j] = total / count if count > 0 else _FAR


@njit(parallel=True, cache=True)
def _knn_rows(values, missing, k, imputed):  # type: ignore[no-untyped-def]
    """knnimp: each row with missing values takes its ``k`` nearest rows' average at each
    missing column (the nearest row, itself, left out; NaN where no neighbour has it). The
    rows are independent (distances from the values as given), so they run in parallel."""
    p, n = values.shape
    for i in numba.prange(p):
        if not missing[i].any():
            continue
        distance = np.empty(p)
        _distances(values[i], missing[i], values, missing, distance)
        order = np.argsort(distance, kind="mergesort")  # porder: ties to the lower row
        for c in range(n):
            if not missing[i, c]:
                continue
            total = 0.0
            count = 0
            for t in range(1, k + 1):
                j = order[t]
                if not missing[j, c]:
                    total += values[j, c]
                    count += 1
            imputed[i, c] = total / count if count > 0 else np.nan


@njit(cache=True)
def _two_means(values, starts, max_iterations=5, tolerance=1e-3):  # type: ignore[no-untyped-def]
    """twomis: two-means clusters of the rows (every value read as present), from the rows
    ``starts``; 0 or 1 per row."""
    p, n = values.shape
    centres = np.empty((2, n))
    centre_missing = np.zeros((2, n), dtype=np.bool_)
    for part in range(2):
        centres[part] = values[starts[part]]
    none_missing = np.zeros((p, n), dtype=np.bool_)
    distance = np.empty((2, p))
    cluster = np.zeros(p, dtype=np.int64)
    iteration = 0
    ratio = 10.0
    old = 0.0
    while iteration < max_iterations and ratio > tolerance:
        iteration += 1
        for part in range(2):
            _distances(centres[part], centre_missing[part], values, none_missing, distance[part])
        new = 0.0
        for j in range(p):
            part = 0 if distance[0, j] < distance[1, j] else 1
            cluster[j] = part
            new += distance[part, j]
        if new == 0.0:
            break
        if iteration == 1:
            old = new * 10.0
        ratio = abs(new - old) / old
        old = new
        for part in range(2):
            for c in range(n):
                total = 0.0
                count = 0
                for j in range(p):
                    if cluster[j] == part:
                        total += values[j, c]
                        count += 1
                if count > 0:
                    centres[part, c] = total / count
                    centre_missing[part, c] = False
                else:
                    centres[part, c] = 0.0
                    centre_missing[part, c] = True
    return cluster
