"""WGCNA's ``pickSoftThreshold``: how close to scale-free the network is at each power."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .._backend import to_host
from .._cohort import CohortLike, shared_docs
from .._constants import NETWORK_TYPES
from .._errors import CohortexError
from ..stats._network import connectivities
from ..stats._spline import r_sequence
from ._data import GeneNetwork, check_choice, check_memory

__all__ = [
    "DEFAULT_POWERS",
    "faq_power",
    "fit_table",
    "fit_table_from_columns",
    "scale_free_fit",
    "soft_threshold",
]

DEFAULT_POWERS = (*range(1, 11), *range(12, 21, 2))  # pickSoftThreshold's powerVector
_ROWS_VALUES = 1 << 17  # correlations of a block of genes worked on at a time: 1 MB
_PRODUCT_VALUES = 1 << 22  # a block of rows of correlations made by one product: 32 MB


@shared_docs
def soft_threshold(
    cohort: CohortLike,
    *,
    powers: Sequence[float] = DEFAULT_POWERS,
    network: str = "unsigned",
    r2_cut: float = 0.85,
    n_breaks: int = 10,
    genes: int | None = None,
    correlation_type: str = "pearson",
    max_p_outliers: float = 1.0,
    device: str = "auto",
    progress: bool | None = None,
) -> xr.Dataset:
    """The scale-free fit of the co-expression network at each power, as WGCNA's
    ``pickSoftThreshold(datExpr, powerVector, networkType, RsquaredCut, nBreaks)``.

    Parameters
    ----------
    {cohort}
        Log-scale values (a counts cohort is first made edgeR's log-CPM with TMM factors);
        genes that do not vary are left out, infinite values refused. Missing values (NaN)
        are taken: each pair of genes is correlated over the samples both have (``cor(use =
        "p")``, WGCNA's default; bicor's medians and Spearman's ranks those samples'); genes
        missing in half the
        samples or more (or present in fewer than 4) are left out, and samples missing half
        of the genes refused, as WGCNA's ``goodSamplesGenes``.
    powers : sequence of float, default 1 … 10, 12 … 20
        The soft thresholds β tried.
    network : {{"unsigned", "signed", "signed hybrid"}}, default "unsigned"
        Adjacency ``|c|^β``, ``((1 + c) / 2)^β``, or ``c^β`` for ``c > 0`` (else 0).
    r2_cut : float, default 0.85
        The estimate is the lowest power whose fit R² exceeds it (WGCNA's ``RsquaredCut``).
    n_breaks : int, default 10
        Bins of the connectivities' distribution.
    genes : int, optional
        Only the ``genes`` most variable genes (all that vary by default).
    correlation_type : {{"pearson", "bicor", "spearman"}}, default "pearson"
        WGCNA's ``corFnc``: Pearson's correlation, the biweight midcorrelation (robust to
        outlying samples; a gene whose median absolute deviation is 0 falls back to Pearson's),
        or Spearman's (``corOptions = list(method = "spearman")``: ranks, ties their mean).
    max_p_outliers : float, default 1
        bicor's ``maxPOutliers``: at most this share of each side's samples is treated as
        outlying (1: no cap; WGCNA's FAQ suggests 0.05 or 0.1).
    {device}
    progress : bool, optional

    Returns
    -------
    xarray.Dataset
        On ``power``: ``r2`` (WGCNA's ``SFT.R.sq``), ``slope``, ``signed_r2`` (``-sign(slope)
        · r2``, what WGCNA's tutorial plots), ``truncated_r2``, ``mean_k``, ``median_k``,
        ``max_k``, ``density``, ``centralization``, ``heterogeneity``. Attrs:
        ``power_estimate`` (0 where no power reaches ``r2_cut``: WGCNA's NA), ``network``,
        ``r2_cut``, ``correlation_type``, ``max_p_outliers``, ``n_genes``,
        ``n_genes_constant``, ``n_genes_missing`` (left out for missing values),
        ``missing_share`` (of the used genes' values), ``n_samples``, ``transform``.

    Notes
    -----
    Agreement with WGCNA 1.72 (tests/network/test_soft_threshold.py): 1e-10. With fewer
    samples than genes the genes are held in memory (samples × genes) and the correlations
    made a block of rows at a time, as R's ``blockSize``: no genes × genes matrix, so all genes
    of a cohort fit; otherwise the genes × genes matrix is formed from a pass over the samples.
    """
    check_choice("soft_threshold", "network", network, NETWORK_TYPES)
    powers = _check_powers(powers)
    data = GeneNetwork.build(
        cohort,
        genes=genes,
        device=device,
        progress=progress,
        who="soft_threshold",
        correlation=False,
        correlation_type=correlation_type,
        max_p_outliers=max_p_outliers,
    )
    if data.missing and data.n_samples < data.n_genes:  # R's blockSize, pair by pair
        table = fit_table_from_rows(
            lambda start, stop: data.cross_correlation(np.arange(start, stop)),
            data.n_genes,
            max(1, _PRODUCT_VALUES // data.n_genes),
            powers,
            network,
            r2_cut,
            n_breaks,
        )
    elif data.n_samples < data.n_genes:  # the genes in memory are smaller than their matrix
        check_memory(
            "soft_threshold",
            8.0 * data.n_samples * data.n_genes * (1.0 if correlation_type == "pearson" else 2.0),
            f"holds {data.n_samples} samples × {data.n_genes} genes",
            "Take the most variable genes (genes=).",
        )
        table = fit_table_from_columns(data.prepared(), powers, network, r2_cut, n_breaks)
    else:
        table = fit_table(data.compute_correlation(), powers, network, r2_cut, n_breaks)
    table.attrs.update(
        n_genes=data.n_genes,
        n_genes_constant=data.n_constant,
        n_genes_missing=data.n_sparse,
        missing_share=data.missing_share,
        n_samples=data.n_samples,
        transform=data.transform,
        correlation_type=correlation_type,
        max_p_outliers=float(max_p_outliers),
    )
    return table


def _check_powers(powers: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(p) for p in powers)
    if not values or any(not np.isfinite(p) or p <= 0 for p in values):
        raise CohortexError(
            f"The 'powers' parameter must be positive numbers; got {list(powers)!r}."
        )
    return tuple(sorted(set(values)))


def fit_table(
    correlation: Any, powers: Sequence[float], network: str, r2_cut: float, n_breaks: int = 10
) -> xr.Dataset:
    """pickSoftThreshold's table from a correlation matrix (see :func:`soft_threshold`)."""
    n = correlation.shape[0]
    return fit_table_from_rows(
        lambda start, stop: correlation[start:stop],
        n,
        max(1, _ROWS_VALUES // n),
        powers,
        network,
        r2_cut,
        n_breaks,
    )


def fit_table_from_columns(
    columns: Any, powers: Sequence[float], network: str, r2_cut: float, n_breaks: int = 10
) -> xr.Dataset:
    """pickSoftThreshold's table from the genes as columns whose products are their
    correlations (``GeneNetwork.prepared``), a block of rows of the correlations at a time, as
    R's ``pickSoftThreshold(blockSize = )``: no genes × genes matrix is formed."""
    n = columns.shape[1]
    return fit_table_from_rows(
        lambda start, stop: columns[:, start:stop].T @ columns,
        n,
        max(1, _PRODUCT_VALUES // n),
        powers,
        network,
        r2_cut,
        n_breaks,
    )


def fit_table_from_rows(
    correlation_rows: Callable[[int, int], Any],
    n: int,
    rows: int,
    powers: Sequence[float],
    network: str,
    r2_cut: float,
    n_breaks: int = 10,
) -> xr.Dataset:
    """pickSoftThreshold's table from blocks of ``rows`` rows of the correlations of ``n``
    genes, ``correlation_rows(start, stop)`` each."""
    k = np.concatenate(
        [
            np.asarray(
                to_host(connectivities(correlation_rows(s, min(n, s + rows)), s, powers, network)),
                dtype=np.float64,
            )
            for s in range(0, n, rows)
        ]
    )
    return _table(k, powers, network, r2_cut, n_breaks)


def _table(
    k: np.ndarray, powers: Sequence[float], network: str, r2_cut: float, n_breaks: int
) -> xr.Dataset:
    """The table of :func:`soft_threshold` from the connectivities (n_genes, n_powers)."""
    n = k.shape[0]
    columns: dict[str, list[float]] = {
        name: []
        for name in (
            "r2",
            "slope",
            "truncated_r2",
            "mean_k",
            "median_k",
            "max_k",
            "density",
            "centralization",
            "heterogeneity",
        )
    }
    for i in range(len(powers)):
        ki = k[:, i]
        r2, slope, truncated = scale_free_fit(ki, n_breaks)
        total = ki.sum()
        columns["r2"].append(r2)
        columns["slope"].append(slope)
        columns["truncated_r2"].append(truncated)
        columns["mean_k"].append(float(np.mean(ki)))
        columns["median_k"].append(float(np.median(ki)))
        columns["max_k"].append(float(ki.max()))
        columns["density"].append(float(total / (n * (n - 1))))
        columns["centralization"].append(float(n * (ki.max() - ki.mean()) / ((n - 1) * (n - 2))))
        columns["heterogeneity"].append(float(np.sqrt(n * np.sum(ki * ki) / total**2 - 1)))
    above = np.flatnonzero(np.asarray(columns["r2"]) > r2_cut)
    table = xr.Dataset(
        {name: ("power", np.asarray(values)) for name, values in columns.items()},
        coords={"power": np.asarray(powers)},
        attrs={
            "power_estimate": float(powers[above[0]]) if above.size else 0.0,
            "network": network,
            "r2_cut": float(r2_cut),
        },
    )
    table["signed_r2"] = -np.sign(table["slope"]) * table["r2"]
    return table


def scale_free_fit(k: np.ndarray, n_breaks: int = 10) -> tuple[float, float, float]:
    """WGCNA's ``scaleFreeFitIndex(k, nBreaks)``: the fit of ``log10 p(k)`` on ``log10 k``.

    Parameters
    ----------
    k : ndarray of shape (n_genes,)
        Connectivities.

    Returns
    -------
    (r2, slope, truncated_r2)
        R² and slope of the linear fit, and the adjusted R² of the fit with ``k`` added
        (the truncated exponential).
    """
    lo, hi = float(k.min()), float(k.max())
    spread = hi - lo
    if spread == 0.0:  # R's cut() widens a constant range by its thousandth
        spread = abs(lo) if lo != 0 else 1.0
        breaks = r_sequence(lo - spread / 1000, hi + spread / 1000, n_breaks + 1)
    else:
        breaks = r_sequence(lo, hi, n_breaks + 1)
        breaks[[0, -1]] = lo - spread / 1000, hi + spread / 1000
    bins = np.searchsorted(breaks, k, side="left") - 1  # right-closed (b_i, b_i+1]
    counts = np.bincount(bins, minlength=n_breaks)[:n_breaks]
    sums = np.bincount(bins, weights=k, minlength=n_breaks)[:n_breaks]
    with np.errstate(invalid="ignore", divide="ignore"):
        dk = sums / counts
    edges = lo + np.arange(n_breaks + 1) * ((hi - lo) / n_breaks)  # R's seq(): hist's mids
    edges[-1] = hi
    mids = 0.5 * (edges[1:] + edges[:-1])
    dk = np.where(np.isnan(dk), mids, dk)
    dk = np.where(dk == 0, mids, dk)
    p_dk = counts / k.shape[0]
    log_dk = np.log10(dk)
    log_p = np.log10(p_dk + 1e-9)
    r2, slope = _linear_fit(log_p, np.column_stack([log_dk]))
    truncated, _ = _linear_fit(log_p, np.column_stack([log_dk, 10.0**log_dk]), adjusted=True)
    return r2, slope, truncated


def _linear_fit(y: np.ndarray, x: np.ndarray, adjusted: bool = False) -> tuple[float, float]:
    """R² (adjusted where asked) and first slope of ``lm(y ~ x)``."""
    design = np.column_stack([np.ones(y.shape[0]), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    centred = y - y.mean()
    r2 = 1.0 - float(residual @ residual) / float(centred @ centred)
    if adjusted:
        n, p = y.shape[0], x.shape[1]
        r2 = 1.0 - (1.0 - r2) * (n - 1) / (n - p - 1)
    return r2, float(coef[1])


def faq_power(n_samples: int, network: str) -> int:
    """The power WGCNA's FAQ advises where the scale-free fit reaches no cut: by sample count,
    doubled for signed networks."""
    if n_samples < 20:
        power = 9
    elif n_samples < 30:
        power = 8
    elif n_samples <= 40:
        power = 7
    else:
        power = 6
    return 2 * power if network == "signed" else power
