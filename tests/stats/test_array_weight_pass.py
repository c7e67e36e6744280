"""The shared-weights pass of arrayWeights' REML: the compiled CPU loop against the ``xp`` body
(the GPU's code), with missing values and constant genes."""

from __future__ import annotations

import numpy as np
import pytest

from cohortex.stats._array_weights import SMALL_VARIANCE, shared_pass


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
