"""locfit's default local quadratic fit (locfit 1.5-9.7, fixtures from
make_deseq_fixtures.R): the adaptive tree, each vertex's tricube-weighted Gaussian fit with
prior weights, the cubic Hermite interpolation between vertices, and the lines beyond the
data with the global quadratic (locfit's parametric component)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohortex import CohortexError
from cohortex.stats._locfit import locfit_quadratic

DESEQ = Path(__file__).parent.parent / "fixtures" / "deseq"


def test_locfit_quadratic_equals_predict_locfit():
    table = pd.read_csv(DESEQ / "locfit_quadratic.csv")
    fit = locfit_quadratic(table["x"].to_numpy(), table["y"].to_numpy(), weights=table["w"])
    ours = fit.at(table["new"].to_numpy())
    np.testing.assert_allclose(ours, table["fit"], rtol=1e-12, atol=1e-13)
    beyond = (table["new"] < table["x"].min()) | (table["new"] > table["x"].max())
    assert beyond.sum() > 50  # the lines past the data are held too
    # the same fit without the global quadratic beyond the data would be a straight line:
    # the curvature there is the parametric component's
    left = table["new"].to_numpy()[beyond & (table["new"] < table["x"].min())]
    second = np.diff(fit.at(left), 2)
    assert np.all(np.abs(second) > 1e-6)


def test_locfit_quadratic_refuses_too_few_points():
    with pytest.raises(CohortexError, match="at least 3 distinct points"):
        locfit_quadratic(np.array([1.0, 2.0]), np.array([0.0, 1.0]))
    with pytest.raises(CohortexError, match="at least 3 distinct points"):
        locfit_quadratic(np.ones(10), np.arange(10.0))
