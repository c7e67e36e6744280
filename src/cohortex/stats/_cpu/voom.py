"""Compiled voom weights for one chunk of samples (numba).

Why compiled: on ``xp`` the fitted values, their log counts, the interpolation in the trend
and the fourth power are four float64 copies of the chunk and a binary search per value in
NumPy's ``interp`` (together 8× the unweighted fit at 50,000 × 20,000). Here one loop
computes each weight from the design row and the gene's coefficients and writes it once. The
``xp`` code in :mod:`cohortex.de._voom` is the reference and the GPU path; tests hold the two
equal.
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit

__all__ = ["voom_weights"]


# cells of the table that starts each search for a value's segment of the trend: with R's
# lowess delta (1% of the range) the trend has about 100 segments, so the search from a cell is
# a step or two where a binary search took seven branches that the processor cannot predict
_CELLS = 4096


@njit(nogil=True, cache=True)
def _segment_table(knots_x, cells):  # type: ignore[no-untyped-def]
    """For each of ``cells`` equal cells over [knots_x[0], knots_x[-1]], the last knot at or
    below the cell's left edge (a start for the search, not its result)."""
    table = np.empty(cells, dtype=np.int64)
    width = (knots_x[-1] - knots_x[0]) / cells
    low = 0
    for c in range(cells):
        edge = knots_x[0] + c * width
        while low + 1 < knots_x.size - 1 and knots_x[low + 1] <= edge:
            low += 1
        table[c] = low
    return table


@njit(nogil=True, cache=True, error_model="numpy")  # 1/0 is inf, as in R
def _weights(design, beta, log_offset, knots_x, knots_y, out):  # type: ignore[no-untyped-def]
    n_rows, p = design.shape
    n_genes = beta.shape[1]
    last = knots_x.size - 1
    table = _segment_table(knots_x, _CELLS)
    scale = _CELLS / (knots_x[last] - knots_x[0])
    for i in range(n_rows):
        for g in range(n_genes):
            fitted = 0.0
            for k in range(p):
                fitted += design[i, k] * beta[k, g]
            log_count = fitted + log_offset[i]
            if log_count <= knots_x[0]:
                trend = knots_y[0]
            elif log_count >= knots_x[last]:
                trend = knots_y[last]
            else:  # the segment knots_x[low] <= log_count < knots_x[low + 1]
                low = table[min(int((log_count - knots_x[0]) * scale), _CELLS - 1)]
                while low > 0 and knots_x[low] > log_count:  # the cell's rounding
                    low -= 1
                while knots_x[low + 1] <= log_count:
                    low += 1
                high = low + 1
                slope = (knots_y[high] - knots_y[low]) / (knots_x[high] - knots_x[low])
                trend = slope * (log_count - knots_x[low]) + knots_y[low]
            square = trend * trend
            out[i, g] = 1.0 / (square * square)


def voom_weights(
    design: np.ndarray,
    beta: np.ndarray,
    log_offset: np.ndarray,
    knots_x: np.ndarray,
    knots_y: np.ndarray,
) -> np.ndarray:
    """``1 / trend(fitted + log_offset)⁴`` for every sample row of ``design`` and gene.

    Parameters
    ----------
    design : ndarray of shape (n_chunk, p)
    beta : ndarray of shape (p, n_genes)
    log_offset : ndarray of shape (n_chunk,)
        ``log2((library size + 1) · 10⁻⁶)`` per sample.
    knots_x, knots_y : ndarray of shape (m,)
        The trend's points, x increasing; constant beyond them (R's ``rule = 2``).

    Returns
    -------
    ndarray of shape (n_chunk, n_genes), float64
    """
    out = np.empty((design.shape[0], beta.shape[1]))
    _weights(
        np.ascontiguousarray(design, dtype=np.float64),
        np.ascontiguousarray(beta, dtype=np.float64),
        np.ascontiguousarray(log_offset, dtype=np.float64),
        np.ascontiguousarray(knots_x, dtype=np.float64),
        np.ascontiguousarray(knots_y, dtype=np.float64),
        out,
    )
    return out
