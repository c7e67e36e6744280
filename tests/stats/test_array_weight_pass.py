"""The passes of arrayWeights' REML (every gene sharing the weights; each gene with its own
precision weights): the compiled CPU loops against the ``xp`` bodies (the GPU's code), with
missing values, weights of 0 and constant genes."""

from __future__ import annotations

import numpy as np
import pytest

from cohortex.stats._array_weights import (
    SMALL_VARIANCE,
    shared_pass,
    variance_space,
    weighted_pass,
)


@pytest.mark.parametrize("p", [1, 3])
def test_compiled_pass_equals_the_xp_body(p):
    rng = np.random.default_rng(7)
    n, genes = 80, 30
    design = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    y = rng.normal(8.0, 1.0, (n, genes))
    y[:, 2] = 5.0  # constant: left out
    y[:, 3] = design @ rng.normal(size=p)  # in the design's span: left out too
    y[7, 4] = np.nan  # a missing value: not counted
    y[9, 5] = np.inf
    w = rng.uniform(0.3, 3.0, n)
    plain = np.linalg.qr(design)[0]
    weighted = np.linalg.qr(np.sqrt(w)[:, None] * design)[0]
    view = y[:, 1:]  # a strided view, as a task's block may be
    compiled = shared_pass(view, plain, weighted, np.sqrt(w))
    reference = shared_pass(view, plain, weighted, np.sqrt(w), compiled=False)
    assert compiled["genes"] == reference["genes"] == genes - 1 - 4
    assert compiled["incomplete"] == reference["incomplete"] == 2
    np.testing.assert_allclose(compiled["z"], reference["z"], rtol=1e-12)
    assert SMALL_VARIANCE == 1e-15  # limma's threshold


@pytest.mark.parametrize("p", [1, 2, 4])
def test_compiled_weighted_pass_equals_the_xp_body(p):
    rng = np.random.default_rng(p)
    n, genes = 90, 40
    design = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    y = rng.normal(8.0, 1.0, (n, genes))
    y[:, 2] = 5.0  # constant: counts, but scores nothing
    y[7, 4] = np.nan  # a missing value: left out
    prior = rng.uniform(0.2, 4.0, (n, genes))
    prior[3, 6] = 0.0  # a weight of 0: left out
    prior[5, 8] = -1.0  # invalid (and left out)
    w = rng.uniform(0.3, 3.0, n)
    view, prior_view = y[:, 1:], prior[:, 1:]  # strided views, as a task's blocks may be
    space = variance_space(None, n)
    compiled = weighted_pass(view, prior_view, design, w, space, dense=False)
    reference = weighted_pass(view, prior_view, design, w, space, dense=False, compiled=False)
    assert set(compiled) == set(reference)
    assert compiled["genes"] == reference["genes"] == genes - 1 - 3
    assert compiled["incomplete"] == reference["incomplete"] == 3
    assert compiled["invalid"] == reference["invalid"] == 1
    for name in ("diagonal", "leverage_squares", "z"):
        np.testing.assert_allclose(compiled[name], reference[name], rtol=1e-11, atol=1e-11)
    # the exact pass sums the same diagonal and scores beside its dense information
    dense = weighted_pass(view, prior_view, design, w, space)
    np.testing.assert_allclose(compiled["z"], dense["z"], rtol=1e-11, atol=1e-11)
    assert np.ptp(compiled["z"]) > 1.0
