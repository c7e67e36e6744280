"""WGCNA's biweight midcorrelation against WGCNA 1.72 (fixtures from
tests/fixtures/make_bicor_fixtures.R): bicor itself, with and without a cap on the outliers and
for a gene whose median absolute deviation is 0 (Pearson's fallback); pickSoftThreshold, the
step-by-step network and a module's edges with bicor as the correlation; the same with missing
values (bicor(use = "p"): each pair's medians, MADs and caps over the samples both have).
blockwiseModules with bicor is in test_blockwise.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from network_cohorts import (
    WGCNA,
    bicor_cohort,
    compare_step_by_step,
    compare_with_tom_rows,
    csv_cohort,
)

from cohortex import CohortexError, network
from cohortex.network._data import GeneNetwork
from cohortex.stats._network import bicor_columns, pairwise_bicor


@pytest.mark.parametrize(("cap", "name"), [(1.0, "100"), (0.05, "005")])
def test_bicor_equals_wgcnas(cap, name):
    values = bicor_cohort()["expression"].values
    expected = pd.read_csv(WGCNA / f"bicor_rows_{name}.csv", index_col=0).to_numpy()
    columns = bicor_columns(values, cap)
    np.testing.assert_allclose(columns[:, :10].T @ columns, expected, rtol=0, atol=1e-13)
    # the probe whose MAD is 0: Pearson's correlations with every other gene
    pearson = np.corrcoef(values, rowvar=False)[5]
    robust = np.delete(np.arange(values.shape[1]), 5)
    np.testing.assert_allclose(expected[5, robust], (columns[:, robust].T @ columns[:, 5]))
    assert np.abs(expected[5, robust] - pearson[robust]).max() > 0.01  # not Pearson with the rest


def test_the_cap_changes_only_genes_with_outliers():
    """maxPOutliers shrinks a side's deviations only where more than that share of its
    samples lie far out (its quantile beyond half of 9 MADs); other genes stay as they were."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 3))
    x[:30, 1] += 40.0  # 15 % of the samples far out on one side
    free, capped = bicor_columns(x, 1.0), bicor_columns(x, 0.05)
    np.testing.assert_allclose(capped[:, [0, 2]], free[:, [0, 2]], rtol=1e-14)
    assert np.all(free[:30, 1] == 0.0)  # weight 0 beyond 9 MADs
    assert np.all(capped[:30, 1] != 0.0)  # shrunk back in: at most 5 % outlying


def test_soft_threshold_equals_pick_soft_threshold_with_bicor():
    table = network.soft_threshold(
        bicor_cohort(),
        network="signed",
        correlation_type="bicor",
        max_p_outliers=0.05,
        progress=False,
    )
    expected = pd.read_csv(WGCNA / "bicor_sft_signed.csv")
    for column in ("r2", "slope", "truncated_r2", "mean_k", "median_k", "max_k"):
        np.testing.assert_allclose(
            table[column].values, expected[column], rtol=1e-10, atol=1e-12, err_msg=column
        )
    assert np.isnan(expected["estimate"][0]) and table.attrs["power_estimate"] == 0
    assert table.attrs["correlation_type"] == "bicor" and table.attrs["max_p_outliers"] == 0.05


@pytest.fixture(scope="module")
def bicor_modules():
    return network.modules(
        bicor_cohort(), power=6, correlation_type="bicor", max_p_outliers=0.05, progress=False
    )


def test_modules_equal_wgcnas_with_bicor(bicor_modules):
    """The adjacency and TOM of bicor; merging and kME Pearson's, as R's defaults."""
    result = bicor_modules
    compare_step_by_step(result, "bicor")
    values = bicor_cohort()["expression"].values
    kme = np.corrcoef(values, result["eigengene"].values, rowvar=False)[:1000, 1000:]
    np.testing.assert_allclose(result["kme"].values, kme, atol=1e-12)  # Pearson's, signedKME
    assert result.attrs["correlation_type"] == "bicor"


def test_module_edges_of_a_bicor_network_are_wgcnas_tom(bicor_modules):
    rows = pd.read_csv(WGCNA / "bicor_tom_rows.csv", index_col=0)
    edges = network.module_edges(bicor_cohort(), bicor_modules, 1, threshold=0.0, progress=False)
    assert compare_with_tom_rows(edges, rows) > 100


def _missing_cohort():
    """The bladder arrays with 5 % missing at random and the 6th probe at 7 in 35 arrays."""
    return csv_cohort("bicor_missing_expression.csv")


