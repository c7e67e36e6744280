"""PCA against scikit-learn's exact PCA; t-SNE quality on planted groups."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness
from sklearn.neighbors import NearestNeighbors

import cohortex.embed._pca as pca_module
from cohortex import CohortexError, create_cohort, pca, simulate, tsne
from cohortex.simulate import simulate_array


def _low_rank(n=600, genes=120, rank=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, genes)) * 2.0
    return (x + rng.normal(size=(n, genes)) + 5.0).astype(np.float64)


def _flip(components):
    """scikit-learn's components_ (k × genes) with our sign rule: largest |loading| > 0."""
    biggest = np.argmax(np.abs(components), axis=1)
    return components * np.sign(components[np.arange(len(components)), biggest])[:, None]


def test_streaming_equals_exact_sklearn(tmp_path):
    x = _low_rank()
    path = tmp_path / "c.zarr"
    create_cohort(path, x.astype(np.float32), chunks=(64, 50))  # many chunks both ways
    x32 = x.astype(np.float32).astype(np.float64)
    result = pca(path, 10, method="streaming")
    assert result.attrs["method"] == "covariance"
    reference = PCA(10, svd_solver="full").fit(x32)
    np.testing.assert_allclose(
        result["explained_variance"], reference.explained_variance_, rtol=1e-6
    )
    np.testing.assert_allclose(
        result["explained_variance_ratio"], reference.explained_variance_ratio_, rtol=1e-6
    )
    loadings = result["loadings"].values
    assert np.max(subspace_angles(loadings, reference.components_.T)) < 1e-5
    np.testing.assert_allclose(loadings.T, _flip(reference.components_), atol=1e-5)
    expected_scores = (x32 - x32.mean(axis=0)) @ _flip(reference.components_).T
    np.testing.assert_allclose(result["scores"].values, expected_scores, rtol=1e-5, atol=1e-6)


def test_in_memory_methods_agree():
    x = _low_rank(seed=1)
    auto = pca(x, 5)
    assert auto.attrs["method"] == "sklearn-auto"
    exact = pca(x, 5, method="exact")
    randomized = pca(x, 5, method="randomized")
    streamed = pca(da.from_array(x, chunks=(100, 120)), 5)
    for other in (exact, randomized, streamed):
        np.testing.assert_allclose(
            other["explained_variance"], auto["explained_variance"], rtol=1e-6
        )
        np.testing.assert_allclose(np.abs(other["loadings"]), np.abs(auto["loadings"]), atol=1e-6)
        np.testing.assert_allclose(other["loadings"], auto["loadings"], atol=1e-6)  # signs


def test_scale_and_uncentred():
    x = _low_rank(seed=2)
    x[:, 0] *= 100  # one gene dominates unless scaled
    scaled = pca(x, 3, scale=True)
    z = (x - x.mean(0)) / x.std(0, ddof=1)
    reference = PCA(3, svd_solver="full").fit(z)
    np.testing.assert_allclose(
        scaled["explained_variance"], reference.explained_variance_, rtol=1e-8
    )
    raw = pca(x, 2, center=False)
    assert raw.attrs["method"] == "covariance"
    _, singular, vt = np.linalg.svd(x, full_matrices=False)
    np.testing.assert_allclose(
        raw["explained_variance"], singular[:2] ** 2 / (len(x) - 1), rtol=1e-8
    )
    np.testing.assert_allclose(np.abs(raw["loadings"].values.T), np.abs(vt[:2]), atol=1e-8)


def test_many_genes_use_the_randomized_streaming_svd(monkeypatch):
    monkeypatch.setattr(pca_module, "COVARIANCE_MAX_GENES", 50)
    x = _low_rank(seed=3)
    result = pca(da.from_array(x, chunks=(100, 60)), 4, method="streaming")
    assert result.attrs["method"] == "randomized-streaming"
    reference = PCA(4, svd_solver="full").fit(x)
    # low-rank data: the randomized SVD with power iterations is near exact
    np.testing.assert_allclose(
        result["explained_variance"], reference.explained_variance_, rtol=1e-3
    )
    assert np.max(subspace_angles(result["loadings"].values, reference.components_.T)) < 1e-2
    np.testing.assert_allclose(
        result["explained_variance_ratio"], reference.explained_variance_ratio_, rtol=1e-3
    )
    scaled = pca(
        da.from_array(x.astype(np.float32), chunks=(100, 60)), 4, method="streaming", scale=True
    )
    z = (x - x.mean(0)) / x.std(0, ddof=1)
    expected = PCA(4, svd_solver="full").fit(z)
    np.testing.assert_allclose(
        scaled["explained_variance"], expected.explained_variance_, rtol=1e-3
    )
    np.testing.assert_allclose(
        scaled["explained_variance_ratio"], expected.explained_variance_ratio_, rtol=1e-3
    )


