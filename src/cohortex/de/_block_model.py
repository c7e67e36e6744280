"""Samples correlated within blocks: limma's ``duplicateCorrelation(block=)`` and the
generalised least squares of ``lmFit(block=, correlation=)`` (the maths is in
``stats._blocks``).

Both read the matrix one column of tiles per task (every sample of at most
:data:`TASK_GENES` genes), because a block's samples may lie anywhere among the rows; genes
with missing values are fitted one by one on their observed samples, as limma does.
"""

from __future__ import annotations

import warnings
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from .._backend import dask_on, namespace, resolve_device, to_host
from .._cohort import CohortLike, as_cohort_matrix, shared_docs
from .._errors import CohortexError, CohortexWarning
from ..stats._blocks import (
    BlockDesign,
    block_design,
    block_layout,
    block_reml,
    gls_basis,
    gls_block,
    reml_components,
    weighted_gls,
    weighted_reml_components,
    whiten,
)
from ._gene_columns import TASK_GENES, gene_columns
from ._least_squares import (
    LeastSquares,
    check_design,
    design_matrix,
    sample_codes,
    weights_for,
)

__all__ = [
    "block_least_squares",
    "duplicate_correlation",
]


@shared_docs
def duplicate_correlation(
    cohort: CohortLike,
    design: str | pd.DataFrame | np.ndarray,
    block: str | Any,
    *,
    weights: Any = None,
    trim: float = 0.15,
    device: str = "auto",
) -> xr.Dataset:
    """The correlation of samples within blocks, as limma's ``duplicateCorrelation(block=)``.

    Each gene's correlation is statmod's REML estimate (``mixedModel2Fit``, a random block
    effect); the consensus is ``tanh`` of the ``trim``-trimmed mean of their ``atanh``,
    after limma's bounds (at least ``1/(1 − largest block) + 0.01``, at most 0.99). Pass it
    to :func:`fit` as ``correlation`` with the same ``block``.

    Parameters
    ----------
    {cohort}
        NaN values are missing: such a gene is estimated on its observed samples.
    design : str, DataFrame or array of shape (n_samples, n_coefficients)
        As for :func:`fit`.
    block : str or array of shape (n_samples,)
        A sample variable naming each sample's block (a patient, a litter), or the labels.
    weights : array of shape (n_samples, n_genes) or (n_samples,), optional
        Precision weights, as for :func:`fit` (default: the cohort's ``weights`` variable,
        as a voom result has): statmod's fit with ``w``. A weight ≤ 0 leaves the
        observation out.
    trim : float, default 0.15
        Fraction trimmed from each end before the mean (R's ``mean(trim=)``).
    {device}

    Returns
    -------
    xarray.Dataset
        ``correlation(gene)`` (bounded as limma bounds it; NaN where a gene cannot be
        estimated); attrs ``consensus_correlation``, ``block``, ``trim``, ``formula``.

    Warns
    -----
    CohortexWarning
        When every block has one sample, or the design already holds the blocks: the
        correlation is then 0, as in limma.
    """
    if not (isinstance(trim, int | float) and 0 <= trim < 0.5):
        raise CohortexError(f"The 'trim' parameter must be in [0, 0.5); got {trim!r}.")
    device = resolve_device(device)
    data = as_cohort_matrix(cohort)
    n_samples, n_genes = data.matrix.shape
    x_design, names, formula = design_matrix(design, data.dataset, n_samples)
    check_design(x_design, names)
    codes, block_name = sample_codes(block, data, n_samples, "block")
    x = dask_on(data.matrix, device, (2048, TASK_GENES))
    given = weights_for(weights, data, x)
    attrs = {
        "block": block_name,
        "trim": float(trim),
        "formula": formula or "",
        "weighted": int(given is not None),
    }
    largest = int(np.bincount(codes).max())
    zero = _correlation_is_zero(x_design, codes, largest)
    if zero is not None:
        warnings.warn(zero, CohortexWarning, stacklevel=2)
        return _correlation_result(np.zeros(n_genes), 0.0, data.gene_ids, attrs)
    p = x_design.shape[1]
    n_blocks = int(codes.max()) + 1
    if not (n_samples > p + 2 and 1 < n_blocks < n_samples - 1):
        raise CohortexError(
            f"The correlation within blocks needs more than {p + 2} samples and between 2 and "
            f"{n_samples - 2} blocks; got {n_samples} samples in {n_blocks} blocks."
        )
    shared = block_design(x_design, codes)

    def per_block(y: Any, w: Any = None) -> dict[str, Any]:
        return {"rho": _block_correlations(y, w, shared, x_design, codes)}

    arrays = [x] if given is None else [x, given]
    rho = np.asarray(
        to_host(gene_columns(arrays, per_block, shared.layout.position)["rho"]), dtype=np.float64
    )
    low, high = 1.0 / (1.0 - largest) + 0.01, 0.99
    rho = np.clip(rho, low, high)  # NaN stays NaN
    estimated = rho[np.isfinite(rho)]
    if not estimated.size:
        raise CohortexError("No gene gave a correlation within blocks (too few observations).")
    consensus = float(np.tanh(stats.trim_mean(np.arctanh(estimated), trim)))
    return _correlation_result(rho, consensus, data.gene_ids, attrs)


