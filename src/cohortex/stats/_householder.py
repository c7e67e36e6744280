"""The effects of a linear model in R's Householder basis: ``qr.qty(qr(X), y)``.

limma's ``fry`` standardises each gene by its largest squared effect, and those coordinates
depend on the orthogonal basis, not only on the fit: they are R's, the reflections of
LINPACK's ``dqrdc2`` (each column mapped onto ``−sign(x_ll)·‖x‖ e_l``, a zero column below the
diagonal reflected too) applied as ``dqrsl`` applies them. Host only (numba): a design of a
few columns, one gene at a time when every gene has its own weighted design.
"""

from __future__ import annotations

import numpy as np

from .._jit import njit

__all__ = ["contrast_as_coefficient", "householder_effects", "householder_effects_per_gene"]


def householder_effects(design: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, float]:
    """``Q'y`` of every column of ``values`` for one full-rank ``design``.

    Parameters
    ----------
    design : ndarray of shape (n, p)
    values : ndarray of shape (n, g)

    Returns
    -------
    effects : ndarray of shape (n, g)
        R's ``qr.qty(qr(design), values)``.
    sign : float
        The sign of R's ``qr(design)$qr[p, p]``.
    """
    work = np.array(design, dtype=np.float64, order="F")
    effects = np.array(values, dtype=np.float64, order="F")
    return effects, float(_reflect(work, effects))


def householder_effects_per_gene(
    designs: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``Q_g'y_g`` of every gene with its own design.

    Parameters
    ----------
    designs : ndarray of shape (n, g, p)
    values : ndarray of shape (n, g)

    Returns
    -------
    effects : ndarray of shape (n, g)
    signs : ndarray of shape (g,)
    """
    effects = np.array(values, dtype=np.float64, order="F")
    signs = np.empty(values.shape[1])
    _per_gene(np.asarray(designs, dtype=np.float64), effects, signs)
    return effects, signs


def contrast_as_coefficient(design: np.ndarray, contrast: np.ndarray) -> np.ndarray:
    """limma's ``contrastAsCoef(design, contrast, first = FALSE)$design`` for one contrast.

    The design rotated by the Householder reflection of ``contrast`` (R's ``qr``), its first
    column divided by the reflection's ``R``, so that the last column of the result (where
    it is moved) has the contrast for its coefficient; the other columns span the rest.

    Parameters
    ----------
    design : ndarray of shape (n, p)
    contrast : ndarray of shape (p,)
        Not all zero.

    Returns
    -------
    ndarray of shape (n, p)
    """
    contrast = np.asarray(contrast, dtype=np.float64)
    rotated, _ = householder_effects(contrast[:, None], np.asarray(design, dtype=np.float64).T)
    norm = float(np.sqrt(np.sum(contrast * contrast)))
    diagonal = -norm if contrast[0] >= 0 else norm  # LINPACK: −sign(c₁)·‖c‖, c₁ = 0 as +
    rotated[0] /= diagonal
    return np.column_stack([rotated[1:].T, rotated[0]])


@njit(cache=True)
def _reflect(work: np.ndarray, effects: np.ndarray) -> float:
    """LINPACK's Householder QR of ``work`` (n × p, overwritten) applied to ``effects``
    (n × g, overwritten by Q'effects); returns the sign of R's last diagonal entry."""
    n, p = work.shape
    last = 0.0
    for col in range(p):
        norm = 0.0
        for i in range(col, n):
            norm += work[i, col] * work[i, col]
        norm = np.sqrt(norm)
        if norm == 0.0:
            last = 0.0
            continue
        if work[col, col] != 0.0:
            norm = abs(norm) if work[col, col] > 0 else -abs(norm)
        for i in range(col, n):
            work[i, col] /= norm
        work[col, col] += 1.0
        pivot = work[col, col]
        for j in range(col + 1, p):
            t = 0.0
            for i in range(col, n):
                t -= work[i, col] * work[i, j]
            t /= pivot
            for i in range(col, n):
                work[i, j] += t * work[i, col]
        for j in range(effects.shape[1]):
            t = 0.0
            for i in range(col, n):
                t -= work[i, col] * effects[i, j]
            t /= pivot
            for i in range(col, n):
                effects[i, j] += t * work[i, col]
        last = -norm  # R's diagonal entry
    return 1.0 if last > 0 else (-1.0 if last < 0 else 0.0)


@njit(cache=True)
def _per_gene(designs: np.ndarray, effects: np.ndarray, signs: np.ndarray) -> None:
    n, g, p = designs.shape
    work = np.empty((n, p))
    column = np.empty((n, 1))
    for k in range(g):
        for i in range(n):
            column[i, 0] = effects[i, k]
            for j in range(p):
                work[i, j] = designs[i, k, j]
        signs[k] = _reflect(work, column)
        for i in range(n):
            effects[i, k] = column[i, 0]
