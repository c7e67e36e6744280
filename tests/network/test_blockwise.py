"""WGCNA's blockwiseModules against WGCNA 1.72 (fixtures from
tests/fixtures/make_blockwise_fixtures.R): the pre-clustering's blocks from R's random start,
then, given R's blocks, each block's tree, the modules after the kME rules and the moves
between blocks, the merged modules and their eigengenes; then its defaults on a simulated
cohort and what is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from network_cohorts import WGCNA, bicor_cohort, bladder, simulated
from sklearn.metrics import adjusted_rand_score

from cohortex import CohortexError, network
from cohortex.network import _data
from cohortex.network._blockwise import preclusters
from cohortex.network._data import GeneNetwork
from cohortex.simulate import simulate_array
from cohortex.stats import _blockwise as stats_blockwise
from cohortex.stats._network import bicor_columns
from cohortex.stats._tree_cut import number_by_size

CASES = {
    "bladder": ("bladder", 400, {}),
    "bladder_one": ("bladder", 5000, {}),
    "bladder_mean": ("bladder", 400, {"tom_denominator": "mean"}),
    "bladder_strict": ("bladder", 400, {"min_core_kme": 0.85, "min_kme_to_stay": 0.5}),
    "bicor": ("bicor", 400, {"correlation_type": "bicor", "max_p_outliers": 0.05}),
    "simulated": (
        "simulated",
        150,
        {
            "network": "signed",
            "power": 12,
            "pam_respects_dendro": False,
            "merge_cut_height": 0.25,
        },
    ),
}


def data_of(name: str):
    if name == "bicor":
        return bicor_cohort()
    return bladder(chunks=(20, 300)) if name == "bladder" else simulated()


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    name, max_block, options = CASES[request.param]
    expected = pd.read_csv(WGCNA / f"{request.param}_blockwise_genes.csv")
    result = network.blockwise_modules(
        data_of(name),
        blocks=expected["block"].to_numpy(),
        max_block_size=max_block,
        progress=False,
        **options,
    )
    return request.param, result, expected


@pytest.mark.parametrize("name", ["bladder", "simulated"])
def test_preclusters_from_rs_start_are_its_blocks(name):
    """projectiveKMeans from the start R drew, with its refresh of the changed centres at
    their positions (the fixture's corrected copy): the same blocks."""
    cohort, max_block, _ = CASES[name]
    expected = pd.read_csv(WGCNA / f"{name}_blockwise_genes.csv")
    n_genes = len(expected)
    z = GeneNetwork.build(
        data_of(cohort), genes=None, device="cpu", progress=False, who="t", correlation=False
    ).standardised()
    blocks = preclusters(
        z,
        expected["start"].to_numpy() - 1,
        n_centers=int(min(n_genes / 20, 100 * n_genes / max_block)),
        max_block_size=max_block,
    )
    np.testing.assert_array_equal(blocks + 1, number_by_size(expected["corrected"].to_numpy()))
    assert np.bincount(blocks).max() <= max_block and blocks.max() >= 2


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
    """The modules after the kME rules and the moves between blocks (R's unmergedColors), and
    after merging (R's colors, numbered by size as R's relabel does)."""
    name, result, expected = case
    np.testing.assert_array_equal(result["unmerged_label"].values, expected["unmerged"])
    np.testing.assert_array_equal(result["label"].values, expected["merged"])
    np.testing.assert_array_equal(result["block"].values, expected["block"])
    dynamic, unmerged = result["dynamic_label"].values, result["unmerged_label"].values
    assert np.sum((dynamic > 0) & (unmerged == 0)) > 0  # genes the kME rules sent away
    if name == "bladder_strict":  # a module too few genes follow closely is dissolved
        assert set(dynamic[dynamic > 0]) - set(unmerged[unmerged > 0])
    if name == "bladder":  # genes moved to another block's module
        assert np.sum((unmerged > 0) & (dynamic > 0) & (unmerged != dynamic)) > 0


def test_eigengenes_equal_rs(case):
    name, result, _ = case
    expected = pd.read_csv(WGCNA / f"{name}_blockwise_eigengenes.csv", index_col=0)
    assert sorted(expected.columns) == [f"ME{m}" for m in result["module"].values]
    for module in result["module"].values:
        np.testing.assert_allclose(
            result["eigengene"].sel(module=module).values,
            expected[f"ME{module}"].to_numpy(),
            atol=1e-10,
        )


def test_kme_connectivity_and_variance_explained(case):
    """kME is each gene's correlation with each eigengene; kWithin its adjacency to its
    module's other genes; var_explained the eigengene's share of its genes' variance;
    kTotal the whole network's connectivity, as the step-by-step network's."""
    name, result, _ = case
    cohort, _, options = CASES[name]
    values = data_of(cohort)["expression"].values
    power = result.attrs["power"]
    signed = result.attrs["network"] == "signed"
    cor = np.corrcoef(values, rowvar=False)
    if result.attrs["correlation_type"] == "bicor":  # the network's adjacency is bicor's
        columns = bicor_columns(values, result.attrs["max_p_outliers"])
        cor = columns.T @ columns
    eigengenes = result["eigengene"].values
    kme = np.corrcoef(values, eigengenes, rowvar=False)[: values.shape[1], values.shape[1] :]
    np.testing.assert_allclose(result["kme"].values, kme, atol=1e-12)
    adjacency = ((1 + cor) / 2) ** power if signed else np.abs(cor) ** power
    labels = result["label"].values
    for module in result["module"].values:
        genes = labels == module
        within = adjacency[np.ix_(genes, genes)].sum(axis=0) - 1
        np.testing.assert_allclose(result["k_within"].values[genes], within, rtol=1e-10)
        standardised = (values[:, genes] - values[:, genes].mean(0)) / values[:, genes].std(0)
        top = np.linalg.svd(standardised, compute_uv=False)[0] ** 2 / values.shape[0]
        np.testing.assert_allclose(
            result["var_explained"].sel(module=module), top / genes.sum(), rtol=1e-10
        )
    np.testing.assert_allclose(result["k_total"].values, adjacency.sum(axis=0) - 1, rtol=1e-10)
    step_by_step = network.modules(
        data_of(cohort),
        power=power,
        network=result.attrs["network"],
        correlation_type=result.attrs["correlation_type"],
        max_p_outliers=result.attrs["max_p_outliers"],
        progress=False,
    )
    np.testing.assert_allclose(result["k_total"], step_by_step["k_total"], rtol=1e-10)


def test_lanczos_for_large_modules_equals_lapack(monkeypatch):
    """Modules larger than DENSE_EIGEN_SIZE (on their smaller side) take their eigengenes by
    Lanczos on products with the data; the same as LAPACK's."""
    dense = network.blockwise_modules(bladder(), max_block_size=400, progress=False)
    monkeypatch.setattr(stats_blockwise, "DENSE_EIGEN_SIZE", 20)
    lanczos = network.blockwise_modules(bladder(), max_block_size=400, progress=False)
    np.testing.assert_array_equal(lanczos["label"].values, dense["label"].values)
    for name in ("eigengene", "kme", "var_explained"):
        np.testing.assert_allclose(lanczos[name].values, dense[name].values, rtol=0, atol=1e-12)


def test_finds_the_planted_modules_with_its_defaults():
    """The simulator's modules across blocks of 300 genes, every other setting the default:
    each planted module is one module, nothing else joins it, and as in R the kME rules leave
    the genes that follow their module weakly out of all."""
    x, _, genes = simulate_array(300, 1200, modules=6, module_size=50, n_de=0, seed=5)
    result = network.blockwise_modules(x, max_block_size=300, progress=False)
    assert result.attrs["n_blocks"] >= 4
    assert np.bincount(result["block"].values).max() <= 300
    planted = genes["module"].to_numpy()
    found = result["label"].values
    assigned = (planted >= 0) & (found > 0)
    assert result.attrs["n_modules"] == 6
    assert adjusted_rand_score(planted[assigned], found[assigned]) == 1.0
    assert np.mean(found[planted >= 0] > 0) > 0.65
    assert np.all(found[planted < 0] == 0)
    # the same modules as from one block
    whole = network.blockwise_modules(x, max_block_size=5000, progress=False)
    assert whole.attrs["n_blocks"] == 1
    assert adjusted_rand_score(whole["label"].values, found) == 1.0


def test_defaults_follow_blockwise_modules():
    result = network.blockwise_modules(bladder(), progress=False)
    attrs = result.attrs
    assert (attrs["power"], attrs["power_source"]) == (6.0, "WGCNA FAQ")
    assert (attrs["network"], attrs["tom"], attrs["n_blocks"]) == ("unsigned", "signed", 1)
    assert attrs["min_module_size"] == 20 and attrs["min_core_kme_size"] == pytest.approx(20 / 3)
    expected = pd.read_csv(WGCNA / "bladder_one_blockwise_genes.csv")
    np.testing.assert_array_equal(result["label"].values, expected["merged"])


def test_refusals(monkeypatch):
    data = bladder()
    with pytest.raises(CohortexError, match="one block per gene"):
        network.blockwise_modules(data, blocks=np.ones(10), progress=False)
    blocks = np.where(np.arange(data.sizes["gene"]) % 2 == 0, 1.0, 2.0)
    blocks[[3, 8]] = np.nan
    with pytest.raises(CohortexError, match=r"no block to 2 genes the network uses \("):
        network.blockwise_modules(data, blocks=blocks, progress=False)
    blocks[[3, 8]] = 1.0
    data["expression"][:, 3] = 7.0  # constant: left out, so it may have no block
    blocks[3] = np.nan
    assert network.blockwise_modules(data, blocks=blocks, progress=False).attrs["n_blocks"] == 2
    with pytest.raises(CohortexError, match="min_core_kme"):
        network.blockwise_modules(data, min_core_kme=1.5, progress=False)
    with pytest.raises(CohortexError, match="max_block_size"):
        network.blockwise_modules(data, max_block_size=2, progress=False)
    monkeypatch.setattr(_data, "physical_memory", lambda: 2**20)
    with pytest.raises(CohortexError, match="max_block_size="):
        network.blockwise_modules(data, progress=False)