def _correlation_result(
    rho: np.ndarray, consensus: float, genes: Any, attrs: dict[str, Any]
) -> xr.Dataset:
    return xr.Dataset(
        {"correlation": ("gene", rho)},
        coords={"gene": genes},
        attrs={"consensus_correlation": consensus, **attrs},
    )


def _correlation_is_zero(design: np.ndarray, codes: np.ndarray, largest: int) -> str | None:
    """limma's two cases of a correlation of zero, as its warning words them, or None."""
    if largest == 1:
        return "Blocks all of size 1: the correlation within blocks is 0."
    # limma: every block's indicator but the first's lies in the design's span; the squared
    # length of its part outside is m − |Q'z|²
    q, _ = np.linalg.qr(design)
    inside = np.zeros((int(codes.max()) + 1, design.shape[1]))
    np.add.at(inside, codes, q)  # Q'z of every block
    sizes = np.bincount(codes).astype(np.float64)
    outside = sizes - np.sum(inside * inside, axis=1)
    if np.all(outside[1:] < 1e-10 * sizes[1:]):
        return "The design already holds the blocks: the correlation within blocks is 0."
    return None


def _usable(y: Any, w: Any) -> Any:
    """Observations that count: a value, and a weight > 0 where there are weights."""
    xp = namespace(y)
    usable = ~xp.isnan(y)
    if w is not None:
        usable &= xp.isfinite(w) & (w > 0)
    return usable


def _block_correlations(
    ordered: Any, w: Any, shared: BlockDesign, design: np.ndarray, codes: np.ndarray
) -> Any:
    """Each gene's REML correlation (genes with missing values one by one).

    ``ordered`` and ``w``: arrays of shape (n_samples, g), float64, rows in the layout's
    order; ``w`` None without weights.
    """
    xp = namespace(ordered)
    complete = xp.all(_usable(ordered, w), axis=0)
    rho = xp.full(ordered.shape[1], xp.nan)
    columns = xp.flatnonzero(complete)
    if columns.size:
        y = ordered[:, columns]  # a copy: the genes with missing values are read below
        if shared.spans_constant:
            y -= y.mean(axis=0)
        if w is None:
            dy = reml_components(y, shared)
            residual, block = block_reml(dy, shared.d, shared.count)
        else:
            dy, d, count = weighted_reml_components(y, w[:, columns], shared.design, shared.layout)
            residual, block = block_reml(dy, d, count)
        with np.errstate(divide="ignore", invalid="ignore"):
            rho[columns] = block / (residual + block)
    position = shared.layout.position  # back to sample order
    for gene in np.flatnonzero(to_host(~complete)):
        k = int(gene)
        values = np.asarray(to_host(ordered[:, k]))[position]
        own_weights = None if w is None else np.asarray(to_host(w[:, k]))[position]
        rho[k] = _one_gene_correlation(values, own_weights, design, codes)
    return rho


