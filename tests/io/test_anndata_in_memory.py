"""AnnData objects given to the entry points directly: the same results as from a store."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sparse
import xarray as xr

from cohortex import CohortexError, CohortexWarning, de, normalize
from cohortex.io import from_anndata


def _cohort(seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(3.0, size=(40, 12)).astype(np.float32)
    counts[:20, :3] *= 4
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(np.repeat(["T", "B"], 20)), "depth": rng.random(40)},
        index=[f"c{i}" for i in range(40)],
    )
    return counts, obs


def test_entry_points_take_an_anndata_and_read_its_recorded_scale():
    counts, obs = _cohort()
    logged = np.log1p(counts)
    adata = ad.AnnData(X=logged, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(12)]))
    adata.uns["log1p"] = {"base": None}  # what sc.pp.log1p records
    adata.layers["counts"] = sparse.csr_matrix(counts)
    direct = de.test(adata, "cell_type", reference="B")
    same = xr.Dataset(
        {"expression": (("sample", "gene"), logged), "cell_type": ("sample", obs["cell_type"])},
        coords={"sample": adata.obs_names, "gene": adata.var_names},
        attrs={"scale": "log1p"},
    )
    expected = de.test(same, "cell_type", reference="B")
    xr.testing.assert_allclose(direct.drop_vars("gene"), expected.drop_vars("gene"))
    assert direct.attrs["scale"] == "log1p" and list(direct["gene"].values) == list(adata.var_names)
    # a sparse counts layer, read block by block
    with pytest.warns(CohortexWarning, match="reading layer 'counts' as 'counts'"):
        assert from_anndata(adata, layer="counts").attrs["scale"] == "counts"  # uns is X's
    counted = from_anndata(adata, layer="counts", scale="counts")
    np.testing.assert_array_equal(counted["expression"].values, counts)
    assert list(counted["cell_type"].values[:2]) == ["T", "T"]
    log_cpm = normalize(counted, "log_cpm")
    assert log_cpm["expression"].shape == (40, 12)
    adata.uns["log1p"] = {"base": 2}
    assert from_anndata(adata).attrs["scale"] == "log2"


def test_raw_and_guessed_scales_say_what_they_assumed():
    counts, obs = _cohort(1)
    scaled = (np.log1p(counts) - np.log1p(counts).mean(0)) / np.log1p(counts).std(0)
    adata = ad.AnnData(X=scaled, obs=obs)
    adata.raw = ad.AnnData(X=sparse.csr_matrix(np.log1p(counts)), obs=obs)
    with pytest.warns(CohortexWarning, match="reading X as 'linear', since it has negative"):
        assert from_anndata(adata).attrs["scale"] == "linear"
    with pytest.warns(CohortexWarning, match="reading adata.raw as 'log1p'"):
        raw = from_anndata(adata, raw=True)
    np.testing.assert_allclose(raw["expression"].values, np.log1p(counts), rtol=1e-6)
    with pytest.warns(CohortexWarning, match="as 'counts', since its values are whole"):
        from_anndata(ad.AnnData(X=counts, obs=obs))
    with pytest.raises(CohortexError, match="names no layer of the AnnData; got 'spliced'"):
        from_anndata(adata, layer="spliced")


def test_unknown_cohort_types_are_refused_at_once():
    with pytest.raises(CohortexError, match="got a dict"):
        de.test({"expression": [[1.0]]}, ["a"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a plain list of rows is still an array
        result = de.test([[1.0, 2.0], [1.5, 2.5], [3.0, 1.0], [3.5, 0.5]], ["a", "a", "b", "b"])
    assert result.sizes["gene"] == 2


def test_results_go_where_scanpy_reads_them(tmp_path):
    """A store's DE results, PCA and t-SNE, exported, read by scanpy's own functions."""
    import scanpy as sc

    from cohortex import pca, read_result, simulate, tsne, write_result
    from cohortex.io import export_anndata, to_anndata

    store = tmp_path / "c.zarr"
    simulate(store, 150, 60, groups={"tumor": 0.5, "normal": 0.5}, n_de=8, seed=4)
    write_result(store, "de_welch", de.test(store, "condition", reference="normal"))
    several = de.test(store, "condition", test="wilcoxon", reference="rest")
    write_result(store, "de_wilcoxon", several)
    components = pca(store, 5)
    write_result(store, "pca", components)
    write_result(store, "tsne", tsne(components, perplexity=10, n_iter=250))
    adata = to_anndata(store)
    assert adata.uns["log1p"] == {"base": 2} and adata.obsm["X_pca"].shape == (150, 5)
    assert adata.obsm["X_tsne"].shape == (150, 2) and adata.varm["PCs"].shape == (60, 5)
    table = sc.get.rank_genes_groups_df(adata, group="tumor", key="de_welch")
    welch = read_result(store, "de_welch").to_dataframe()
    assert len(table) == 60 and table["scores"].is_monotonic_decreasing
    expected = welch.loc[table["names"], "pvalue"].to_numpy()
    np.testing.assert_allclose(table["pvals"].to_numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(
        table["logfoldchanges"].to_numpy(), welch.loc[table["names"], "log2fc"], rtol=1e-6
    )
    for group in ("tumor", "normal"):  # one column per contrast against the rest
        ranked = sc.get.rank_genes_groups_df(adata, group=group, key="de_wilcoxon")
        assert ranked["pvals_adj"].notna().all()
    # scanpy's plotting reads the layout; and the file keeps it
    sc.pl.rank_genes_groups(adata, key="de_welch", n_genes=5, show=False)
    export_anndata(store, tmp_path / "c.h5ad")
    back = ad.read_h5ad(tmp_path / "c.h5ad")
    again = sc.get.rank_genes_groups_df(back, group="tumor", key="de_welch")
    assert list(again["names"]) == list(table["names"])
    np.testing.assert_array_equal(back.obsm["X_pca"], adata.obsm["X_pca"])


@pytest.mark.parametrize("base", [None, 2])
def test_importing_a_file_reads_scanpys_log1p(tmp_path, base):
    from cohortex.io import import_anndata

    counts, obs = _cohort(2)
    adata = ad.AnnData(X=np.log1p(counts), obs=obs)
    adata.uns["log1p"] = {"base": base}
    adata.write_h5ad(tmp_path / "a.h5ad")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # recorded: no guess, no warning
        imported = import_anndata(tmp_path / "a.h5ad", tmp_path / "a.zarr")
    assert imported.attrs["scale"] == ("log1p" if base is None else "log2")
    ad.AnnData(X=counts, obs=obs).write_h5ad(tmp_path / "b.h5ad")
    with pytest.warns(CohortexWarning, match="b.h5ad's X as 'counts'"):
        assert import_anndata(tmp_path / "b.h5ad", tmp_path / "b.zarr").attrs["scale"] == "counts"
