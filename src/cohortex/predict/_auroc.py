"""The AUROC's confidence interval by DeLong's method (DeLong et al. 1988; the fast midrank
form of Sun & Xu 2014), as R's ``pROC::ci.auc(method = "delong")``."""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["auroc_interval"]


def auroc_interval(
    truth: np.ndarray, score: np.ndarray, confidence: float = 0.95
) -> tuple[float, float]:
    """DeLong interval of the AUROC of ``score`` for ``truth == 1`` (against 0).

    Parameters
    ----------
    truth : ndarray of shape (n,), 0/1
    score : ndarray of shape (n,)

    Returns
    -------
    (low, high), clipped to [0, 1]; NaN when a class has fewer than two samples.
    """
    positive, negative = score[truth == 1], score[truth == 0]
    m, n = positive.size, negative.size
    if m < 2 or n < 2:
        return (np.nan, np.nan)
    within_positive = stats.rankdata(positive)
    within_negative = stats.rankdata(negative)
    combined = stats.rankdata(np.concatenate([positive, negative]))
    auc = (combined[:m].sum() - m * (m + 1) / 2.0) / (m * n)
    v10 = (combined[:m] - within_positive) / n
    v01 = 1.0 - (combined[m:] - within_negative) / m
    se = np.sqrt(np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n)
    z = stats.norm.ppf((1.0 + confidence) / 2.0)
    return (float(max(0.0, auc - z * se)), float(min(1.0, auc + z * se)))