def _one_gene_correlation(
    y: np.ndarray, weights: np.ndarray | None, design: np.ndarray, codes: np.ndarray
) -> float:
    observed = np.isfinite(y)
    if weights is not None:
        observed &= np.isfinite(weights) & (weights > 0)
    _, own_codes = np.unique(codes[observed], return_inverse=True)
    n_obs, n_blocks = int(observed.sum()), int(own_codes.max(initial=-1)) + 1
    p = design.shape[1]  # limma compares with the design's columns, estimable or not
    if not (n_obs > p + 2 and 1 < n_blocks < n_obs - 1):
        return float("nan")
    kept = _estimable_columns(design[observed])
    own = block_design(design[observed][:, kept], own_codes)
    values = y[observed][own.layout.order][:, None]
    if own.spans_constant:
        values = values - values.mean()
    if weights is None:
        residual, block = block_reml(reml_components(values, own), own.d, own.count)
    else:
        w = weights[observed][own.layout.order][:, None]
        residual, block = block_reml(*weighted_reml_components(values, w, own.design, own.layout))
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(block[0] / (residual[0] + block[0]))


def _estimable_columns(design: np.ndarray) -> list[int]:
    """The columns kept in order while they add rank (R's pivoting QR, tolerance 1e-7)."""
    kept: list[int] = []
    for j in range(design.shape[1]):
        trial = design[:, [*kept, j]]
        r = np.linalg.qr(trial, mode="r")
        diagonal = np.abs(np.diag(r))
        if diagonal[-1] > 1e-7 * max(diagonal.max(), 1e-300):
            kept.append(j)
    return kept


