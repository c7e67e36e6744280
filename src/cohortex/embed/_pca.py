"""Principal component analysis of a cohort: in memory (scikit-learn, cuML or CuPy) or
streamed from the store (covariance accumulated over sample chunks, or Dask's randomized SVD).

Method choice (``method="auto"``)
---------------------------------
* an in-memory NumPy matrix → scikit-learn ``PCA`` (its own ``svd_solver="auto"``);
* an in-memory CuPy matrix → cuML ``PCA`` where cuML is installed, else the CuPy-native
  covariance + ``cupy.linalg.eigh`` path below (what the GPU tests run);
* a store or Dask array → its selected genes loaded into memory and given to scikit-learn when
  they fit in :data:`IN_MEMORY_BYTES` as float32 (e.g. the 2,000 most variable genes of 50,000
  samples: 0.4 GB), ``"streaming"`` otherwise.

``"streaming"`` makes one pass over sample chunks accumulating the gene × gene co-moment
matrix in float64 (chunk co-moments merged pairwise, as the DE moments are), then takes its
eigendecomposition; a second pass projects the samples. It is exact (it equals the full SVD) and
needs O(genes²) memory, so it is used up to :data:`COVARIANCE_MAX_GENES` selected genes; above
that, ``"streaming"`` runs a randomized SVD (k + 10 columns, 2 power iterations) as six separate
passes over the centred chunks, holding only (n_samples × (k + 10)) sketches in memory.
``"exact"`` and ``"randomized"`` load the selected genes into memory and call scikit-learn
with ``svd_solver="full"`` / ``"randomized"``.

Signs are normalised in every method: each component's largest-magnitude loading is positive.
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from .._backend import as_device_dask, dask_on, namespace, resolve_device, to_host, tree_reduce
from .._cohort import as_cohort_matrix
from .._errors import CohortexError
from ..stats._moments import chunk_moments, group_moments, merge_moments

__all__ = ["COVARIANCE_MAX_GENES", "IN_MEMORY_BYTES", "METHODS", "pca"]

METHODS = ("auto", "exact", "randomized", "streaming")
COVARIANCE_MAX_GENES = 4096
# With method="auto", a store's selected genes are loaded and given to scikit-learn when they
# fit in this many bytes (float32): at 50,000 samples × 2,000 genes (0.4 GB) that took 18 s
# against 31 s streamed (benchmarks/RESULTS.md).
IN_MEMORY_BYTES = 1 << 30
_ROWS_PER_CHUNK = 2048  # sample rows per block in the streaming passes


def pca(
    cohort: Any,
    n_components: int = 50,
    *,
    genes: str | list[str] | None = None,
    n_top_genes: int = 2000,
    center: bool = True,
    scale: bool = False,
    method: str = "auto",
    device: str = "auto",
    seed: int = 0,
) -> xr.Dataset:
    """Principal components of the samples.

    Parameters
    ----------
    cohort : path, xarray.Dataset or array of shape (n_samples, n_genes)
        A cohort store, an opened cohort, or a NumPy, CuPy or Dask matrix.
    n_components : int, default 50
        At most min(n_samples, n_selected_genes).
    genes : None, "hvg" or list of str, default None
        All genes, the ``n_top_genes`` most variable ones (by variance, from one pass of
        per-gene moments), or the named genes.
    n_top_genes : int, default 2000
        For ``genes="hvg"``.
    center : bool, default True
        Subtract each gene's mean (always done by the scikit-learn and cuML methods).
    scale : bool, default False
        Divide each gene by its standard deviation (PCA of the correlation matrix).
    method : {"auto", "exact", "randomized", "streaming"}, default "auto"
        See the module notes.
    device : {"auto", "cpu", "gpu"}, default "auto"
    seed : int, default 0
        Seed of the randomized methods.

    Returns
    -------
    xarray.Dataset
        ``scores(sample, pc)``, ``loadings(gene, pc)`` (selected genes only),
        ``explained_variance(pc)``, ``explained_variance_ratio(pc)`` (of the selected genes'
        total variance), and the cohort's sample variables (for colouring plots). Attributes
        record the method actually used.
    """
    if method not in METHODS:
        raise CohortexError(
            f"The 'method' parameter of pca() must be one of {', '.join(repr(m) for m in METHODS)}"
            f"; got {method!r}."
        )
    device = resolve_device(device)
    data = as_cohort_matrix(cohort)
    ds, x, sample_ids, gene_ids = data.dataset, data.matrix, data.sample_ids, data.gene_ids
    in_memory = not isinstance(x, da.Array)
    chunked = dask_on(x, device, (_ROWS_PER_CHUNK, 1024))

    # With all genes, no scaling and the randomized streaming path, the per-gene moments are
    # computed in the same read as the first sketch (one pass over the store fewer).
    n_all = x.shape[1]
    fused = (
        genes is None
        and not scale
        and center
        and not in_memory
        and n_all > COVARIANCE_MAX_GENES
        and (
            method == "streaming" or (method == "auto" and x.shape[0] * n_all * 4 > IN_MEMORY_BYTES)
        )
    )
    if fused:
        scores, loadings, explained, total = _compressed_pca(
            chunked, n_components, None, np.ones(n_all), seed, 0.0
        )
        return _result(
            ds,
            scores,
            loadings,
            explained,
            total,
            sample_ids,
            gene_ids,
            n_components,
            "randomized-streaming",
            center,
            scale,
            seed,
            genes,
        )
    mean, variance, n_nan = _gene_moments(chunked)
    if n_nan:
        raise CohortexError(
            f"PCA needs complete data; the matrix holds {n_nan} NaN values. Impute or drop them "
            "first."
        )
    selected = _select_genes(genes, n_top_genes, gene_ids, variance)
    n_samples, n_genes = x.shape[0], len(selected)
    if not 1 <= n_components <= min(n_samples, n_genes):
        raise CohortexError(
            f"The 'n_components' parameter must be between 1 and min(n_samples, n_genes) = "
            f"{min(n_samples, n_genes)}; got {n_components}."
        )
    if scale and np.any(variance[selected] == 0):
        constant = [gene_ids[i] for i in selected[variance[selected] == 0][:5]]
        raise CohortexError(
            "scale=True divides by each gene's standard deviation; these genes are constant: "
            + ", ".join(constant)
            + "."
        )
    used = method
    if method == "auto":
        fits = n_samples * n_genes * 4 <= IN_MEMORY_BYTES  # the selected genes, as float32
        used = "sklearn" if in_memory or fits else "streaming"
    if not center:  # scikit-learn and cuML always centre; the covariance path need not
        used = "streaming"
    if used == "streaming" and n_genes > COVARIANCE_MAX_GENES:
        used = "randomized-streaming"
    if used == "streaming":
        used = "covariance"

    mean_sel = mean[selected] if center else np.zeros(n_genes)
    sd_sel = np.sqrt(variance[selected]) if scale else np.ones(n_genes)
    # total variance of the standardised selected genes (uncentred: their mean square)
    second_moment = variance[selected] + (
        0.0 if center else mean[selected] ** 2 * n_samples / (n_samples - 1)
    )
    total_variance = float(np.sum(second_moment / sd_sel**2))
    if used == "covariance":
        scores, loadings, explained, total = _covariance_pca(
            chunked[:, selected], n_components, mean_sel, sd_sel, center
        )
    elif used == "randomized-streaming":
        scores, loadings, explained, total = _compressed_pca(
            chunked[:, selected], n_components, mean_sel, sd_sel, seed, total_variance
        )
    else:
        if in_memory:
            dense = np.asarray(to_host(x)[:, selected])
        else:  # read only the selected genes, in the stored dtype
            dense = np.asarray(to_host(chunked[:, selected].compute()))
        scores, loadings, explained, used = _in_memory_pca(
            dense, n_components, method, device, seed, sd_sel
        )
        total = total_variance
    return _result(
        ds,
        scores,
        loadings,
        explained,
        total,
        sample_ids,
        gene_ids[selected],
        n_components,
        used,
        center,
        scale,
        seed,
        genes,
    )


def _result(
    ds: xr.Dataset | None,
    scores: np.ndarray,
    loadings: np.ndarray,
    explained: np.ndarray,
    total: float,
    sample_ids: np.ndarray,
    gene_ids: np.ndarray,
    n_components: int,
    used: str,
    center: bool,
    scale: bool,
    seed: int,
    genes: Any,
) -> xr.Dataset:
    loadings, scores = _normalise_signs(loadings, scores)
    pcs = [f"PC{i + 1}" for i in range(n_components)]
    result = xr.Dataset(
        {
            "scores": (("sample", "pc"), scores),
            "loadings": (("gene", "pc"), loadings),
            "explained_variance": ("pc", explained),
            "explained_variance_ratio": ("pc", explained / total),
        },
        coords={"sample": sample_ids, "gene": gene_ids, "pc": pcs},
        attrs={
            "method": used,
            "center": int(center),
            "scale": int(scale),
            "seed": seed,
            "genes": "all" if genes is None else (genes if isinstance(genes, str) else "list"),
        },
    )
    if ds is not None:
        for name in ds.data_vars:
            if name != "expression" and ds[name].dims == ("sample",):
                result[name] = ("sample", np.asarray(ds[name].values))
    return result


# --------------------------------------------------------------------------------------------


def _gene_moments(x: da.Array) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-gene mean and variance (ddof=1) in one pass, and the number of NaN values."""
    codes = np.zeros(x.shape[0], dtype=np.int64)
    moments, nan_count = dask.compute(group_moments(x, codes, 1, omit_nan=False), da.isnan(x).sum())
    mean = to_host(moments.mean[0])
    variance = to_host(moments.variance()[0])
    return mean, variance, int(to_host(nan_count))


