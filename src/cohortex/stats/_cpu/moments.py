"""Compiled group moments of one chunk of samples on the CPU (numba).

Why compiled: the ``xp`` formulation in :mod:`cohortex.stats._moments` shifts, squares and
multiplies by a one-hot matrix in separate NumPy calls, each a pass over a float64 copy of the
slab (at 50,000 × 20,000 ~9× the time of one streaming pass over the matrix). Here one
loop reads each value once, shifts it by the provisional per-gene mean ``c`` (of the chunk's
first rows, as on ``xp``) and adds ``x − c`` and ``(x − c)²`` into its group's float64 row,
four rows of a group at a time (so the accumulators are loaded and stored once per four rows);
the inner loop runs along the contiguous gene axis, so it vectorises. The finish is the same as
on ``xp``::

    mean = c + S1 / n,   M2 = max(S2 − S1² / n, 0)   (S1 = Σ(x − c), S2 = Σ(x − c)²)

and chunks are merged by Chan's formula as before. The ``xp`` code stays the reference (and
the GPU path); tests hold the two equal.
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit
from .layout import flat_rows

__all__ = ["chunk_sums"]


@njit(nogil=True, cache=True)
def _provisional_mean(flat, row_stride, n_rows, shift_rows, shift):  # type: ignore[no-untyped-def]
    """Per-gene mean of the finite values of the first ``shift_rows`` rows (0 if none)."""
    n_genes = shift.shape[0]
    finite = np.zeros(n_genes)
    shift[:] = 0.0
    for i in range(min(shift_rows, n_rows)):
        row = flat[i * row_stride : i * row_stride + n_genes]
        for j in range(n_genes):
            x = np.float64(row[j])
            ok = np.isfinite(x)
            shift[j] += x if ok else 0.0
            finite[j] += 1.0 if ok else 0.0
    for j in range(n_genes):
        shift[j] = shift[j] / finite[j] if finite[j] > 0 else 0.0


@njit(nogil=True, cache=True)
def _row(flat, row_stride, n_genes, i):  # type: ignore[no-untyped-def]
    return flat[i * row_stride : i * row_stride + n_genes]


@njit(nogil=True, cache=True)
def _shifted_sums(flat, row_stride, order, starts, shift, omit_nan, count, s1, s2):  # type: ignore[no-untyped-def]
    """Σ(x − c) and Σ(x − c)² per group; with ``omit_nan`` NaN left out and counted.

    Row i of the chunk is ``flat[i * row_stride:][:n_genes]`` (slices of one contiguous 1-D
    array, so that numba knows the rows are contiguous and vectorises the gene loop).
    ``order[starts[g]:starts[g + 1]]`` are the rows of group g: four rows of a group are added
    together before their sums touch the accumulators (4× fewer loads and stores of them).
    """
    n_genes = shift.shape[0]
    for g in range(starts.shape[0] - 1):
        s1_g, s2_g, count_g = s1[g], s2[g], count[g]
        k, stop = starts[g], starts[g + 1]
        while k + 4 <= stop:
            r0 = _row(flat, row_stride, n_genes, order[k])
            r1 = _row(flat, row_stride, n_genes, order[k + 1])
            r2 = _row(flat, row_stride, n_genes, order[k + 2])
            r3 = _row(flat, row_stride, n_genes, order[k + 3])
            if omit_nan:
                for j in range(n_genes):
                    c = shift[j]
                    x0, x1 = np.float64(r0[j]), np.float64(r1[j])
                    x2, x3 = np.float64(r2[j]), np.float64(r3[j])
                    k0, k1, k2, k3 = x0 == x0, x1 == x1, x2 == x2, x3 == x3  # False for NaN
                    d0 = x0 - c if k0 else 0.0
                    d1 = x1 - c if k1 else 0.0
                    d2 = x2 - c if k2 else 0.0
                    d3 = x3 - c if k3 else 0.0
                    count_g[j] += np.float64(k0) + np.float64(k1) + np.float64(k2) + np.float64(k3)
                    s1_g[j] += (d0 + d1) + (d2 + d3)
                    s2_g[j] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)
            else:
                for j in range(n_genes):
                    c = shift[j]
                    d0 = np.float64(r0[j]) - c
                    d1 = np.float64(r1[j]) - c
                    d2 = np.float64(r2[j]) - c
                    d3 = np.float64(r3[j]) - c
                    s1_g[j] += (d0 + d1) + (d2 + d3)
                    s2_g[j] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)
            k += 4
        while k < stop:
            r0 = _row(flat, row_stride, n_genes, order[k])
            for j in range(n_genes):
                x0 = np.float64(r0[j])
                k0 = x0 == x0 or not omit_nan
                d0 = x0 - shift[j] if k0 else 0.0
                if omit_nan:
                    count_g[j] += np.float64(k0)
                s1_g[j] += d0
                s2_g[j] += d0 * d0
            k += 1


@njit(nogil=True, cache=True)
def _linear_sums(flat, row_stride, order, starts, omit_nan, linear):  # type: ignore[no-untyped-def]
    """Σ expm1(x) per group (NaN left out with ``omit_nan``)."""
    n_genes = linear.shape[1]
    for g in range(starts.shape[0] - 1):
        linear_g = linear[g]
        for k in range(starts[g], starts[g + 1]):
            row = _row(flat, row_stride, n_genes, order[k])
            for j in range(n_genes):
                x = np.float64(row[j])
                if x == x or not omit_nan:
                    linear_g[j] += np.expm1(x)


@njit(nogil=True, cache=True)
def _count_infinite(flat, row_stride, rows, genes, infinite):  # type: ignore[no-untyped-def]
    """Add the number of ±inf values in ``rows`` × ``genes`` of the chunk to ``infinite``."""
    n_genes = infinite.shape[0]
    for i in rows:
        row = _row(flat, row_stride, n_genes, i)
        for j in genes:
            if np.isinf(row[j]):
                infinite[j] += 1


def chunk_sums(
    block: np.ndarray,
    codes: np.ndarray,
    n_groups: int,
    shift_rows: int,
    *,
    omit_nan: bool,
    linear: bool,
    count_infinite: bool,
) -> dict[str, np.ndarray]:
    """Shifted sums per group of one chunk of samples.

    Parameters
    ----------
    block : ndarray of shape (n_chunk_samples, n_genes)
        Float or integer; read as float64.
    codes : ndarray of shape (n_chunk_samples,), int
        Group of each sample, ``-1`` for samples left out.
    n_groups : int
    shift_rows : int
        The provisional per-gene mean ``c`` is the mean of the finite values of this many
        first rows (as ``_moments._provisional_mean``).
    omit_nan, linear, count_infinite : bool
        As :func:`cohortex.stats._moments.chunk_moments`.

    Returns
    -------
    dict of ndarrays
        ``shift`` = c of shape (n_genes,); ``count``, ``s1`` = Σ(x − c), ``s2`` = Σ(x − c)²,
        ``linear`` = Σ expm1(x), each of shape (n_groups, n_genes), float64 (``count``: the
        non-NaN values, counted only with ``omit_nan``; otherwise zeros);
        ``infinite`` of shape (n_genes,), int64.
    """
    if block.dtype.kind not in "iu" and block.dtype not in (np.float32, np.float64):
        block = block.astype(np.float64)  # float16, bool, object …
    n_rows, n_genes = block.shape
    # every row of the (possibly strided) block inside one 1-D view, no copy
    flat, row_stride = flat_rows(block)
    out = {
        "shift": np.zeros(n_genes),
        "count": np.zeros((n_groups, n_genes)),
        "s1": np.zeros((n_groups, n_genes)),
        "s2": np.zeros((n_groups, n_genes)),
        "linear": np.zeros((n_groups, n_genes)),
        "infinite": np.zeros(n_genes, dtype=np.int64),
    }
    codes = np.asarray(codes)
    order = np.argsort(codes, kind="stable")
    order = order[codes[order] >= 0]  # the compared rows, group by group
    starts = np.searchsorted(codes[order], np.arange(n_groups + 1))
    _provisional_mean(flat, row_stride, n_rows, shift_rows, out["shift"])
    shift = out["shift"]
    _shifted_sums(
        flat, row_stride, order, starts, shift, omit_nan, *(out[k] for k in ("count", "s1", "s2"))
    )
    if linear:
        _linear_sums(flat, row_stride, order, starts, omit_nan, out["linear"])
    if count_infinite:
        # an infinite value makes its group's Σ(x − c)² inf or NaN: only such genes are scanned
        # over the compared rows (a second full read would cost as much as the sums)
        suspicious = np.flatnonzero(~np.isfinite(out["s2"]).all(axis=0))
        left_out = np.flatnonzero(codes < 0)
        every_gene = np.arange(n_genes)
        _count_infinite(flat, row_stride, order, suspicious, out["infinite"])
        _count_infinite(flat, row_stride, left_out, every_gene, out["infinite"])
    return out
