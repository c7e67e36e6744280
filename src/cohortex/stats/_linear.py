"""Ordinary least squares for every gene at once, on ``xp``.

One pass over sample chunks accumulates, for a design X (n × p) and the data Y (n × genes),
``X'X``, ``X'1``, ``X'Ỹ``, ``1'Ỹ`` and ``Σ Ỹ²`` where ``Ỹ = Y − 1 c'`` is shifted by a
per-gene provisional mean ``c`` (the chunk's own mean, moved to the first chunk's when chunks
are merged). When the columns of X span the constant (an intercept, or the cell means of a
factor) the fit is unchanged by the shift and the residual sum of squares
``RSS = Σ Ỹ² − b̃' X'Ỹ`` loses nothing to cancellation; otherwise no shift is applied.
limma's empirical Bayes on the result is in ``_ebayes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import namespace

__all__ = ["LinearSums", "chunk_sums", "merge_sums"]


@dataclass
class LinearSums:
    """Sufficient statistics of OLS over a set of samples (see the module notes).

    Attributes
    ----------
    n : int
    xtx : ndarray of shape (p, p), float64 (host)
    xsum : ndarray of shape (p,), float64 (host): X'1
    xy : array of shape (p, n_genes): X'Ỹ
    ysum : array of shape (n_genes,): 1'Ỹ
    yy : array of shape (n_genes,): Σ Ỹ²
    shift : array of shape (n_genes,): the c in Ỹ = Y − c
    """

    n: int
    xtx: np.ndarray
    xsum: np.ndarray
    xy: Any
    ysum: Any
    yy: Any
    shift: Any


def chunk_sums(block: Any, design: np.ndarray, shifted: bool) -> LinearSums:
    """Sums of one chunk: ``block`` (n_chunk × genes, NumPy or CuPy), ``design`` its rows."""
    xp = namespace(block)
    y = block.astype(xp.float64)
    shift = y.mean(axis=0) if shifted else xp.zeros(y.shape[1])
    y -= shift
    x = xp.asarray(design)
    return LinearSums(
        n=design.shape[0],
        xtx=design.T @ design,
        xsum=design.sum(axis=0),
        xy=x.T @ y,
        ysum=y.sum(axis=0),
        yy=xp.sum(y * y, axis=0),
        shift=shift,
    )


def merge_sums(a: LinearSums, b: LinearSums) -> LinearSums:
    """Add two chunks' sums, moving ``b`` to ``a``'s shift first."""
    xp = namespace(a.xy)
    delta = b.shift - a.shift  # Ỹ_b relative to a's shift = Ỹ_b + δ
    xy_b = b.xy + xp.asarray(b.xsum)[:, None] * delta[None, :]
    yy_b = b.yy + 2.0 * delta * b.ysum + b.n * delta * delta
    ysum_b = b.ysum + b.n * delta
    return LinearSums(
        n=a.n + b.n,
        xtx=a.xtx + b.xtx,
        xsum=a.xsum + b.xsum,
        xy=a.xy + xy_b,
        ysum=a.ysum + ysum_b,
        yy=a.yy + yy_b,
        shift=a.shift,
    )