@pytest.mark.parametrize(("cap", "name"), [(1.0, "100"), (0.05, "005")])
def test_bicor_with_missing_values_equals_wgcnas(cap, name):
    expected = pd.read_csv(WGCNA / f"bicor_missing_rows_{name}.csv", index_col=0).to_numpy()
    data = GeneNetwork.build(
        _missing_cohort(),
        genes=None,
        device="cpu",
        progress=False,
        who="t",
        correlation=False,
        correlation_type="bicor",
        max_p_outliers=cap,
    )
    assert data.missing and data.n_genes == 1000
    rows = np.asarray(data.cross_correlation(np.arange(10)))
    np.testing.assert_allclose(rows, expected, rtol=0, atol=1e-13)
    np.testing.assert_allclose(np.asarray(data.compute_correlation())[:10], rows, atol=1e-15)
    # each pair's medians are its shared samples': bicor_columns of those samples
    values = data.read()
    for i, j in ((0, 1), (3, 301), (5, 17), (5, 900)):
        shared = ~np.isnan(values[:, i]) & ~np.isnan(values[:, j])
        columns = bicor_columns(values[shared][:, [i, j]], cap)
        assert rows[i, j] == pytest.approx(columns[:, 0] @ columns[:, 1], abs=1e-15)
    # filling the missing values (with a median) instead gives other correlations
    own = bicor_columns(np.nan_to_num(values[:, :10], nan=np.nanmedian(values[:, :10])), cap)
    assert np.abs(own.T @ own - rows[:, :10]).max() > 0.01


def test_bicor_of_values_missing_in_blocks_and_below_a_limit():
    """The simulated cohort: genes complete against genes missing a block of samples or
    below a detection limit (one side's column prepared again over the other's samples)."""
    expected = pd.read_csv(WGCNA / "bicor_missing_simulated_rows.csv", index_col=0)
    values = csv_cohort("missing_simulated_expression.csv")["expression"]
    values = values.sel(gene=expected.columns.to_numpy()).values
    rows = np.array([list(expected.columns).index(gene) for gene in expected.index])
    got = pairwise_bicor(values, rows, 0.05)
    np.testing.assert_allclose(got, expected.to_numpy(), rtol=0, atol=1e-13)


@pytest.mark.parametrize("quick", [0.05, 0.1])
def test_quick_bicor_prepares_again_only_pairs_that_miss_more_than_quick(quick):
    """bicor(quick = q) as WGCNA's: a gene's own column (0 where it misses) unless the pair
    misses more than q × n of its samples; between the exact (0) and the quickest (1)."""
    name = f"bicor_missing_simulated_quick_{round(100 * quick):03d}.csv"
    expected = pd.read_csv(WGCNA / name, index_col=0)
    values = csv_cohort("missing_simulated_expression.csv")["expression"]
    values = values.sel(gene=expected.columns.to_numpy()).values
    got = pairwise_bicor(values, None, 0.05, quick)
    np.testing.assert_allclose(got, expected.to_numpy(), rtol=0, atol=1e-13)
    rows = pairwise_bicor(values, np.arange(5), 0.05, quick)
    np.testing.assert_allclose(rows, got[:5], rtol=0, atol=1e-15)
    exact = pairwise_bicor(values, None, 0.05, 0.0)
    quickest = pairwise_bicor(values, None, 0.05, 1.0)
    assert 0 < np.sum(np.abs(got - exact) > 1e-12) < np.sum(np.abs(quickest - exact) > 1e-12)


@pytest.fixture(scope="module")
def bicor_missing_modules():
    return network.modules(
        _missing_cohort(), power=6, correlation_type="bicor", max_p_outliers=0.05, progress=False
    )


def test_soft_threshold_with_missing_values_equals_wgcnas():
    table = network.soft_threshold(
        _missing_cohort(),
        network="signed",
        correlation_type="bicor",
        max_p_outliers=0.05,
        progress=False,
    )
    expected = pd.read_csv(WGCNA / "bicor_missing_sft_signed.csv")
    for column in ("r2", "slope", "truncated_r2", "mean_k", "median_k", "max_k"):
        np.testing.assert_allclose(
            table[column].values, expected[column], rtol=1e-10, atol=1e-12, err_msg=column
        )
    assert table.attrs["missing_share"] > 0.04


def test_modules_with_missing_values_equal_wgcnas(bicor_missing_modules):
    """bicor's adjacency and TOM over each pair's samples; merging (eigengenes of imputed
    genes) and kME Pearson's over each gene's samples, as R's defaults."""
    result = bicor_missing_modules
    compare_step_by_step(result, "bicor_missing")
    assert result.attrs["correlation_type"] == "bicor" and result.attrs["missing_share"] > 0.04


def test_module_edges_with_missing_values_are_wgcnas_tom(bicor_missing_modules):
    rows = pd.read_csv(WGCNA / "bicor_missing_tom_rows.csv", index_col=0)
    edges = network.module_edges(
        _missing_cohort(), bicor_missing_modules, 1, threshold=0.0, progress=False
    )
    assert compare_with_tom_rows(edges, rows) > 100


def test_refusals():
    data = bicor_cohort()
    with pytest.raises(CohortexError, match="'correlation_type' parameter"):
        network.modules(data, correlation_type="kendall", progress=False)
    with pytest.raises(CohortexError, match="'max_p_outliers' parameter"):
        network.soft_threshold(data, correlation_type="bicor", max_p_outliers=0, progress=False)
