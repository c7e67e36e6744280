"""edgeR's ``glmTreat``: negative-binomial tests of the log fold change against a threshold.

Each contrast is made a coefficient of the design (limma's ``contrastAsCoef``); the genes are
fitted with and without it at offsets moved by ± the threshold along it, and the two
likelihood-ratio drops, as z-scores, give the p-value of |log2 FC| > threshold under
McCarthy & Smyth's (2009) "interval" null (or the "worst case" of a fold change at the
threshold itself).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special, stats

from ..stats._householder import contrast_as_coefficient
from ..stats._negative_binomial import nb_glm_fit

__all__ = ["TREAT_NULLS", "TreatDesign", "treat_designs", "treat_log_pvalues", "treat_tile"]

TREAT_NULLS = ("interval", "worst.case")
_INTERVAL = 1.470402  # edgeR's c: the interval null's width in z


class TreatDesign:
    """One contrast as the last coefficient of the design: the full and the null design and
    the offsets' shift, log(2) · threshold times the contrast's column.

    Parameters
    ----------
    design : ndarray of shape (n_samples, p)
    contrast : ndarray of shape (p,)
    lfc : float
        The threshold, in log2 units.
    """

    def __init__(self, design: np.ndarray, contrast: np.ndarray, lfc: float) -> None:
        unit = np.flatnonzero(contrast)
        if unit.size == 1 and contrast[unit[0]] == 1.0:  # glmTreat(coef = j)
            column = design[:, unit[0]]
            self.null = np.ascontiguousarray(np.delete(design, unit[0], axis=1))
            self.full = design
        else:  # glmTreat(contrast = c): contrastAsCoef
            self.full = contrast_as_coefficient(design, contrast)
            column = self.full[:, -1]
            self.null = np.ascontiguousarray(self.full[:, :-1])
        self.shift = lfc * np.log(2.0) * column


def treat_designs(design: np.ndarray, contrasts: np.ndarray, lfc: float) -> list[TreatDesign]:
    """:class:`TreatDesign` of each column of ``contrasts`` (p × k)."""
    return [TreatDesign(design, contrasts[:, k], lfc) for k in range(contrasts.shape[1])]


def treat_tile(
    tile: np.ndarray, dispersion: np.ndarray, offsets: np.ndarray, designs: list[TreatDesign]
) -> np.ndarray:
    """The square roots of the deviance drops at the offsets moved up and down, the smaller
    first: rows 2k and 2k + 1 for contrast k (2 · contrasts × genes)."""
    rows = []
    for d in designs:
        drops = []
        shift = d.shift if offsets.ndim == 1 else d.shift[:, None]  # a tile's own offsets
        for shifted in (offsets + shift, offsets - shift):
            null = nb_glm_fit(tile, d.null, shifted, dispersion).deviance
            full = nb_glm_fit(tile, d.full, shifted, dispersion).deviance
            drops.append(np.sqrt(np.maximum(null - full, 0.0)))
        rows.extend([np.minimum(*drops), np.maximum(*drops)])
    return np.vstack(rows)


def treat_log_pvalues(
    z: np.ndarray,
    unshrunk_lfc: np.ndarray,
    lfc: float,
    null: str,
    quasi: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """glmTreat's p-values (natural log; contrasts × genes).

    Parameters
    ----------
    z : ndarray of shape (2 · contrasts, n_genes)
        :func:`treat_tile`'s rows.
    unshrunk_lfc : ndarray of shape (contrasts, n_genes)
        The contrasts' log2 fold changes without prior counts.
    lfc : float
    null : {"interval", "worst.case"}
    quasi : (s2_post, df_total), optional
        After glmQLFit: each z is scaled by the QL dispersion's root and taken to the normal
        quantile of its t on ``df_total`` (limma's ``zscoreT``).
    """
    left, right = z[0::2], z[1::2]
    if quasi is not None:
        s2_post, df_total = quasi
        scale = np.sqrt(s2_post)[None, :]
        left, right = _zscore_t(left / scale, df_total), _zscore_t(right / scale, df_total)
    within = np.abs(unshrunk_lfc) <= lfc
    left = np.where(within, left, -left)
    if null == "worst.case":
        return np.logaddexp(special.log_ndtr(-right), special.log_ndtr(left))
    inside = right + left > _INTERVAL
    with np.errstate(invalid="ignore", divide="ignore"):
        apart = np.logaddexp(
            _log_mean_cdf(-right, -right + _INTERVAL), _log_mean_cdf(left - _INTERVAL, left)
        )
        close = np.log(2.0) + _log_mean_cdf(-right, left)
    log_p = np.where(inside, apart, close)
    log_p = np.minimum(log_p, 0.0)  # the two means of Φ can add up to a rounding above 1
    return np.where(np.isnan(right + left), 0.0, log_p)  # edgeR's p of 1 where z is NA


def _zscore_t(t: np.ndarray, df: Any) -> np.ndarray:
    """limma's ``zscoreT`` (its default, the exact quantile): the normal deviate with the
    t's upper tail on ``df`` degrees of freedom, in log space."""
    log_tail = stats.t.logsf(np.abs(t), df)
    return -special.ndtri_exp(log_tail) * np.sign(t)


def _log_mean_cdf(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log of the mean of Φ over [a, b] (edgeR's ``.integratepnorm``), without its
    cancellation in the lower tail: ∫Φ = G(b) − G(a) with G(x) = xΦ(x) + φ(x), and
    G(x) = φ(x) (1 − t R(t)) for x = −t < 0, R Mills' ratio (``erfcx``)."""
    log_b, log_a = _log_g(b), _log_g(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        difference = log_b + np.log1p(-np.exp(log_a - log_b)) - np.log(b - a)
    return np.where(a == b, special.log_ndtr(a), difference)


def _log_g(x: np.ndarray) -> np.ndarray:
    """log G(x), G(x) = xΦ(x) + φ(x) (the integral of Φ up to x)."""
    t = np.maximum(-x, 0.0)
    mills = np.sqrt(np.pi / 2.0) * special.erfcx(t / np.sqrt(2.0))
    # 1 − t R(t) cancels for large t, where its series 1/t² − 3/t⁴ + 15/t⁶ is exact enough
    with np.errstate(divide="ignore", invalid="ignore"):
        series = (1.0 - 3.0 / t**2 + 15.0 / t**4) / t**2
        gap = np.where(t > 1e3, series, 1.0 - t * mills)
        lower = -0.5 * x * x - 0.5 * np.log(2.0 * np.pi) + np.log(gap)
        upper = np.log(x * special.ndtr(x) + np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi))
    return np.where(x < 0, lower, upper)
