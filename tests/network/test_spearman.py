"""WGCNA with Spearman's correlation against WGCNA 1.72 (fixtures from
tests/fixtures/make_spearman_fixtures.R): the correlation itself (a gene with many ties among
them), pickSoftThreshold, the step-by-step network and a module's edges with it as the
correlation; blockwiseModules, whose corType has no Spearman's, refuses it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from network_cohorts import WGCNA, bicor_cohort, compare_with_tom_rows
from scipy import stats

from cohortex import CohortexError, network
from cohortex.stats._network import spearman_columns


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
    expected = pd.read_csv(WGCNA / "spearman_modules.csv")
    tree = pd.read_csv(WGCNA / "spearman_tree.csv")
    np.testing.assert_array_equal(result["tree_merge"].values, tree[["merge1", "merge2"]])
    np.testing.assert_allclose(result["tree_height"].values, tree["height"], atol=1e-12)
    np.testing.assert_array_equal(result["dynamic_label"].values, expected["dynamic"])
    pairs = pd.crosstab(result["label"].values, expected["merged"])
    assert (pairs > 0).sum(axis=1).eq(1).all() and (pairs > 0).sum(axis=0).eq(1).all()
    np.testing.assert_allclose(result["k_total"].values, expected["k_total"], rtol=1e-10)
    np.testing.assert_allclose(result["k_within"].values, expected["k_within"], rtol=1e-10)
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


def test_blockwise_modules_refuses_spearman():
    with pytest.raises(CohortexError, match="'correlation_type' parameter of blockwise"):
        network.blockwise_modules(bicor_cohort(), correlation_type="spearman", progress=False)
