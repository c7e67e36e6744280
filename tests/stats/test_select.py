"""The compiled selection of order statistics (``stats._cpu.select``) against sorting: its
reordering, and R's type-7 quantile computed from the sorted values as R computes it."""

from __future__ import annotations

import numpy as np
import pytest

from cohortex.stats._cpu.select import quantile_type7, select


@pytest.mark.parametrize(
    "pattern", ["normal", "counts", "sorted", "reversed", "constant", "organ pipe", "two values"]
)
def test_select_finds_the_order_statistic_and_splits_around_it(pattern):
    rng = np.random.default_rng(11)
    for n in [*range(1, 40), 1000, 4097]:
        values = {
            "normal": rng.normal(size=n),
            "counts": rng.poisson(0.5, n).astype(float),
            "sorted": np.sort(rng.normal(size=n)),
            "reversed": -np.sort(rng.normal(size=n)),
            "constant": np.full(n, 2.5),
            "organ pipe": np.concatenate([np.arange(n // 2), np.arange(n - n // 2)[::-1]]) * 1.0,
            "two values": rng.integers(0, 2, n) * 1.0,
        }[pattern]
        ordered = np.sort(values)
        for k in {0, n // 3, n // 2, n - 1}:
            work = values.copy()
            assert select(work, k) == ordered[k]
            assert np.array_equal(np.sort(work), ordered)  # a reordering
            assert (work[:k] <= work[k]).all() and (work[k + 1 :] >= work[k]).all()


@pytest.mark.parametrize("quantile", [0.0, 0.25, 0.5, 0.75, 0.9, 1.0])
def test_quantile_type7_is_r_quantile(quantile):
    rng = np.random.default_rng(3)
    for n in [1, 2, 3, 4, 5, 17, 1000, 4097]:
        for values in (rng.normal(size=n), rng.poisson(3.0, n) * 1.0, np.full(n, 7.0)):
            ordered = np.sort(values)
            # R's quantile.default: x[lo] + h (x[hi] − x[lo]) as (1 − h) x[lo] + h x[hi],
            # and x[lo] itself where the next order statistic equals it
            index = quantile * (n - 1)
            lo = int(np.floor(index))
            hi = min(lo + 1, n - 1)
            h = index - lo
            expected = ordered[lo]
            if ordered[hi] != ordered[lo]:
                expected = (1 - h) * ordered[lo] + h * ordered[hi]
            work = values.copy()
            assert quantile_type7(work, quantile) == expected
            assert np.array_equal(np.sort(work), ordered)
            np.testing.assert_allclose(expected, np.quantile(values, quantile), rtol=1e-15)
