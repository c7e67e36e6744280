"""Randomized SVD of a matrix too wide for the covariance path, pass by pass over its chunks."""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np

from .._backend import namespace, to_host
from .._errors import CohortexError
from ..stats._moments import chunk_moments, merge_moments

__all__ = ["first_pass", "orthonormal", "randomized_pca"]


def randomized_pca(
    x: da.Array,
    k: int,
    mean: np.ndarray | None,
    sd: np.ndarray,
    seed: int,
    total: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Randomized SVD (Halko, Martinsson & Tropp 2011) of the standardised matrix, pass by pass.

    Each product with the matrix is its own pass over the chunks, computed before the next
    starts, so memory holds a few chunks and the (n_samples × k + 10) sketches, never the
    matrix (``da.linalg.svd_compressed`` builds one graph whose shared chunks Dask keeps
    alive across passes: 8.8 GB for a 4 GB store). Two power iterations with QR
    re-orthonormalisation: six passes. The chunks are multiplied as they are stored (float32
    GEMMs); centring and scaling are folded into the thin matrices, in float64::

        z = (x − 1 μ') D⁻¹:   z W = x (D⁻¹ W) − 1 (μ' D⁻¹ W),   z' Q = D⁻¹ (x' Q − μ (1' Q))

    With ``mean=None`` (and D = I) the per-gene moments are computed in the first pass by the
    same tasks that compute x W, one per row chunk; ``total`` then comes from them.
    """
    xp = namespace(x)
    x = x.rechunk({1: -1})  # whole rows
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    inverse_sd = 1.0 / xp.asarray(sd)
    first_product = None
    if mean is None:
        omega_host = np.random.default_rng(seed).standard_normal(
            (x.shape[1], min(k + 10, *x.shape))
        )
        # one task per row chunk returns that chunk's moments and its product with Ω, so
        # each chunk is read once and dropped (two graphs sharing the tile reads made Dask
        # keep every tile alive)
        omega_d = xp.asarray(omega_host).astype(dtype)
        (parts,) = dask.compute(
            [dask.delayed(first_pass)(block, omega_d) for block in x.to_delayed()[:, 0]]
        )
        moments = parts[0][0]
        for part in parts[1:]:
            moments = merge_moments(moments, part[0])
        first_product = xp.concatenate([part[1] for part in parts])
        n_nan = int(sum(int(to_host(part[2])) for part in parts))
        if n_nan:
            raise CohortexError(
                f"PCA needs complete data; the matrix holds {n_nan} NaN values. "
                "Impute or drop them first."
            )
        mean = to_host(moments.mean[0])
        total = float(np.sum(to_host(moments.variance()[0])))
    mean_d = xp.asarray(mean)
    n, n_genes = x.shape
    width = min(k + 10, n, n_genes)

    def times(w: Any) -> Any:  # z @ w, shape (n, width)
        scaled = w * inverse_sd[:, None]
        product = (x @ scaled.astype(dtype)).compute().astype(xp.float64)
        return product - (mean_d @ scaled)[None, :]

    def transposed_times(q: Any) -> Any:  # z.T @ q, shape (n_genes, width)
        rows = da.from_array(q.astype(dtype), chunks=(x.chunks[0], width), asarray=False)
        product = (x.T @ rows).compute().astype(xp.float64)
        return (product - xp.outer(mean_d, q.sum(axis=0))) * inverse_sd[:, None]

    omega = xp.asarray(np.random.default_rng(seed).standard_normal((n_genes, width)))
    if first_product is None:
        q = orthonormal(times(omega))
    else:  # x Ω from the first pass, centred now that the mean is known
        q = orthonormal(first_product.astype(xp.float64) - (mean_d @ omega)[None, :])
    for _ in range(2):
        q = orthonormal(times(orthonormal(transposed_times(q))))
    sketch = transposed_times(q).T  # Q' z, shape (width, n_genes)
    u_small, singular, vt = xp.linalg.svd(sketch, full_matrices=False)
    u_small, singular, vt = u_small[:, :k], singular[:k], vt[:k]
    scores = (q @ u_small) * singular
    explained = singular**2 / (n - 1)
    return to_host(scores), to_host(vt.T), to_host(explained), total


def first_pass(block: Any, omega: Any) -> tuple[Any, Any, Any]:
    """One row chunk's per-gene moments, its product with Ω and its number of NaN."""
    xp = namespace(block)
    codes = np.zeros(block.shape[0], dtype=np.int64)
    return chunk_moments(block, codes, 1, False), block @ omega, xp.sum(xp.isnan(block))


def orthonormal(y: Any) -> Any:
    q, _ = namespace(y).linalg.qr(y)
    return q
