"""Gene-set collections (GMT) and over-representation against SciPy's exact tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from cohortex import CohortexError, create_cohort, de, genesets
from cohortex.genesets import GeneSets, _camera, read_gmt


def test_gmt_round_trip_and_its_rules(tmp_path):
    text = "A\thttp://a\tg1\tg2\tg2\t\tg3\n\nB\tdesc b\tg4\r\n"
    (tmp_path / "s.gmt").write_text(text)
    sets = read_gmt(tmp_path / "s.gmt")
    assert sets.names == ("A", "B") and sets.descriptions == ("http://a", "desc b")
    assert sets["A"] == ("g1", "g2", "g3") and sets["B"] == ("g4",)  # repeats kept once
    sets.to_gmt(tmp_path / "t.gmt")
    assert read_gmt(tmp_path / "t.gmt") == sets
    (tmp_path / "bad.gmt").write_text("A\tdesc\n")
    with pytest.raises(CohortexError, match="line 1: a GMT line is a name, a description"):
        read_gmt(tmp_path / "bad.gmt")
    (tmp_path / "twice.gmt").write_text("A\td\tg1\nA\td\tg2\n")
    with pytest.raises(CohortexError, match="line 2: the set name 'A' is empty or repeated"):
        read_gmt(tmp_path / "twice.gmt")
    with pytest.raises(CohortexError, match="No gene set is named 'C'"):
        sets["C"]


def test_restrict_and_translate_by_a_gene_variable(tmp_path):
    sets = GeneSets.from_dict({"S1": ["TP53", "MYC", "EGFR"], "S2": ["KRAS"], "S3": ["XYZ"]})
    kept = sets.restrict(["TP53", "MYC", "KRAS"], min_size=2)
    assert kept.names == ("S1",) and kept["S1"] == ("TP53", "MYC")
    genes = pd.DataFrame({"symbol": ["TP53", "MYC", "KRAS", "MYC"]}, index=["E1", "E2", "E3", "E4"])
    create_cohort(tmp_path / "c.zarr", np.zeros((3, 4)), genes=genes)
    translated = sets.translate(tmp_path / "c.zarr", "symbol")
    assert translated["S1"] == ("E1", "E2", "E4") and translated["S3"] == ()
    with pytest.raises(CohortexError, match="No gene of the 1 sets matches"):
        GeneSets.from_dict({"S": ["nothing"]}).translate(tmp_path / "c.zarr", "symbol")
    with pytest.raises(CohortexError, match="'name' is not a gene variable"):
        sets.translate(tmp_path / "c.zarr", "name")


def test_ora_equals_fishers_exact_test():
    rng = np.random.default_rng(50)
    universe = [f"g{i}" for i in range(600)]
    sets = GeneSets.from_dict(
        {f"set{j}": rng.choice(universe, rng.integers(5, 80), replace=False) for j in range(40)}
        | {"planted": universe[:30], "outside": ["x1", "x2", "x3", "x4", "x5", "g1"]}
    )
    listed = universe[:20] + list(rng.choice(universe[30:], 40, replace=False))
    result = genesets.ora(listed, sets, universe, min_size=5)
    assert "outside" not in result["gene_set"].values  # 1 gene in the universe
    for name in result["gene_set"].values:
        members = set(sets[name]) & set(universe)
        a = len(members & set(listed))
        table = [[a, len(listed) - a], [len(members) - a, 600 - len(members) - len(listed) + a]]
        odds, p = stats.fisher_exact(table, alternative="greater")
        row = result.sel(gene_set=name)
        np.testing.assert_allclose(float(row["pvalue"]), p, rtol=1e-10)
        assert int(row["overlap"]) == a and int(row["set_size"]) == len(members)
        np.testing.assert_allclose(float(row["odds_ratio"]), odds, rtol=1e-12)
    planted = result.sel(gene_set="planted")
    assert float(planted["padj"]) < 1e-10 and planted["overlap_genes"].item().split(",")[:2] == [
        "g0",
        "g1",
    ]
    assert float(planted["expected"]) == pytest.approx(30 * 60 / 600)
    with pytest.raises(CohortexError, match="No gene of the list is in the universe"):
        genesets.ora(["nope"], sets, universe)


def test_ora_de_splits_up_and_down():
    rng = np.random.default_rng(51)
    x = rng.normal(size=(60, 300))
    labels = np.repeat(["t", "n"], 30)
    x[:30, :25] += 1.5  # up in t
    x[:30, 25:45] -= 1.5  # down in t
    result = de.test(x, labels, reference="n")
    genes = list(result["gene"].values)
    sets = GeneSets.from_dict(
        {"up_set": genes[:25], "down_set": genes[25:45], "other": genes[100:150]}
    )
    enriched = genesets.ora_de(result, sets)
    assert list(enriched["direction"].values) == ["up", "down"]
    assert float(enriched["padj"].sel(direction="up", gene_set="up_set")) < 1e-10
    assert float(enriched["padj"].sel(direction="down", gene_set="down_set")) < 1e-10
    assert float(enriched["padj"].sel(direction="up", gene_set="down_set")) > 0.5


LIMMA = Path(__file__).parents[1] / "fixtures" / "limma"


def _bladder():
    """bladderbatch's 57 arrays (1000 probes of make_limma_fixtures.R), cancer and batch."""
    expression = pd.read_csv(LIMMA / "bladder_expression.csv", index_col=0).T
    samples = pd.read_csv(LIMMA / "bladder_samples.csv", index_col=0).astype(str)
    return xr.Dataset(
        {
            "expression": (("sample", "gene"), expression.to_numpy()),
            **{name: ("sample", samples[name].to_numpy()) for name in samples.columns},
        },
        coords={"sample": expression.index.to_numpy(), "gene": expression.columns.to_numpy()},
    )


