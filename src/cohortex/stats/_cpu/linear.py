"""Compiled sums of the shared-design least squares for one chunk of samples (numba).

Why compiled: the ``xp`` body of :func:`cohortex.stats._linear.chunk_sums` converts the chunk to
float64 and makes five more passes over it (the mean, the shift, the plain sum, the product
with the design, the squares): at 50,000 × 20,000 a limma fit from the store took ~12 s against
a 3.6 s read. Here one loop reads each value once into the per-gene accumulators, laid out
(statistic, gene) so that the gene loop runs along contiguous memory. The shift is the mean of
the chunk's first rows (any value near the data serves; ``merge_sums`` moves chunks onto one
shift), so the sums differ from the ``xp`` ones by that shift only; tests hold the solved fits
equal. A value that is not finite makes its gene's sum of squares NaN or infinite (NaN in the
``xp`` body), which sends the gene to the per-gene fit.
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit
from .layout import flat_rows

__all__ = ["linear_chunk_sums"]

_SHIFT_ROWS = 16


@njit(nogil=True, cache=True)
def _provisional_shift(y, stride, n_rows, shift):  # type: ignore[no-untyped-def]
    """Per-gene mean of the first rows (not finite when one of them is not)."""
    n_genes = shift.shape[0]
    rows = min(_SHIFT_ROWS, n_rows)
    shift[:] = 0.0
    for i in range(rows):
        for g in range(n_genes):
            shift[g] += np.float64(y[i * stride + g])
    for g in range(n_genes):
        shift[g] /= rows


@njit(nogil=True, cache=True)
def _accumulate(y, stride, design, root, shift, xy, ysum, yy, plain):  # type: ignore[no-untyped-def]
    n_rows, p = design.shape
    n_genes = shift.shape[0]
    centred = np.empty(n_genes)
    for i in range(n_rows):
        weight = root[i] * root[i]
        start = i * stride
        for g in range(n_genes):  # simple loops over contiguous genes: the compiler vectorises
            value = np.float64(y[start + g]) - shift[g]
            centred[g] = value
            plain[g] += value
            ysum[g] += weight * value
            yy[g] += weight * value * value
        for k in range(p):
            weighted_x = weight * design[i, k]
            for g in range(n_genes):
                xy[k, g] += weighted_x * centred[g]


def linear_chunk_sums(
    block: np.ndarray, design: np.ndarray, shifted: bool, root: np.ndarray
) -> dict[str, np.ndarray]:
    """The per-gene fields of ``stats._linear.LinearSums`` for one NumPy chunk.

    Parameters
    ----------
    block : ndarray of shape (n_chunk, n_genes)
        Values of any float dtype.
    design : ndarray of shape (n_chunk, p)
    shifted : bool
        Whether the design spans the constant (else no shift).
    root : ndarray of shape (n_chunk,)
        ``√w`` of each sample's weight (ones without weights).

    Returns
    -------
    dict
        ``xy`` (p × n_genes), ``ysum``, ``yy``, ``plain_sum``, ``shift`` (n_genes each).
    """
    n_rows, n_genes = block.shape
    y, stride = flat_rows(block)
    shift = np.zeros(n_genes)
    if shifted and n_rows:
        _provisional_shift(y, stride, n_rows, shift)
    xy = np.zeros((design.shape[1], n_genes))
    ysum, yy, plain = np.zeros(n_genes), np.zeros(n_genes), np.zeros(n_genes)
    _accumulate(
        y,
        stride,
        np.ascontiguousarray(design, dtype=np.float64),
        np.ascontiguousarray(root, dtype=np.float64),
        shift,
        xy,
        ysum,
        yy,
        plain,
    )
    return {"xy": xy, "ysum": ysum, "yy": yy, "plain_sum": plain, "shift": shift}
