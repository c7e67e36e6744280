"""WGCNA's blockwiseConsensusModules of sets with missing values against WGCNA 1.72 and impute
1.72 (fixtures from tests/fixtures/make_missing_network_fixtures.R, part 4): the bladder arrays
with 5 % missing in two sets of samples, in blocks of at most 400 genes; the simulated cohort's
halves (a gene without a value in the first half left out, as goodSamplesGenesMS) in a signed
network; the bladder's sets with bicor (outliers capped at 5 %: each pair's medians over the
samples it shares; the consensus kME rules uncapped).

By default the consensus pre-clustering of each set's scaled genes imputed by impute.knn, from
the start R draws after imputing; given R's blocks, each block's tree of the consensus of the
sets' TOMs of pairwise correlations, the consensus kME rules over the samples each gene has,
the merged modules and each set's eigengenes of imputed modules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from network_cohorts import WGCNA, csv_cohort

from cohortex import network
from cohortex.stats._network import pairwise_bicor
from cohortex.stats._tree_cut import number_by_size

CASES = {  # name: (cohort, max_block_size, settings, R's blocks given)
    "missing_bladder_given": ("missing_bladder", 400, {"power": 6}, True),
    "missing_bladder_bicor_given": (
        "missing_bladder",
        400,
        {"power": 6, "correlation_type": "bicor", "max_p_outliers": 0.05},
        True,
    ),
    "missing_simulated": (
        "missing_simulated",
        5000,
        {"network": "signed", "power": 12, "pam_respects_dendro": False, "merge_cut_height": 0.25},
        False,
    ),
}
SPLITS = {"missing_bladder": (28, 29), "missing_simulated": (50, 50)}


def _sets(cohort: str) -> list[xr.Dataset]:
    whole = csv_cohort(f"{cohort}_expression.csv")
    first = SPLITS[cohort][0]
    return [whole.isel(sample=slice(0, first)), whole.isel(sample=slice(first, None))]


def _expected(name: str) -> pd.DataFrame:
    return pd.read_csv(WGCNA / f"{name}_consensus_genes.csv")


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    name = request.param
    cohort, max_block, options, given = CASES[name]
    sets = _sets(cohort)
    expected = _expected(name)
    if given:  # genes goodSamplesGenesMS leaves out have none
        blocks = pd.Series(expected["block"].to_numpy(), index=expected["gene"])
        options = {**options, "blocks": blocks.reindex(sets[0]["gene"].values).to_numpy()}
    result = network.consensus_modules(sets, max_block_size=max_block, progress=False, **options)
    return name, result, expected


def test_preclusters_of_imputed_sets_are_rs_blocks_by_default():
    """From the start R draws after impute.knn (which sets its own seed and leaves R's
    generator there), the blocks of consensusProjectiveKMeans of each set's scaled genes
    imputed (with the refresh of the changed centres at their positions, the fixture's
    corrected copy)."""
    expected = _expected("missing_bladder")
    result = network.consensus_modules(
        _sets("missing_bladder"), power=6, max_block_size=400, progress=False
    )
    np.testing.assert_array_equal(
        result["block"].values, number_by_size(expected["corrected"].to_numpy())
    )
    assert result.attrs["n_blocks"] == 3


def test_block_trees_equal_rs(case):
    name, result, expected = case
    blocks = result["tree_block"].values
    assert result.attrs["n_blocks"] == expected["block"].max() == blocks.max()
    for b in range(1, blocks.max() + 1):
        tree = pd.read_csv(WGCNA / f"{name}_consensus_tree{b}.csv")
        mine = blocks == b
        np.testing.assert_array_equal(
            result["tree_merge"].values[mine], tree[["merge1", "merge2"]].to_numpy()
        )
        np.testing.assert_allclose(result["tree_height"].values[mine], tree["height"], atol=1e-12)


def test_modules_equal_rs_gene_for_gene(case):
    name, result, expected = case
    np.testing.assert_array_equal(result["gene"].values, expected["gene"])
    np.testing.assert_array_equal(result["unmerged_label"].values, expected["unmerged"])
    np.testing.assert_array_equal(result["label"].values, expected["merged"])
    dynamic, unmerged = result["dynamic_label"].values, result["unmerged_label"].values
    assert np.sum((dynamic > 0) & (unmerged == 0)) > 0  # genes the kME rules sent away
    attrs = result.attrs
    assert min(attrs["missing_share"]) > 0.03
    left_out = [2, 1] if name == "missing_simulated" else [0, 0]
    assert attrs["n_genes_missing"] == left_out
    assert attrs["n_genes"] == len(expected)


def test_each_sets_eigengenes_equal_rs(case):
    """Each set's eigengenes of its imputed modules; in the simulated halves the first set's
    samples miss most of module 4's genes, so its eigengene is the hub gene's there."""
    name, result, _ = case
    for s, set_name in enumerate(result["set"].values):
        expected = pd.read_csv(WGCNA / f"{name}_consensus_eigengenes{s + 1}.csv", index_col=0)
        assert sorted(expected.columns) == [f"ME{m}" for m in result["module"].values]
        mine = result["eigengene"].values[result["sample_set"].values == set_name]
        for j, module in enumerate(result["module"].values):
            np.testing.assert_allclose(mine[:, j], expected[f"ME{module}"], atol=1e-12)
    assert result.attrs["hub_eigengenes"] == ([4] if name == "missing_simulated" else [])


def test_kme_and_connectivities_are_pairwise(case):
    """Each set's kME (Pearson's) over the samples each gene has, its kTotal and kWithin from
    the network's correlations over the samples each pair has (pandas' pairwise-complete
    correlations, or bicor's of each pair's)."""
    name, result, _ = case
    power = result.attrs["power"]
    signed = result.attrs["network"] == "signed"
    labels = result["label"].values
    for s, one in enumerate(_sets(CASES[name][0])):
        values = pd.DataFrame(one["expression"].values, columns=one["gene"].values)
        values = values[result["gene"].values]
        eigengenes = pd.DataFrame(
            result["eigengene"].values[result["sample_set"].values == result["set"].values[s]]
        )
        kme = pd.concat([values, eigengenes], axis=1).corr().to_numpy()
        np.testing.assert_allclose(
            result["kme"].values[:, :, s], kme[: values.shape[1], values.shape[1] :], atol=1e-12
        )
        if result.attrs["correlation_type"] == "bicor":
            cor = pairwise_bicor(values.to_numpy(), max_p_outliers=0.05)
        else:
            cor = values.corr().to_numpy()
        adjacency = ((1 + cor) / 2) ** power[s] if signed else np.abs(cor) ** power[s]
        np.testing.assert_allclose(
            result["k_total"].values[:, s], adjacency.sum(axis=0) - 1, rtol=1e-10
        )
        for module in result["module"].values:
            genes = labels == module
            within = adjacency[np.ix_(genes, genes)].sum(axis=0) - 1
            np.testing.assert_allclose(result["k_within"].values[genes, s], within, rtol=1e-10)