@pytest.mark.parametrize("variant", ["fixed", "estimated", "trend"])
def test_camera_equals_limma(variant):
    limma, ds = LIMMA, _bladder()
    sets = read_gmt(limma / "camera_sets.gmt")
    expected = pd.read_csv(limma / f"camera_{variant}.csv", index_col=0)
    result = genesets.camera(
        ds,
        "~ cancer + batch",
        sets,
        contrast="cancer[T.Normal]",
        inter_gene_cor=None if variant == "estimated" else 0.01,
        trend=variant == "trend",
    )
    _camera_check(result, expected, estimated=variant == "estimated")


def _camera_check(result, expected, estimated=False):
    assert list(result["gene_set"].values) == list(expected.index)
    np.testing.assert_array_equal(result["n_genes"], expected["NGenes"])
    np.testing.assert_array_equal(result["direction"], expected["Direction"])
    np.testing.assert_allclose(result["pvalue"], expected["PValue"], rtol=1e-8)
    np.testing.assert_allclose(result["padj"], expected["FDR"], rtol=1e-8)
    if estimated:
        np.testing.assert_allclose(result["correlation"], expected["Correlation"], rtol=1e-8)


@pytest.mark.parametrize("variant", ["fixed", "trend"])
def test_camera_on_a_voom_result_equals_limma(variant, monkeypatch):
    """camera(v, index, design): each gene's t from its fit with voom's weights, which
    camera takes from the result as limma takes them from the EList."""
    limma = LIMMA
    counts = pd.read_csv(limma / "voom_counts.csv", index_col=0)
    samples = pd.read_csv(limma / "voom_samples.csv", index_col=0)
    cohort = xr.Dataset(
        {
            "expression": (("sample", "gene"), counts.T.to_numpy().astype(float)),
            "condition": ("sample", samples["condition"].to_numpy()),
        },
        coords={"gene": counts.index.to_numpy()},
        attrs={"scale": "counts"},
    )
    voomed = de.voom(cohort, "~ condition", norm_factors="tmm")
    sets = read_gmt(limma / "camera_voom_sets.gmt")
    expected = pd.read_csv(limma / f"camera_voom_{variant}.csv", index_col=0)
    result = genesets.camera(voomed, "~ condition", sets, trend=variant == "trend")
    assert result.attrs["weighted"] == 1
    _camera_check(result, expected)
    assert expected.loc["vset31", "PValue"] < 1e-6  # the raised genes
    # an estimated correlation holds the sets' genes' residual effects, as fry does
    monkeypatch.setattr(_camera, "FRY_EFFECTS", 100)
    with pytest.raises(CohortexError, match="pass inter_gene_cor"):
        genesets.camera(voomed, "~ condition", sets, inter_gene_cor=None)
    zeroed = voomed["weights"].values.copy()
    zeroed[2, 5] = 0.0
    with pytest.raises(CohortexError, match="1 genes have missing values or weights <= 0"):
        genesets.camera(voomed, "~ condition", sets, weights=zeroed)


@pytest.mark.parametrize("variant", ["fixed", "estimated", "trend"])
def test_camera_with_sample_weights_equals_limma(variant):
    """camera(weights = arrayWeights(...)): limma scales the values and the design by the
    root weights (its trend.var then averages the scaled values)."""
    limma, ds = LIMMA, _bladder()
    weights = pd.read_csv(limma / "camera_sample_weights.csv")["weight"].to_numpy()
    result = genesets.camera(
        ds,
        "~ cancer + batch",
        read_gmt(limma / "camera_sets.gmt"),
        contrast="cancer[T.Normal]",
        weights=weights,
        inter_gene_cor=None if variant == "estimated" else 0.01,
        trend=variant == "trend",
    )
    expected = pd.read_csv(limma / f"camera_weighted_{variant}.csv", index_col=0)
    _camera_check(result, expected, estimated=variant == "estimated")


def test_autoencoder_enrichment_takes_a_collection():
    from cohortex.ae import enrichment

    universe = [f"g{i}" for i in range(100)]
    sets = GeneSets.from_dict({"a": universe[:10], "b": universe[50:70]})
    module = [*universe[:8], "g90"]
    by_collection = enrichment(module, sets, universe)
    by_mapping = enrichment(module, {"a": universe[:10], "b": universe[50:70]}, universe)
    np.testing.assert_array_equal(by_collection["pvalue"], by_mapping["pvalue"])
    ora = genesets.ora(module, sets, universe, min_size=1)
    np.testing.assert_allclose(ora["pvalue"], by_collection["pvalue"], rtol=1e-12)
