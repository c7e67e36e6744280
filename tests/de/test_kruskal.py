"""The Kruskal–Wallis test of every gene against scipy.stats.kruskal: ties, missing values
omitted or propagated, a group that loses every value of a gene, chosen groups, chunked input
(the rank blocks), and p-values below the smallest double on the log scale."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from scipy import stats

from cohortex import CohortexError, de


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(70, 40)), 1)  # ties within genes
    labels = np.array(["a"] * 20 + ["b"] * 25 + ["c"] * 15 + ["d"] * 10)
    x[labels == "a", :8] += 1.0
    x[labels == "d", 8:12] -= 1.5
    return x, labels


def _scipy(x, labels, groups, nan_policy="propagate"):
    out = []
    for j in range(x.shape[1]):
        samples = [x[labels == g, j] for g in groups]
        if nan_policy == "omit":
            samples = [s[~np.isnan(s)] for s in samples]
            samples = [s for s in samples if s.size]
        out.append(stats.kruskal(*samples, nan_policy="propagate"))
    return np.array([r.statistic for r in out]), np.array([r.pvalue for r in out])


@pytest.mark.parametrize("chunked", [False, True])
def test_equals_scipy(chunked):
    x, labels = _data()
    data = da.from_array(x, chunks=(13, 7)) if chunked else x
    result = de.test(data, labels, test="kruskal")
    h, p = _scipy(x, labels, ["a", "b", "c", "d"])
    np.testing.assert_allclose(result["statistic"].values, h, rtol=1e-12)
    np.testing.assert_allclose(result["pvalue"].values, p, rtol=1e-10)
    np.testing.assert_allclose(result["log10_pvalue"].values, np.log10(p), rtol=1e-10)
    np.testing.assert_array_equal(result["df"].values, 3.0)
    assert result.attrs["test"] == "kruskal" and "reference" not in result.attrs
    ranks = stats.rankdata(x, axis=0)
    np.testing.assert_allclose(
        result["mean_rank"].sel(group="d").values, ranks[labels == "d"].mean(axis=0)
    )
    np.testing.assert_allclose(result["mean"].sel(group="a").values, x[:20].mean(axis=0))
    np.testing.assert_array_equal(result["count"].sel(group="b").values, 25)


def test_missing_values_omitted_or_propagated():
    x, labels = _data(1)
    x[3, 0] = np.nan
    x[labels == "d", 1] = np.nan  # group d loses gene 1: three groups, df 2
    omitted = de.test(x, labels, test="kruskal", nan_policy="omit")
    h, p = _scipy(x, labels, ["a", "b", "c", "d"], nan_policy="omit")
    np.testing.assert_allclose(omitted["statistic"].values, h, rtol=1e-12)
    np.testing.assert_allclose(omitted["pvalue"].values, p, rtol=1e-10)
    assert omitted["df"].values[1] == 2.0 and omitted["count"].sel(group="d").values[1] == 0
    propagated = de.test(x, labels, test="kruskal")
    assert np.isnan(propagated["statistic"].values[:2]).all()
    assert np.isfinite(propagated["statistic"].values[2:]).all()


def test_chosen_groups_and_a_constant_gene():
    x, labels = _data(2)
    x[:, 5] = 1.0  # every value tied: scipy's H is NaN (0 / 0)
    result = de.test(x, labels, test="kruskal", groups=["b", "c"])
    keep = np.isin(labels, ["b", "c"])
    varying = np.arange(x.shape[1]) != 5
    h, _ = _scipy(x[keep][:, varying], labels[keep], ["b", "c"])
    np.testing.assert_allclose(result["statistic"].values[varying], h, rtol=1e-12)
    # no ranks to compare: NaN (SciPy divides its rounding error by 0 and gives ±inf)
    assert np.isnan(result["statistic"].values[5]) and np.isnan(result["pvalue"].values[5])
    assert list(result["group"].values) == ["b", "c"]


def test_p_values_beyond_the_smallest_double():
    rng = np.random.default_rng(3)
    labels = np.repeat(["a", "b", "c"], 1000)
    x = rng.normal(size=(3000, 3)) + np.repeat([0.0, 10.0, 20.0], 1000)[:, None]
    result = de.test(x, labels, test="kruskal")
    h = result["statistic"].values
    assert (result["pvalue"].values == 0.0).all()  # beyond the smallest double
    # the χ² survival with 2 df is exp(−h / 2) exactly
    np.testing.assert_allclose(result["log10_pvalue"].values, -h / 2 / np.log(10), rtol=1e-12)


def test_no_direction_and_no_pairs():
    x, labels = _data()
    with pytest.raises(CohortexError, match="Kruskal–Wallis's H has no direction"):
        de.test(x, labels, test="kruskal", alternative="greater")
    with pytest.raises(CohortexError, match="not ANOVA or Kruskal–Wallis"):
        de.test(x, labels, test="kruskal", paired_by=np.arange(70) // 2)