def _select_genes(
    genes: str | list[str] | None, n_top_genes: int, gene_ids: np.ndarray, variance: np.ndarray
) -> np.ndarray:
    if genes is None:
        return np.arange(len(gene_ids))
    if isinstance(genes, str):
        if genes != "hvg":
            raise CohortexError(
                f"The 'genes' parameter of pca() must be None, 'hvg' or a list of gene ids; "
                f"got {genes!r}."
            )
        if n_top_genes < 1:
            raise CohortexError(f"The 'n_top_genes' parameter must be positive; got {n_top_genes}.")
        order = np.argsort(-np.nan_to_num(variance, nan=-np.inf), kind="stable")
        return np.sort(order[: min(n_top_genes, len(gene_ids))])
    position = {str(g): i for i, g in enumerate(gene_ids)}
    unknown = [g for g in genes if str(g) not in position]
    if unknown:
        raise CohortexError(
            f"The 'genes' parameter names {len(unknown)} genes that are not in the cohort: "
            + ", ".join(map(str, unknown[:5]))
            + "."
        )
    return np.asarray([position[str(g)] for g in genes])


def _chunk_comoments(block: Any, mean: Any, sd: Any) -> tuple[int, Any, Any]:
    """(n, mean, co-moment matrix) of one chunk of standardised samples, float64."""
    xp = namespace(block)
    z = (block.astype(xp.float64) - mean) / sd
    chunk_mean = z.mean(axis=0)
    z -= chunk_mean
    return z.shape[0], chunk_mean, z.T @ z


