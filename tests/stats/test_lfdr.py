"""sva's edge.lfdr and the R pieces under it — density(adjust = 1.5) and smooth.spline with
GCV over thinned knots, then predict — against R (tests/fixtures/make_sva_fixtures.R): 1003
p-values with 0, 1e-12 and 1 among them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import special

from cohortex import CohortexError
from cohortex.stats._lfdr import edge_lfdr, gaussian_density
from cohortex.stats._spline import r_sequence, smooth_spline

SVA = Path(__file__).parents[1] / "fixtures" / "sva"


@pytest.fixture(scope="module")
def reference():
    return pd.read_csv(SVA / "edge_lfdr.csv"), pd.read_csv(SVA / "edge_lfdr_density.csv")


def test_edge_lfdr_equals_sva(reference):
    values, _ = reference
    np.testing.assert_allclose(edge_lfdr(values["p"].to_numpy()), values["lfdr"], atol=1e-12)


def test_density_equals_r(reference):
    values, density = reference
    x = special.ndtri(np.clip(values["p"].to_numpy(), 1e-8, 1 - 1e-8))
    grid, estimate = gaussian_density(x, adjust=1.5)
    np.testing.assert_allclose(grid, density["x"], rtol=0, atol=1e-13)
    np.testing.assert_allclose(estimate, density["density"], rtol=0, atol=1e-14)


def test_gcv_spline_equals_r(reference):
    values, density = reference
    fit = smooth_spline(density["x"].to_numpy(), density["density"].to_numpy())
    assert fit.spar == pytest.approx(density["spar"][0], abs=1e-8)
    assert fit.df == pytest.approx(density["df"][0], rel=1e-8)
    assert fit.lambda_ == pytest.approx(density["lambda"][0], rel=1e-7)
    assert fit.knots.size == 119 + 6  # R's .nknots.smspl(512) inner knots, ends tripled
    np.testing.assert_allclose(fit.fitted, density["fitted"], rtol=0, atol=1e-13)
    x = special.ndtri(np.clip(values["p"].to_numpy(), 1e-8, 1 - 1e-8))
    np.testing.assert_allclose(fit.predict(x), values["predicted"], rtol=0, atol=1e-13)


def test_predict_continues_linearly_beyond_the_range():
    x = np.linspace(0.0, 1.0, 60)
    fit = smooth_spline(x, np.sin(3 * x))
    slope = (fit.predict(np.array([1.0])) - fit.predict(np.array([1.0 - 1e-7]))) / 1e-7
    beyond = fit.predict(np.array([1.5]))
    np.testing.assert_allclose(beyond, fit.predict(np.array([1.0])) + 0.5 * slope, rtol=1e-5)


def test_r_sequence_fills_from_both_ends():
    values = r_sequence(1.0, 512.0, 119)
    assert values[0] == 1.0 and values[-1] == 512.0
    step = 511.0 / 118
    assert values[10] == 1.0 + 10 * step
    assert values[100] == 512.0 - 18 * step


def test_bad_input_is_refused():
    with pytest.raises(CohortexError, match="at least four"):
        edge_lfdr(np.array([0.1, 0.2, np.nan, 0.5]))
    with pytest.raises(CohortexError, match="at least two finite"):
        gaussian_density(np.array([1.0]))
