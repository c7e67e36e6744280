"""A real collection (GO biological processes, tests/fixtures/make_go_sets.R) on a real cohort
(scanpy's pbmc68k_reduced): what a user of either would see."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from cohortex import CohortexError, de, genesets
from cohortex.genesets import read_gmt

GO = Path(__file__).parents[1] / "fixtures" / "genesets" / "go_bp.gmt.gz"
IMMUNE = ("immun", "leukocyte", "myeloid", "phagocyt", "antigen", "lymphocyte", "mononuclear")


@pytest.fixture(scope="module")
def go():
    return read_gmt(GO)


@pytest.fixture(scope="module")
def monocytes() -> xr.Dataset:
    """Welch t of CD14+ monocytes against the other 571 cells, on scanpy's log1p values."""
    import scanpy as sc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = sc.datasets.pbmc68k_reduced()
    x = adata.raw.X.toarray() if hasattr(adata.raw.X, "toarray") else np.asarray(adata.raw.X)
    labels = np.where(adata.obs["bulk_labels"] == "CD14+ Monocyte", "monocyte", "other")
    cohort = xr.Dataset(
        {"expression": (("sample", "gene"), x.astype(np.float32)), "cell": ("sample", labels)},
        coords={
            "sample": adata.obs_names.to_numpy().astype(str),
            "gene": adata.raw.var_names.to_numpy().astype(str),
        },
        attrs={"scale": "log1p"},
    )
    return de.test(cohort, "cell", reference="other")


def test_the_go_collection_reads_and_round_trips_gzipped(go, tmp_path):
    assert len(go) == 5233 and all(name.startswith("GO:") for name in go.names)
    sizes = go.sizes()
    assert sizes.min() >= 15 and sizes.max() <= 500
    assert go.descriptions[go.names.index("GO:0002274")] == "myeloid leukocyte activation"
    go.to_gmt(tmp_path / "copy.gmt.gz")
    assert read_gmt(tmp_path / "copy.gmt.gz") == go
    (tmp_path / "broken.gmt.gz").write_bytes(b"not gzip")
    with pytest.raises(CohortexError, match="not a readable GMT"):
        read_gmt(tmp_path / "broken.gmt.gz")


def test_monocyte_markers_are_over_represented_in_myeloid_activation(go, monocytes):
    universe = [str(g) for g in monocytes["gene"].values]
    table = monocytes.to_dataframe()
    markers = list(table.index[(table["padj"] < 0.01) & (table["log2fc"] > 1)])
    assert 30 < len(markers) < 80
    result = genesets.ora(markers, go, universe, min_size=10)
    best = result.sortby("pvalue")
    assert str(best["gene_set"].values[0]) == "GO:0002274"  # myeloid leukocyte activation
    assert float(best["padj"].values[0]) < 1e-3
    for name in best["gene_set"].values[:20]:  # the real sets, against SciPy
        members = set(go[str(name)]) & set(universe)
        a = len(members & set(markers))
        n = len(universe)
        contingency = [
            [a, len(markers) - a],
            [len(members) - a, n - len(members) - len(markers) + a],
        ]
        expected = stats.fisher_exact(contingency, alternative="greater")[1]
        np.testing.assert_allclose(float(result["pvalue"].sel(gene_set=name)), expected, rtol=1e-10)


def test_gsea_of_the_monocyte_ranking_puts_immune_processes_first(go, monocytes):
    result = genesets.gsea(monocytes, go, min_size=10)
    terms = dict(zip(go.names, go.descriptions, strict=True))
    best = result.sortby("pvalue")
    top = [terms[str(name)] for name in best["gene_set"].values[:10]]
    assert all(any(word in term for word in IMMUNE) for term in top), top
    assert "GO:0002274" in best["gene_set"].values[:3]
    assert (best["nes"].values[:10] > 1.7).all()
    # 1,000 permutations cannot give these p-values; the multilevel estimate does, with its error
    assert float(best["pvalue"].values[0]) < 1e-3 and float(best["log2err"].values[0]) < 1.0