def _merge_comoments(a: tuple[int, Any, Any], b: tuple[int, Any, Any]) -> tuple[int, Any, Any]:
    """Pairwise merge of co-moment matrices (Chan et al., in matrix form)."""
    xp = namespace(a[2])
    n = a[0] + b[0]
    delta = b[1] - a[1]
    return n, a[1] + delta * (b[0] / n), a[2] + b[2] + xp.outer(delta, delta) * (a[0] * b[0] / n)


def _covariance_pca(
    x: da.Array, k: int, mean: np.ndarray, sd: np.ndarray, center: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    xp = namespace(x)
    x = x.rechunk({0: _ROWS_PER_CHUNK, 1: -1})
    mean_d, sd_d = xp.asarray(mean), xp.asarray(sd)
    blocks = x.to_delayed()[:, 0]
    parts = [dask.delayed(_chunk_comoments)(b, mean_d, sd_d) for b in blocks]
    n, offset, comoment = tree_reduce(parts, _merge_comoments).compute()
    if not center:  # the second moment about zero rather than about the mean
        comoment = comoment + xp.outer(offset, offset) * n
    covariance = comoment / (n - 1)
    values, vectors = xp.linalg.eigh(covariance)
    order = xp.argsort(values)[::-1][:k]
    explained, loadings = values[order], vectors[:, order]
    total = float(to_host(xp.trace(covariance)))
    scores = ((x.astype(np.float64) - mean_d) / sd_d) @ loadings
    return to_host(scores.compute()), to_host(loadings), to_host(explained), total


def _compressed_pca(
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
            [dask.delayed(_first_pass)(block, omega_d) for block in x.to_delayed()[:, 0]]
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
        q = _orthonormal(times(omega))
    else:  # x Ω from the first pass, centred now that the mean is known
        q = _orthonormal(first_product.astype(xp.float64) - (mean_d @ omega)[None, :])
    for _ in range(2):
        q = _orthonormal(times(_orthonormal(transposed_times(q))))
    sketch = transposed_times(q).T  # Q' z, shape (width, n_genes)
    u_small, singular, vt = xp.linalg.svd(sketch, full_matrices=False)
    u_small, singular, vt = u_small[:, :k], singular[:k], vt[:k]
    scores = (q @ u_small) * singular
    explained = singular**2 / (n - 1)
    return to_host(scores), to_host(vt.T), to_host(explained), total


def _first_pass(block: Any, omega: Any) -> tuple[Any, Any, Any]:
    """One row chunk's per-gene moments, its product with Ω and its number of NaN."""
    xp = namespace(block)
    codes = np.zeros(block.shape[0], dtype=np.int64)
    return chunk_moments(block, codes, 1, False), block @ omega, xp.sum(xp.isnan(block))


def _orthonormal(y: Any) -> Any:
    q, _ = namespace(y).linalg.qr(y)
    return q


def _in_memory_pca(
    dense: np.ndarray, k: int, method: str, device: str, seed: int, sd: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """scikit-learn (or cuML) on the selected genes, in their own dtype (they centre)."""
    data = dense if dense.dtype in (np.float32, np.float64) else dense.astype(np.float64)
    if np.any(sd != 1.0):
        data = data / sd.astype(data.dtype)
    if device == "gpu":
        try:
            from cuml.decomposition import PCA as GpuPCA
        except ImportError:
            GpuPCA = None
        if GpuPCA is not None:
            import cupy

            model = GpuPCA(n_components=k)  # cuML's solvers are deterministic: no seed
            scores = cupy.asnumpy(model.fit_transform(cupy.asarray(data)))
            components = cupy.asnumpy(model.components_)
            explained = cupy.asnumpy(model.explained_variance_)
            return scores, components.T, explained, "cuml"
        chunked = as_device_dask(da.from_array(data, chunks=(_ROWS_PER_CHUNK, -1)))
        scores, loadings, explained, _ = _covariance_pca(
            chunked, k, np.asarray(data.mean(axis=0, dtype=np.float64)), np.ones(data.shape[1])
        )
        return scores, loadings, explained, "cupy-covariance"
    from sklearn.decomposition import PCA

    solver = {"exact": "full", "randomized": "randomized"}.get(method, "auto")
    model = PCA(n_components=k, svd_solver=solver, random_state=seed)
    scores = model.fit_transform(data)
    return scores, model.components_.T, model.explained_variance_, f"sklearn-{solver}"


def _normalise_signs(loadings: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flip components so that each one's largest-magnitude loading is positive."""
    biggest = np.argmax(np.abs(loadings), axis=0)
    signs = np.sign(loadings[biggest, np.arange(loadings.shape[1])])
    signs[signs == 0] = 1.0
    return loadings * signs, scores * signs
