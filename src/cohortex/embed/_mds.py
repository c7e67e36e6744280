"""limma's ``plotMDS``: classical multidimensional scaling of leading log-fold-change distances.

Every limma and edgeR workflow looks at its samples this way before testing: the squared
distance of two samples is the mean of the ``top`` largest squared differences between them
over the genes ("pairwise", limma's default: each pair chooses its own genes), or over the
``top`` most variable genes ("common"); the distances are double-centred and their leading
eigenvectors, scaled by the roots of their eigenvalues, are the coordinates.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.linalg
import xarray as xr

from .._backend import namespace, resolve_device, to_device, to_host
from .._cohort import CohortLike, as_cohort_matrix, shared_docs
from .._errors import CohortexError, CohortexWarning
from .._progress import progress_bar

__all__ = ["PAIRWISE_WARNING_SAMPLES", "mds"]

_SELECTIONS = ("pairwise", "common")
PAIRWISE_WARNING_SAMPLES = 5000  # beyond this, pairwise distances take hours: say so
_BLOCK_VALUES = 1 << 23  # values of (samples × genes) differences held at a time: 64 MB


@shared_docs
def mds(
    cohort: CohortLike,
    *,
    top: int = 500,
    gene_selection: str = "pairwise",
    n_components: int = 2,
    prior_count: float = 2.0,
    device: str = "auto",
    progress: bool | None = None,
) -> xr.Dataset:
    """Multidimensional scaling of the samples, as limma's ``plotMDS(x, top, gene.selection)``.

    Parameters
    ----------
    {cohort}
        Log-scale values; genes with a missing or infinite value are left out, as limma. A
        counts cohort is first made edgeR's log-CPM with TMM factors, as edgeR's
        ``plotMDS`` of a DGEList after ``calcNormFactors``.
    top : int, default 500
        Genes behind each distance (limma's ``top``; all genes where there are fewer).
    gene_selection : {{"pairwise", "common"}}, default "pairwise"
        "pairwise": each pair of samples takes its ``top`` largest squared differences
        (limma's "leading log-fold-change" distance; n_samples² / 2 partial sorts over the
        genes, on the GPU where there is one: a warning says so beyond 5,000 samples);
        "common": the ``top`` genes of largest variance for every pair (the principal
        components of those genes).
    n_components : int, default 2
    prior_count : float, default 2
        Of the log-CPM of a counts cohort (edgeR's ``prior.count``).
    {device}
    progress : bool, optional

    Returns
    -------
    xarray.Dataset
        ``embedding(sample, dim)`` (limma's ``x``, ``y``, …: eigenvectors times the roots of
        their eigenvalues, each oriented with its largest entry positive), ``eigenvalue(dim)``
        and ``var_explained(dim)`` (limma's ``var.explained``), the cohort's sample variables
        (so that :func:`cohortex.plot.embedding` colours by them). Attrs: ``top`` (as used),
        ``gene_selection``, ``n_genes``, ``transform`` ("log-CPM" for counts, else "").

    Raises
    ------
    CohortexError
        For fewer than three samples, an unknown selection, or more components than samples.

    Notes
    -----
    Agreement with limma 3.54 and edgeR 3.40 (tests/embed/test_mds.py): 1e-10, up to each
    dimension's sign.
    """
    if gene_selection not in _SELECTIONS:
        raise CohortexError(
            "The 'gene_selection' parameter of mds() must be 'pairwise' or 'common'; got "
            f"{gene_selection!r}."
        )
    data = as_cohort_matrix(cohort)
    transform = ""
    if data.scale == "counts":  # edgeR's plotMDS.DGEList: cpm(y, log = TRUE, prior.count)
        from .._normalize import normalize

        counts = data.dataset if data.dataset is not None else cohort
        data = as_cohort_matrix(
            normalize(counts, "log_cpm", prior_count=prior_count, norm_factors="tmm")
        )
        transform = "log-CPM"
    n = data.matrix.shape[0]
    if n < 3:
        raise CohortexError(f"mds() needs at least three samples; got {n}.")
    if not 1 <= n_components <= n:
        raise CohortexError(
            f"The 'n_components' parameter of mds() must be between 1 and {n}; got {n_components}."
        )
    on = resolve_device(device)
    x = data.matrix
    if hasattr(x, "compute"):
        x = x.compute()
    x = to_device(x, on) if on == "gpu" else np.asarray(to_host(x))
    xp = namespace(x)
    x = xp.asarray(x, dtype=xp.float64)
    finite = xp.all(xp.isfinite(x), axis=0)
    x = x[:, finite]
    n_genes = int(x.shape[1])
    if n_genes < n_components:
        raise CohortexError(f"mds() needs at least {n_components} genes with finite values.")
    top = min(top, n_genes)
    if gene_selection == "pairwise":
        if n > PAIRWISE_WARNING_SAMPLES:
            warnings.warn(
                f"mds() of {n} samples by pairwise distances sorts the genes of "
                f"{n * (n - 1) // 2:,} pairs (hours on a few cores; limma's cost too); "
                "gene_selection='common' takes the same top genes for every pair, in seconds.",
                CohortexWarning,
                stacklevel=2,
            )
        squared = _pairwise(x, top, progress)
    else:
        centred = x - x.mean(axis=0)
        if top < n_genes:
            spread = xp.mean(centred * centred, axis=0)
            keep = np.argsort(-np.asarray(to_host(spread)), kind="stable")[:top]
            centred = centred[:, xp.asarray(keep)]
        squared = _common(centred)
    # limma: dd + t(dd), then its rows' and columns' means removed
    full = squared + squared.T
    means = full.mean(axis=1)
    centred_distances = full - means[:, None] - means[None, :] + means.mean()
    values, vectors = scipy.linalg.eigh(-centred_distances / 2.0)
    values, vectors = values[::-1], vectors[:, ::-1]
    lam = np.maximum(values, 0.0)
    explained = lam / lam.sum()
    coordinates = vectors[:, :n_components] * np.sqrt(lam[:n_components])
    signs = np.sign(coordinates[np.argmax(np.abs(coordinates), axis=0), range(n_components)])
    coordinates = coordinates * np.where(signs == 0, 1.0, signs)
    result = xr.Dataset(
        {
            "embedding": (("sample", "dim"), coordinates),
            "eigenvalue": ("dim", values[:n_components]),
            "var_explained": ("dim", explained[:n_components]),
        },
        coords={"sample": data.sample_ids, "dim": [f"MDS{i + 1}" for i in range(n_components)]},
        attrs={
            "top": top,
            "gene_selection": gene_selection,
            "n_genes": n_genes,
            "transform": transform,
        },
    )
    for name in data.sample_variables():
        result[name] = ("sample", np.asarray(data.dataset[name].values))  # type: ignore[index]
    return result


def _pairwise(x: Any, top: int, progress: bool | None) -> np.ndarray:
    """limma's pairwise distances: for i > j, the mean of the top squared differences.

    Returns
    -------
    ndarray of shape (n, n)
        Lower triangle filled, as limma's ``dd`` before ``dd + t(dd)``.
    """
    xp = namespace(x)
    n, n_genes = x.shape
    out = np.zeros((n, n))
    rows = max(1, _BLOCK_VALUES // n_genes)

    def row(i: int) -> None:
        for start in range(0, i, rows):
            stop = min(i, start + rows)
            difference = x[start:stop] - x[i]
            squared = difference * difference
            largest = xp.partition(squared, n_genes - top, axis=1)[:, n_genes - top :]
            out[i, start:stop] = np.asarray(to_host(largest.mean(axis=1)))

    bar = progress_bar(n - 1, "mds: pairwise distances", progress, unit="sample", delay=2.0)
    try:
        if xp is np:  # NumPy's partial sorts let go of the GIL: one row per core
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                for _ in pool.map(row, range(1, n)):
                    bar.update(1)
        else:  # a device runs one row's kernels at a time
            for i in range(1, n):
                row(i)
                bar.update(1)
    finally:
        bar.close()
    return out


def _common(x: Any) -> np.ndarray:
    """limma's common-genes distances (lower triangle): mean squared differences."""
    xp = namespace(x)
    n, n_genes = x.shape
    out = np.zeros((n, n))
    rows = max(1, _BLOCK_VALUES // n_genes)
    for i in range(1, n):
        for start in range(0, i, rows):
            stop = min(i, start + rows)
            difference = x[start:stop] - x[i]
            out[i, start:stop] = np.asarray(to_host(xp.mean(difference * difference, axis=1)))
    return out
