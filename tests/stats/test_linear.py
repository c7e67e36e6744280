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

from cohortex.stats._linear import (
    chunk_sums,
    merge_sums,
    merge_weighted_sums,
    solve_weighted,
    weighted_chunk_sums,
)
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
    y[7, 5], y[8, 6] = np.inf, -np.inf  # left out, as NaN
    weights[9, 7], weights[10, 8] = np.nan, np.inf  # likewise
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


def _solved(sums):
    """What the shared-design sums give, free of their shift: coefficients, RSS, means."""
    inverse = np.linalg.inv(sums.xtx)
    shifted = inverse @ sums.xy
    rss = sums.yy - np.sum(shifted * sums.xy, axis=0)
    beta = shifted + (inverse @ sums.xsum)[:, None] * sums.shift[None, :]
    return beta, rss, sums.shift + sums.plain_sum / sums.n


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the xp body's inf − inf
def test_compiled_shared_sums_equal_the_xp_body(dtype, per_sample):
    y, weights, design = _data(3, dtype=dtype)
    y = np.where(np.isnan(y), np.asarray(8.0, dtype), y)
    y[20, 6] = np.nan  # not finite: the gene's sums are NaN in both (its fit goes per gene)
    y[30, 7] = np.inf
    w = weights[:, 0] + 0.5 if per_sample else None
    view = y[:, ::1][5:]
    w = None if w is None else w[5:]
    # in two chunks merged, as the pass merges them
    halves = [(view[:20], design[5:25]), (view[20:], design[25:])]
    compiled, reference = (
        merge_sums(
            *[
                chunk_sums(part, rows, True, None if w is None else w[a : a + len(rows)], **kw)
                for (part, rows), a in zip(halves, (0, 20), strict=True)
            ]
        )
        for kw in ({}, {"compiled": False})
    )
    for name in ("n", "mass", "xtx", "xsum"):
        np.testing.assert_allclose(getattr(compiled, name), getattr(reference, name), rtol=1e-13)
    for got, expected in zip(_solved(compiled), _solved(reference), strict=True):
        finite = np.isfinite(expected)
        np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-9, atol=1e-9)
    # a value not finite: the gene's sums are not finite in both, which sends it per gene
    for sums in (compiled, reference):
        assert (~np.isfinite(sums.yy[[6, 7]])).all()
        assert np.isfinite(np.delete(sums.yy, [6, 7])).all()


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
