"""Randomized SVD of a matrix too wide for the covariance path: a block Krylov method that
reads the matrix once per block."""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np
from threadpoolctl import threadpool_limits

from .._backend import namespace, to_host, tree_reduce
from .._errors import CohortexError
from .._memory import release_free_memory
from ..stats._moments import GroupMoments, chunk_moments, merge_moments

__all__ = ["OVERSAMPLE", "PASSES", "gram_part", "randomized_pca"]

# Reads of the matrix, and columns beyond k in each block: measured against exact SVD and
# scikit-learn's randomized default (benchmarks/RESULTS.md, "PCA and t-SNE").
PASSES = 5
OVERSAMPLE = 10
# Row chunks thinner than this are merged (a GEMM per few rows is slow).
MIN_ROWS = 256


def randomized_pca(
    x: da.Array,
    k: int,
    mean: np.ndarray | None,
    sd: np.ndarray,
    seed: int,
    total: float,
    passes: int | None = None,
    oversample: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The top k principal components of the standardised matrix z, ``passes`` reads of x.

    A randomized block Krylov method (Musco & Musco 2015; Halko, Martinsson & Tropp 2011)
    on the gene × gene matrix z'z, which is never formed. Each pass reads every row chunk
    ``x_i`` once and computes, with ``V`` the current gene block (n_genes × (k +
    oversample), orthonormal), both ``Y_i = z_i V`` (its rows of the sample sketch) and
    ``z_i' Y_i`` (its share of ``z'z V``): two GEMMs on each tile while it is in memory.
    The next block is ``z'z V`` made orthonormal to every block before it, so the blocks
    together are an orthonormal basis K of the Krylov space ``[Ω, z'zΩ, (z'z)²Ω, …]``, and
    ``z K`` is the sketches side by side. The answer is Rayleigh–Ritz on that basis: the
    eigenvectors W of ``(z K)'(z K)`` give the loadings ``K W`` and the scores ``z K W``,
    its eigenvalues the variances (times n − 1). The last pass needs
    only ``z V``. Five passes of (k + 10)-column blocks come as close to the exact SVD as
    scikit-learn's randomized PCA with its defaults (seven power iterations over the matrix
    in memory) on expression data; three are as close as two power iterations in the
    alternating form (six reads: x, then x', …).

    Centring and scaling are folded into the thin matrices, in float64, with ``W = D⁻¹V``
    and each chunk shifted by a per-gene vector ``c`` close to its mean::

        (x_i − 1c') W = x_i W − 1 (c'W)
        (x_i − 1c')' (x_i − 1c') W = x_i' (x_i − 1c') W − c 1'(x_i − 1c') W

    The shift is the genes' mean once it is known; with ``mean=None`` (and D = I) the first
    pass computes each row of chunks' moments in the same read and shifts it by its own mean
    ``m_i``; ``Σᵢ n_i (m_i − μ)(m_i − μ)'W`` then centres the sum on μ (the between-chunk
    term of merged co-moments), so that read also yields the mean and ``total``.

    Parameters
    ----------
    x : dask array of shape (n_samples, n_genes)
        Chunked as stored; each task takes one row of chunks.
    k : int
        Components.
    mean : array of shape (n_genes,) or None
        The centring; None computes it in the first pass.
    sd : array of shape (n_genes,)
        The scaling D.
    seed : int
        Seed of the Gaussian start.
    total : float
        Total variance of z (replaced by the first pass's when ``mean`` is None).
    passes : int, default :data:`PASSES`
        Reads of the matrix.
    oversample : int, default :data:`OVERSAMPLE`
        Columns beyond k in each block.

    Returns
    -------
    scores : ndarray of shape (n_samples, k)
    loadings : ndarray of shape (n_genes, k)
    explained : ndarray of shape (k,)
        Variances of the components (ddof 1).
    total : float
    """
    xp = namespace(x)
    n, n_genes = x.shape
    if x.chunks[0][0] < MIN_ROWS and n > MIN_ROWS:
        x = x.rechunk({0: MIN_ROWS * 4})
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    inverse_sd = 1.0 / xp.asarray(sd)
    passes = PASSES if passes is None else passes
    block_width = min(k + (OVERSAMPLE if oversample is None else oversample), n, n_genes)
    # the Krylov basis cannot outgrow the matrix's dimensions
    passes = max(1, min(passes, min(n, n_genes) // block_width))
    start = np.random.default_rng(seed).standard_normal((n_genes, block_width))
    basis = _orthonormal(xp.asarray(start))
    shift = None if mean is None else xp.asarray(mean, dtype=xp.float64)
    blocks: list[Any] = []  # V_0, V_1, …: orthonormal together
    sketches: list[Any] = []  # z V_j
    for done in range(passes):
        weights = basis * inverse_sd[:, None]  # W = D⁻¹ V
        last = done == passes - 1
        moments, products, gram = _gram_pass(x, weights, shift, dtype, gram=not last)
        release_free_memory()  # the pass's freed tiles, before the next pass reads its own
        if moments is not None:
            shift = moments.mean[0]
            total = float(to_host(xp.sum(moments.variance()[0])))
        blocks.append(basis)
        sketches.append(products - (shift @ weights)[None, :])
        if not last:
            basis = _next_block(gram * inverse_sd[:, None], blocks)
    # Rayleigh–Ritz from the sketches' small Gram matrix (float64: squaring the spectrum
    # costs nothing that matters) rather than the SVD of the n × (passes · width) matrix,
    # whose factor and workspace would each be as large as the sketches
    small = xp.concatenate([xp.concatenate([a.T @ b for b in sketches], axis=1) for a in sketches])
    values, vectors = xp.linalg.eigh(small)
    order = xp.argsort(values)[::-1][:k]
    values, vectors = xp.maximum(values[order], 0.0), vectors[:, order]
    loadings = xp.concatenate(blocks, axis=1) @ vectors
    scores = sum(
        sketch @ vectors[j * sketch.shape[1] : (j + 1) * sketch.shape[1]]
        for j, sketch in enumerate(sketches)
    )
    return to_host(scores), to_host(loadings), to_host(values / (n - 1)), total


def _gram_pass(
    x: da.Array, weights: Any, shift: Any, dtype: Any, gram: bool = True
) -> tuple[Any, Any, Any]:
    """One read of ``x`` (``gram=False``: the last, which needs only ``x W``).

    Returns
    -------
    moments : GroupMoments or None
        The genes' moments, when ``shift`` is None.
    products : array of shape (n_samples, width), float64
        ``x W``.
    gram : array of shape (n_genes, width), float64, or None
        ``(x − 1μ')'(x − 1μ') W``.
    """
    xp = namespace(x)
    # one key each in the graph, not a copy in every task (a cluster ships tasks)
    weights_key = dask.delayed(weights.astype(dtype), pure=True)
    shift_key = None if shift is None else dask.delayed(shift, pure=True)
    rows = x.to_delayed()
    parts = [
        dask.delayed(gram_part, nout=4)(list(rows[i]), weights_key, shift_key, gram)
        for i in range(rows.shape[0])
    ]
    # single-threaded BLAS inside each task: Dask already runs one task per core, and two
    # GEMMs each spinning up every core's thread ran 15% slower
    with threadpool_limits(1, user_api="blas"):
        summed, chunks = dask.compute(
            tree_reduce([part[2] for part in parts], _add) if gram else None,
            [(part[0], part[1], part[3]) for part in parts],
        )
    products = xp.concatenate([chunk[2] for chunk in chunks])
    if shift is not None:
        return None, products, summed
    moments = chunks[0][0]
    for chunk in chunks[1:]:
        moments = merge_moments(moments, chunk[0])
    n_nan = int(to_host(xp.sum(xp.isnan(moments.mean))))
    if n_nan:
        raise CohortexError(
            f"PCA needs complete data; {n_nan} genes hold NaN values. Impute or drop them first."
        )
    if gram:
        # each row of chunks was centred on its own mean m_i: adding Σᵢ n_i (m_i − μ)(m_i − μ)'W
        # centres the sum on μ (the between-chunk term of merged co-moments)
        gaps = xp.stack([chunk[1] - moments.mean[0] for chunk in chunks])  # (n_rows, n_genes)
        counts = xp.asarray([float(to_host(chunk[0].count[0, 0])) for chunk in chunks])
        summed = summed + (gaps * counts[:, None]).T @ (gaps @ weights)
    return moments, products, summed


def gram_part(
    tiles: list[Any], weights: Any, shift: Any, gram: bool = True
) -> tuple[Any, Any, Any, Any]:
    """One row of chunks' share of a pass, tile by tile (no copy into whole rows).

    Parameters
    ----------
    tiles : list of arrays of shape (n_rows, n_tile_genes)
        The row's chunks, left to right.
    weights : array of shape (n_genes, width), the chunks' dtype
        ``W``.
    shift : array of shape (n_genes,), float64, or None
        ``c``; None: the row's own mean, whose moments are then returned.
    gram : bool, default True
        Compute the second product (False: ``gram`` is None).

    Returns
    -------
    moments : GroupMoments or None
        The row's per-gene moments, when ``shift`` is None.
    shift : array of shape (n_genes,), float64
    gram : array of shape (n_genes, width), float64, or None
        ``(x − 1c')' (x − 1c') W``.
    product : array of shape (n_rows, width), float64
        ``x W``.
    """
    xp = namespace(tiles[0])
    edges = np.cumsum([0] + [tile.shape[1] for tile in tiles])
    moments = None
    if shift is None:
        codes = np.zeros(tiles[0].shape[0], dtype=np.int64)
        per_tile = [chunk_moments(tile, codes, 1, False) for tile in tiles]
        moments = GroupMoments(
            count=xp.concatenate([m.count for m in per_tile], axis=1),
            mean=xp.concatenate([m.mean for m in per_tile], axis=1),
            m2=xp.concatenate([m.m2 for m in per_tile], axis=1),
        )
        shift = moments.mean[0]
    product = xp.zeros((tiles[0].shape[0], weights.shape[1]), dtype=xp.float64)
    for tile, low, high in zip(tiles, edges[:-1], edges[1:], strict=True):
        product += tile @ weights[low:high]
    if not gram:
        return moments, shift, None, product
    shifted = product - (shift @ weights.astype(xp.float64))[None, :]
    shifted_cast = shifted.astype(weights.dtype)
    summed = xp.concatenate([tile.T @ shifted_cast for tile in tiles]).astype(xp.float64)
    summed -= xp.outer(shift, shifted.sum(axis=0))
    return moments, shift, summed, product


def _add(a: Any, b: Any) -> Any:
    return a + b


def _next_block(gram: Any, blocks: list[Any]) -> Any:
    """``z'z V`` made orthonormal to the blocks so far (twice is enough: Giraud et al. 2005)."""
    xp = namespace(gram)
    basis = xp.concatenate(blocks, axis=1)
    for _ in range(2):
        gram = gram - basis @ (basis.T @ gram)
    # once more after normalising: where z'z V lies in the basis already (a matrix of lower
    # rank than the basis), what is left is rounding, which normalising would blow up
    block = _orthonormal(gram)
    return _orthonormal(block - basis @ (basis.T @ block))


def _orthonormal(y: Any) -> Any:
    q, _ = namespace(y).linalg.qr(y)
    return q
