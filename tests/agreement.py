"""What the statistics tests share: the agreement check and a two-group cohort."""

from __future__ import annotations

import numpy as np


def close(actual, expected, rtol=1e-10):
    """Relative agreement, NaN where the reference is NaN."""
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0)


def two_groups(n=(40, 60), genes=30, seed=0, shift=0.5):
    """Normal values of two groups with unequal spread, rows shuffled.

    Returns
    -------
    x : ndarray, shape (n[0] + n[1], genes)
    labels : ndarray of str, shape (n[0] + n[1],)
        ``"a"`` (mean shifted by `shift`) or ``"b"``.
    """
    rng = np.random.default_rng(seed)
    a = rng.normal(5.0 + shift, 1.0, (n[0], genes))
    b = rng.normal(5.0, 1.5, (n[1], genes))
    x = np.concatenate([a, b])
    labels = np.array(["a"] * n[0] + ["b"] * n[1])
    order = rng.permutation(len(labels))
    return x[order], labels[order]


def tied_counts(n=(60, 90), genes=25, seed=20):
    """Integer counts with many zeros (heavy ties); group ``"a"`` is higher in the first 5 genes.

    Returns
    -------
    x : ndarray of float64, shape (n[0] + n[1], genes)
    labels : ndarray of str, shape (n[0] + n[1],)
    """
    rng = np.random.default_rng(seed)
    x = rng.negative_binomial(1, 0.6, (sum(n), genes)).astype(np.float64)
    labels = np.array(["a"] * n[0] + ["b"] * n[1])
    x[labels == "a", :5] += rng.poisson(2, (n[0], 5))
    order = rng.permutation(len(labels))
    return x[order], labels[order]
