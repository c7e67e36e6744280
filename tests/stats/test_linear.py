"""The per-gene least squares (compiled CPU twin against the ``xp`` body, chunking) and R's
lowess (fixtures made by tests/fixtures/make_limma_fixtures.R)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cohortex.stats._linear import merge_weighted_sums, solve_weighted, weighted_chunk_sums
from cohortex.stats._lowess import lowess, tied_means

FIXTURES = Path(__file__).parents[1] / "fixtures" / "limma"


def _data(seed, n=60, genes=40, dtype=np.float64):
    rng = np.random.default_rng(seed)
    design = np.column_stack([np.ones(n), rng.integers(0, 2, n), rng.normal(size=n)])
    y = (rng.normal(8.0, 1.0, (n, genes)) + design[:, 1:2] * 0.5).astype(dtype)
    y[rng.random(y.shape) < 0.1] = np.nan
    y[:, 3] = np.nan  # a gene without values
    y[design[:, 1] == 1, 4] = np.nan  # a column not estimable
    weights = rng.uniform(0.1, 3.0, y.shape)
    weights[rng.random(y.shape) < 0.05] = 0.0  # left out, as limma
    return y, weights, design


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_sums_equal_the_xp_body(dtype, weighted):
    y, weights, design = _data(1, dtype=dtype)
    w = weights if weighted else None
    view = y[:, ::1][5:]  # a view, not the whole array
    compiled = weighted_chunk_sums(view, None if w is None else w[5:], design[5:], True)
    reference = weighted_chunk_sums(
        view, None if w is None else w[5:], design[5:], True, compiled=False
    )
    for name in ("gram", "xw", "w", "n_obs", "total", "seen"):  # free of the shift
        np.testing.assert_allclose(getattr(compiled, name), getattr(reference, name), rtol=1e-12)
    for got, expected in zip(
        solve_weighted(compiled, True), solve_weighted(reference, True), strict=True
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(1, 59), max_size=5, unique=True))
def test_chunking_does_not_change_the_fit(cuts):
    y, weights, design = _data(2)
    whole = solve_weighted(weighted_chunk_sums(y, weights, design, True), True)
    edges = [0, *sorted(cuts), 60]
    parts = [
        weighted_chunk_sums(y[a:b], weights[a:b], design[a:b], True)
        for a, b in itertools.pairwise(edges)
    ]
    merged = parts[0]
    for part in parts[1:]:
        merged = merge_weighted_sums(merged, part)
    for got, expected in zip(solve_weighted(merged, True), whole, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-11)


def test_solved_fit_equals_per_gene_least_squares():
    y, weights, design = _data(3)
    beta, sd, s2, df = solve_weighted(weighted_chunk_sums(y, weights, design, True), True)
    for g in (0, 1, 2):
        used = np.isfinite(y[:, g]) & (weights[:, g] > 0)
        root = np.sqrt(weights[used, g])
        coef, rss, *_ = np.linalg.lstsq(design[used] * root[:, None], y[used, g] * root)
        np.testing.assert_allclose(beta[:, g], coef, rtol=1e-10)
        assert df[g] == used.sum() - 3
        np.testing.assert_allclose(s2[g], rss[0] / df[g], rtol=1e-9)
        inverse = np.linalg.inv((design[used] * weights[used, g][:, None]).T @ design[used])
        np.testing.assert_allclose(sd[:, g], np.sqrt(np.diag(inverse)), rtol=1e-10)
    assert np.isnan(beta[:, 3]).all() and df[3] == 0  # no values
    # gene 4 is observed only where column 1 is 0: that coefficient is not estimable
    assert np.isnan(beta[1, 4]) and np.isfinite(beta[[0, 2], 4]).all()


def test_lowess_equals_r():
    data = pd.read_csv(FIXTURES / "lowess_input.csv")
    expected = pd.read_csv(FIXTURES / "lowess_output.csv")
    for column, span in (("default", 2.0 / 3.0), ("voom", 0.5)):
        x, fitted, anchors = lowess(data["x"].to_numpy(), data["y"].to_numpy(), f=span)
        np.testing.assert_array_equal(x, expected["x"])
        np.testing.assert_allclose(fitted, expected[column], rtol=1e-12)
        knots_x, knots_y = tied_means(x[anchors], fitted[anchors])
        assert knots_x.size < x.size / 5  # the interpolated points are not needed
        np.testing.assert_allclose(np.interp(x, knots_x, knots_y), fitted, rtol=1e-12)
