"""loess in one dimension (cohortex.stats._loess) against R's loess() and predict()
(fixtures from tests/fixtures/make_deseq_fixtures.R)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohortex import CohortexError
from cohortex.stats._loess import loess

DESEQ = Path(__file__).parents[1] / "fixtures" / "deseq"


def test_quadratic_and_linear_fits_equal_rs():
    """span 0.2, degree 2 on 200 evenly spaced points (as DESeq2 calls it), and span 0.3,
    degree 1 on uneven points with 20 ties: R's k-d tree (the ties go with the upper half)
    and Hermite interpolation, predicted at 1,000 points; equal to rounding (the vertex
    fits' least squares are solved in another order)."""
    data = pd.read_csv(DESEQ / "loess_data.csv")
    fit = pd.read_csv(DESEQ / "loess_fit.csv")
    quadratic = loess(data["x"].to_numpy(), data["y"].to_numpy(), span=0.2)
    assert quadratic.vertices.size == 33  # 32 leaves of at most 8 points
    np.testing.assert_allclose(quadratic.predict(fit["new"]), fit["fit"], rtol=1e-12)
    linear = loess(data["x1"].to_numpy(), data["y1"].to_numpy(), span=0.3, degree=1)
    np.testing.assert_allclose(linear.predict(fit["new1"]), fit["fit1"], rtol=1e-12)


def test_outside_the_vertices_is_nan_and_bad_input_is_refused():
    x = np.linspace(0.0, 1.0, 50)
    fit = loess(x, x**2, span=0.5)
    inside = fit.predict(np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(inside, [0.0, 0.25, 1.0], atol=1e-12)  # a quadratic, exactly
    assert np.isnan(fit.predict(np.array([-1.0, 2.0]))).all()  # R's NA beyond the box
    with pytest.raises(CohortexError, match="make the span bigger"):
        loess(x, x, span=0.05)
    with pytest.raises(CohortexError, match="degree"):
        loess(x, x, degree=3)
    with pytest.raises(CohortexError, match="finite"):
        loess(x, np.where(x > 0.5, np.nan, x))
