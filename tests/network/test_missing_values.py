"""Co-expression networks of cohorts with missing values against WGCNA 1.72 and impute 1.72
(fixtures from tests/fixtures/make_missing_network_fixtures.R): the simulated cohort with 4 %
of its values missing at random, a gene missing in 60 % of the samples (left out, as
goodSamplesGenes), a gene missing below a detection limit and 10 samples missing 27 genes of a
module; the bladder arrays with 5 % missing at random.

pickSoftThreshold, the correlations (use = "p"), the tree, the tree cut, mergeCloseModules
(eigengenes of imputed modules), intramodularConnectivity, moduleEigengenes with impute.knn
and its hub-gene fallback, signedKME (use = "p") and the TOM of module_edges."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from network_cohorts import WGCNA, compare_with_tom_rows, csv_cohort

from cohortex import CohortexError, network
from cohortex.network._data import GeneNetwork
from cohortex.network._imputed_eigengenes import imputed_eigengenes

CASES = {  # name: power, network type, minimum module size
    "missing_simulated": (12, "signed", 20),
    "missing_bladder": (6, "unsigned", 30),
}


def _cohort(name: str) -> xr.Dataset:
    return csv_cohort(f"{name}_expression.csv")


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    name = request.param
    power, kind, size = CASES[name]
    result = network.modules(
        _cohort(name), power=power, network=kind, min_module_size=size, progress=False
    )
    return name, result


def _module_names(result: xr.Dataset, expected: pd.Series) -> dict[int, str]:
    """Our module numbers (by size) to R's eigengene names, one to one."""
    pairs = pd.crosstab(result["label"].values, expected.to_numpy())
    assert (pairs > 0).sum(axis=1).eq(1).all() and (pairs > 0).sum(axis=0).eq(1).all()
    return {int(ours): f"ME{int(theirs)}" for ours, theirs in pairs.idxmax(axis=1).items()}


def test_correlations_are_rs_pairwise_complete(case):
    name, _ = case
    power, kind, size = CASES[name]
    expected = pd.read_csv(WGCNA / f"{name}_cor_rows.csv", index_col=0)
    data = GeneNetwork.build(_cohort(name), genes=None, device="cpu", progress=False, who="t")
    np.testing.assert_array_equal(data.gene_ids, expected.columns)
    assert data.missing
    rows = np.asarray(data.cross_correlation(np.arange(10)))
    np.testing.assert_allclose(rows, expected.to_numpy(), rtol=0, atol=1e-13)
    np.testing.assert_allclose(np.asarray(data.compute_correlation())[:10], rows, atol=1e-15)
    complete = np.corrcoef(np.nan_to_num(_cohort(name)["expression"].values[:, :10]).T)
    assert np.abs(complete - rows[:, :10]).max() > 0.05  # the pairs matter


def test_soft_threshold_equals_pick_soft_threshold(case):
    name, _ = case
    power, kind, size = CASES[name]
    table = network.soft_threshold(_cohort(name), network=kind, progress=False)
    expected = pd.read_csv(WGCNA / f"{name}_sft.csv")
    for column in ("r2", "slope", "truncated_r2", "mean_k", "median_k", "max_k"):
        np.testing.assert_allclose(
            table[column].values, expected[column], rtol=1e-10, atol=1e-12, err_msg=column
        )
    assert table.attrs["missing_share"] > 0.04


def test_modules_equal_wgcnas(case):
    name, result = case
    expected = pd.read_csv(WGCNA / f"{name}_modules.csv")
    tree = pd.read_csv(WGCNA / f"{name}_tree.csv")
    np.testing.assert_array_equal(result["gene"].values, expected["gene"])
    np.testing.assert_array_equal(result["tree_merge"].values, tree[["merge1", "merge2"]])
    np.testing.assert_allclose(result["tree_height"].values, tree["height"], atol=1e-12)
    np.testing.assert_array_equal(result["dynamic_label"].values, expected["dynamic"])
    np.testing.assert_allclose(result["k_total"].values, expected["k_total"], rtol=1e-11)
    np.testing.assert_allclose(result["k_within"].values, expected["k_within"], rtol=1e-11)
    names = _module_names(result, expected["merged"])
    eigengenes = pd.read_csv(WGCNA / f"{name}_eigengenes.csv")
    explained = pd.read_csv(WGCNA / f"{name}_var_explained.csv", index_col=0)
    for module, me in names.items():
        np.testing.assert_allclose(
            result["eigengene"].sel(module=module).values, eigengenes[me], atol=1e-12
        )
        np.testing.assert_allclose(
            result["kme"].sel(module=module).values, expected[f"k{me}"], atol=1e-12
        )
        assert float(result["var_explained"].sel(module=module)) == pytest.approx(
            explained.loc[me, "var_explained"], abs=1e-13
        )
    assert result.attrs["hub_eigengenes"] == []
    if name == "missing_simulated":  # g301 misses 60 % of the samples
        assert result.attrs["n_genes_missing"] == 2 and "g301" not in result["gene"].values


