"""edgeR's normalisation factors for blocks of samples, on ``xp`` (``calcNormFactors``).

Every function takes a block of samples (rows) × the genes that are not zero in every
sample (edgeR drops those first) and returns one value per sample; the caller combines the
blocks and scales the factors to a geometric mean of 1, as edgeR does.

TMM (Robinson & Oshlack 2010, ``.calcFactorTMM``): against a reference sample, with
``M = log2((x/N) / (r/R))``, ``A = (log2(x/N) + log2(r/R)) / 2`` and the delta-method variance
``v = (N − x)/(N x) + (R − r)/(R r)`` over the genes where M and A are finite, trim the genes
whose rank of M is outside ``[⌊0.3 n⌋ + 1, n − ⌊0.3 n⌋]`` or whose rank of A is outside
``[⌊0.05 n⌋ + 1, n − ⌊0.05 n⌋]`` (average ranks, as R's ``rank``), and take
``2^(Σ M/v / Σ 1/v)`` over the rest; 1 when every |M| < 1e-6.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import namespace
from ._ranks import average_ranks

__all__ = ["rle_ratios", "tmm_factors", "upper_quartiles"]


def upper_quartiles(block: Any, quantile: float = 0.75, *, compiled: bool = True) -> Any:
    """Each sample's ``quantile`` of its counts (R's default type 7), shape (rows,).

    NumPy blocks go through the compiled selection of ``_cpu.tmm`` (no sort, no float64
    copy of the block) unless ``compiled`` is False; this ``xp`` body is the GPU path.
    """
    xp = namespace(block)
    if compiled and xp is np:
        from ._cpu.tmm import upper_quartiles as compiled_quartiles  # numba: CPU only

        return compiled_quartiles(np.asarray(block), quantile)
    return xp.quantile(block.astype(xp.float64), quantile, axis=1)


def rle_ratios(block: Any, log_geomeans: Any) -> Any:
    """edgeR's ``.calcFactorRLE``: per sample, the median of ``x / g`` over the genes whose
    geometric mean ``g`` is positive (``log_geomeans`` finite), shape (rows,)."""
    xp = namespace(block)
    usable = xp.isfinite(log_geomeans)
    ratios = block[:, usable].astype(xp.float64) / xp.exp(log_geomeans[usable])[None, :]
    return xp.median(ratios, axis=1)


def tmm_factors(
    block: Any,
    library: Any,
    reference: Any,
    reference_library: float,
    *,
    logratio_trim: float = 0.3,
    sum_trim: float = 0.05,
    weighting: bool = True,
    compiled: bool = True,
) -> Any:
    """TMM factor of every sample of ``block`` against ``reference`` (see the module notes).

    Parameters
    ----------
    block : array of shape (rows, genes)
        Counts of some samples.
    library : array of shape (rows,)
        Their library sizes.
    reference : array of shape (genes,)
        The reference sample's counts; ``reference_library`` its library size.

    Returns
    -------
    array of shape (rows,), float64
        Factors before the scaling to a geometric mean of 1.

    NumPy blocks go through the compiled loop of ``_cpu.tmm`` (no sort) unless ``compiled``
    is False; this ``xp`` body is the reference and the GPU path.
    """
    xp = namespace(block)
    if compiled and xp is np:
        from ._cpu.tmm import tmm_factors as compiled_factors  # numba: CPU only

        return compiled_factors(
            np.asarray(block),
            np.asarray(library),
            np.asarray(reference),
            reference_library,
            logratio_trim=logratio_trim,
            sum_trim=sum_trim,
            weighting=weighting,
        )
    obs = block.astype(xp.float64)
    ref = reference.astype(xp.float64)[None, :]
    n_obs = library.astype(xp.float64)[:, None]
    n_ref = float(reference_library)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = xp.log2((obs / n_obs) / (ref / n_ref))
        abundance = (xp.log2(obs / n_obs) + xp.log2(ref / n_ref)) / 2.0
        variance = (n_obs - obs) / n_obs / obs + (n_ref - ref) / n_ref / ref
    finite = xp.isfinite(log_ratio) & xp.isfinite(abundance) & (abundance > -1e10)
    n = xp.sum(finite, axis=1).astype(xp.float64)[:, None]
    low_m = xp.floor(n * logratio_trim) + 1.0
    low_a = xp.floor(n * sum_trim) + 1.0
    rank_m, _, _ = average_ranks(xp.where(finite, log_ratio, xp.nan))
    rank_a, _, _ = average_ranks(xp.where(finite, abundance, xp.nan))
    keep = (
        finite
        & (rank_m >= low_m)
        & (rank_m <= n + 1.0 - low_m)
        & (rank_a >= low_a)
        & (rank_a <= n + 1.0 - low_a)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        if weighting:  # R's sum(..., na.rm = TRUE): NaN terms are left out
            top = xp.where(keep, log_ratio / variance, 0.0)
            bottom = xp.where(keep, 1.0 / variance, 0.0)
            factor = xp.sum(xp.where(xp.isnan(top), 0.0, top), axis=1) / xp.sum(
                xp.where(xp.isnan(bottom), 0.0, bottom), axis=1
            )
        else:
            factor = xp.sum(xp.where(keep, log_ratio, 0.0), axis=1) / xp.sum(keep, axis=1)
    factor = xp.where(xp.isnan(factor), 0.0, factor)
    largest = xp.max(xp.where(finite, xp.abs(log_ratio), 0.0), axis=1)
    factor = xp.where(largest < 1e-6, 0.0, factor)  # edgeR returns 1 = 2⁰ here
    return 2.0**factor
