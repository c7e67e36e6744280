"""DESeq2's dispersion prior variance by simulation (``estimateDispersionsPriorVar`` when the
design leaves one to three residual degrees of freedom).

With so few degrees of freedom the gene-wise log dispersions' scatter about the trend is
skewed, and its MAD estimates the prior's variance poorly. DESeq2 then matches distributions
instead: for each candidate variance σ² on 200 points from 0 to 8 it draws 10,000 values of
log(χ²_df) + N(0, σ²) − log(df) (R's streams after ``set.seed(2)``), bins them and the observed
log residuals into half-unit bins on (−10, 10), and takes the Kullback–Leibler divergence of
the simulated density from the observed one. A loess (span 0.2) smooths the 200 divergences,
and the variance is its minimum on 1,000 points from 0 to 8, at least 0.25.

Every step is R's: the draws bit for bit (:class:`RRandom`), ``hist``'s bins (their edges
moved by 10⁻⁷ of the bin width), the logs from the C library, ``loess``'s fit to rounding.
"""

from __future__ import annotations

import math

import numpy as np

from .._errors import CohortexError
from .._jit import njit
from ._loess import loess
from ._r_random import RRandom

__all__ = ["simulated_prior_variance"]

_SEED = 2  # set.seed(2), as DESeq2 sets it
_DRAWS = 10_000
_BREAKS = np.arange(-20, 21) / 2.0  # -20:20/2
# hist(right = TRUE, include.lowest = TRUE) moves the edges by 1e-7 of the median bin width
_FUZZY_BREAKS = _BREAKS + np.concatenate([[-5e-8], np.full(_BREAKS.size - 1, 5e-8)])


def simulated_prior_variance(log_residuals: np.ndarray, residual_df: int) -> float:
    """DESeq2's ``dispPriorVar`` for 1 ≤ ``residual_df`` ≤ 3.

    Parameters
    ----------
    log_residuals : ndarray, shape (g,)
        log(dispGeneEst) − log(dispFit) of the genes with counts whose gene-wise
        dispersion is at least 10⁻⁶.
    residual_df : int
        Samples minus the design's coefficients.

    Returns
    -------
    float
    """
    if not 1 <= residual_df <= 3:
        raise CohortexError(
            f"The simulated prior variance is DESeq2's for 1 to 3 residual degrees of "
            f"freedom; got {residual_df}."
        )
    observed = log_residuals[(log_residuals > _BREAKS[0]) & (log_residuals < _BREAKS[-1])]
    if observed.size == 0:
        raise CohortexError(
            "No gene's log dispersion lies within 10 of the trend: the dispersion prior's "
            "variance cannot be matched."
        )
    observed_density = _density(observed)
    rng = RRandom(_SEED)
    grid = _r_seq(8.0, 200)
    log_df = math.log(residual_df)
    divergence = np.empty(grid.size)
    for i, variance in enumerate(grid):
        chisq = rng.chisq(_DRAWS, residual_df)  # R draws log(rchisq(...)) first
        drawn = _log_chisq_plus(chisq, rng.normals(_DRAWS, 0.0, math.sqrt(variance))) - log_df
        drawn_density = _density(drawn[(drawn > _BREAKS[0]) & (drawn < _BREAKS[-1])])
        both = np.concatenate([observed_density, drawn_density])
        small = both[both > 0].min()
        divergence[i] = _long_sum(
            observed_density * (_logs(observed_density + small) - _logs(drawn_density + small))
        )
    fine = _r_seq(8.0, 1000)
    fitted = loess(grid, divergence, span=0.2).predict(fine)
    return max(float(fine[np.argmin(fitted)]), 0.25)


def _density(values: np.ndarray) -> np.ndarray:
    """``hist(values, breaks = -20:20/2)$density``: shape (40,)."""
    counts = np.bincount(
        np.searchsorted(_FUZZY_BREAKS, values, side="left") - 1, minlength=_BREAKS.size - 1
    )
    return counts / (values.size * 0.5)


def _r_seq(to: float, length: int) -> np.ndarray:
    """``seq(0, to, length = length)``: seq.default's ``c(0, 1:(length - 2) * (to / (length -
    1)), to)``, which differs in the last bit from ``seq.int`` (``_spline.r_sequence``, filled
    from both ends) at a tenth of the points."""
    return np.concatenate([[0.0], np.arange(1, length - 1) * (to / (length - 1)), [to]])


@njit(nogil=True, cache=True)
def _log_chisq_plus(chisq: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """``log(chisq) + normal`` with the C library's log, as R's."""
    out = np.empty(chisq.size)
    for i in range(chisq.size):
        out[i] = math.log(chisq[i]) + normal[i]
    return out


@njit(nogil=True, cache=True)
def _logs(values: np.ndarray) -> np.ndarray:
    """The C library's log of each value, as R's."""
    out = np.empty(values.size)
    for i in range(values.size):
        out[i] = math.log(values[i])
    return out


def _long_sum(values: np.ndarray) -> float:
    """R's ``sum``: accumulated in long double, in order."""
    total = np.longdouble(0.0)
    for value in values:
        total += np.longdouble(value)
    return float(total)