def test_merging_imputes_the_joined_modules_together():
    power, kind, size = CASES["missing_bladder"]
    result = network.modules(
        _cohort("missing_bladder"),
        power=power,
        network=kind,
        min_module_size=size,
        merge_cut_height=0.5,
        progress=False,
    )
    expected = pd.read_csv(WGCNA / "missing_bladder_wide_modules.csv")
    eigengenes = pd.read_csv(WGCNA / "missing_bladder_wide_eigengenes.csv")
    names = _module_names(result, expected["merged"])
    assert result.attrs["n_modules"] == 2
    for module, me in names.items():
        np.testing.assert_allclose(
            result["eigengene"].sel(module=module).values, eigengenes[me], atol=1e-12
        )
        np.testing.assert_allclose(
            result["kme"].sel(module=module).values, expected[f"k{me}"], atol=1e-12
        )


def test_hub_gene_eigengenes_where_impute_knn_refuses():
    """A module whose samples miss 10 of its 12 genes, and a module of one gene with missing
    values, take moduleEigengenes' hub-gene eigengene; a third is imputed."""
    values = _cohort("missing_simulated")["expression"].values
    given = values[:, [*range(150, 160), 178, 179, 301, *range(20)]]
    labels = np.repeat([1, 2, 3], [12, 1, 20])
    found = imputed_eigengenes(given, labels, np.array([1, 2, 3]))
    expected = pd.read_csv(WGCNA / "missing_given_eigengenes.csv")
    explained = pd.read_csv(WGCNA / "missing_given_var_explained.csv")
    np.testing.assert_allclose(
        found.vectors, expected[["MEa", "MEb", "MEc"]].to_numpy(), atol=1e-13
    )
    np.testing.assert_allclose(found.var_explained, explained["var_explained"], atol=1e-13)
    np.testing.assert_array_equal(found.hub, ~explained["is_pc"].to_numpy())


def test_module_edges_are_wgcnas_tom(case):
    name, result = case
    rows = pd.read_csv(WGCNA / f"{name}_tom_rows.csv", index_col=0)
    first = result["label"].values[:10]
    module = int(np.bincount(first).argmax())
    edges = network.module_edges(_cohort(name), result, module, threshold=0.0, progress=False)
    assert compare_with_tom_rows(edges, rows) > 50


def test_module_traits_of_imputed_eigengenes(case):
    name, result = case
    result["score"] = ("sample", np.arange(result.sizes["sample"], dtype=np.float64))
    table = network.module_traits(result)
    assert np.isfinite(table["cor"].values).all()


def test_infinite_values_are_refused():
    clean = csv_cohort("simulated_expression.csv")
    modules = pd.Series(np.arange(clean.sizes["gene"]) % 4, index=clean["gene"].values)
    infinite = clean.copy(deep=True)
    infinite["expression"][2, 5] = np.inf
    with pytest.raises(CohortexError, match=r"infinite values \(make them missing \(NaN\)"):
        network.module_preservation(infinite, clean, modules, progress=False)


def test_samples_missing_half_the_genes_are_refused():
    cohort = _cohort("missing_bladder")
    cohort["expression"][3, :600] = np.nan
    with pytest.raises(CohortexError, match=r"1 sample misses half of the genes.*goodSamples"):
        network.modules(cohort, power=6, progress=False)


def test_pairs_without_shared_samples_are_refused():
    cohort = _cohort("missing_bladder").isel(gene=slice(0, 200))
    cohort["expression"][:, :2] = np.random.default_rng(1).normal(size=(57, 2))
    cohort["expression"][:28, 0] = np.nan  # each in 29 of 57 samples, sharing one
    cohort["expression"][29:, 1] = np.nan
    with pytest.raises(CohortexError, match="share fewer than 2 samples"):
        network.modules(cohort, power=6, progress=False)
    with pytest.raises(CohortexError, match="share fewer than 2 samples"):
        network.blockwise_modules(cohort, progress=False)
