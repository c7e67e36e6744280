"""Every public entry point that has a GPU path, run on a GPU, equals its CPU result.

The GPU is the CuPy stand-in everywhere (tests/gpu_surface.py, installed as cohortex's GPU: the
``xp`` code on CuPy's API surface only, the CUDA kernels compiled for the host) and CuPy itself
where a CUDA device is present (the ``gpu``-marked half, which benchmarks/gpu_check.sh runs).
``device="gpu"`` takes the GPU path: device Dask chunks, device kernels. The NumPy run of the
same call is the reference; where the two paths compute differently (compiled CPU loops against
GEMMs and sorts on the device) they agree to rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from cohortex import (
    create_cohort,
    de,
    fdr,
    filter_by_expr,
    genesets,
    mds,
    network,
    norm_factors,
    normalize,
    open_cohort,
    pca,
    survival,
    tsne,
)
from cohortex._backend import namespace, to_device
from cohortex._constants import NORMALIZATIONS
from cohortex.ae import Autoencoder
from cohortex.de import _sva as sva_module
from cohortex.simulate import simulate_array

from conftest import to_numpy


def _same(device: xr.Dataset, cpu: xr.Dataset, rtol: float = 1e-11) -> None:
    assert set(device.data_vars) == set(cpu.data_vars)
    for name in cpu.data_vars:
        got, expected = to_numpy(device[name].data), np.asarray(cpu[name].values)
        if expected.dtype.kind in "fc":
            np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-300, err_msg=name)
        else:
            np.testing.assert_array_equal(got, expected, err_msg=name)
    assert device.attrs.keys() == cpu.attrs.keys()
    for key, value in cpu.attrs.items():  # computed numbers (df_prior …) to rounding
        if isinstance(value, float):
            assert device.attrs[key] == pytest.approx(value, rel=rtol), key
        elif isinstance(value, list | tuple) and np.asarray(value).dtype.kind == "f":
            np.testing.assert_allclose(  # e.g. F_projection: a product of small matrices
                np.asarray(device.attrs[key]), np.asarray(value), rtol=rtol, atol=1e-14, err_msg=key
            )
        else:
            assert device.attrs[key] == value, key


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """A store with three conditions, batches and some NaN, and its matrix in memory."""
    x, samples, genes = simulate_array(
        90, 48, groups={"a": 0.3, "b": 0.3, "c": 0.4}, batches=2, seed=3, n_de=0.2
    )
    x = np.log2(np.asarray(x, dtype=np.float64) + 1.0)
    path = tmp_path_factory.mktemp("parity") / "c.zarr"
    create_cohort(path, x.astype(np.float32), samples=samples, genes=genes, chunks=(32, 16))
    return path, x, samples["condition"].to_numpy()


@pytest.fixture(scope="module")
def bladder_store(tmp_path_factory):
    """limma's bladder arrays (57 × 1,000, cancer and batch) as a store of small tiles."""
    fixtures = Path(__file__).parent / "fixtures"
    values = pd.read_csv(fixtures / "limma" / "bladder_expression.csv", index_col=0)
    samples = pd.read_csv(fixtures / "limma" / "bladder_samples.csv", index_col=0)
    path = tmp_path_factory.mktemp("bladder") / "bladder.zarr"
    create_cohort(
        path, values.to_numpy().T, samples=samples.reset_index(drop=True), chunks=(20, 300)
    )
    return path


@pytest.mark.parametrize("test", ["welch", "student", "anova", "wilcoxon", "kruskal"])
@pytest.mark.parametrize("reference", ["rest", "a"])
def test_de_test_in_memory(gpu_xp, cohort, test, reference):
    _, x, labels = cohort
    cpu = de.test(x, labels, test=test, reference=reference, device="cpu")
    on_device = de.test(gpu_xp.asarray(x), labels, test=test, reference=reference)
    assert namespace(on_device["pvalue"].data) is gpu_xp  # results stay on the device
    _same(on_device, cpu)


@pytest.mark.parametrize("test", ["welch", "anova", "wilcoxon", "kruskal"])
def test_de_test_from_the_store(gpu_xp, cohort, test):
    path = cohort[0]
    cpu = de.test(path, "condition", test=test, device="cpu")
    _same(de.test(path, "condition", test=test, device="gpu"), cpu)


@pytest.mark.parametrize("test", ["welch", "wilcoxon", "kruskal"])
def test_de_test_log1p_with_nan_omitted(gpu_xp, cohort, test):
    _, x, labels = cohort
    x = np.log1p(np.expm1(x * np.log(2)))  # log1p-scaled values
    x[::7, 3] = np.nan
    kwargs = {"test": test, "reference": "b", "nan_policy": "omit", "scale": "log1p"}
    cpu = de.test(x, labels, device="cpu", **kwargs)
    _same(de.test(gpu_xp.asarray(x), labels, **kwargs), cpu)


def test_de_fit(gpu_xp, cohort):
    path = cohort[0]
    contrasts = {"b_vs_a": "condition[T.b]", "c_vs_b": "condition[T.c] - condition[T.b]"}
    cpu = de.fit(path, "~ condition + batch", contrasts=contrasts, device="cpu")
    on_device = de.fit(path, "~ condition + batch", contrasts=contrasts, device="gpu")
    _same(on_device, cpu, rtol=1e-9)
    plain = de.fit(path, "~ condition", moderate=False, device="gpu")
    _same(plain, de.fit(path, "~ condition", moderate=False, device="cpu"), rtol=1e-9)
    for option in ("trend", "robust"):  # per-gene priors on the device
        on_device = de.fit(path, "~ condition", device="gpu", **{option: True})
        _same(on_device, de.fit(path, "~ condition", device="cpu", **{option: True}), rtol=1e-9)


def test_de_fit_per_gene(gpu_xp, cohort):
    _, x, labels = cohort
    x = x.copy()
    x[::5, 2] = np.nan  # missing values: per-gene fits
    x[labels == "a", 7] = np.nan  # a group missing: a coefficient not estimable
    design = np.column_stack([np.ones(len(labels)), labels == "b", labels == "c"]).astype(float)
    contrasts = {"b": "x1", "c_vs_b": "x2 - x1"}
    weights = np.random.default_rng(4).uniform(0.2, 2.0, x.shape)
    for kwargs in ({}, {"weights": weights}, {"weights": weights[:, 0]}):
        cpu = de.fit(x, design, contrasts=contrasts, device="cpu", **kwargs)
        on_device = de.fit(gpu_xp.asarray(x), design, contrasts=contrasts, **kwargs)
        assert namespace(on_device["pvalue"].data) is gpu_xp
        _same(on_device, cpu, rtol=1e-9)
        # group a missing in gene 7: x2 is aliased (R's pivoting), so c − b is not estimable
        assert np.isnan(to_numpy(on_device["coefficient"].data)[1, 7])


