"""The compiled CPU twins of TMM and of the upper quartiles against the ``xp`` bodies (ranks
and quantiles from sorting), on heavily tied counts where the trim cut-offs fall inside tie
blocks. Against edgeR: tests/test_normalize.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cohortex.stats._norm_factors import tmm_factors, upper_quartiles


def _both(block, reference_row=0, **options):
    library = block.sum(axis=1).astype(np.float64)
    reference = block[reference_row].astype(np.float64)
    args = (block, library, reference, library[reference_row])
    return tmm_factors(*args, **options), tmm_factors(*args, compiled=False, **options)


@pytest.mark.parametrize(
    "options",
    [{}, {"weighting": False}, {"logratio_trim": 0.1, "sum_trim": 0.0}, {"sum_trim": 0.25}],
)
def test_compiled_tmm_equals_the_xp_body(options):
    rng = np.random.default_rng(5)
    mu = rng.gamma(0.6, 20.0, 3000)
    block = rng.poisson(mu * rng.uniform(0.3, 3.0, (40, 1))).astype(np.float32)  # many ties
    block[:, :30] = 0
    block[7] = block[0]  # a sample equal to the reference: factor 1
    compiled, reference = _both(block, **options)
    np.testing.assert_allclose(compiled, reference, rtol=1e-14)
    assert compiled[7] == 1.0 and np.ptp(compiled) > 0.05


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), genes=st.integers(1, 60), top=st.integers(1, 6))
def test_compiled_tmm_on_tiny_tied_counts(seed, genes, top):
    rng = np.random.default_rng(seed)
    block = rng.integers(0, top + 1, (6, genes)).astype(np.float64)
    block[:, 0] += 1  # every sample has a count
    compiled, reference = _both(block)
    np.testing.assert_allclose(compiled, reference, rtol=1e-13)


@pytest.mark.parametrize("genes", [1, 2, 5, 3000])
def test_compiled_upper_quartiles_equal_the_xp_body(genes):
    rng = np.random.default_rng(genes)
    block = rng.poisson(rng.gamma(0.6, 20.0, genes), (30, genes)).astype(np.float32)
    block[3] = 0  # a sample without counts
    compiled = upper_quartiles(block)
    np.testing.assert_allclose(compiled, upper_quartiles(block, compiled=False), rtol=1e-15)
    np.testing.assert_array_equal(upper_quartiles(block, 0.5), np.median(block, axis=1))
    if genes > 5:
        assert np.ptp(compiled) > 1
