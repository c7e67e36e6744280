"""The signed-rank sums' compiled CPU twin equals the xp body (which tests/de holds to scipy)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from cohortex.stats._cpu.signed_ranks import RADIX_MIN_PAIRS
from cohortex.stats._signed_ranks import PERMUTATION_MAX_PAIRS, signed_rank_sums


def _differences(pairs: int, rng: np.random.Generator) -> np.ndarray:
    """(genes × pairs) differences with the cases the walk must get right."""
    d = rng.normal(size=(12, pairs))
    d[1] = np.round(d[1] * 2) / 2  # many ties, zeros among them
    d[2, ::3] = 0.0  # zeros, left out
    d[3] = 0.0  # every difference zero: n = 0
    d[4] = np.nan  # no pair at all
    d[5, rng.random(pairs) < 0.3] = np.nan  # pairs left out
    d[6] = np.abs(d[6])  # all positive
    d[7] = -np.abs(d[7])  # all negative
    d[8] = 1.5  # one tie of every pair
    d[9] = np.where(rng.random(pairs) < 0.5, 1.0, -1.0)  # two magnitudes, mixed signs
    d[10, :] = rng.poisson(1.0, pairs) - 1.0  # counts-like: zeros and ties
    d[11] = rng.choice([-1, 1], pairs) * rng.lognormal(0, 10, pairs)  # every radix digit varies
    return d


@pytest.mark.parametrize(
    "pairs", [1, 2, 5, PERMUTATION_MAX_PAIRS, 14, 60, 500, RADIX_MIN_PAIRS, 3000]
)
def test_compiled_sums_equal_the_xp_body(pairs):
    d = _differences(pairs, np.random.default_rng(pairs))
    compiled = signed_rank_sums(d)
    body = signed_rank_sums(d, compiled=False)
    assert sorted(compiled) == sorted(body)
    for name in ("w_plus", "n_nonzero", "n_pairs", "tie_term", "z"):
        np.testing.assert_array_equal(compiled[name], body[name], err_msg=name)
    if pairs <= PERMUTATION_MAX_PAIRS:  # what the permutation p-values read
        np.testing.assert_array_equal(compiled["ranks"], body["ranks"])
    else:
        assert compiled["ranks"] is None
    big_endian = signed_rank_sums(d.astype(">f8"))
    for name in ("w_plus", "tie_term", "z"):
        np.testing.assert_array_equal(big_endian[name], compiled[name], err_msg=name)


def test_compiled_sums_give_scipys_statistic():
    """W+ and the normal approximation's z against scipy.stats.wilcoxon, gene by gene."""
    d = _differences(80, np.random.default_rng(3))
    sums = signed_rank_sums(d)
    for gene in (0, 1, 2, 5, 9, 10):
        used = d[gene][~np.isnan(d[gene])]
        result = scipy.stats.wilcoxon(used, alternative="greater", method="approx")
        assert sums["w_plus"][gene] == result.statistic
        np.testing.assert_allclose(
            scipy.stats.norm.sf(sums["z"][gene]), result.pvalue, rtol=1e-12, err_msg=str(gene)
        )