def _streamed(x, k, monkeypatch, chunks=(256, 512), **kwargs):
    """pca of ``x`` as a Dask array through the randomized streaming path."""
    monkeypatch.setattr(pca_module, "COVARIANCE_MAX_GENES", 50)
    result = pca(da.from_array(x, chunks=chunks), k, method="streaming", **kwargs)
    assert result.attrs["method"] == "randomized-streaming"
    return result


def _exact(x, k):
    z = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
    _, singular, vt = np.linalg.svd(z, full_matrices=False)
    return singular[:k] ** 2 / (len(x) - 1), vt[:k].T


def test_randomized_streaming_is_as_accurate_as_scikit_learns_default(monkeypatch):
    """Expression-like data with a slowly decaying spectrum, where two power iterations were
    off (the 10th variance 0.35% low, the loadings' subspace 4° from the exact one): the
    variances at least as close to the exact SVD's as scikit-learn's randomized PCA with its
    defaults (seven power iterations, the matrix in memory), the loadings within 0.06°."""
    x, _, _ = simulate_array(2000, 1500, modules=10, batches=3, seed=3)
    x = x.astype(np.float32)
    k = 10
    variances, loadings = _exact(x, k)
    ours = _streamed(x, k, monkeypatch)
    theirs = PCA(k, svd_solver="randomized", random_state=0).fit(x)
    our_error = np.abs(ours["explained_variance"].values / variances - 1)
    their_error = np.abs(theirs.explained_variance_ / variances - 1)
    assert our_error.max() <= their_error.max()
    assert our_error.max() < 1e-3
    assert subspace_angles(ours["loadings"].values, loadings).max() < 1e-3
    # the scores are the centred samples' coordinates on the loadings
    centred = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(
        ours["scores"].values, centred @ ours["loadings"].values, rtol=1e-4, atol=1e-3
    )


def test_randomized_streaming_centres_chunks_with_different_means(monkeypatch):
    """Row chunks whose means differ by far more than the spread (the first pass centres
    each chunk on its own mean and merges): the exact components, ddof 1."""
    x = _low_rank(n=1000, genes=200, rank=3, seed=5)
    x[:256] += 1000.0  # the first row chunk
    x[512:768] -= 300.0 * np.linspace(0, 1, 200)  # the third, a gradient across genes
    variances, loadings = _exact(x, 5)  # rank 3 and the two offsets, then noise
    result = _streamed(x, 5, monkeypatch, chunks=(256, 64))
    np.testing.assert_allclose(result["explained_variance"], variances, rtol=1e-9)
    assert subspace_angles(result["loadings"].values, loadings).max() < 1e-6


