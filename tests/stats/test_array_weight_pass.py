"""The passes of arrayWeights' REML (every gene sharing the weights; each gene with its own
precision weights; limma's gene-by-gene update): the compiled CPU loops against the ``xp``
bodies (the GPU's code) or the NumPy one, with missing values, weights of 0 and constant
genes."""

from __future__ import annotations

import numpy as np
import pytest

from cohortex.stats._array_weights import (
    SMALL_VARIANCE,
    gene_by_gene_start,
    gene_by_gene_update,
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


@pytest.mark.parametrize("space", ["by_sample", "by_group"])
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_gene_by_gene_equals_the_numpy_body(space, weighted):
    """limma's gene-by-gene update, compiled and in NumPy/SciPy: genes with missing values,
    one whose missing values take a design column away (rank 2 of 3), one with two
    observations (passed over), a constant one (passed over), with and without precision
    weights, a weight per sample and one per group."""
    rng = np.random.default_rng(11)
    n, genes = 18, 60
    groups = np.arange(n) % 3
    design = np.column_stack([np.ones(n), groups == 1, groups == 2]).astype(float)
    y = rng.normal(8.0, 1.0, (n, genes)) * rng.uniform(0.5, 2.0, n)[:, None]
    y[[1, 5], 3] = np.nan
    y[groups == 2, 7] = np.nan  # the third column of the design is zero on what is left
    y[2:, 9] = np.nan  # two observations
    y[:, 11] = 4.0  # constant
    prior = rng.uniform(0.3, 2.0, (n, genes)) if weighted else None
    var_design = None if space == "by_sample" else np.eye(3)[np.arange(n) % 3]
    states = []
    for compiled in (True, False):
        state = gene_by_gene_start(variance_space(var_design, n), n, 10.0)
        gene_by_gene_update(
            state, y[:, :30], prior if prior is None else prior[:, :30], design, compiled=compiled
        )
        gene_by_gene_update(
            state, y[:, 30:], prior if prior is None else prior[:, 30:], design, compiled=compiled
        )
        states.append(state)
    fast, reference = states
    assert fast.genes == reference.genes == genes - 2
    np.testing.assert_allclose(fast.weights, reference.weights, rtol=1e-12)
    np.testing.assert_allclose(fast.information, reference.information, rtol=1e-12)
    assert not np.allclose(fast.weights, 1.0)
