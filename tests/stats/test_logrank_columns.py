"""The log-rank tests' compiled CPU twin equals the xp body (which tests/survival holds to R)."""

from __future__ import annotations

import numpy as np
import pytest

from cohortex.stats._cox import RiskSets
from cohortex.stats._logrank import logrank_columns


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("strata", [True, False])
@pytest.mark.parametrize("missing", [True, False])
@pytest.mark.parametrize("quantile", [0.5, 0.3])
def test_compiled_columns_equal_the_xp_body(dtype, tied, strata, missing, quantile):
    rng = np.random.default_rng(5)
    n, genes = 300, 14
    time = np.ceil(rng.exponential(10, n)) if tied else rng.exponential(10, n)
    event = (rng.random(n) < 0.6).astype(float)
    risk = RiskSets.build(time, event, rng.integers(0, 3, n) if strata else None)
    x = rng.normal(size=(n, genes))
    x[:, 3] = np.round(x[:, 3])  # ties at the quantile go low
    x[:, 4] = 1.0  # no high sample: no variance, χ² NaN
    if missing:
        x[rng.random(x.shape) < 0.1] = np.nan
        x[:, 5] = np.nan  # a gene without a single value
        x[:-2, 6] = np.nan  # two values
    x = x.astype(dtype)
    compiled = logrank_columns(x, risk, quantile)
    body = logrank_columns(x, risk, quantile, compiled=False)
    assert sorted(compiled) == sorted(body)
    for name, expected in body.items():
        np.testing.assert_allclose(compiled[name], expected, rtol=1e-12, atol=1e-12, err_msg=name)
    assert np.isnan(compiled["chisq"][4])
    swapped = logrank_columns(x.astype(x.dtype.newbyteorder()), risk, quantile)  # big-endian
    for name, expected in compiled.items():
        np.testing.assert_array_equal(swapped[name], expected, err_msg=name)
    # the high group is above NumPy's (type-7) quantile of the gene's values; ties go low
    for g in range(genes):
        values = x[~np.isnan(x[:, g]), g].astype(np.float64)
        above = (values > np.quantile(values, quantile)).sum() if values.size else 0
        assert compiled["n_high"][g] == above
        assert compiled["n_valid"][g] == values.size
