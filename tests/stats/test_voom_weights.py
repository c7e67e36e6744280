"""voom's compiled weights (``stats._cpu.voom``) against the ``xp`` formula with NumPy's
``interp``: values on, between and beyond the knots of trends of many shapes and sizes."""

from __future__ import annotations

import numpy as np
import pytest

from cohortex.stats._cpu.voom import voom_weights


def _expected(design, beta, log_offset, knots_x, knots_y):
    log_count = design @ beta + log_offset[:, None]
    return 1.0 / np.interp(log_count, knots_x, knots_y) ** 4


@pytest.mark.parametrize("n_knots", [1, 2, 3, 40, 120, 5000])
def test_compiled_weights_equal_interp(n_knots):
    rng = np.random.default_rng(n_knots)
    knots_x = np.cumsum(rng.exponential(1.0, n_knots) * rng.choice([1e-3, 1.0], n_knots))
    knots_x -= knots_x.mean()  # uneven gaps: several knots in one cell of the table
    knots_y = rng.uniform(0.5, 2.0, n_knots)
    design = np.column_stack([np.ones(50), rng.integers(0, 2, 50)])
    beta = rng.uniform(knots_x[0] - 1, knots_x[-1] + 1, (2, 400)) * [[1.0], [0.1]]
    log_offset = rng.normal(0, 0.3, 50)
    log_offset[:3] = 0.0
    beta[0, :n_knots] = knots_x[:400]  # exactly on a knot in the rows with offset 0
    beta[1, :n_knots] = 0.0
    got = voom_weights(design, beta, log_offset, knots_x, knots_y)
    want = _expected(design, beta, log_offset, knots_x, knots_y)
    np.testing.assert_allclose(got, want, rtol=1e-13)
    if n_knots > 1:
        assert np.ptp(got) > 0.5