def test_block_correlation_and_fit(gpu_xp, cohort):
    path, x, labels = cohort
    patient = np.arange(len(labels)) // 3  # blocks of three samples, across the row tiles
    cpu = de.duplicate_correlation(path, "~ condition", patient, device="cpu")
    _same(de.duplicate_correlation(path, "~ condition", patient, device="gpu"), cpu)
    x = x.copy()
    x[::4, 5] = np.nan  # a gene fitted on its own observations
    design = np.column_stack([np.ones(len(labels)), labels == "b", labels == "c"]).astype(float)
    weights = np.random.default_rng(5).uniform(0.2, 2.0, x.shape)
    weights[3, 9] = 0.0  # an observation left out
    per_sample = weights[:, 0]  # one whitened design for the genes without missing values
    for extra in ({}, {"weights": weights}, {"weights": per_sample}):
        kwargs = {"block": patient, "correlation": 0.3, **extra}
        on_device = de.fit(gpu_xp.asarray(x), design, **kwargs)
        assert namespace(on_device["pvalue"].data) is gpu_xp
        _same(on_device, de.fit(x, design, device="cpu", **kwargs), rtol=1e-9)
    weighted = de.duplicate_correlation(x, design, patient, weights=weights, device="cpu")
    on_device = de.duplicate_correlation(gpu_xp.asarray(x), design, patient, weights=weights)
    _same(on_device, weighted, rtol=1e-9)


@pytest.mark.parametrize("dense_weighted", [4096, 2])
def test_array_weights(gpu_xp, cohort, monkeypatch, dense_weighted):
    """By sample and by group, without and with precision weights, from the store; with
    precision weights by sample, the exact information and its diagonal (many samples)."""
    from cohortex.de import _array_weights

    monkeypatch.setattr(_array_weights, "DENSE_WEIGHTED_SAMPLES", dense_weighted)
    path, x, labels = cohort
    batch = np.arange(len(labels)) % 3
    weights = np.random.default_rng(6).uniform(0.2, 2.0, x.shape)
    for extra in ({}, {"var_group": batch}, {"weights": weights}, {"method": "genebygene"}):
        source = path if "weights" not in extra else x
        cpu = de.array_weights(source, "~ condition" if source is path else None, **extra)
        on_device = de.array_weights(
            source if source is path else gpu_xp.asarray(x),
            "~ condition" if source is path else None,
            device="gpu",
            **extra,
        )
        np.testing.assert_allclose(to_numpy(on_device.values), cpu.values, rtol=1e-10)
        assert on_device.attrs == cpu.attrs


