"""WGCNA's blockwiseModules of cohorts with missing values against WGCNA 1.72 and impute 1.72
(fixtures from tests/fixtures/make_missing_network_fixtures.R, part 3): the bladder arrays with
5 % missing at random in blocks of at most 400 genes, and the simulated cohort with values
missing at random, below a detection limit and in a block of a module (and a gene left out by
goodSamplesGenes) in a signed network in blocks of at most 150 genes; the bladder arrays
with bicor (outliers capped at 5 %: each pair's medians over the samples it shares).

By default the pre-clustering of the scaled genes imputed by impute.knn, from R's own random
start; given R's blocks, each block's tree of the TOM of pairwise correlations, the kME rules
and moves over the samples each gene has, the merged modules and the eigengenes of imputed
modules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from network_cohorts import WGCNA, csv_cohort

from cohortex import network
from cohortex.stats._network import pairwise_bicor
from cohortex.stats._tree_cut import number_by_size

CASES = {  # name: max_block_size, settings
    "missing_bladder": (400, {}),
    "missing_simulated": (
        150,
        {"network": "signed", "power": 12, "pam_respects_dendro": False, "merge_cut_height": 0.25},
    ),
    "missing_bladder_bicor": (400, {"correlation_type": "bicor", "max_p_outliers": 0.05}),
}


def _expected(name: str) -> pd.DataFrame:
    return pd.read_csv(WGCNA / f"{name}_blockwise_genes.csv")


def _cohort(name: str) -> xr.Dataset:
    return csv_cohort(f"{name.removesuffix('_bicor')}_expression.csv")


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    """R's blocks given (R's pre-clustering refreshes the wrong centres, see
    test_blockwise.py); genes goodSamplesGenes left out have none."""
    name = request.param
    max_block, options = CASES[name]
    cohort = _cohort(name)
    expected = _expected(name)
    blocks = pd.Series(expected["block"].to_numpy(), index=expected["gene"])
    result = network.blockwise_modules(
        cohort,
        blocks=blocks.reindex(cohort["gene"].values).fillna(0).to_numpy(),
        max_block_size=max_block,
        progress=False,
        **options,
    )
    return name, result, expected


@pytest.mark.parametrize("name", list(CASES))
def test_preclusters_of_imputed_genes_are_rs_blocks_by_default(name):
    """From R's set.seed(54321); sample(n_genes), the blocks of projectiveKMeans of the scaled
    genes imputed by impute.knn (with the refresh of the changed centres at their positions,
    the fixture's corrected copy)."""
    max_block, options = CASES[name]
    expected = _expected(name)
    result = network.blockwise_modules(
        _cohort(name), max_block_size=max_block, progress=False, **options
    )
    np.testing.assert_array_equal(result["gene"].values, expected["gene"])
    np.testing.assert_array_equal(
        result["block"].values, number_by_size(expected["corrected"].to_numpy())
    )
    assert result.attrs["n_blocks"] >= 3


def test_block_trees_equal_rs(case):
    name, result, expected = case
    blocks = result["tree_block"].values
    assert result.attrs["n_blocks"] == expected["block"].max() == blocks.max()
    for b in range(1, blocks.max() + 1):
        tree = pd.read_csv(WGCNA / f"{name}_blockwise_tree{b}.csv")
        mine = blocks == b
        np.testing.assert_array_equal(
            result["tree_merge"].values[mine], tree[["merge1", "merge2"]].to_numpy()
        )
        np.testing.assert_allclose(result["tree_height"].values[mine], tree["height"], atol=1e-12)


def test_modules_equal_rs_gene_for_gene(case):
    """The genes goodSamplesGenes keeps, the modules after the kME rules and the moves (R's
    unmergedColors) and after merging."""
    name, result, expected = case
    np.testing.assert_array_equal(result["gene"].values, expected["gene"])
    np.testing.assert_array_equal(result["unmerged_label"].values, expected["unmerged"])
    np.testing.assert_array_equal(result["label"].values, expected["merged"])
    np.testing.assert_array_equal(result["block"].values, expected["block"])
    dynamic, unmerged = result["dynamic_label"].values, result["unmerged_label"].values
    assert np.sum((dynamic > 0) & (unmerged == 0)) > 0  # genes the kME rules sent away
    attrs = result.attrs
    assert attrs["missing_share"] > 0.03
    assert attrs["n_genes_missing"] == _cohort(name).sizes["gene"] - len(expected)


def test_eigengenes_and_variance_explained_equal_rs(case):
    name, result, _ = case
    expected = pd.read_csv(WGCNA / f"{name}_blockwise_eigengenes.csv", index_col=0)
    explained = pd.read_csv(WGCNA / f"{name}_blockwise_var_explained.csv", index_col=0)
    assert sorted(expected.columns) == [f"ME{m}" for m in result["module"].values]
    # the hub-gene fallback where a sample misses more than 80 % of a module's genes
    hub = [int(m[2:]) for m in explained.index[~explained["is_pc"]]]
    assert result.attrs["hub_eigengenes"] == hub
    assert hub == ([4] if name == "missing_simulated" else [])
    for module in result["module"].values:
        np.testing.assert_allclose(
            result["eigengene"].sel(module=module).values,
            expected[f"ME{module}"].to_numpy(),
            atol=1e-12,
        )
        np.testing.assert_allclose(
            result["var_explained"].sel(module=module),
            explained.loc[f"ME{module}", "var_explained"],
            rtol=1e-12,
        )


def test_kme_and_connectivities_are_pairwise(case):
    """kME is each gene's (Pearson's) correlation with each eigengene over the samples the
    gene has; kWithin and kTotal sum the adjacency of the network's correlations over the
    samples each pair has (pandas' pairwise-complete correlations, or bicor's of each
    pair's)."""
    name, result, _ = case
    values = pd.DataFrame(_cohort(name)["expression"].values, columns=_cohort(name)["gene"].values)[
        result["gene"].values
    ]
    eigengenes = pd.DataFrame(result["eigengene"].values, columns=result["module"].values)
    kme = (
        pd.concat([values, eigengenes], axis=1)
        .corr()
        .to_numpy()[: values.shape[1], values.shape[1] :]
    )
    np.testing.assert_allclose(result["kme"].values, kme, atol=1e-12)
    if result.attrs["correlation_type"] == "bicor":
        cor = pairwise_bicor(values.to_numpy(), max_p_outliers=0.05)
    else:
        cor = values.corr().to_numpy()
    power = result.attrs["power"]
    signed = result.attrs["network"] == "signed"
    adjacency = ((1 + cor) / 2) ** power if signed else np.abs(cor) ** power
    np.testing.assert_allclose(result["k_total"].values, adjacency.sum(axis=0) - 1, rtol=1e-10)
    labels = result["label"].values
    for module in result["module"].values:
        genes = labels == module
        within = adjacency[np.ix_(genes, genes)].sum(axis=0) - 1
        np.testing.assert_allclose(result["k_within"].values[genes], within, rtol=1e-10)
