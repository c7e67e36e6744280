"""WGCNA with Spearman's correlation against WGCNA 1.72 (fixtures from
tests/fixtures/make_spearman_fixtures.R): the correlation itself (a gene with many ties among
them), pickSoftThreshold, the step-by-step network and a module's edges with it as the
correlation; the same with missing values (R's cor(use = "p", method = "spearman") ranks each
pair's shared samples again); blockwiseModules, whose corType has no Spearman's, refuses it."""

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
from scipy import stats

from cohortex import CohortexError, network
from cohortex.network._data import GeneNetwork
from cohortex.stats._network import pairwise_spearman, spearman_columns


def test_spearman_equals_rs_cor():
    values = bicor_cohort()["expression"].values
    expected = pd.read_csv(WGCNA / "spearman_rows.csv", index_col=0).to_numpy()
    columns = spearman_columns(values)
    np.testing.assert_allclose(columns[:, :10].T @ columns, expected, rtol=0, atol=1e-13)
    tied = stats.spearmanr(values[:, 5], values[:, 7]).statistic  # the probe with 35 ties
    assert columns[:, 5] @ columns[:, 7] == pytest.approx(tied, abs=1e-14)
    assert np.abs(expected - np.corrcoef(values, rowvar=False)[:10]).max() > 0.05


def test_soft_threshold_equals_pick_soft_threshold_with_spearman():
    table = network.soft_threshold(bicor_cohort(), correlation_type="spearman", progress=False)
    expected = pd.read_csv(WGCNA / "spearman_sft.csv")
    for column in ("r2", "slope", "truncated_r2", "mean_k", "median_k", "max_k"):
        np.testing.assert_allclose(
            table[column].values, expected[column], rtol=1e-10, atol=1e-12, err_msg=column
        )
    assert table.attrs["power_estimate"] == (
        0 if np.isnan(expected["estimate"][0]) else expected["estimate"][0]
    )
    assert table.attrs["correlation_type"] == "spearman"


@pytest.fixture(scope="module")
def spearman_modules():
    return network.modules(bicor_cohort(), power=6, correlation_type="spearman", progress=False)


def test_modules_equal_wgcnas_with_spearman(spearman_modules):
    """The adjacency and TOM of Spearman's correlation; merging and kME Pearson's, as R's
    defaults."""
    result = spearman_modules
    compare_step_by_step(result, "spearman")
    values = bicor_cohort()["expression"].values
    kme = np.corrcoef(values, result["eigengene"].values, rowvar=False)[:1000, 1000:]
    np.testing.assert_allclose(result["kme"].values, kme, atol=1e-12)  # Pearson's, signedKME
    assert result.attrs["correlation_type"] == "spearman"


def test_module_edges_of_a_spearman_network_are_wgcnas_tom(spearman_modules):
    rows = pd.read_csv(WGCNA / "spearman_tom_rows.csv", index_col=0)
    first = spearman_modules["label"].values[:10]  # the module most of R's 10 rows are in
    module = int(np.bincount(first[first > 0]).argmax())
    edges = network.module_edges(
        bicor_cohort(), spearman_modules, module, threshold=0.0, progress=False
    )
    assert compare_with_tom_rows(edges, rows) > 100


def _missing_cohort():
    """make_bicor_fixtures.R's bladder arrays with 5 % missing and the probe with ties."""
    return csv_cohort("bicor_missing_expression.csv")


def test_spearman_with_missing_values_equals_rs_cor():
    expected = pd.read_csv(WGCNA / "spearman_missing_rows.csv", index_col=0).to_numpy()
    data = GeneNetwork.build(
        _missing_cohort(),
        genes=None,
        device="cpu",
        progress=False,
        who="t",
        correlation=False,
        correlation_type="spearman",
    )
    assert data.missing and data.n_genes == 1000
    rows = np.asarray(data.cross_correlation(np.arange(10)))
    np.testing.assert_allclose(rows, expected, rtol=0, atol=1e-13)
    np.testing.assert_allclose(np.asarray(data.compute_correlation())[:10], rows, atol=1e-15)
    values = data.read()
    for i, j in ((0, 1), (5, 7), (5, 900)):  # scipy's over each pair's shared samples
        shared = ~np.isnan(values[:, i]) & ~np.isnan(values[:, j])
        tied = stats.spearmanr(values[shared, i], values[shared, j]).statistic
        assert rows[i, j] == pytest.approx(tied, abs=1e-14)
    own = spearman_columns(np.nan_to_num(values[:, :10], nan=np.nanmedian(values[:, :10])))
    assert np.abs(own.T @ own - rows[:, :10]).max() > 0.01  # filling the gaps differs


def test_spearman_of_values_missing_in_blocks_and_below_a_limit():
    expected = pd.read_csv(WGCNA / "spearman_missing_simulated_rows.csv", index_col=0)
    values = csv_cohort("missing_simulated_expression.csv")["expression"]
    values = values.sel(gene=expected.columns.to_numpy()).values
    rows = np.array([list(expected.columns).index(gene) for gene in expected.index])
    np.testing.assert_allclose(
        pairwise_spearman(values, rows), expected.to_numpy(), rtol=0, atol=1e-13
    )


def test_soft_threshold_with_missing_values_equals_wgcnas():
    table = network.soft_threshold(_missing_cohort(), correlation_type="spearman", progress=False)
    expected = pd.read_csv(WGCNA / "spearman_missing_sft.csv")
    for column in ("r2", "slope", "truncated_r2", "mean_k", "median_k", "max_k"):
        np.testing.assert_allclose(
            table[column].values, expected[column], rtol=1e-10, atol=1e-12, err_msg=column
        )
    assert table.attrs["missing_share"] > 0.04


@pytest.fixture(scope="module")
def spearman_missing_modules():
    return network.modules(_missing_cohort(), power=6, correlation_type="spearman", progress=False)


def test_modules_with_missing_values_equal_wgcnas(spearman_missing_modules):
    """Spearman's adjacency and TOM over each pair's samples; merging (eigengenes of imputed
    genes) and kME Pearson's over each gene's samples, as R's defaults."""
    result = spearman_missing_modules
    compare_step_by_step(result, "spearman_missing")
    assert result.attrs["correlation_type"] == "spearman"


def test_module_edges_with_missing_values_are_wgcnas_tom(spearman_missing_modules):
    rows = pd.read_csv(WGCNA / "spearman_missing_tom_rows.csv", index_col=0)
    first = spearman_missing_modules["label"].values[:10]
    module = int(np.bincount(first[first > 0]).argmax())
    edges = network.module_edges(
        _missing_cohort(), spearman_missing_modules, module, threshold=0.0, progress=False
    )
    assert compare_with_tom_rows(edges, rows) > 100


def test_blockwise_modules_refuses_spearman():
    with pytest.raises(CohortexError, match="'correlation_type' parameter of blockwise"):
        network.blockwise_modules(bicor_cohort(), correlation_type="spearman", progress=False)