def test_voom(gpu_xp, tmp_path):
    rng = np.random.default_rng(8)
    counts = rng.negative_binomial(5, 5 / (5 + rng.gamma(0.7, 100, 80)), (16, 80)).astype(float)
    labels = np.repeat(["a", "b"], 8)
    create_cohort(
        tmp_path / "n.zarr",
        counts,
        samples=pd.DataFrame({"group": labels}),
        scale="counts",
        chunks=(6, 40),
    )
    cpu = de.voom(tmp_path / "n.zarr", "~ group", norm_factors="tmm", device="cpu")
    on_device = de.voom(tmp_path / "n.zarr", "~ group", norm_factors="tmm", device="gpu")
    assert namespace(on_device["weights"].data) is gpu_xp
    for name in ("expression", "weights"):
        np.testing.assert_allclose(
            to_numpy(on_device[name].data.compute()), cpu[name].values, rtol=1e-10
        )
    _same(de.fit(on_device, "~ group", device="gpu"), de.fit(cpu, "~ group", device="cpu"))
    cpu = de.voom(tmp_path / "n.zarr", "~ group", sample_weights=True, device="cpu")
    on_device = de.voom(tmp_path / "n.zarr", "~ group", sample_weights=True, device="gpu")
    np.testing.assert_allclose(on_device["sample_weights"].values, cpu["sample_weights"].values)
    np.testing.assert_allclose(
        to_numpy(on_device["weights"].data.compute()), cpu["weights"].values, rtol=1e-10
    )
    pairs = {"block": np.arange(16) // 2, "correlation": 0.2, "sample_weights": True}
    cpu = de.voom(tmp_path / "n.zarr", "~ group", device="cpu", **pairs)
    on_device = de.voom(tmp_path / "n.zarr", "~ group", device="gpu", **pairs)
    np.testing.assert_allclose(on_device["sample_weights"].values, cpu["sample_weights"].values)
    np.testing.assert_allclose(
        to_numpy(on_device["weights"].data.compute()), cpu["weights"].values, rtol=1e-10
    )


def test_voom_lm_fit(gpu_xp, tmp_path):
    """The fixture's counts with exact zeros: the Poisson fit and weightedLowess on the host,
    the masks, fits and weights on the device; with an additive design, blocks and weights."""
    fixtures = Path(__file__).parent / "fixtures" / "edger"
    counts = pd.read_csv(fixtures / "vlf_counts.csv", index_col=0).to_numpy(float).T
    samples = pd.read_csv(fixtures / "vlf_samples.csv", index_col=0).reset_index(drop=True)
    create_cohort(tmp_path / "z.zarr", counts, samples=samples, scale="counts", chunks=(7, 130))
    for design, options in (
        ("~ condition + batch", {}),
        ("~ condition", {"block": "patient", "sample_weights": True}),
    ):
        cpu = de.voom_lm_fit(tmp_path / "z.zarr", design, device="cpu", **options)
        on_device = de.voom_lm_fit(tmp_path / "z.zarr", design, device="gpu", **options)
        assert (cpu["df_residual"].values < 20).sum() > 60  # exact zeros were left out
        _same(on_device, cpu, rtol=1e-9)


def test_edger_from_device_chunks(gpu_xp, tmp_path):
    """edgeR's QL pipeline, glmTreat and exact test on a cohort held in device chunks: the library
    sizes and TMM on the device, each tile of genes brought to the host for its fits."""
    fixtures = Path(__file__).parent / "fixtures" / "edger"
    counts = pd.read_csv(fixtures / "ql_counts.csv", index_col=0).to_numpy(float).T
    samples = pd.read_csv(fixtures / "ql_samples.csv", index_col=0).reset_index(drop=True)
    create_cohort(tmp_path / "q.zarr", counts, samples=samples, scale="counts", chunks=(7, 130))
    host = open_cohort(tmp_path / "q.zarr")
    device = host.copy()
    device["expression"] = (("sample", "gene"), to_device(host["expression"].data, "gpu"))
    tests = ["condition[T.b]", "condition[T.c]"]
    cpu = de.glm_ql(host, "~ condition + batch", contrasts=tests)
    on_device = de.glm_ql(device, "~ condition + batch", contrasts=tests)
    assert set(on_device.data_vars) == set(cpu.data_vars)
    # the library sizes summed on the device differ in rounding; each GLM stops at edgeR's
    # tolerance, which carries that into values near 0 (a fold change of 0, an F of 1e-12 — a
    # difference of two deviances — and so a p-value of 1 − 1e-6) at 1e-11 to 2e-8
    for name in cpu.data_vars:
        np.testing.assert_allclose(on_device[name], cpu[name], rtol=1e-9, atol=5e-8, err_msg=name)
    # glmTreat: the fits at the shifted offsets, tile by tile, and the Poisson-bound genes
    cpu = de.glm_ql(host, "~ condition + batch", contrasts=tests, treat_lfc=0.5)
    on_device = de.glm_ql(device, "~ condition + batch", contrasts=tests, treat_lfc=0.5)
    for name in cpu.data_vars:
        np.testing.assert_allclose(on_device[name], cpu[name], rtol=1e-9, atol=1e-8, err_msg=name)
    # tximport's route: an offset per count from the lengths, made on the host; glmTreat's
    # shifted offsets and the Poisson-bound genes' fits of a tile's own offsets
    lengths = pd.read_csv(fixtures / "ql_lengths.csv", index_col=0).to_numpy(float).T
    host_tx, device_tx = (x.assign(length=(("sample", "gene"), lengths)) for x in (host, device))
    for options in ({}, {"treat_lfc": 0.5}):
        cpu = de.glm_ql(host_tx, "~ condition + batch", contrasts=tests, **options)
        on_device = de.glm_ql(device_tx, "~ condition + batch", contrasts=tests, **options)
        for name in cpu.data_vars:
            np.testing.assert_allclose(
                on_device[name], cpu[name], rtol=1e-9, atol=5e-8, err_msg=name
            )
    dispersions = de.estimate_dispersion(device, "~ condition")
    expected = de.estimate_dispersion(host, "~ condition")
    for name in expected.data_vars:  # a dispersion near 0 sits on a flat likelihood: 1e-12
        np.testing.assert_allclose(
            dispersions[name], expected[name], rtol=1e-9, atol=1e-11, err_msg=name
        )
    # classic edgeR: the pseudo-counts held on the host, the exact test tile by tile; the
    # libraries' rounding moves a flat likelihood's tagwise maximum (see test_exact_test.py)
    exact = de.exact_test(device, "condition", ("a", "c"))
    expected = de.exact_test(host, "condition", ("a", "c"))
    for name in expected.data_vars:
        np.testing.assert_allclose(exact[name], expected[name], rtol=1e-5, atol=1e-8, err_msg=name)


def test_fry(gpu_xp, tmp_path):
    """limma's fry, roast and romer from device chunks: the effects on the host, tile columns from
    the device; weights per observation with blocks, and per sample."""
    fixtures = Path(__file__).parent / "fixtures" / "limma"
    values = pd.read_csv(fixtures / "fry_expression.csv", index_col=0)
    samples = pd.read_csv(fixtures / "fry_samples.csv", index_col=0).reset_index(drop=True)
    weights = pd.read_csv(fixtures / "fry_observation_weights.csv", index_col=0).to_numpy().T
    create_cohort(
        tmp_path / "f.zarr",
        values.to_numpy().T,
        samples=samples,
        genes=pd.DataFrame(index=values.index),
        chunks=(7, 90),
    )
    sets = genesets.read_gmt(fixtures / "fry_sets.gmt")
    for options in (
        {"weights": weights, "block": "patient", "correlation": 0.3},
        {"weights": weights[:, 0], "trend": True},
    ):
        cpu = genesets.fry(tmp_path / "f.zarr", "~ group + batch", sets, device="cpu", **options)
        on_device = genesets.fry(
            tmp_path / "f.zarr", "~ group + batch", sets, device="gpu", **options
        )
        _same(on_device, cpu, rtol=1e-12)
        # roast's rotations of the same effects: the same seed, the same p-values
        cpu = genesets.roast(tmp_path / "f.zarr", "~ group + batch", sets, device="cpu", **options)
        on_device = genesets.roast(
            tmp_path / "f.zarr", "~ group + batch", sets, device="gpu", **options
        )
        _same(on_device, cpu, rtol=1e-12)
    # romer ranks every gene's rotated t (weights per sample only)
    options = {"weights": weights[:, 0], "n_rotations": 999}
    cpu = genesets.romer(tmp_path / "f.zarr", "~ group + batch", sets, device="cpu", **options)
    on_device = genesets.romer(
        tmp_path / "f.zarr", "~ group + batch", sets, device="gpu", **options
    )
    _same(on_device, cpu, rtol=1e-12)
    # camera's correlation with weights per observation takes the same effects
    estimated = {"weights": weights, "inter_gene_cor": None, "contrast": "group[T.c] - group[T.b]"}
    cpu = genesets.camera(tmp_path / "f.zarr", "~ group + batch", sets, device="cpu", **estimated)
    on_device = genesets.camera(
        tmp_path / "f.zarr", "~ group + batch", sets, device="gpu", **estimated
    )
    _same(on_device, cpu, rtol=1e-10)


def test_vooma(gpu_xp, tmp_path):
    """limma's vooma from device chunks: its weights, and with the blocks."""
    fixtures = Path(__file__).parent / "fixtures" / "limma"
    values = pd.read_csv(fixtures / "fry_expression.csv", index_col=0).to_numpy().T
    samples = pd.read_csv(fixtures / "fry_samples.csv", index_col=0).reset_index(drop=True)
    create_cohort(tmp_path / "v.zarr", values, samples=samples, chunks=(7, 90))
    for options in ({}, {"block": "patient", "correlation": 0.3}):
        cpu = de.vooma(tmp_path / "v.zarr", "~ group + batch", device="cpu", **options)
        on_device = de.vooma(tmp_path / "v.zarr", "~ group + batch", device="gpu", **options)
        weights = on_device["weights"].data.compute()
        assert namespace(weights) is gpu_xp
        np.testing.assert_allclose(to_numpy(weights), cpu["weights"].values, rtol=1e-10)


def test_remove_batch_effect(gpu_xp, cohort):
    path, x, _ = cohort
    rng = np.random.default_rng(16)
    # without weights, with a weight per observation and with one per sample
    for weights in (None, rng.uniform(0.3, 2.0, x.shape), rng.uniform(0.3, 2.0, x.shape[0])):
        options = {"design": "~ condition", "weights": weights}
        cpu = de.remove_batch_effect(path, "batch", device="cpu", **options)
        on_device = de.remove_batch_effect(path, "batch", device="gpu", **options)
        corrected = on_device["expression"].data.compute()
        assert namespace(corrected) is gpu_xp
        np.testing.assert_allclose(to_numpy(corrected), cpu["expression"].values, rtol=1e-10)


def test_combat(gpu_xp, tmp_path):
    """ComBat from device chunks: the sums on the device, the priors on the host, the
    corrected layer on the device."""
    fixtures = Path(__file__).parent / "fixtures" / "limma"
    values = pd.read_csv(fixtures / "combat_expression.csv", index_col=0).to_numpy().T
    samples = pd.read_csv(fixtures / "combat_samples.csv", index_col=0).reset_index(drop=True)
    path = tmp_path / "b.zarr"
    create_cohort(path, values, samples=samples, chunks=(7, 90))
    for options in (
        {"design": "~ group"},
        {"ref_batch": "s2", "mean_only": True},
        {"parametric": False},
    ):
        cpu = de.combat(path, "site", device="cpu", **options)
        on_device = de.combat(path, "site", device="gpu", **options)
        corrected = on_device["expression"].data.compute()
        assert namespace(corrected) is gpu_xp
        np.testing.assert_allclose(to_numpy(corrected), cpu["expression"].values, rtol=1e-10)


def test_sva(gpu_xp, bladder_store, monkeypatch):
    """sva from device chunks: the Gram matrices and residual sums on the device, the
    eigenvectors and local FDRs on the host; num.sv's permutations from the same keys."""
    path = bladder_store
    controls = np.arange(1000) % 3 == 0
    for options in (
        {"n_sv": 2},
        {"n_sv": 3, "method": "two-step"},
        {"n_sv": 2, "controls": controls},
        {"n_sv": 2, "genes": 400, "iterations": 2},
    ):
        cpu = de.sva(path, "~ cancer", device="cpu", **options)
        on_device = de.sva(path, "~ cancer", device="gpu", **options)
        _same(on_device, cpu, rtol=1e-9)
    with monkeypatch.context() as patched:  # the genes' side: X'X on the device
        patched.setattr(sva_module, "_GENE_SIDE", True)
        for options in ({"n_sv": 2}, {"n_sv": 2, "controls": controls}):
            cpu = de.sva(path, "~ cancer", device="cpu", **options)
            _same(de.sva(path, "~ cancer", device="gpu", **options), cpu, rtol=1e-9)
    assert de.num_sv(path, "~ cancer", permutations=3, device="gpu") == de.num_sv(
        path, "~ cancer", permutations=3, device="cpu"
    )
    for weighted in (False, True):
        _same(
            de.wsva(path, "~ cancer", n_sv=2, weight_by_sd=weighted, device="gpu"),
            de.wsva(path, "~ cancer", n_sv=2, weight_by_sd=weighted, device="cpu"),
            rtol=1e-9,
        )
    stored = open_cohort(path)
    train, test = stored.isel(sample=slice(0, 40)), stored.isel(sample=slice(40, None))
    frozen = de.sva(train, "~ cancer", n_sv=2, device="cpu")
    for method in ("fast", "exact"):
        on_cpu = de.fsva(train, "~ cancer", frozen, test, method=method, device="cpu")
        on_gpu = de.fsva(train, "~ cancer", frozen, test, method=method, device="gpu")
        for cpu_part, gpu_part in zip(on_cpu, on_gpu, strict=True):
            corrected = gpu_part["expression"].data.compute()
            assert namespace(corrected) is gpu_xp
            np.testing.assert_allclose(
                to_numpy(corrected), cpu_part["expression"].values, rtol=1e-9, atol=1e-12
            )
        for name in frozen.attrs["surrogates"]:
            np.testing.assert_allclose(on_gpu[1][name].values, on_cpu[1][name].values, rtol=1e-9)


@pytest.mark.parametrize("selection", ["pairwise", "common"])
def test_mds(gpu_xp, cohort, selection):
    """limma's MDS of device data: the partial sorts of the pairwise differences on the
    device, the eigen-decomposition (samples × samples) on the host."""
    path, x, _ = cohort
    finite = np.nan_to_num(x)
    on_device = xr.Dataset({"expression": (("sample", "gene"), to_device(finite, "gpu"))})
    on_host = xr.Dataset({"expression": (("sample", "gene"), finite)})
    options = {"top": 20, "gene_selection": selection, "n_components": 3, "progress": False}
    _same(mds(on_device, device="gpu", **options), mds(on_host, device="cpu", **options), 1e-9)


def test_network(gpu_xp, bladder_store):
    """WGCNA's network from device chunks: correlations, adjacency, TOM and the connectivities
    on the device; the tree, its cut and the eigenvectors of the modules on the host."""
    path = bladder_store
    for options in (
        {"power": 6},
        {"power": 6, "tom": "signed", "deep_split": 4, "min_module_size": 10},
        {"power": 6, "correlation_type": "bicor", "max_p_outliers": 0.05},
        {"network": "signed", "genes": 400, "merge_cut_height": 0.4},
        {"power": 6, "tom": "signed", "tom_denominator": "mean"},
        {"power": 6, "correlation_type": "spearman"},
    ):
        cpu = network.modules(path, device="cpu", progress=False, **options)
        on_device = network.modules(path, device="gpu", progress=False, **options)
        _same(on_device, cpu, rtol=1e-9)
    # blockwiseModules: the standardised genes in device memory; the pre-clustering's
    # distances, each block's correlations and TOM, eigengenes and kME on the device
    for options in (
        {"max_block_size": 300},
        {"network": "signed", "genes": 400, "max_block_size": 150, "tom": "unsigned"},
        {"max_block_size": 300, "correlation_type": "bicor", "max_p_outliers": 0.05},
        {"max_block_size": 300, "tom_denominator": "mean"},
    ):
        blockwise = network.blockwise_modules(path, device="cpu", progress=False, **options)
        assert blockwise.attrs["n_blocks"] >= 3
        _same(
            network.blockwise_modules(path, device="gpu", progress=False, **options),
            blockwise,
            rtol=1e-9,
        )
    edges = [
        network.module_edges(path, cpu, 1, device=device, progress=False)
        for device in ("gpu", "cpu")
    ]
    pd.testing.assert_frame_equal(edges[0], edges[1], rtol=1e-9)
    _same(
        network.soft_threshold(path, network="signed hybrid", device="gpu", progress=False),
        network.soft_threshold(path, network="signed hybrid", device="cpu", progress=False),
        rtol=1e-9,
    )


def test_network_with_missing_values(gpu_xp, tmp_path):
    """A cohort with missing values: the genes in device memory, each pair's correlation over
    the samples both have there (six products); impute.knn and the eigengenes on the host."""
    values = pd.read_csv(
        Path(__file__).parent / "fixtures" / "wgcna" / "missing_bladder_expression.csv",
        index_col=0,
    )
    path = tmp_path / "dotted.zarr"
    create_cohort(path, values.to_numpy(), chunks=(20, 300))
    for options in (
        {"power": 6},
        {"network": "signed", "merge_cut_height": 0.5},
        {"power": 6, "correlation_type": "bicor", "max_p_outliers": 0.05},  # pairs on the host
    ):
        cpu = network.modules(path, device="cpu", progress=False, **options)
        assert cpu.attrs["missing_share"] > 0.04
        _same(network.modules(path, device="gpu", progress=False, **options), cpu, rtol=1e-9)
    edges = [
        network.module_edges(path, cpu, 1, device=device, progress=False)
        for device in ("gpu", "cpu")
    ]
    pd.testing.assert_frame_equal(edges[0], edges[1], rtol=1e-9)
    _same(
        network.soft_threshold(path, device="gpu", progress=False),
        network.soft_threshold(path, device="cpu", progress=False),
        rtol=1e-9,
    )
    # blockwiseModules: the pre-clustering of the imputed genes, each block's pairwise
    # correlations and TOM, and the connectivities on the device
    for options in ({}, {"correlation_type": "bicor", "max_p_outliers": 0.05}):
        blockwise = network.blockwise_modules(
            path, max_block_size=400, device="cpu", progress=False, **options
        )
        assert blockwise.attrs["n_blocks"] >= 3
        _same(
            network.blockwise_modules(
                path, max_block_size=400, device="gpu", progress=False, **options
            ),
            blockwise,
            rtol=1e-9,
        )
    # blockwiseConsensusModules of its halves: each set's imputed genes pre-clustered, its
    # pairwise correlations and TOMs on the device
    halves = [tmp_path / "first.zarr", tmp_path / "second.zarr"]
    for half, rows in zip(halves, (slice(0, 28), slice(28, None)), strict=True):
        create_cohort(half, values.to_numpy()[rows], chunks=(10, 300))
    options = {"power": 6, "max_block_size": 400}
    consensus = network.consensus_modules(halves, device="cpu", progress=False, **options)
    assert consensus.attrs["n_blocks"] >= 3
    _same(
        network.consensus_modules(halves, device="gpu", progress=False, **options),
        consensus,
        rtol=1e-9,
    )
    # modulePreservation of the first half's modules in the second: the quick and the exact
    # correlations within modules on the device, the imputed eigengenes and kME on the host
    found = network.modules(halves[0], power=6, device="cpu", progress=False)
    for options in (
        {"quick_cor": 1.0},
        {"quick_cor": 0.0},
        {"correlation_type": "bicor", "max_p_outliers": 0.05},  # bicor's pairs on the host
    ):
        runs = [
            network.module_preservation(
                halves[0],
                halves[1],
                found,
                n_permutations=3,
                device=device,
                progress=False,
                **options,
            )
            for device in ("gpu", "cpu")
        ]
        assert runs[1].attrs["missing_share"][1] > 0.04
        _same(runs[0], runs[1], rtol=1e-9)


def test_consensus_modules(gpu_xp, bladder_store):
    """blockwiseConsensusModules with each set's genes in device memory: the consensus
    pre-clustering's distances, each set's block correlations and TOM, the kME rules, moves and
    eigengenes there; the calibration and consensus of the TOMs on the host."""
    cohort = open_cohort(bladder_store)
    sets = {"a": cohort.isel(sample=slice(0, 28)), "b": cohort.isel(sample=slice(28, None))}
    for options in (
        {"max_block_size": 300, "reassign_threshold": 1e-4},
        {"network": "signed", "calibration": "none", "consensus_quantile": 0.5},
        {"correlation_type": "bicor", "max_p_outliers": 0.05, "calibration": "full quantile"},
    ):
        cpu = network.consensus_modules(sets, device="cpu", progress=False, **options)
        assert cpu.attrs["n_modules"] >= 2
        _same(
            network.consensus_modules(sets, device="gpu", progress=False, **options),
            cpu,
            rtol=1e-9,
        )


def test_module_preservation(gpu_xp, bladder_store):
    """modulePreservation with both cohorts' genes in device memory: the eigengenes, kME and the
    modules' correlation blocks there, the same random gene sets."""
    found = network.modules(bladder_store, power=6, genes=300, device="cpu", progress=False)
    for options in ({}, {"correlation_type": "bicor"}):
        runs = [
            network.module_preservation(
                bladder_store,
                bladder_store,
                found,
                n_permutations=5,
                device=device,
                progress=False,
                **options,
            )
            for device in ("gpu", "cpu")
        ]
        _same(runs[0], runs[1], rtol=1e-9)


def test_rlog_and_counts_in_device_memory(gpu_xp):
    """DESeq2's rlog, and the counts models, of counts in device memory (not Dask): each gene
    tile brought to the host where its fits run."""
    fixtures = Path(__file__).parent / "fixtures" / "deseq"
    counts = pd.read_csv(fixtures / "counts.csv", index_col=0).to_numpy(float).T[:12]
    host = xr.Dataset({"expression": (("sample", "gene"), counts)}, attrs={"scale": "counts"})
    host["condition"] = ("sample", np.repeat(["a", "b"], 6))
    device = host.assign(expression=(("sample", "gene"), to_device(counts, "gpu")))
    _same(de.rlog(device), de.rlog(host), rtol=1e-12)
    _same(de.deseq(device, "~ condition"), de.deseq(host, "~ condition"), rtol=1e-12)
    # with tximport's average transcript lengths: the normalization factors on the host
    lengths = pd.read_csv(fixtures / "lengths.csv", index_col=0).to_numpy(float).T[:12]
    host, device = (x.assign(length=(("sample", "gene"), lengths)) for x in (host, device))
    _same(de.deseq(device, "~ condition"), de.deseq(host, "~ condition"), rtol=1e-12)
    _same(de.rlog(device), de.rlog(host), rtol=1e-12)
    _same(de.vst(device, nsub=None), de.vst(host, nsub=None), rtol=1e-12)


def test_combat_seq(gpu_xp, tmp_path):
    """ComBat-seq from device chunks: each gene tile brought to the host for its fits and
    quantiles; the same counts as from the host."""
    fixtures = Path(__file__).parent / "fixtures" / "edger"
    counts = pd.read_csv(fixtures / "combat_seq_counts.csv", index_col=0).to_numpy(float).T
    samples = pd.read_csv(fixtures / "combat_seq_samples.csv", index_col=0)
    create_cohort(
        tmp_path / "c.zarr",
        counts,
        samples=samples.reset_index(drop=True),
        scale="counts",
        chunks=(9, 130),
    )
    host = open_cohort(tmp_path / "c.zarr")
    device = host.copy()
    device["expression"] = (("sample", "gene"), to_device(host["expression"].data, "gpu"))
    cpu = de.combat_seq(host, "batch", group="condition", covariates="~ sex")
    on_device = de.combat_seq(device, "batch", group="condition", covariates="~ sex")
    np.testing.assert_array_equal(on_device["expression"].values, cpu["expression"].values)
    expected = pd.read_csv(fixtures / "combat_seq_covariate.csv", index_col=0).to_numpy().T
    np.testing.assert_array_equal(cpu["expression"].values, expected)


@pytest.mark.parametrize("alternative", ["greater", "less"])
@pytest.mark.parametrize("test", ["welch", "wilcoxon"])
def test_de_test_one_sided(gpu_xp, cohort, test, alternative):
    path, _, _ = cohort
    cpu = de.test(path, "condition", test=test, alternative=alternative, device="cpu")
    _same(de.test(path, "condition", test=test, alternative=alternative, device="gpu"), cpu)


@pytest.mark.parametrize("test", ["student", "wilcoxon"])
def test_de_test_paired(gpu_xp, cohort, test):
    path, _, condition = cohort
    pair = np.zeros(len(condition), dtype=np.int64)
    for level in ("a", "b"):  # the i-th sample of a and the i-th of b form a pair
        rows = np.flatnonzero(condition == level)
        pair[rows] = np.arange(rows.size)
    arguments = {"groups": ["a", "b"], "reference": "a", "paired_by": pair, "test": test}
    cpu = de.test(path, "condition", device="cpu", **arguments)
    _same(de.test(path, "condition", device="gpu", **arguments), cpu)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_survival_cox(gpu_xp, cohort, ties):
    path, _, condition = cohort
    rng = np.random.default_rng(12)
    time = np.ceil(rng.exponential(20, len(condition)))  # whole days: tied times
    event = (rng.random(len(condition)) < 0.6).astype(int)
    arguments = {"covariates": "~ batch", "strata": condition, "ties": ties}
    cpu = survival.cox(path, time, event, device="cpu", concordance=True, **arguments)
    on_device = survival.cox(path, time, event, device="gpu", concordance=True, **arguments)
    assert np.isfinite(cpu["concordance"]).all()
    # the likelihood-ratio statistic is a difference of log-likelihoods: absolute agreement
    lr = ["lr_statistic", "lr_pvalue"]
    _same(on_device.drop_vars(lr), cpu.drop_vars(lr), rtol=1e-9)
    difference = np.abs(to_numpy(on_device["lr_statistic"].data) - cpu["lr_statistic"].values)
    assert np.all(difference <= 1e-11 * np.abs(cpu["loglik"].values))
    # cox.zph: the fits on the device, the test's sums on the host
    cpu = survival.cox_zph(path, time, event, device="cpu", **arguments)
    on_device = survival.cox_zph(path, time, event, device="gpu", **arguments)
    _same(on_device, cpu, rtol=1e-8)


def test_survival_logrank(gpu_xp, cohort):
    path, _, condition = cohort
    rng = np.random.default_rng(13)
    time = np.ceil(rng.exponential(20, len(condition)))
    event = (rng.random(len(condition)) < 0.6).astype(int)
    cpu = survival.logrank(path, time, event, strata=condition, device="cpu")
    _same(survival.logrank(path, time, event, strata=condition, device="gpu"), cpu)


def test_survival_cutpoint(gpu_xp, cohort):
    """maxstat's statistics of each gene: the sorts, sums and bounds on the device."""
    path, _, condition = cohort
    rng = np.random.default_rng(15)
    time = np.ceil(rng.exponential(20, len(condition)))  # tied times
    event = (rng.random(len(condition)) < 0.6).astype(int)
    for pvalue in ("Lau94", "Lau92"):
        cpu = survival.cutpoint(path, time, event, pvalue=pvalue, device="cpu")
        _same(survival.cutpoint(path, time, event, pvalue=pvalue, device="gpu"), cpu)


def test_gsea(gpu_xp):
    rng = np.random.default_rng(14)
    genes = [f"g{i}" for i in range(500)]
    ranking = pd.Series(rng.normal(size=500), index=genes)
    ranking.iloc[:30] += 2.0
    sets = genesets.GeneSets.from_dict(
        {
            "top": genes[:30],
            **{f"s{j}": rng.choice(genes, 20 + j, replace=False) for j in range(30)},
        }
    )
    cpu = genesets.gsea(ranking, sets, permutations=300, device="cpu")
    _same(genesets.gsea(ranking, sets, permutations=300, device="gpu"), cpu)


@pytest.mark.parametrize(
    ("method", "kcdf"),
    [
        ("gsva", "gaussian"),
        ("gsva", "poisson"),
        ("gsva", "none"),
        ("ssgsea", "auto"),
        ("zscore", "auto"),
        ("plage", "auto"),
    ],
)
def test_gsva(gpu_xp, method, kcdf):
    """gsva's kernel CDFs (the compiled Gaussian loop on the CPU against the xp tiles), its
    walks over padded sets, the z-scores and PLAGE's Gram matrices, on device chunks."""
    rng = np.random.default_rng(16)
    if kcdf == "poisson":
        x = rng.poisson(rng.uniform(1, 80, 90), (30, 90)).astype(np.float64)
    else:
        x = np.round(rng.normal(6.0, 1.0, (30, 90)) * rng.uniform(0.5, 2, 90), 2)
    x[4, 7] = np.nan
    genes = [f"g{i}" for i in range(90)]
    host = xr.Dataset(
        {"expression": (("sample", "gene"), x)},
        coords={"gene": genes},
        attrs={"scale": "counts" if kcdf == "poisson" else "log2"},
    )
    device = host.copy()
    device["expression"] = (("sample", "gene"), to_device(x, "gpu"))
    sets = genesets.GeneSets.from_dict(
        {f"s{j}": rng.choice(genes, 3 + 4 * j, replace=False) for j in range(12)}
    )
    cpu = genesets.gsva(host, sets, method=method, kcdf=kcdf, device="cpu")
    on_device = genesets.gsva(device, sets, method=method, kcdf=kcdf, device="gpu")
    assert namespace(on_device["expression"].data) is gpu_xp
    _same(on_device, cpu, rtol=1e-10)


def test_camera_with_sample_weights(gpu_xp):
    """camera with a weight per sample: the trend's scaled averages and the estimated
    correlation on device chunks."""
    rng = np.random.default_rng(15)
    x = rng.normal(8.0, 1.0, (40, 120))
    labels = np.repeat(["a", "b"], 20)
    x[labels == "b", :15] += 1.0
    genes = [f"g{i}" for i in range(120)]
    host = xr.Dataset(
        {"expression": (("sample", "gene"), x), "condition": ("sample", labels)},
        coords={"gene": genes},
    ).chunk({"sample": 16})
    device = host.copy()
    device["expression"] = (("sample", "gene"), to_device(host["expression"].data, "gpu"))
    sets = genesets.GeneSets.from_dict({f"s{j}": genes[j * 12 : j * 12 + 15] for j in range(8)})
    weights = rng.uniform(0.3, 2.0, 40)
    for extra in ({"trend": True}, {"inter_gene_cor": None}):
        cpu = genesets.camera(host, "~ condition", sets, weights=weights, device="cpu", **extra)
        on_device = genesets.camera(device, "~ condition", sets, weights=weights, **extra)
        _same(on_device, cpu, rtol=1e-9)


def test_select_k_best(gpu_xp, cohort):
    path = cohort[0]
    _same(
        de.select_k_best(path, "condition", 10, device="gpu"),
        de.select_k_best(path, "condition", 10, device="cpu"),
    )


@pytest.mark.parametrize("method", ["bh", "by", "bonferroni", "holm", "storey", "none"])
def test_fdr_adjust(gpu_xp, method):
    rng = np.random.default_rng(5)
    p = rng.uniform(size=(3, 400)) ** 3
    p[1, ::9] = np.nan
    p[2, :5] = p[2, 5]  # ties
    got = fdr.adjust(gpu_xp.asarray(p), method)
    assert namespace(got) is gpu_xp
    np.testing.assert_allclose(to_numpy(got), fdr.adjust(p, method), rtol=1e-15)


def test_fdr_ihw_takes_device_arrays(gpu_xp):
    """IHW is a host algorithm (Grenander estimates, linear programmes): p-values and a
    covariate on the device give the host's result."""
    rng = np.random.default_rng(7)
    covariate = rng.lognormal(3.0, 1.5, 3200)
    p = np.where(
        rng.uniform(size=3200) < covariate / covariate.max(),
        rng.beta(0.2, 5, 3200),
        rng.uniform(size=3200),
    )
    p[::50] = np.nan
    got = fdr.ihw(gpu_xp.asarray(p), gpu_xp.asarray(covariate))
    expected = fdr.ihw(p, covariate)
    assert got.n_bins == 2
    np.testing.assert_array_equal(got.adjusted, expected.adjusted)
    np.testing.assert_array_equal(got.weights, expected.weights)


@pytest.mark.parametrize("method", NORMALIZATIONS)
def test_normalize_on_device_chunks(gpu_xp, method):
    rng = np.random.default_rng(6)
    counts = rng.poisson(rng.uniform(1, 40, 30), (25, 30)).astype(np.float64)
    counts[3, 4] = counts[3, 7]  # ties for the quantile ranks
    host = xr.Dataset(
        {
            "expression": (("sample", "gene"), counts),
            "length": ("gene", rng.integers(300, 20_000, 30)),  # rpkm, log_rpkm, tpm
        },
        attrs={"scale": "counts"},
    )
    chunked = host.chunk({"sample": 10})
    device = chunked.assign(
        expression=chunked["expression"].copy(data=to_device(chunked["expression"].data, "gpu"))
    )
    on_device = normalize(device, method)["expression"].data
    assert namespace(on_device) is gpu_xp
    expected = normalize(chunked, method)["expression"].values
    np.testing.assert_allclose(to_numpy(on_device.compute()), expected, rtol=1e-6)


@pytest.mark.parametrize("method", ["rpkm", "log_rpkm", "tpm"])
def test_normalize_by_per_sample_lengths_on_device_chunks(gpu_xp, method):
    """tximport's length(sample, gene) stays on the host (a store's matrix); it goes to the
    chunks' device to divide them."""
    rng = np.random.default_rng(16)
    counts = rng.poisson(rng.uniform(1, 40, 30), (25, 30)).astype(np.float64)
    host = xr.Dataset(
        {
            "expression": (("sample", "gene"), counts),
            "length": (("sample", "gene"), rng.uniform(300, 20_000, (25, 30))),
        },
        attrs={"scale": "counts"},
    )
    chunked = host.chunk({"sample": 10})
    device = chunked.assign(
        expression=chunked["expression"].copy(data=to_device(chunked["expression"].data, "gpu"))
    )
    on_device = normalize(device, method)["expression"].data
    assert namespace(on_device) is gpu_xp
    expected = normalize(chunked, method)["expression"].values
    np.testing.assert_allclose(to_numpy(on_device.compute()), expected, rtol=1e-12)


@pytest.mark.parametrize("fit_type", ["parametric", "local", "mean"])
def test_vst_on_device_chunks(gpu_xp, fit_type):
    """DESeq2's vst: its dispersions read the counts to the host; its transformation runs on
    the chunks' device, equal to the host's."""
    from cohortex import de

    rng = np.random.default_rng(8)
    depth = rng.uniform(0.6, 1.6, 30)
    level = rng.gamma(1.5, 60.0, 80)
    dispersion = 0.05 + 2.0 / level
    mu = depth[:, None] * level[None, :]
    counts = rng.negative_binomial(1 / dispersion, 1 / (1 + mu * dispersion)).astype(np.float64)
    host = xr.Dataset({"expression": (("sample", "gene"), counts)}, attrs={"scale": "counts"})
    chunked = host.chunk({"sample": 10})
    device = chunked.assign(
        expression=chunked["expression"].copy(data=to_device(chunked["expression"].data, "gpu"))
    )
    on_device = de.vst(device, nsub=None, fit_type=fit_type)["expression"].data
    assert namespace(on_device) is gpu_xp
    expected = de.vst(chunked, nsub=None, fit_type=fit_type)["expression"].values
    np.testing.assert_allclose(to_numpy(on_device.compute()), expected, rtol=1e-12)


@pytest.mark.parametrize("method", ["tmm", "upperquartile", "rle"])
def test_norm_factors_on_device_chunks(gpu_xp, method):
    rng = np.random.default_rng(7)
    depth = rng.uniform(0.5, 3.0, 25)
    counts = rng.poisson(depth[:, None] * rng.gamma(0.8, 40, 60)[None, :]).astype(np.float64)
    counts[:, 2] = 0  # a gene with no count: left out, as edgeR does
    host = xr.Dataset({"expression": (("sample", "gene"), counts)}, attrs={"scale": "counts"})
    chunked = host.chunk({"sample": 10})
    device = chunked.copy(data={"expression": to_device(chunked["expression"].data, "gpu")})
    expected = norm_factors(chunked, method)
    got = norm_factors(device, method)
    np.testing.assert_allclose(got.values, expected.values, rtol=1e-12)
    assert got.attrs == expected.attrs
    logged = normalize(device, "log_cpm", norm_factors=method)["expression"].data
    assert namespace(logged) is gpu_xp
    np.testing.assert_allclose(
        to_numpy(logged.compute()),
        normalize(chunked, "log_cpm", norm_factors=method)["expression"].values,
        rtol=1e-12,
    )


def test_filter_by_expr_on_device_chunks(gpu_xp):
    rng = np.random.default_rng(9)
    depth = rng.uniform(0.5, 3.0, 24)
    counts = rng.poisson(depth[:, None] * rng.gamma(0.5, 20, 80)[None, :]).astype(np.float64)
    groups = np.repeat(["a", "b"], 12)
    host = xr.Dataset(
        {"expression": (("sample", "gene"), counts), "group": ("sample", groups)},
        attrs={"scale": "counts"},
    )
    chunked = host.chunk({"sample": 10})
    device = chunked.copy()
    device["expression"] = (("sample", "gene"), to_device(chunked["expression"].data, "gpu"))
    for options in ({"group": "group"}, {"group": "group", "norm_factors": "tmm"}):
        expected = filter_by_expr(chunked, **options)
        got = filter_by_expr(device, device="gpu", **options)
        np.testing.assert_array_equal(got.values, expected.values)
        assert got.attrs["n_kept"] == expected.attrs["n_kept"] and 0 < got.attrs["n_kept"] < 80
        # the library sums add up in another order there
        assert got.attrs["cpm_cutoff"] == pytest.approx(expected.attrs["cpm_cutoff"], rel=1e-14)


@pytest.mark.parametrize("method", ["auto", "streaming"])
def test_pca(gpu_xp, cohort, monkeypatch, method):
    path, x, _ = cohort
    cpu = pca(x.astype(np.float32), 6, device="cpu")
    if method == "auto":  # an in-memory device matrix: the CuPy covariance path (no cuML here)
        on_device = pca(gpu_xp.asarray(x.astype(np.float32)), 6, device="gpu")
        assert on_device.attrs["method"] in ("cupy-covariance", "cuml")  # cuML where installed
    else:
        on_device = pca(path, 6, method="streaming", device="gpu")
        assert on_device.attrs["method"] == "covariance"
    np.testing.assert_allclose(
        on_device["explained_variance"], cpu["explained_variance"], rtol=1e-5
    )
    np.testing.assert_allclose(on_device["loadings"], cpu["loadings"], atol=1e-4)


def test_pca_randomized_streaming(gpu_xp, cohort, monkeypatch):
    import cohortex.embed._pca as pca_module

    path = cohort[0]
    monkeypatch.setattr(pca_module, "COVARIANCE_MAX_GENES", 8)  # 48 genes: the sketch path
    cpu = pca(path, 4, method="streaming", device="cpu")
    on_device = pca(path, 4, method="streaming", device="gpu")
    assert on_device.attrs["method"] == cpu.attrs["method"] == "randomized-streaming"
    np.testing.assert_allclose(
        on_device["explained_variance"], cpu["explained_variance"], rtol=1e-6
    )


def test_tsne(gpu_xp, cohort):
    """Device scores go to the host for openTSNE where cuML is absent (what the GPU check
    machine has); cuML's own arguments are tests/test_gpu_apis.py's question."""
    scores = pca(cohort[1], 6, device="cpu")["scores"].values
    cpu = tsne(scores, perplexity=10, n_iter=250, device="cpu", n_jobs=1)
    on_device = tsne(gpu_xp.asarray(scores), perplexity=10, n_iter=250, device="gpu", n_jobs=1)
    if on_device.attrs["implementation"] == "cuml":  # a GPU node with cuML: another algorithm
        pytest.skip("cuML's t-SNE is not openTSNE; its arguments: tests/test_gpu_apis.py")
    assert on_device.attrs["implementation"] == "openTSNE"
    np.testing.assert_array_equal(on_device["embedding"], cpu["embedding"])


@pytest.mark.parametrize("cached", ["all", "validation", "none"])
def test_autoencoder_device_data_handling(gpu_xp, cohort, monkeypatch, cached):
    """Device chunks (CuPy → torch by DLPack), n_top_genes chosen from device variances, the
    PCA start from the device matrix (read once) or from the chunks (streamed).

    torch runs on the CPU here (no CUDA build); what runs on the stand-in is everything
    between the store and torch.
    """
    import torch

    from cohortex.ae import _model

    path = cohort[0]
    if cached != "all":  # too large to keep: the validation rows only, or nothing
        size = np.prod(list(open_cohort(path)["expression"].shape)) * 4
        monkeypatch.setattr(_model, "CACHE_BYTES", size - 1 if cached == "validation" else 0)
    real_gpu = gpu_xp.__name__ == "cupy"  # torch on CUDA in bfloat16: close, not equal
    if not real_gpu:
        monkeypatch.setattr(Autoencoder, "_torch_device", lambda self: torch.device("cpu"))
    settings = {"hidden": (8, 3, 8), "max_epochs": 3, "batch_size": 16, "n_top_genes": 20}
    cpu = Autoencoder(**settings, device="cpu", progress=False).fit(path)
    on_device = Autoencoder(**settings, device="gpu", progress=False).fit(path)
    np.testing.assert_array_equal(on_device.genes_, cpu.genes_)
    tolerance = {"rtol": 5e-2, "atol": 1e-3} if real_gpu else {"rtol": 0, "atol": 0}
    for a, b in zip(on_device.history_, cpu.history_, strict=True):
        np.testing.assert_allclose(list(a.values()), list(b.values()), **tolerance)
    for a, b in zip(on_device.layer_mean_, cpu.layer_mean_, strict=True):
        np.testing.assert_allclose(a, b, **tolerance)
    np.testing.assert_allclose(
        on_device.transform(path, 2)["activation"],
        cpu.transform(path, 2)["activation"],
        **tolerance,
    )


def test_rank_blocks_on_a_device_are_wide():
    """A GPU ranks 1,024-gene blocks of a 50,000-sample cohort (64 before: ~313 tiny launches);
    the CPU keeps its 512 (the block and its transposed copy in 256 MiB)."""
    from cohortex.de._wilcoxon import rank_block_genes

    assert rank_block_genes(50_000, np.dtype(np.float32), "gpu") == 1024
    assert rank_block_genes(2_000, np.dtype(np.float32), "gpu") == 8192
    assert rank_block_genes(50_000, np.dtype(np.float32), "cpu") == 512
