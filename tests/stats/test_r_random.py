"""R's random streams (cohortex.stats._r_random) against R 4.2: sample() with and without
replacement, runif(), rnorm() and rchisq() bit for bit (fixture from
tests/fixtures/make_r_random_fixtures.R)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cohortex.stats._r_random import RRandom

DRAWS = Path(__file__).parents[1] / "fixtures" / "r_random" / "draws.csv"


def test_r_sample_and_runif_equal_rs():
    """set.seed(1); sample(10); runif(3) and set.seed(42); sample(100000, 3) in R 4.2."""
    r = RRandom(1)
    np.testing.assert_array_equal(r.sample(10, 10), [9, 4, 7, 1, 2, 5, 3, 10, 6, 8])
    np.testing.assert_allclose(r.uniforms(3), [0.2059746, 0.1765568, 0.6870228], atol=5e-8)
    np.testing.assert_array_equal(RRandom(42).sample(100000, 3), [61413, 54425, 99556])
    np.testing.assert_array_equal(RRandom(362436069).sample(2000, 2), [125, 1336])


def test_normal_and_chisq_draws_equal_rs_bit_for_bit():
    """One stream from set.seed(2): rchisq with df 1 (rgamma's GS), 2, 3, 9 and 30 (GD's
    three ranges of constants, its rejections included), rnorm by inversion, rnorm with sd 0
    (which draws nothing) and runif between them, then sample() with replacement; every
    value R's exactly."""
    reference = pd.read_csv(DRAWS, dtype={"value": str})
    expected = {
        kind: group["value"].astype(np.float64).to_numpy()
        for kind, group in reference.groupby("kind", sort=False)
    }
    r = RRandom(2)
    drawn = {
        "chisq1": r.chisq(10000, 1),
        "normal": r.normals(10000, 0.0, np.sqrt(0.5)),
        "chisq2": r.chisq(10000, 2),
        "none": r.normals(5, 0.0, 0.0),
        "chisq3": r.chisq(10000, 3),
        "uniform": r.uniforms(3),
        "chisq9": r.chisq(1000, 9),
        "chisq30": r.chisq(1000, 30),
        "replace5": r.sample_replace(5, 2000),
        "replace100000": r.sample_replace(100000, 50),
    }
    np.testing.assert_array_equal(drawn.pop("none"), np.zeros(5))
    assert list(drawn) == list(expected)
    for kind, values in drawn.items():
        np.testing.assert_array_equal(values, expected[kind], err_msg=kind)
