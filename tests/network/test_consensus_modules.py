"""WGCNA's blockwiseConsensusModules against WGCNA 1.72 (fixtures from
tests/fixtures/make_consensus_network_fixtures.R): the consensus pre-clustering's blocks from
R's random start, then, given R's blocks, each block's tree of the calibrated consensus TOM, the
modules after the consensus kME rules and after merging, and each set's eigengenes; then its
defaults on simulated sets that share all but one module, the gene moves, and what is
refused."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from network_cohorts import WGCNA, bladder, simulated
from sklearn.metrics import adjusted_rand_score

from cohortex import CohortexError, network
from cohortex.network import _consensus
from cohortex.network._blockwise import ProductGenes
from cohortex.network._data import GeneNetwork
from cohortex.simulate import simulate_array
from cohortex.stats._network import bicor_columns
from cohortex.stats._tree_cut import number_by_size


def _sets(data, split):
    return {str(k): data.isel(sample=np.flatnonzero(split == k)) for k in np.unique(split)}


def simulated_halves(genes=None):
    data = simulated()
    if genes is not None:
        data = data.isel(gene=slice(0, genes))
    return _sets(data, np.repeat([1, 2], 50))


def bladder_sets(n_sets):
    split = np.repeat([1, 2], [28, 29]) if n_sets == 2 else np.repeat([1, 2, 3], 19)
    return _sets(bladder(chunks=(10, 300)), split)


# R's power is 6 in every set; cohortex's default follows the FAQ by each set's samples
CASES = {
    "simulated_small": (lambda: simulated_halves(200), 5000, {"power": 6}),
    "simulated": (simulated_halves, 5000, {"power": 6}),
    "simulated_strict": (
        simulated_halves,
        5000,
        {"power": 6, "calibration": "none", "min_core_kme": 0.8, "min_kme_to_stay": 0.5},
    ),
    "simulated_full": (simulated_halves, 5000, {"power": 6, "calibration": "full quantile"}),
    "simulated_mean": (simulated_halves, 5000, {"power": 6, "tom_denominator": "mean"}),
    "bladder_weighted": (
        lambda: bladder_sets(3),
        5000,
        {"power": 6, "use_mean": True, "set_weights": [1, 2, 3]},
    ),
    "bladder_bicor": (
        lambda: bladder_sets(2),
        5000,
        {"power": 6, "correlation_type": "bicor", "max_p_outliers": 0.05},
    ),
    "bladder": (lambda: bladder_sets(2), 400, {"power": 6}),
    "bladder_given": (lambda: bladder_sets(2), 400, {"power": 6}),
    "bladder_full": (lambda: bladder_sets(3), 5000, {"power": 6, "calibration": "full quantile"}),
    "bladder_three": (
        lambda: bladder_sets(3),
        5000,
        {
            "network": "signed",
            "power": 12,
            "consensus_quantile": 0.25,
            "pam_respects_dendro": False,
            "merge_cut_height": 0.25,
        },
    ),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    make, max_block, options = CASES[request.param]
    expected = pd.read_csv(WGCNA / f"{request.param}_consensus_genes.csv")
    sets = make()
    result = network.consensus_modules(
        sets,
        blocks=expected["block"].to_numpy(),
        max_block_size=max_block,
        progress=False,
        **options,
    )
    return request.param, sets, result, expected


def test_quantile_normalisation_is_preprocesscores():
    """normalize.quantiles: the mean of the sorted columns, by rank; two tied values take the
    mean of their two ranks' targets, three that of the middle rank (R's printed results)."""
    columns = [np.array([1.0, 2, 2, 2, 2, 7]), np.array([3.0, 1, 5, 2, 9, 4])]
    out = _consensus.quantile_normalised(columns)
    np.testing.assert_allclose(out[0], [1, 2.75, 2.75, 2.75, 2.75, 8])
    np.testing.assert_allclose(out[1], [2.5, 1, 3.5, 2, 8, 3])
    out = _consensus.quantile_normalised([np.array([1.0, 2, 2, 2, 7]), np.array([3.0, 1, 5, 2, 9])])
    np.testing.assert_allclose(out[0], [1, 2.5, 2.5, 2.5, 8])
    np.testing.assert_allclose(out[1], [2.5, 1, 3.5, 2, 8])
    out = _consensus.quantile_normalised([np.array([1.0, 2, 2, 4]), np.array([3.0, 1, 5, 2])])
    np.testing.assert_allclose(out[0], [1, 2.25, 2.25, 4.5])


def test_preclusters_from_rs_start_are_its_blocks():
    """consensusProjectiveKMeans from the start R drew, with its refresh of the changed centres
    at their positions (the fixture's corrected copy): the same blocks."""
    expected = pd.read_csv(WGCNA / "bladder_consensus_genes.csv")
    sets = [
        GeneNetwork.build(
            s, genes=None, device="cpu", progress=False, who="t", correlation=False
        ).standardised()
        for s in bladder_sets(2).values()
    ]
    blocks = _consensus.consensus_preclusters(
        sets, expected["start"].to_numpy() - 1, n_centers=50, max_block_size=400
    )
    np.testing.assert_array_equal(blocks + 1, number_by_size(expected["corrected"].to_numpy()))
    assert np.bincount(blocks).max() <= 400 and blocks.max() == 2
    # R's own pre-clustering (its refresh at the changed clusters' ranks) differs
    assert adjusted_rand_score(expected["preclusters"], expected["corrected"]) < 0.9


def test_block_trees_equal_rs(case):
    """Each block's tree of 1 - the consensus TOM (each set's TOM calibrated to the first's
    95th percentile, then their minimum or quantile): every merge, the heights to 1e-12."""
    name, _, result, expected = case
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
    """The modules after the consensus kME rules (R's unmergedColors) and after the consensus
    merging (R's colors, numbered by size)."""
    name, _, result, expected = case
    np.testing.assert_array_equal(result["unmerged_label"].values, expected["unmerged"])
    np.testing.assert_array_equal(result["label"].values, expected["merged"])
    np.testing.assert_array_equal(result["block"].values, expected["block"])
    dynamic, unmerged = result["dynamic_label"].values, result["unmerged_label"].values
    if name == "simulated_strict":  # the kME rules sent genes away
        assert np.sum((dynamic > 0) & (unmerged == 0)) > 0
    if name == "bladder_three":  # modules merged
        assert np.unique(unmerged).shape[0] > np.unique(result["label"].values).shape[0]
    assert result.attrs["n_modules"] == int(expected["merged"].max()) > 2


def test_eigengenes_of_each_set_equal_rs(case):
    name, sets, result, _ = case
    for s, set_name in enumerate(sets, start=1):
        expected = pd.read_csv(WGCNA / f"{name}_consensus_eigengenes{s}.csv", index_col=0)
        mine = result.isel(sample=result["sample_set"].values == set_name)
        assert list(mine["sample"].values) == list(expected.index)
        assert sorted(expected.columns) == [f"ME{m}" for m in result["module"].values]
        for module in result["module"].values:
            np.testing.assert_allclose(
                mine["eigengene"].sel(module=module).values,
                expected[f"ME{module}"].to_numpy(),
                atol=1e-10,
            )


def test_kme_connectivity_and_variance_explained_in_each_set(case):
    """Each set's kME, kWithin, kTotal and variance explained, from that set's samples."""
    _, sets, result, _ = case
    signed = result.attrs["network"] == "signed"
    labels = result["label"].values
    for s, (set_name, data) in enumerate(sets.items()):
        values = data["expression"].values.astype(np.float64)
        power = result.attrs["power"][s]
        mine = result.isel(sample=result["sample_set"].values == set_name).sel(set=set_name)
        eigengenes = mine["eigengene"].values
        kme = np.corrcoef(values, eigengenes, rowvar=False)[: values.shape[1], values.shape[1] :]
        np.testing.assert_allclose(mine["kme"].values, kme, atol=1e-12)
        cor = np.corrcoef(values, rowvar=False)
        if result.attrs["correlation_type"] == "bicor":  # the networks' adjacency is bicor's
            prepared = bicor_columns(values, result.attrs["max_p_outliers"])
            cor = prepared.T @ prepared
        adjacency = ((1 + cor) / 2) ** power if signed else np.abs(cor) ** power
        np.testing.assert_allclose(mine["k_total"].values, adjacency.sum(axis=0) - 1, rtol=1e-10)
        for module in result["module"].values:
            genes = labels == module
            within = adjacency[np.ix_(genes, genes)].sum(axis=0) - 1
            np.testing.assert_allclose(mine["k_within"].values[genes], within, rtol=1e-10)
            standardised = (values[:, genes] - values[:, genes].mean(0)) / values[:, genes].std(0)
            top = np.linalg.svd(standardised, compute_uv=False)[0] ** 2 / values.shape[0]
            np.testing.assert_allclose(
                mine["var_explained"].sel(module=module), top / genes.sum(), rtol=1e-10
            )


def _shared_but_one(n_samples=600, seed=5):
    """Two sets of a simulated cohort's samples, six planted modules of 50 genes among 1,200;
    module 0's co-expression destroyed in the second set (each gene's samples shuffled)."""
    x, _, genes = simulate_array(n_samples, 1200, modules=6, module_size=50, n_de=0, seed=seed)
    x = np.asarray(x, dtype=np.float64)
    planted = genes["module"].to_numpy()
    first, second = x[: n_samples // 2], x[n_samples // 2 :].copy()
    rng = np.random.default_rng(1)
    for g in np.flatnonzero(planted == 0):
        second[:, g] = rng.permutation(second[:, g])
    return first, second, planted


def test_finds_the_modules_every_set_shares_with_its_defaults():
    """With every setting the default: each module planted in both sets is one module that no
    other gene joins; the module that only the first set has is no module (blockwise_modules of
    the first set alone finds it); blocks of 300 genes give the same modules as one block, but
    for a few planted genes at the blocks' edges."""
    first, second, planted = _shared_but_one()
    result = network.consensus_modules({"a": first, "b": second}, progress=False)
    attrs = result.attrs
    assert attrs["sets"] == ["a", "b"] and attrs["power"] == [6.0, 6.0]
    assert (attrs["n_blocks"], attrs["n_modules"]) == (1, 5)
    found = result["label"].values
    shared = planted >= 1
    assigned = shared & (found > 0)
    assert adjusted_rand_score(planted[assigned], found[assigned]) == 1.0
    assert np.mean(found[shared] > 0) > 0.65
    assert np.all(found[planted < 0] == 0)
    assert np.all(found[planted == 0] == 0)
    alone = network.blockwise_modules(first, progress=False)["label"].values
    assert np.mean(alone[planted == 0] > 0) > 0.6
    assert np.unique(alone[(planted == 0) & (alone > 0)]).shape[0] == 1
    blocked = network.consensus_modules([first, second], max_block_size=300, progress=False)
    assert blocked.attrs["n_blocks"] >= 4
    assert np.bincount(blocked["block"].values).max() <= 300
    in_blocks = blocked["label"].values
    assert adjusted_rand_score(in_blocks, found) > 0.98
    joined = shared & (in_blocks > 0)
    assert adjusted_rand_score(planted[joined], in_blocks[joined]) == 1.0
    assert np.all(in_blocks[planted <= 0] == 0)


def test_the_sets_share_genes_by_id_and_keep_their_samples():
    """Genes by id (those all sets hold, in the first set's order); samples one set after the
    other, prefixed by their set where ids collide; sample variables every set has."""
    halves = simulated_halves()
    first, second = halves["1"], halves["2"]
    shuffled = second.isel(gene=np.random.default_rng(0).permutation(second.sizes["gene"]))
    shuffled = shuffled.isel(gene=slice(0, 380)).drop_vars("group", errors="ignore")
    whole = network.consensus_modules([first, second], power=6, progress=False)
    part = network.consensus_modules([first, shuffled], power=6, progress=False)
    kept = np.isin(first["gene"].values, shuffled["gene"].values)
    assert list(part["gene"].values) == list(first["gene"].values[kept])
    assert part.attrs["n_genes"] == 380 and part.attrs["n_genes_not_shared"] == 20
    assert whole.sizes["sample"] == 100 and list(whole["sample_set"].values[:50]) == ["set1"] * 50
    variables = [v for v in first.data_vars if first[v].dims == ("sample",)]
    assert variables and all(v in whole for v in variables)
    # the module-trait correlations in each set, and their consensus
    traits = network.module_traits(whole, ["score"])
    each = []
    for name, data in (("set1", first), ("set2", second)):
        eigengenes = whole["eigengene"].values[whole["sample_set"].values == name]
        expected = [np.corrcoef(e, data["score"].values)[0, 1] for e in eigengenes.T]
        mine = traits["cor"].sel(trait="score", set=name).values
        np.testing.assert_allclose(mine, expected, rtol=1e-10)
        each.append(mine)
    a, b = each
    agree = np.sign(a) == np.sign(b)
    nearest = np.where(np.abs(a) < np.abs(b), a, b)
    consensus = traits["consensus_cor"].sel(trait="score").values
    np.testing.assert_allclose(consensus[agree], nearest[agree], rtol=0)
    assert np.all(np.isnan(consensus[~agree]))
    assert agree.any()
    worst = traits["pvalue"].sel(trait="score").values.max(axis=1)
    np.testing.assert_allclose(
        traits["consensus_pvalue"].sel(trait="score").values[agree], worst[agree]
    )
    # a level that only one set has: NaN in the other, and no consensus
    staged = network.consensus_modules(
        [
            first.assign(stage=("sample", np.repeat(["I", "II"], 25))),
            second.assign(stage=("sample", np.repeat(["I", "III"], 25))),
        ],
        power=6,
        progress=False,
    )
    table = network.module_traits(staged, ["stage"])
    assert list(table["trait"].values) == ["stage[I]", "stage[II]", "stage[III]"]
    assert np.isnan(table["cor"].sel(trait="stage[III]", set="set1")).all()
    assert np.isfinite(table["cor"].sel(trait="stage[III]", set="set2")).all()
    assert np.isnan(table["consensus_cor"].sel(trait="stage[III]")).all()
    same = network.consensus_modules([first, first], power=6, progress=False)
    assert same["sample"].values[0].startswith("set1:")
    # the same set twice: its consensus is the set itself, as blockwise_modules with this TOM
    alone = network.blockwise_modules(
        first, power=6, tom="unsigned", min_kme_to_stay=0.2, reassign_threshold=0.0, progress=False
    )
    np.testing.assert_array_equal(same["label"].values, alone["label"].values)


def test_genes_move_to_the_module_they_follow_far_better():
    """reassign_threshold > 0: a gene of module 1 whose kME with module 2's eigengenes is much
    higher in both sets moves there; one that follows module 2 better in one set only stays."""
    rng = np.random.default_rng(2)
    n = 200

    def unit(v):
        v = v - v.mean(axis=0)
        return v / np.sqrt((v * v).sum(axis=0))

    zs, eigengenes = [], []
    for s in range(2):
        e1, e2 = unit(rng.standard_normal(n)), unit(rng.standard_normal(n))
        columns = [unit(e1 + 0.5 * unit(rng.standard_normal(n))) for _ in range(30)]
        columns += [unit(e2 + 0.5 * unit(rng.standard_normal(n))) for _ in range(30)]
        # gene 60 follows module 2 in both sets, gene 61 in the first set only
        columns.append(unit(0.3 * e1 + e2 + 0.3 * unit(rng.standard_normal(n))))
        follows = e2 if s == 0 else e1
        columns.append(unit(0.3 * (e1 + e2 - follows) + follows))
        zs.append(np.column_stack(columns))
        eigengenes.append([e1, e2])
    labels = np.repeat([1, 2, 1], [30, 30, 2])
    pairs = [[eigengenes[0][j], eigengenes[1][j]] for j in range(2)]
    moved = _consensus._reassign(
        [ProductGenes(z, z, None) for z in zs],
        labels,
        pairs,
        np.array([1, 2]),
        [n, n],
        signed=False,
        threshold=1e-4,
        min_module_size=20,
    )
    np.testing.assert_array_equal(moved, np.repeat([1, 2, 2, 1], [30, 30, 1, 1]))
    # the one-sided p-values of R's corPvalueFisher, intended for positive kME
    kme = np.array([float(zs[s][:, 60] @ eigengenes[s][1]) for s in range(2)])
    score = -2.0 * np.log(
        [0.5 * math.erfc(math.atanh(k) * math.sqrt(n - 3) / math.sqrt(2)) for k in kme]
    )
    assert score.sum() > 100


def test_refuses_what_it_cannot_use():
    halves = simulated_halves()
    first = halves["1"]
    with pytest.raises(CohortexError, match="two or more sets"):
        network.consensus_modules([first], progress=False)
    with pytest.raises(CohortexError, match="one power or one per set"):
        network.consensus_modules([first, first], power=[6, 6, 6], progress=False)
    with pytest.raises(CohortexError, match="calibration"):
        network.consensus_modules([first, first], calibration="quantile", progress=False)
    with pytest.raises(CohortexError, match="give use_mean=True"):
        network.consensus_modules([first, first], set_weights=[1, 2], progress=False)
    with pytest.raises(CohortexError, match="one finite, non-negative weight per set"):
        network.consensus_modules([first, first], use_mean=True, set_weights=[1], progress=False)
    with pytest.raises(CohortexError, match="'correlation_type' parameter"):
        network.consensus_modules([first, first], correlation_type="spearman", progress=False)
    with pytest.raises(CohortexError, match="consensus_quantile"):
        network.consensus_modules([first, first], consensus_quantile=1.5, progress=False)
    with pytest.raises(CohortexError, match="two or more sets"):
        network.consensus_modules(first, progress=False)
    with pytest.raises(CohortexError, match="list of cohorts"):
        network.consensus_modules(first["expression"].values, progress=False)
    other = first.assign_coords(gene=[f"x{i}" for i in range(first.sizes["gene"])])
    with pytest.raises(CohortexError, match="share 0"):
        network.consensus_modules([first, other], progress=False)
    with pytest.raises(CohortexError, match="one block per gene"):
        network.consensus_modules([first, first], blocks=np.zeros(3), progress=False)
