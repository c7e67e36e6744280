"""Storey's local false discovery rates — qvalue's ``lfdr`` and sva's ``edge.lfdr`` — and the R
``density`` they smooth.

Both packages estimate ``lfdr = π0 φ(x) / f(x)`` on the probit scale ``x = Φ⁻¹(p)``: R's Gaussian
kernel density of the x (``adjust = 1.5``) smoothed by R's GCV smoothing spline, truncated at 1
and made monotone in p. They differ only in π0 (qvalue: ``pi0est``; sva: λ = 0.8). Surrogate
variable analysis weighs each gene by the probability that it is affected by the
surrogate variables and not by the primary variables, both read off local FDRs of F-test
p-values. sva estimates them as Storey's ``edge.lfdr``: π0 from the p-values above λ = 0.8, the
probit-transformed p-values' density by R's Gaussian kernel density (``adjust = 1.5``) smoothed
by R's GCV smoothing spline, and ``π0 φ(x) / f(x)`` made monotone in p. Each step here is R's,
bit for bit where R's rounding decides a result (grid points, knot indices), so that sva's
surrogate variables are reproduced.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from .._errors import CohortexError
from ._spline import r_sequence, smooth_spline

__all__ = ["edge_lfdr", "gaussian_density", "local_fdr"]

_DENSITY_POINTS = 512  # R's density() default n (and its smallest FFT grid)


def gaussian_density(
    x: np.ndarray, *, adjust: float = 1.0, cut: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """R's ``density(x, adjust = adjust)``: Gaussian kernel, bandwidth ``bw.nrd0``, 512 points.

    The values are binned linearly onto 512 points spanning the data ± (cut + 4) bandwidths,
    convolved with the kernel by FFT and interpolated onto 512 points spanning the data
    ± cut bandwidths, as R does.

    Parameters
    ----------
    x : ndarray of shape (n,)
        At least two finite values.

    Returns
    -------
    grid, density : ndarray of shape (512,)
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size < 2 or not np.isfinite(x).all():
        raise CohortexError("gaussian_density needs at least two finite values.")
    bandwidth = adjust * _bw_nrd0(x)
    n = _DENSITY_POINTS
    start, stop = float(x.min()) - cut * bandwidth, float(x.max()) + cut * bandwidth
    lo, up = start - 4.0 * bandwidth, stop + 4.0 * bandwidth
    binned = _bin_dist(x, lo, up, n)  # (2n,)
    kernel_at = r_sequence(0.0, 2.0 * (up - lo), 2 * n)
    kernel_at[n + 1 :] = -kernel_at[n - 1 : 0 : -1]
    kernel = np.exp(-0.5 * (kernel_at / bandwidth) ** 2) / (np.sqrt(2.0 * np.pi) * bandwidth)
    convolved = np.fft.ifft(np.fft.fft(binned) * np.conj(np.fft.fft(kernel)))
    # R's inverse fft is unnormalised and divided by length(y) afterwards: numpy's ifft
    # already divides
    values = np.maximum(0.0, convolved.real[:n])
    at = r_sequence(lo, up, n)
    grid = r_sequence(start, stop, n)
    return grid, _approx(at, values, grid)


def edge_lfdr(
    pvalues: np.ndarray,
    *,
    lambda_: float = 0.8,
    adjust: float = 1.5,
    eps: float = 1e-8,
) -> np.ndarray:
    """sva's ``edge.lfdr(p)``: :func:`local_fdr` with ``π0 = min(1, #{p ≥ λ} / (m (1 − λ)))``.

    Parameters
    ----------
    pvalues : ndarray of shape (n,)
        At least four p-values in [0, 1].

    Returns
    -------
    ndarray of shape (n,)
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.size < 4 or not np.isfinite(p).all():
        raise CohortexError("edge_lfdr needs at least four finite p-values.")
    pi0 = min(float(np.mean(p >= lambda_)) / (1.0 - lambda_), 1.0)
    return local_fdr(p, pi0, adjust=adjust, eps=eps)


def local_fdr(
    pvalues: np.ndarray,
    pi0: float,
    *,
    adjust: float = 1.5,
    eps: float = 1e-8,
    truncate: bool = True,
    monotone: bool = True,
) -> np.ndarray:
    """``π0 φ(x) / f(x)`` at ``x = Φ⁻¹(p)`` (p clipped to [eps, 1 − eps]), as qvalue and sva.

    Parameters
    ----------
    pvalues : ndarray of shape (n,)
        At least four finite p-values.
    pi0 : float
    truncate : bool, default True
        Values above 1 set to 1.
    monotone : bool, default True
        A running maximum in increasing p (ties hold equal values).

    Returns
    -------
    ndarray of shape (n,)
        Where the smoothed density dips to or below zero R's quotient is kept as it comes
        (infinite becomes 1 by the truncation, negative stays negative, then the monotone step
        lifts it).
    """
    p = np.minimum(np.maximum(np.asarray(pvalues, dtype=np.float64), eps), 1.0 - eps)
    x = special.ndtri(p)
    grid, density = gaussian_density(x, adjust=adjust)
    fitted = smooth_spline(grid, density).predict(x)
    null = np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)
    with np.errstate(divide="ignore", invalid="ignore"):
        lfdr = pi0 * null / fitted
    if truncate:
        lfdr[lfdr > 1.0] = 1.0
    if not monotone:
        return lfdr
    order = np.argsort(p, kind="stable")
    # qvalue's cummax, sva's C "monotone": a running maximum (no NaN arises: φ(x) > 0)
    out = np.empty_like(lfdr)
    out[order] = np.maximum.accumulate(lfdr[order])
    return out


def _bw_nrd0(x: np.ndarray) -> float:
    """R's ``bw.nrd0``: 0.9 min(sd, IQR / 1.34) n^(−1/5), with R's fall-backs for zero."""
    sd = float(np.std(x, ddof=1))
    q25, q75 = np.quantile(x, [0.25, 0.75])
    low = min(sd, float(q75 - q25) / 1.34)
    if not low:
        low = sd or abs(float(x[0])) or 1.0
    return 0.9 * low * x.size ** (-0.2)


def _bin_dist(x: np.ndarray, lo: float, up: float, n: int) -> np.ndarray:
    """R's C ``BinDist``: linear binning of weights 1/len(x) onto n points, padded to 2n."""
    y = np.zeros(2 * n)
    weight = 1.0 / x.size
    delta = (up - lo) / (n - 1)
    position = (x - lo) / delta
    index = np.floor(position).astype(np.int64)
    fraction = position - index
    inside = (index >= 0) & (index <= n - 2)
    np.add.at(y, index[inside], weight * (1.0 - fraction[inside]))
    np.add.at(y, index[inside] + 1, weight * fraction[inside])
    np.add.at(y, np.zeros(int(np.sum(index == -1)), np.int64), weight * fraction[index == -1])
    last = index == n - 1
    np.add.at(y, index[last], weight * (1.0 - fraction[last]))
    return y


def _approx(xp: np.ndarray, fp: np.ndarray, at: np.ndarray) -> np.ndarray:
    """R's ``approx(xp, fp, at)$y`` inside the range, in R's order of operations."""
    j = np.clip(np.searchsorted(xp, at, side="right") - 1, 0, xp.size - 2)
    exact = at == xp[j]
    with np.errstate(invalid="ignore"):
        out = fp[j] + (fp[j + 1] - fp[j]) * ((at - xp[j]) / (xp[j + 1] - xp[j]))
    return np.where(exact, fp[j], out)
