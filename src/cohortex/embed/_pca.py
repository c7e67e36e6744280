"""Principal component analysis of a cohort: in memory (scikit-learn, cuML or CuPy) or
streamed from the store (covariance accumulated over sample chunks, or a randomized block
Krylov SVD).

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
that, ``"streaming"`` runs a randomized block Krylov SVD (blocks of k + 10 columns) in five reads
of the chunks, about as accurate as scikit-learn's randomized default on expression data and
holding only the (n_samples × 5 (k + 10)) sketches and their gene blocks in memory.
``"exact"`` and ``"randomized"`` load the selected genes into memory and call scikit-learn
with ``svd_solver="full"`` / ``"randomized"``.

Signs are normalised in every method: each component's largest-magnitude loading is positive.

This module is the policy (:func:`_choose_method`, the gene selection, the result); each solver
has its own file: ``_covariance.py``, ``_randomized.py``, ``_in_memory.py``.
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from .._backend import dask_on, resolve_device, to_host
from .._cohort import CohortLike, as_cohort_matrix, shared_docs
from .._errors import CohortexError
from ..stats._moments import group_moments
from ._covariance import ROWS_PER_CHUNK, covariance_pca
from ._in_memory import in_memory_pca
from ._randomized import randomized_pca

__all__ = ["COVARIANCE_MAX_GENES", "IN_MEMORY_BYTES", "METHODS", "pca"]

METHODS = ("auto", "exact", "randomized", "streaming")
COVARIANCE_MAX_GENES = 4096
# With method="auto", a store's selected genes are loaded and given to scikit-learn when they
# fit in this many bytes (float32): at 50,000 samples × 2,000 genes (0.4 GB) that took 18 s
# against 31 s streamed (benchmarks/RESULTS.md).
IN_MEMORY_BYTES = 1 << 30


@shared_docs
def pca(
    cohort: CohortLike,
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
    {cohort}
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
    {device}
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
    chunked = dask_on(x, device, (ROWS_PER_CHUNK, 1024))

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
        scores, loadings, explained, total = randomized_pca(
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
    used = _choose_method(method, in_memory, n_samples, n_genes, center)

    mean_sel = mean[selected] if center else np.zeros(n_genes)
    sd_sel = np.sqrt(variance[selected]) if scale else np.ones(n_genes)
    # total variance of the standardised selected genes (uncentred: their mean square)
    second_moment = variance[selected] + (
        0.0 if center else mean[selected] ** 2 * n_samples / (n_samples - 1)
    )
    total_variance = float(np.sum(second_moment / sd_sel**2))
    if used == "covariance":
        scores, loadings, explained, total = covariance_pca(
            chunked[:, selected], n_components, mean_sel, sd_sel, center
        )
    elif used == "randomized-streaming":
        scores, loadings, explained, total = randomized_pca(
            chunked[:, selected], n_components, mean_sel, sd_sel, seed, total_variance
        )
    else:
        if in_memory:
            dense = np.asarray(to_host(x)[:, selected])
        else:  # read only the selected genes, in the stored dtype
            dense = np.asarray(to_host(chunked[:, selected].compute()))
        scores, loadings, explained, used = in_memory_pca(
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


def _choose_method(method: str, in_memory: bool, n_samples: int, n_genes: int, center: bool) -> str:
    """The solver for ``method`` and the selected genes (see the module notes).

    Returns ``"covariance"`` (exact, streamed), ``"randomized-streaming"`` (streamed sketches)
    or an in-memory method (``"sklearn"``, ``"exact"``, ``"randomized"``).
    """
    used = method
    if method == "auto":
        fits = n_samples * n_genes * 4 <= IN_MEMORY_BYTES  # the selected genes, as float32
        used = "sklearn" if in_memory or fits else "streaming"
    if not center:  # scikit-learn and cuML always centre; the covariance path need not
        used = "streaming"
    if used == "streaming":
        return "randomized-streaming" if n_genes > COVARIANCE_MAX_GENES else "covariance"
    return used


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
    """Per-gene mean and variance (ddof=1) in one pass, and the number of NaN values.

    The NaN are counted as the values the moments leave out: a second reduction of ``x`` in
    the same compute read every tile again (its graph fuses the reads into its own tasks),
    doubling the pass.
    """
    codes = np.zeros(x.shape[0], dtype=np.int64)
    (moments,) = dask.compute(group_moments(x, codes, 1, omit_nan=True))
    n_nan = x.shape[0] * x.shape[1] - round(float(to_host(moments.count.sum())))
    mean = to_host(moments.mean[0])
    variance = to_host(moments.variance()[0])
    return mean, variance, n_nan


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


def _normalise_signs(loadings: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flip components so that each one's largest-magnitude loading is positive."""
    biggest = np.argmax(np.abs(loadings), axis=0)
    signs = np.sign(loadings[biggest, np.arange(loadings.shape[1])])
    signs[signs == 0] = 1.0
    return loadings * signs, scores * signs