def block_least_squares(
    x: da.Array,
    design: np.ndarray,
    codes: np.ndarray,
    correlation: float,
    weights: da.Array | np.ndarray | None = None,
) -> LeastSquares:
    """Generalised least squares of every gene with the blocks' correlation (``gls.series``).

    ``weights``: precision weights in the chunks of ``x`` (a weight ≤ 0 leaves the
    observation out), or one positive, finite weight per sample (a host vector of shape
    (n_samples,), :func:`sample_weights_of`): then, as limma, the genes without missing values
    share one whitened design. Per gene ``coefficient_sd`` and ``df_residual`` when genes have
    missing values or the weights are per observation; ``unscaled_cov`` is limma's
    ``cov.coefficients``: ``(X'V⁻¹X)⁻¹``, with the sample weights in V on the shared path.
    """
    shared = block_design(design, codes)
    ones = np.ones(design.shape[0])
    shift_back, *_ = np.linalg.lstsq(design, ones, rcond=None)
    shifted = bool(np.allclose(design @ shift_back, ones, atol=1e-8))
    per_sample = weights if isinstance(weights, np.ndarray) else None
    root = None if per_sample is None else np.sqrt(per_sample)[shared.layout.order]
    basis = gls_basis(shared, correlation, root)
    p = design.shape[1]
    full_sd = np.sqrt(np.sum(basis[1] * basis[1], axis=1))  # diag(R⁻¹R⁻ᵀ)
    position = shared.layout.position  # back to sample order

    def per_block(y: Any, w: Any = None) -> dict[str, Any]:
        """``y`` (and ``w``): (n_samples × g) float64, rows in the layout's order."""
        xp = namespace(y)
        missing = xp.sum(xp.isnan(y), axis=0)
        complete = xp.all(_usable(y, w), axis=0)
        everything = bool(xp.all(complete))  # the usual case: no copy, no masks
        if bool(xp.all(missing == 0)):
            average = y.mean(axis=0)
        else:
            with np.errstate(invalid="ignore"):  # a gene without a value: NaN, as limma's NA
                average = xp.nansum(y, axis=0) / (y.shape[0] - missing)
        out = {
            "beta": xp.full((p, y.shape[1]), xp.nan),
            "sd": xp.asarray(np.repeat(full_sd[:, None], y.shape[1], axis=1)),
            "rss": xp.full(y.shape[1], xp.nan),
            "df": xp.full(y.shape[1], float(design.shape[0] - p)),
            "average": average,
        }
        columns = xp.flatnonzero(complete)
        if columns.size:
            level = average[columns] if shifted else xp.zeros(columns.size)
            ordered = y if everything else y[:, columns]  # y itself only when not read again
            ordered -= level[None, :]
            if w is None:
                if root is not None:
                    ordered *= xp.asarray(root)[:, None]
                beta, rss = gls_block(ordered, shared, correlation, basis)
            else:
                own = w if everything else w[:, columns]
                beta, sd, rss = weighted_gls(
                    ordered, own, shared.design, shared.layout, correlation
                )
                out["sd"][:, columns] = sd
            if shifted:  # X e = 1: the level goes back onto the coefficients
                beta = beta + xp.asarray(shift_back)[:, None] * level[None, :]
            out["beta"][:, columns] = beta
            out["rss"][columns] = rss
        for gene in np.flatnonzero(to_host(~complete)):
            k = int(gene)
            own_weights = per_sample if w is None else np.asarray(to_host(w[:, k]))[position]
            beta_k, sd_k, rss_k, df_k = _one_gene_gls(
                np.asarray(to_host(y[:, k]))[position], own_weights, design, codes, correlation
            )
            out["beta"][:, k] = xp.asarray(beta_k)
            out["sd"][:, k] = xp.asarray(sd_k)
            out["rss"][k], out["df"][k] = rss_k, df_k
        return out

    observation_weights = weights if isinstance(weights, da.Array) else None
    arrays = [x] if observation_weights is None else [x, observation_weights]
    columns = gene_columns(arrays, per_block, shared.layout.position)
    xp = namespace(columns["beta"])
    df = columns["df"]
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = xp.where(df > 0, columns["rss"] / df, xp.nan)
    shared_path = observation_weights is None and not bool(
        to_host(xp.any(df != design.shape[0] - p))
    )
    # limma's gls.series: the sample weights' whitened design when every gene shares it,
    # else the unweighted one (the genes' own fits carry their weights in coefficient_sd)
    unscaled = basis[1] if shared_path else gls_basis(shared, correlation)[1]
    return LeastSquares(
        beta=columns["beta"],
        coefficient_sd=None if shared_path else columns["sd"],
        s2=s2,
        df_residual=float(design.shape[0] - p) if shared_path else np.asarray(to_host(df)),
        average=columns["average"],
        unscaled_cov=unscaled @ unscaled.T,
    )


def _one_gene_gls(
    y: np.ndarray,
    weights: np.ndarray | None,
    design: np.ndarray,
    codes: np.ndarray,
    correlation: float,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """One gene on its observed samples: coefficients and their unscaled sd (NaN where not
    estimable), the whitened RSS and the residual df."""
    p = design.shape[1]
    beta, sd = np.full(p, np.nan), np.full(p, np.nan)
    observed = np.isfinite(y)
    if weights is not None:
        observed &= np.isfinite(weights) & (weights > 0)
    if not observed.any():
        return beta, sd, float("nan"), 0.0
    _, own_codes = np.unique(codes[observed], return_inverse=True)
    layout = block_layout(own_codes)
    root = np.ones(int(observed.sum())) if weights is None else np.sqrt(weights[observed])
    root = root[layout.order][:, None]
    wx = whiten(root * design[observed][layout.order], layout, correlation)
    wy = whiten(root * y[observed][layout.order][:, None], layout, correlation)[:, 0]
    kept = _estimable_columns(wx)
    if not kept:  # the design is zero on every observed sample
        return beta, sd, float("nan"), float(observed.sum())
    q, r = np.linalg.qr(wx[:, kept])
    coefficients = np.linalg.solve(r, q.T @ wy)
    residual = wy - q @ (q.T @ wy)
    r_inverse = np.linalg.inv(r)
    beta[kept] = coefficients
    sd[kept] = np.sqrt(np.sum(r_inverse * r_inverse, axis=1))
    df = float(observed.sum() - len(kept))
    return beta, sd, float(residual @ residual) if df > 0 else float("nan"), df