def test_randomized_streaming_of_a_matrix_of_lower_rank_than_its_sketch(monkeypatch):
    """Rank 3 and k = 5: the Krylov blocks after the first hold nothing but rounding, which
    must not come back as components."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(400, 3)) @ rng.normal(size=(3, 120)) + 2.0
    result = _streamed(x, 5, monkeypatch, chunks=(100, 50))
    variances, loadings = _exact(x, 5)
    np.testing.assert_allclose(result["explained_variance"][:3], variances[:3], rtol=1e-10)
    assert np.all(result["explained_variance"][3:] < 1e-14 * variances[0])
    assert subspace_angles(result["loadings"].values[:, :3], loadings[:, :3]).max() < 1e-8
    np.testing.assert_allclose(
        result["loadings"].values.T @ result["loadings"].values, np.eye(5), atol=1e-12
    )


def test_hvg_and_gene_lists(tmp_path):
    ds = simulate(tmp_path / "s.zarr", 300, 200, n_de=20, seed=4, chunks=(64, 64))
    result = pca(tmp_path / "s.zarr", 5, genes="hvg", n_top_genes=40)
    assert result.attrs["method"] == "sklearn-auto"  # 40 genes of a store fit in memory
    streamed = pca(tmp_path / "s.zarr", 5, genes="hvg", n_top_genes=40, method="streaming")
    # scikit-learn works on the stored float32 values in float32; streaming sums in float64
    np.testing.assert_allclose(
        streamed["explained_variance"], result["explained_variance"], rtol=1e-5
    )
    x = ds["expression"].values.astype(np.float64)
    top = np.sort(np.argsort(-x.var(axis=0, ddof=1), kind="stable")[:40])
    assert list(result["gene"].values) == list(ds["gene"].values[top])
    assert set(result["condition"].values) == {"tumor", "normal"}  # sample variables carried
    named = pca(ds, 3, genes=list(ds["gene"].values[:30]))
    assert list(named["gene"].values) == list(ds["gene"].values[:30])
    with pytest.raises(CohortexError, match="names 1 genes that are not in the cohort: NOPE"):
        pca(ds, 3, genes=["G001", "NOPE"])


def test_bad_input():
    x = _low_rank(n=40, genes=10)
    with pytest.raises(
        CohortexError,
        match="'n_components' parameter must be between 1 and "
        "min\\(n_samples, n_genes\\) = 10; got 11",
    ):
        pca(x, 11)
    y = x.copy()
    y[[1, 5, 7], 2] = np.nan
    with pytest.raises(CohortexError, match="the matrix holds 3 NaN values"):
        pca(y, 2)
    with pytest.raises(CohortexError, match="'method' parameter of pca\\(\\) must be one of"):
        pca(x, 2, method="svd")
    with pytest.raises(CohortexError, match="perplexity 30 needs at least 90 samples"):
        tsne(x)


def test_tsne_separates_planted_groups(tmp_path):
    groups = {f"g{i}": 0.2 for i in range(5)}
    ds = simulate(tmp_path / "t.zarr", 400, 300, groups=groups, n_de=0.5, log2fc=(2.0, 3.0), seed=5)
    components = pca(ds, 20)
    embedded = tsne(components, seed=1, n_iter=300, n_jobs=1)
    y = embedded["embedding"].values
    assert y.shape == (400, 2)
    assert trustworthiness(components["scores"].values, y, n_neighbors=10) >= 0.9
    labels = embedded["condition"].values
    _, neighbours = NearestNeighbors(n_neighbors=11).fit(y).kneighbors(y)
    purity = np.mean(labels[neighbours[:, 1:]] == labels[:, None])
    assert purity >= 0.9
    again = tsne(components, seed=1, n_iter=300, n_jobs=1)
    np.testing.assert_array_equal(again["embedding"].values, y)
    assert embedded.attrs["implementation"] == "openTSNE"


def test_device_pca_equals_cpu(xp):
    """On a GPU (the CuPy stand-in, or CuPy on a device): the CuPy covariance path (cuML
    where installed) against the CPU result."""
    x = _low_rank(seed=6)
    cpu = pca(x, 6, device="cpu")
    on_device = pca(xp.asarray(x), 6, device="gpu" if xp is not np else "cpu")
    np.testing.assert_allclose(
        on_device["explained_variance"], cpu["explained_variance"], rtol=1e-5
    )
    np.testing.assert_allclose(on_device["loadings"], cpu["loadings"], atol=1e-4)
    if xp is not np:
        assert on_device.attrs["method"] in ("cuml", "cupy-covariance")


def test_tsne_reports_its_iterations_in_a_log(capsys, monkeypatch):
    """stderr is not a terminal under pytest: lines, not a bar (every 50 iterations here, as
    LOG_EVERY is 0); the embedding is the one computed without them."""
    from cohortex import _progress, tsne

    x = np.random.default_rng(3).normal(size=(120, 6))
    quiet = tsne(x, perplexity=10, n_iter=250, n_jobs=1, progress=False)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(_progress, "LOG_EVERY", 0.0)
    logged = tsne(x, perplexity=10, n_iter=250, n_jobs=1)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("t-SNE: 50/500 iteration, 0 s (kl=") and len(lines) == 11
    np.testing.assert_array_equal(logged["embedding"], quiet["embedding"])
