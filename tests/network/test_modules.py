"""WGCNA's step-by-step modules against WGCNA 1.72 and dynamicTreeCut 1.63 (fixtures from
tests/fixtures/make_wgcna_fixtures.R): the tree cut's modules gene for gene, the merged modules
(the same genes together; numbered by size here), eigengenes and their shares of variance,
kME, connectivities and module-trait correlations; then the defaults, the choices of power,
and what is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from network_cohorts import WGCNA, bladder, compare_with_tom_rows, simulated
from scipy import stats
from sklearn.metrics import adjusted_rand_score

from cohortex import CohortexError, network
from cohortex.network import _data, _modules
from cohortex.simulate import simulate_array

CASES = {
    "bladder": ("bladder", {"power": 6}),
    "bladder_signed_tom": ("bladder", {"power": 6, "tom": "signed"}),
    "bladder_mean": ("bladder", {"power": 6, "tom_denominator": "mean"}),
    "bladder_signed_tom_mean": (
        "bladder",
        {"power": 6, "tom": "signed", "tom_denominator": "mean"},
    ),
    "bladder_fine": (
        "bladder",
        {"power": 6, "deep_split": 4, "min_module_size": 10, "merge_cut_height": 0.4},
    ),
    "simulated": ("simulated", {"power": 12, "network": "signed", "min_module_size": 20}),
    "simulated_hybrid": (
        "simulated",
        {"power": 6, "network": "signed hybrid", "min_module_size": 20},
    ),
}


def data_of(name: str) -> xr.Dataset:
    return bladder(chunks=(20, 300)) if name == "bladder" else simulated()


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    name, options = CASES[request.param]
    result = network.modules(data_of(name), progress=False, **options)
    expected = pd.read_csv(WGCNA / f"{request.param}_modules.csv")
    # R keeps one merged module's number; ours are by size: read R's number of each of ours
    pairs = pd.crosstab(result["label"].values, expected["merged"])
    assert (pairs > 0).sum(axis=1).eq(1).all() and (pairs > 0).sum(axis=0).eq(1).all()
    r_number = {
        int(ours): int(pairs.columns[row.argmax()])
        for ours, row in zip(pairs.index, pairs.to_numpy(), strict=True)
    }
    return request.param, result, expected, r_number


def test_tree_cut_equals_cutree_dynamic(case):
    _, result, expected, _ = case
    np.testing.assert_array_equal(result["dynamic_label"].values, expected["dynamic"])


def test_merged_modules_hold_the_same_genes(case):
    name, result, expected, r_number = case
    ours = np.array([r_number[int(m)] for m in result["label"].values])
    np.testing.assert_array_equal(ours, expected["merged"])
    sizes = np.bincount(result["label"].values)
    assert result["size"].values.tolist() == [s for s in sizes if s > 0]
    assert list(sizes[1:]) == sorted(sizes[1:], reverse=True)  # numbered by size
    if name == "bladder_fine":  # two rounds of merging: 14 modules become 6
        assert np.unique(expected["dynamic"]).size == 15 and result.attrs["n_modules"] == 6


def test_eigengenes_kme_and_connectivity_equal_wgcna(case):
    name, result, expected, r_number = case
    eigengenes = pd.read_csv(WGCNA / f"{name}_eigengenes.csv")
    shares = pd.read_csv(WGCNA / f"{name}_var_explained.csv").set_index("module")
    for module in result["module"].values:
        theirs = r_number[int(module)]
        np.testing.assert_allclose(
            result["eigengene"].sel(module=module).values,
            eigengenes[f"ME{theirs}"],
            rtol=0,
            atol=1e-10,
        )
        np.testing.assert_allclose(
            result["kme"].sel(module=module).values,
            expected[f"kME{theirs}"],
            rtol=0,
            atol=1e-10,
        )
        assert result["var_explained"].sel(module=module).item() == pytest.approx(
            shares.loc[f"ME{theirs}", "var_explained"], rel=1e-10
        )
    np.testing.assert_allclose(result["k_total"].values, expected["k_total"], rtol=1e-10)
    np.testing.assert_allclose(
        result["k_within"].values, expected["k_within"], rtol=1e-10, atol=1e-12
    )


def test_module_traits_equal_cor_and_student_p(case):
    name, result, _, r_number = case
    traits = network.module_traits(result)
    expected = pd.read_csv(WGCNA / f"{name}_traits.csv")
    for _, row in expected.iterrows():
        ours_module = next(m for m, r in r_number.items() if f"ME{r}" == row["module"])
        trait = row["trait"]
        for variable in ("cancer", "group"):  # R's model.matrix names: cancerBiopsy
            if trait.startswith(variable):
                trait = f"{variable}[{trait[len(variable) :]}]"
        cell = traits.sel(module=ours_module, trait=trait)
        assert cell["cor"].item() == pytest.approx(row["cor"], rel=1e-10, abs=1e-12)
        assert cell["pvalue"].item() == pytest.approx(row["p"], rel=1e-8)
    assert set(traits["n"].values.ravel()) == {result.sizes["sample"]}


def test_tree_is_r_hclust(case):
    name, result, _, _ = case
    if name == "bladder_fine":
        name = "bladder"
    tree = pd.read_csv(WGCNA / f"{name}_tree.csv")
    np.testing.assert_array_equal(result["tree_merge"].values, tree[["merge1", "merge2"]])
    np.testing.assert_allclose(result["tree_height"].values, tree["height"], atol=1e-13)


def test_kme_pvalues_equal_pearsonr():
    from scipy import stats

    data = bladder()
    result = network.modules(data, power=6, progress=False)
    values = data["expression"].values
    for gene in (0, 17, 400):
        for module in result["module"].values:
            eigengene = result["eigengene"].sel(module=module).values
            expected = stats.pearsonr(values[:, gene], eigengene)
            cell = result.sel(module=module).isel(gene=gene)
            assert cell["kme"].item() == pytest.approx(expected.statistic, rel=1e-10)
            assert cell["kme_pvalue"].item() == pytest.approx(expected.pvalue, rel=1e-8)


def test_lanczos_for_large_modules_equals_lapack(monkeypatch):
    dense = network.modules(bladder(), power=6, progress=False)
    monkeypatch.setattr(_modules, "DENSE_EIGEN_SIZE", 50)  # every module by Lanczos
    lanczos = network.modules(bladder(), power=6, progress=False)
    for name in ("eigengene", "kme", "var_explained", "k_within"):
        np.testing.assert_allclose(lanczos[name].values, dense[name].values, rtol=0, atol=1e-12)


def test_blocks_of_samples_give_the_same_network(monkeypatch):
    whole = network.modules(bladder(), power=6, progress=False)
    monkeypatch.setattr(_data, "_BLOCK_BYTES", 8 * 1000 * 10)  # 10 samples a block
    blocks = network.modules(bladder(chunks=(7, 130)), power=6, progress=False)
    np.testing.assert_array_equal(blocks["label"].values, whole["label"].values)
    np.testing.assert_allclose(blocks["eigengene"].values, whole["eigengene"].values, atol=1e-12)


def test_default_power_is_the_scale_free_estimate():
    result = network.modules(bladder(), progress=False)
    assert result.attrs["power"] == 14.0  # pickSoftThreshold's estimate (fixture)
    assert result.attrs["power_source"] == "scale-free fit"


def test_without_a_scale_free_power_the_faq_decides():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(50, 200))
    result = network.modules(noise, min_module_size=5, progress=False)
    assert result.attrs["power_source"] == "WGCNA FAQ" and result.attrs["power"] == 6.0


def test_finds_the_planted_modules_with_its_defaults():
    """The simulator's modules (genes following a shared factor through their own sigmoids)
    come out as modules, with every default."""
    x, _, genes = simulate_array(300, 600, modules=4, module_size=50, n_de=0, seed=5)
    result = network.modules(x, progress=False)
    planted = genes["module"].to_numpy()
    found = result["label"].values
    in_modules = planted >= 0
    assert adjusted_rand_score(planted[in_modules], found[in_modules]) > 0.8
    # the PAM stage (the tutorial's) gives most other genes a module too, weakly: their kME
    # tells them apart, and the hubs are all planted genes
    own = np.abs(result["kme"].values[np.arange(600), np.searchsorted(result["module"], found)])
    joined = found > 0
    assert np.median(own[joined & in_modules]) > 3 * np.median(own[joined & ~in_modules])
    hubs = network.hub_genes(result, 10)
    position = {gene: i for i, gene in enumerate(result["gene"].values)}
    assert all(planted[position[gene]] >= 0 for gene in hubs["gene"])


def test_genes_takes_the_most_variable():
    data = bladder()
    variance = data["expression"].values.var(axis=0)
    result = network.modules(data, power=6, genes=300, progress=False)
    expected = np.sort(data["gene"].values[np.argsort(-variance)[:300]])
    assert sorted(result["gene"].values) == list(expected)
    assert result.attrs["n_genes"] == 300


def test_constant_genes_left_out_and_counts_made_log_cpm():
    x, _, _ = simulate_array(40, 150, distribution="negbinom", seed=2)
    x = np.asarray(x, dtype=np.float64)
    x[:, 3] = 0.0  # a gene never counted: constant on the log-CPM scale too
    counts = xr.Dataset({"expression": (("sample", "gene"), x)}, attrs={"scale": "counts"})
    result = network.modules(counts, power=6, min_module_size=5, progress=False)
    assert result.attrs["n_genes_constant"] == 1 and result.sizes["gene"] == 149
    assert result.attrs["transform"] == "log-CPM"


def test_hub_genes_are_the_highest_kme():
    result = network.modules(bladder(), power=6, progress=False)
    hubs = network.hub_genes(result, 5)
    assert hubs["module"].unique().tolist() == [1, 2, 3]
    first = hubs[hubs["module"] == 1]
    members = result["label"].values == 1
    kme = result["kme"].sel(module=1).values[members]
    np.testing.assert_allclose(first["kme"], np.sort(kme)[::-1][:5])
    assert first["rank"].tolist() == [1, 2, 3, 4, 5]


def test_module_enrichment_finds_the_planted_sets():
    from scipy import stats

    from cohortex.genesets import GeneSets, ora

    x, _, genes = simulate_array(300, 600, modules=4, module_size=50, n_de=0, seed=5)
    result = network.modules(x, progress=False)
    ids = result["gene"].values
    planted = genes["module"].to_numpy()
    sets = GeneSets.from_dict({f"planted{k}": list(ids[planted == k]) for k in range(4)})
    enriched = network.module_enrichment(result, sets, min_size=5)
    assert list(enriched["module"].values) == list(range(1, result.attrs["n_modules"] + 1))
    for module in enriched["module"].values:  # each module's best set is a planted one
        row = enriched.sel(module=module)
        best = int(np.argmin(row["pvalue"].values))
        assert row["padj"].values[best] < 1e-20
        members = ids[result["label"].values == module]
        direct = ora(members, sets, ids, min_size=5).isel(gene_set=best)
        assert row["pvalue"].values[best] == direct["pvalue"].item()
        in_set = planted[result["label"].values == module] == best
        expected = stats.hypergeom.sf(in_set.sum() - 1, 600, 50, members.size)
        assert row["pvalue"].values[best] == pytest.approx(expected, rel=1e-10)
    with pytest.raises(CohortexError, match="result of modules"):
        network.module_enrichment(xr.Dataset(), sets)


@pytest.mark.parametrize("tom", ["unsigned", "signed"])
@pytest.mark.parametrize("denominator", ["min", "mean"])
def test_module_edges_are_wgcna_tom(tom, denominator):
    data = bladder()
    result = network.modules(data, power=6, tom=tom, tom_denominator=denominator, progress=False)
    name = "bladder" if tom == "unsigned" else "bladder_signed_tom"
    name += "_mean" if denominator == "mean" else ""
    rows = pd.read_csv(WGCNA / f"{name}_tom_rows.csv", index_col=0)  # R's TOM, 10 genes
    compared = 0
    for module in (1, 2, 3):
        edges = network.module_edges(data, result, module, threshold=0.0, progress=False)
        size = int(result["size"].sel(module=module))
        assert len(edges) == size * (size - 1) // 2  # every pair once
        assert np.all(np.diff(edges["weight"].values) <= 0)
        compared += compare_with_tom_rows(edges, rows)
        members = result["gene"].values[result["label"].values == module]
        kme = dict(
            zip(
                members,
                result["kme"].sel(module=module).values[result["label"].values == module],
                strict=True,
            )
        )
        assert np.allclose(edges["from_kme"], [kme[g] for g in edges["from_gene"]])
    assert compared > 100
    default = network.module_edges(data, result, 2, progress=False)
    everything = network.module_edges(data, result, 2, threshold=0.0, progress=False)
    pd.testing.assert_frame_equal(default, everything[everything["weight"] >= 0.02])


def test_module_edges_refusals():
    data = bladder()
    result = network.modules(data, power=6, progress=False)
    with pytest.raises(CohortexError, match="'module' parameter of module_edges"):
        network.module_edges(data, result, 9)
    with pytest.raises(CohortexError, match="does not hold the network's genes"):
        network.module_edges(data.isel(gene=slice(0, 500)), result, 1)
    with pytest.raises(CohortexError, match="result of modules"):
        network.module_edges(data, data, 1)


def test_module_traits_of_categories_with_missing_values():
    result = network.modules(bladder(), power=6, progress=False)
    cancer = result["cancer"].values.astype(object)
    cancer[:5] = None
    result["cancer"] = ("sample", cancer)
    traits = network.module_traits(result, ["cancer"])
    assert list(traits["trait"].values) == ["cancer[Biopsy]", "cancer[Cancer]", "cancer[Normal]"]
    assert set(traits["n"].values.ravel()) == {52}
    me = result["eigengene"].sel(module=1).values[5:]
    biopsy = (cancer[5:] == "Biopsy").astype(float)
    assert traits["cor"].sel(module=1, trait="cancer[Biopsy]").item() == pytest.approx(
        np.corrcoef(me, biopsy)[0, 1], rel=1e-12
    )
    # a hub-gene eigengene missing where its gene is: each pair over the samples both have
    result["eigengene"].loc[{"module": 2}] = np.where(
        np.arange(result.sizes["sample"]) % 6 == 0, np.nan, result["eigengene"].sel(module=2)
    )
    traits = network.module_traits(result, ["cancer"])
    n = traits["n"].sel(trait="cancer[Biopsy]")
    assert int(n.sel(module=2)) == 52 - 9 and int(n.sel(module=1)) == 52
    biopsy_all = np.where(pd.isna(cancer), np.nan, (cancer == "Biopsy").astype(float))
    both = pd.DataFrame({"me": result["eigengene"].sel(module=2).values, "biopsy": biopsy_all})
    cell = traits.sel(module=2, trait="cancer[Biopsy]")
    assert cell["cor"].item() == pytest.approx(both.corr().loc["me", "biopsy"], rel=1e-12)
    assert cell["pvalue"].item() == pytest.approx(
        stats.pearsonr(*both.dropna().to_numpy().T).pvalue, rel=1e-10
    )


def test_refuses_bad_input(monkeypatch):
    data = bladder()
    with pytest.raises(CohortexError, match="'tom' parameter of modules"):
        network.modules(data, tom="weird")
    with pytest.raises(CohortexError, match="'deep_split' parameter of modules"):
        network.modules(data, deep_split=7)
    with pytest.raises(CohortexError, match="'merge_cut_height' parameter"):
        network.modules(data, merge_cut_height=1.5)
    with pytest.raises(CohortexError, match="'power' parameter of modules"):
        network.modules(data, power=-1)
    with pytest.raises(CohortexError, match="'genes' parameter of modules"):
        network.modules(data, genes=2)
    values = data["expression"].values.copy()
    values[3, 3] = np.inf  # missing values are taken (test_missing_values.py), infinite not
    with pytest.raises(CohortexError, match="needs finite values: the cohort holds infinite"):
        network.modules(data.assign(expression=(("sample", "gene"), values)))
    monkeypatch.setattr(_data, "physical_memory", lambda: 1000 * 1000 * 8 * 3)
    with pytest.raises(CohortexError, match="most variable genes.*--blockwise"):
        network.modules(data)
    with pytest.raises(CohortexError, match="result of modules"):
        network.module_traits(data)
    result = network.modules(
        data.isel(gene=slice(0, 200)), power=6, min_module_size=5, progress=False
    )
    with pytest.raises(CohortexError, match="Sample variables: cancer, batch"):
        network.module_traits(result, ["stage"])
