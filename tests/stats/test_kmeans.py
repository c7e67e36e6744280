"""R's kmeans (cohortex.stats._kmeans, Hartigan-Wong) against R 4.2 (fixture from
tests/fixtures/make_consensus_fixtures.R): the same starts from R's stream and the same
clusters, runs that stop before converging included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohortex import CohortexError
from cohortex.stats._kmeans import kmeans
from cohortex.stats._r_random import RRandom

CONSENSUS = Path(__file__).parents[1] / "fixtures" / "consensus"


def test_clusters_equal_rs_from_the_same_starts():
    """set.seed(3), then kmeans(points, k) for k = 2 … 7 and kmeans(points[, 1:2], k,
    iter.max = 2): 20 repeated points make some starts coincide (R then draws them again from
    the distinct points), and three of the short runs stop unconverged, as R warns."""
    points = pd.read_csv(CONSENSUS / "kmeans_points.csv").to_numpy(np.float64)
    expected = pd.read_csv(CONSENSUS / "kmeans_clusters.csv")
    rng = RRandom(3)
    converged = [kmeans(points, k, rng) for k in range(2, 8)]
    short = [kmeans(points[:, :2], k, rng, iter_max=2) for k in range(2, 8)]
    for k, run in zip(range(2, 8), converged, strict=True):
        np.testing.assert_array_equal(run.cluster, expected[f"k{k}"], err_msg=str(k))
        assert run.converged
    for k, run in zip(range(2, 8), short, strict=True):
        np.testing.assert_array_equal(run.cluster, expected[f"short_k{k}"], err_msg=str(k))
    assert [run.converged for run in short] == [True, True, True, False, False, False]


def test_starts_that_coincide_are_found_as_r_finds_them():
    """R 4.2: x <- matrix(c(0, -0, 5, 9, 13, 17, 21, 1, 1 + 2^-52)); set.seed(s);
    kmeans(x, 4)$cluster. With seed 5 the draws hold 0 and -0, equal for duplicated(), so
    R draws again from the distinct rows; with seed 4 they hold 1 and 1 + 2^-52, which
    differ (R compares values, not 15-digit decimals)."""
    x = np.array([0.0, -0.0, 5, 9, 13, 17, 21, 1, 1 + 2.0**-52])[:, None]
    np.testing.assert_array_equal(kmeans(x, 4, RRandom(5)).cluster, [1, 1, 4, 4, 3, 3, 3, 2, 2])
    np.testing.assert_array_equal(kmeans(x, 4, RRandom(4)).cluster, [1, 1, 3, 2, 2, 4, 4, 1, 1])


def test_impossible_clusterings_are_refused():
    points = np.vstack([np.zeros((5, 2)), np.ones((5, 2))])
    with pytest.raises(CohortexError, match="distinct data points"):
        kmeans(points, 3, RRandom(1))
    with pytest.raises(CohortexError, match=r"\[2, 9\]"):
        kmeans(points, 10, RRandom(1))
