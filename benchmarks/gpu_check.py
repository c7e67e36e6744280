"""The prepared GPU check (run by benchmarks/gpu_check.sh): GPU against CPU in one run.

1. Parity: every public entry point with a GPU path on a 20,000 × 2,000 cohort, on the GPU and
   on the CPU; the largest relative difference of every output.
2. Speed: de (Welch), Wilcoxon, PCA (50 components of the 2,000 most variable genes) and two
   autoencoder epochs (with a plain PyTorch loop's epoch beside them on the GPU) on a
   50,000 × 20,000 float32 matrix in host memory, on the CPU and on the GPU
   (``device="gpu"``: chunks copied to the device) and, for the tests, with the matrix already
   on the device. Each case is warmed up on a small slice first (numba and CuPy compile
   on first use); the warm-up is reported apart.

Writes ``gpu_check.json`` and ``gpu_check.md`` into ``--out``. ``--dry-run`` runs the same
code with the CuPy stand-in of tests/gpu_surface.py as the GPU at small sizes, to show on a
machine without a GPU that the check runs end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
H200_HBM_BYTES_PER_SECOND = 4.8e12  # NVIDIA's H200 datasheet figure


class Clock:
    """Seconds since the start, and whether the time budget for the optional parts is spent."""

    def __init__(self, budget: float) -> None:
        self.start = time.perf_counter()
        self.budget = budget

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def spent(self) -> bool:
        return self.elapsed() > self.budget


def _install_standin() -> Any:
    """The CuPy stand-in as cohortex's GPU, as the tests install it (without pytest)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import gpu_surface

    class Patch:  # the one method of pytest's monkeypatch that install() uses
        def setattr(self, target: Any, name: str, value: Any) -> None:
            setattr(target, name, value)

        def delenv(self, name: str, raising: bool = True) -> None:
            os.environ.pop(name, None)

    surface = gpu_surface.install(Patch())
    import torch

    from cohortex.ae import Autoencoder

    # torch has no CUDA here: the autoencoder trains on the CPU from the stand-in's chunks
    Autoencoder._torch_device = lambda self: torch.device("cpu")  # type: ignore[method-assign]
    return surface


def _synchronize(xp: Any) -> None:
    if xp.__name__ == "cupy":
        xp.cuda.Device().synchronize()


def _host(value: Any) -> np.ndarray:
    return value.get() if hasattr(value, "get") and not isinstance(value, np.ndarray) else value


# vectors whose small entries carry no meaning of their own: compared to their largest entry
_SCALED = {"loadings", "scores"}


def _largest_difference(device: Any, cpu: Any) -> dict[str, float]:
    """Per output: max |gpu − cpu| / max(|cpu|, 1e-300) over the values finite in both (for
    loadings and scores: over max |cpu|), and the number of values NaN in one only."""
    rows = {}
    names = cpu.data_vars if hasattr(cpu, "data_vars") else ["value"]
    for name in names:
        a = np.asarray(_host(device[name].data if hasattr(device, "data_vars") else device))
        b = np.asarray(cpu[name].values if hasattr(cpu, "data_vars") else cpu)
        if a.dtype.kind not in "fiub" or b.dtype.kind not in "fiub":
            rows[str(name)] = 0.0 if np.array_equal(a, b) else float("inf")
            continue
        a, b = a.astype(np.float64), b.astype(np.float64)
        both = np.isfinite(a) & np.isfinite(b)
        scale = np.abs(b[both]).max(initial=0.0) if name in _SCALED else np.abs(b[both])
        relative = np.abs(a[both] - b[both]) / np.maximum(scale, 1e-300)
        rows[str(name)] = float(relative.max()) if relative.size else 0.0
        mismatched = int(np.sum(np.isnan(a) != np.isnan(b)))
        if mismatched:
            rows[f"{name} (NaN mismatches)"] = mismatched
    return rows


def parity(xp: Any, n_samples: int, n_genes: int, folder: Path) -> list[dict[str, Any]]:
    """Every public entry point with a GPU path, GPU against CPU."""
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
    )
    from cohortex._backend import to_device
    from cohortex.ae import Autoencoder
    from cohortex.simulate import simulate_array

    x, samples, genes = simulate_array(
        n_samples, n_genes, groups={"a": 0.3, "b": 0.3, "c": 0.4}, batches=2, seed=1
    )
    x = np.log2(np.asarray(x, dtype=np.float32) + 1.0)
    store = folder / "parity.zarr"
    create_cohort(store, x, samples=samples, genes=genes)
    labels = samples["condition"].to_numpy()
    counts, _, _ = simulate_array(n_samples // 4, n_genes, distribution="negbinom", seed=2)
    counts_ds = xr.Dataset(
        {"expression": (("sample", "gene"), np.asarray(counts, dtype=np.float32))},
        attrs={"scale": "counts"},
    ).chunk({"sample": 1024})
    counts_on_device = counts_ds.copy(
        data={"expression": to_device(counts_ds["expression"].data, "gpu")}
    )
    p = np.random.default_rng(3).uniform(size=(3, n_genes)) ** 3

    cases: dict[str, Any] = {}
    for test in ("welch", "student", "anova", "wilcoxon", "kruskal"):
        cases[f"de.test {test}, in device memory"] = lambda t=test: (
            de.test(xp.asarray(x), labels, test=t),
            de.test(x, labels, test=t, device="cpu"),
        )
    cases["de.test wilcoxon, pairs against a"] = lambda: (
        de.test(xp.asarray(x), labels, test="wilcoxon", reference="a"),
        de.test(x, labels, test="wilcoxon", reference="a", device="cpu"),
    )
    pairs = np.arange(n_samples) % (n_samples // 2)  # sample i with sample i + n / 2
    paired_labels = np.where(np.arange(n_samples) < n_samples // 2, "a", "b")
    cases["de.test wilcoxon signed-rank, paired, in device memory"] = lambda: (
        de.test(xp.asarray(x), paired_labels, test="wilcoxon", paired_by=pairs),
        de.test(x, paired_labels, test="wilcoxon", paired_by=pairs, device="cpu"),
    )
    cases["de.test paired t, in device memory"] = lambda: (
        de.test(xp.asarray(x), paired_labels, paired_by=pairs),
        de.test(x, paired_labels, paired_by=pairs, device="cpu"),
    )
    for test in ("student", "wilcoxon"):  # the pairs gathered from the store's tiles
        cases[f"de.test {test}, paired, from the store"] = lambda t=test: (
            de.test(store, paired_labels, test=t, paired_by=pairs, device="gpu"),
            de.test(store, paired_labels, test=t, paired_by=pairs, device="cpu"),
        )
    cases["de.test welch, from the store"] = lambda: (
        de.test(store, "condition", device="gpu"),
        de.test(store, "condition", device="cpu"),
    )
    contrasts = {"b_vs_a": "condition[T.b]", "c_vs_b": "condition[T.c] - condition[T.b]"}
    cases["de.fit ~ condition + batch, from the store"] = lambda: (
        de.fit(store, "~ condition + batch", contrasts=contrasts, device="gpu"),
        de.fit(store, "~ condition + batch", contrasts=contrasts, device="cpu"),
    )
    cases["de.duplicate_correlation, pairs, from the store"] = lambda: (
        de.duplicate_correlation(store, "~ condition", pairs, device="gpu"),
        de.duplicate_correlation(store, "~ condition", pairs, device="cpu"),
    )
    cases["de.fit with block=pairs, in device memory"] = lambda: (
        de.fit(
            xp.asarray(x),
            np.ones((n_samples, 1)),
            block=pairs,
            correlation=0.3,
            contrasts={"mean": [1.0]},
        ),
        de.fit(
            x,
            np.ones((n_samples, 1)),
            block=pairs,
            correlation=0.3,
            contrasts={"mean": [1.0]},
            device="cpu",
        ),
    )
    quality = np.random.default_rng(5).uniform(0.3, 2.0, n_samples)
    cases["de.fit with block=pairs and a weight per sample, in device memory"] = lambda: (
        de.fit(
            xp.asarray(x),
            np.ones((n_samples, 1)),
            block=pairs,
            correlation=0.3,
            weights=quality,
            contrasts={"mean": [1.0]},
        ),
        de.fit(
            x,
            np.ones((n_samples, 1)),
            block=pairs,
            correlation=0.3,
            weights=quality,
            contrasts={"mean": [1.0]},
            device="cpu",
        ),
    )
    cases["de.array_weights, a weight per sample, from the store"] = lambda: (
        de.array_weights(store, "~ condition", device="gpu").to_dataset(),
        de.array_weights(store, "~ condition", device="cpu").to_dataset(),
    )
    precision = np.random.default_rng(4).uniform(0.2, 2.0, x.shape)
    batch = samples["batch"].to_numpy()
    cases["de.array_weights by batch with precision weights, in device memory"] = lambda: (
        de.array_weights(xp.asarray(x), weights=precision, var_group=batch).to_dataset(),
        de.array_weights(x, weights=precision, var_group=batch, device="cpu").to_dataset(),
    )
    # above 4,096 samples, precision weights: the scoring with the information's diagonal
    many = np.random.default_rng(5).normal(8.0, 1.0, (4200, 60))
    many[:40] += np.random.default_rng(6).normal(0.0, 2.0, (40, 60))  # noisy samples
    many_weights = np.random.default_rng(7).uniform(0.5, 2.0, many.shape)
    cases["de.array_weights with precision weights, 4,200 samples (diagonal scoring)"] = lambda: (
        de.array_weights(xp.asarray(many), weights=many_weights).to_dataset(),
        de.array_weights(many, weights=many_weights, device="cpu").to_dataset(),
    )
    cases["de.select_k_best 100"] = lambda: (
        de.select_k_best(store, "condition", 100, device="gpu"),
        de.select_k_best(store, "condition", 100, device="cpu"),
    )
    for method in ("bh", "holm", "storey"):
        cases[f"fdr.adjust {method}"] = lambda m=method: (
            fdr.adjust(xp.asarray(p), m),
            fdr.adjust(p, m),
        )
    for method in ("log_cpm", "quantile", "median_ratio"):
        cases[f"normalize {method}, device chunks"] = lambda m=method: (
            normalize(counts_on_device, m)["expression"].data.compute(),
            normalize(counts_ds, m)["expression"].values,
        )
    cases["norm_factors tmm, device chunks"] = lambda: (
        norm_factors(counts_on_device).values,
        norm_factors(counts_ds).values,
    )
    cases["filter_by_expr, device chunks"] = lambda: (
        filter_by_expr(counts_on_device, device="gpu").values.astype(np.float64),
        filter_by_expr(counts_ds, device="cpu").values.astype(np.float64),
    )
    # edgeR's voomLmFit: 20 genes without a count in the first group (exact zeros to mask)
    groups = np.arange(counts.shape[0]) % 3
    zeroed = np.asarray(counts, dtype=np.float32).copy()
    zeroed[groups == 0, :20] = 0.0
    three_groups = np.eye(3)[groups] @ np.array([[1.0, 0, 0], [1, 1, 0], [1, 0, 1]])
    zeros_ds = counts_ds.copy(data={"expression": zeroed}).chunk({"sample": 1024})
    zeros_on_device = zeros_ds.copy(
        data={"expression": to_device(zeros_ds["expression"].data, "gpu")}
    )
    cases["de.voom_lm_fit with exact zeros, device chunks"] = lambda: (
        de.voom_lm_fit(zeros_on_device, three_groups, norm_factors="tmm", device="gpu"),
        de.voom_lm_fit(zeros_ds, three_groups, norm_factors="tmm", device="cpu"),
    )
    # limma's camera and fry: 40 gene sets of the store's genes, the condition's last level
    names = [str(g) for g in open_cohort(store)["gene"].values]
    pick = np.random.default_rng(9)
    gene_sets = genesets.GeneSets.from_dict(
        {
            f"set{i}": list(pick.choice(names, int(pick.integers(5, 60)), replace=False))
            for i in range(40)
        }
    )
    cases["genesets.camera, from the store"] = lambda: (
        genesets.camera(store, "~ condition", gene_sets, device="gpu"),
        genesets.camera(store, "~ condition", gene_sets, device="cpu"),
    )
    cases["genesets.fry, from the store"] = lambda: (
        genesets.fry(store, "~ condition", gene_sets, device="gpu"),
        genesets.fry(store, "~ condition", gene_sets, device="cpu"),
    )
    # GSVA: the kernel sums are n² per gene, so its own case takes 1,000 samples
    few = xr.Dataset(
        {"expression": (("sample", "gene"), x[:1000])},
        coords={"gene": names},
        attrs={"scale": "log2"},
    )
    few_on_device = few.copy(data={"expression": xp.asarray(x[:1000])})
    cases["genesets.gsva (Gaussian kernel), 1,000 samples in device memory"] = lambda: (
        genesets.gsva(few_on_device, gene_sets, device="gpu"),
        genesets.gsva(few, gene_sets, device="cpu"),
    )
    for method in ("ssgsea", "zscore", "plage"):
        cases[f"genesets.gsva method={method}, from the store"] = lambda m=method: (
            genesets.gsva(store, gene_sets, method=m, device="gpu"),
            genesets.gsva(store, gene_sets, method=m, device="cpu"),
        )
    # limma's MDS: 500,000 pairs' partial sorts over the genes, a row of pairs per launch
    cases["mds pairwise (limma's plotMDS), 1,000 samples in device memory"] = lambda: (
        mds(few_on_device, device="gpu", progress=False),
        mds(few, device="cpu", progress=False),
    )
    # WGCNA's network: the genes' correlations, adjacency and TOM on the device
    cases["network.modules, the 1,000 most variable genes, from the store"] = lambda: (
        network.modules(store, power=6, genes=min(1000, n_genes), device="gpu", progress=False),
        network.modules(store, power=6, genes=min(1000, n_genes), device="cpu", progress=False),
    )
    # missing values: each pair's correlation over its shared samples (six products) there
    top_variable = open_cohort(store).isel(gene=slice(0, min(1000, n_genes)))
    values = np.asarray(top_variable["expression"].values, dtype=np.float64)
    values[np.random.default_rng(0).random(values.shape) < 0.05] = np.nan
    holed = top_variable.assign(expression=(("sample", "gene"), values))
    cases["network.modules with 5 % missing values, 1,000 genes"] = lambda: (
        network.modules(holed, power=6, device="gpu", progress=False),
        network.modules(holed, power=6, device="cpu", progress=False),
    )
    # blockwiseModules: the genes in device memory, the pre-clustering and blocks' TOMs there
    cases["network.blockwise_modules, 2,000 most variable genes in blocks of 800"] = lambda: (
        network.blockwise_modules(
            store, genes=min(2000, n_genes), max_block_size=800, device="gpu", progress=False
        ),
        network.blockwise_modules(
            store, genes=min(2000, n_genes), max_block_size=800, device="cpu", progress=False
        ),
    )

    # blockwiseConsensusModules: each set's genes in device memory, its blocks' TOMs there
    top = open_cohort(store).isel(gene=slice(0, min(2000, n_genes)))
    halves = {
        "first": top.isel(sample=slice(0, n_samples // 2)),
        "second": top.isel(sample=slice(n_samples // 2, None)),
    }
    cases["network.consensus_modules of two halves, 2,000 genes in blocks of 800"] = lambda: (
        network.consensus_modules(halves, max_block_size=800, device="gpu", progress=False),
        network.consensus_modules(halves, max_block_size=800, device="cpu", progress=False),
    )

    # modulePreservation: both cohorts' genes in device memory, eigengenes and blocks there
    def preservation(device: str) -> Any:
        found = network.modules(
            store, power=6, genes=min(500, n_genes), device="cpu", progress=False
        )
        return network.module_preservation(
            store, store, found, n_permutations=10, device=device, progress=False
        )

    cases["network.module_preservation of 500 genes' modules, 10 permutations"] = lambda: (
        preservation("gpu"),
        preservation("cpu"),
    )
    # sva's Gram matrices are samples × samples: 1,000 samples, the batches hidden from it
    labelled = few.assign(condition=("sample", labels[:1000]))
    cases["de.sva irw, 2 surrogate variables, 1,000 samples"] = lambda: (
        de.sva(labelled, "~ condition", n_sv=2, device="gpu"),
        de.sva(labelled, "~ condition", n_sv=2, device="cpu"),
    )
    # every sample: more samples than genes, so the genes × genes Gram matrices (X'X)
    cases["de.sva irw, 1 surrogate variable, every sample (genes' side)"] = lambda: (
        de.sva(store, "~ condition", n_sv=1, device="gpu"),
        de.sva(store, "~ condition", n_sv=1, device="cpu"),
    )
    # the planted structure spans about four components; beyond them the eigenvalues of the
    # noise are too close for their vectors to be compared
    wanted = ["explained_variance", "loadings"]
    cases["pca 4, in device memory (CPU: exact SVD)"] = lambda: (
        pca(xp.asarray(x), 4, device="gpu")[wanted],
        pca(x, 4, method="exact", device="cpu")[wanted],
    )
    cases["pca 4, streaming from the store"] = lambda: (
        pca(store, 4, method="streaming", device="gpu")[wanted],
        pca(store, 4, method="streaming", device="cpu")[wanted],
    )

    def streamed_randomized() -> tuple[Any, Any]:
        # the block Krylov path of stores too wide for the covariance path, at this width
        from cohortex.embed import _pca

        limit = _pca.COVARIANCE_MAX_GENES
        _pca.COVARIANCE_MAX_GENES = 0
        try:
            return (
                pca(store, 4, method="streaming", device="gpu")[wanted],
                pca(store, 4, method="streaming", device="cpu")[wanted],
            )
        finally:
            _pca.COVARIANCE_MAX_GENES = limit

    cases["pca 4, streaming from the store, randomized block Krylov"] = streamed_randomized
    draws = np.random.default_rng(4)
    event_time, censor_time = draws.exponential(5.0, n_samples), draws.exponential(10.0, n_samples)
    time_, event = np.minimum(event_time, censor_time), (event_time <= censor_time).astype(int)
    cases["survival.cox (Efron), in device memory"] = lambda: (
        survival.cox(xp.asarray(x), time_, event, device="gpu"),
        survival.cox(x, time_, event, device="cpu"),
    )
    cases["survival.logrank, from the store (CPU: its compiled twin)"] = lambda: (
        survival.logrank(store, time_, event, device="gpu"),
        survival.logrank(store, time_, event, device="cpu"),
    )
    cases["survival.cutpoint (maxstat, Lau94), from the store"] = lambda: (
        survival.cutpoint(store, time_, event, device="gpu"),
        survival.cutpoint(store, time_, event, device="cpu"),
    )

    def autoencoder() -> tuple[Any, Any]:
        settings = {"hidden": (64, 8, 64), "max_epochs": 3, "n_top_genes": 500, "seed": 0}
        on_gpu = Autoencoder(**settings, device="gpu", progress=False).fit(store)
        on_cpu = Autoencoder(**settings, device="cpu", progress=False).fit(store)
        return (
            xr.Dataset({"mse": on_gpu.score()["mse"], "genes": ("g", on_gpu.genes_)}),
            xr.Dataset({"mse": on_cpu.score()["mse"], "genes": ("g", on_cpu.genes_)}),
        )

    cases["Autoencoder (64, 8, 64), 3 epochs: held-out MSE (bfloat16 on CUDA)"] = autoencoder

    def autoencoder_streamed() -> tuple[Any, Any]:
        # no device budget: every epoch streams the stored chunks, copied to the GPU from
        # page-locked memory on the copy stream (the route of cohorts above the budget)
        from cohortex.ae import _model

        budget = _model.cache_budget
        _model.cache_budget = lambda device: 0
        try:
            return autoencoder()
        finally:
            _model.cache_budget = budget

    cases["Autoencoder streamed by chunk (copy stream), 3 epochs: held-out MSE"] = (
        autoencoder_streamed
    )
    rows = []
    for name, run in cases.items():
        start = time.perf_counter()
        try:
            on_device, on_cpu = run()
            rows.append(
                {
                    "case": name,
                    "max_relative_difference": _largest_difference(on_device, on_cpu),
                    "seconds": time.perf_counter() - start,
                }
            )
        except Exception:
            rows.append({"case": name, "error": traceback.format_exc(limit=6)})
        print(f"parity  {name}: {rows[-1].get('max_relative_difference', 'ERROR')}", flush=True)
    return rows


def _matrix(n_samples: int, n_genes: int) -> tuple[np.ndarray, np.ndarray]:
    """Log-normal float32 values with a shifted half (no ties), built in place, and labels."""
    rng = np.random.default_rng(7)
    x = np.empty((n_samples, n_genes), dtype=np.float32)
    for start in range(0, n_samples, 4096):
        block = rng.standard_normal((min(4096, n_samples - start), n_genes), dtype=np.float32)
        x[start : start + len(block)] = np.exp(block * np.float32(0.5))
    labels = np.where(np.arange(n_samples) % 2 == 0, "tumor", "normal")
    x[labels == "tumor", : n_genes // 20] *= np.float32(1.3)
    return x, labels


def _network_case(data: Any, device: str, labels: Any) -> Any:
    from cohortex import network

    genes = min(5000, data.shape[1])
    return network.modules(data, power=6, genes=genes, device=device, progress=False)


def speed(xp: Any, n_samples: int, n_genes: int, clock: Clock) -> list[dict[str, Any]]:
    """Seconds on the CPU, on the GPU from host memory and from device memory."""
    from cohortex import de, pca
    from cohortex.ae import Autoencoder

    x, labels = _matrix(n_samples, n_genes)
    small = x[: max(200, n_samples // 50), : max(256, n_genes // 20)]
    small_labels = labels[: small.shape[0]]
    on_device = xp.asarray(x)
    _synchronize(xp)
    gigabytes = x.nbytes / 1e9

    def timed(call: Any) -> float:
        start = time.perf_counter()
        call()
        _synchronize(xp)
        return time.perf_counter() - start

    cases = {
        "de.test welch + BH": lambda data, device, lab: de.test(data, lab, device=device),
        "de.test wilcoxon + BH": lambda data, device, lab: de.test(
            data, lab, test="wilcoxon", device=device
        ),
        # the i-th tumor (even rows) with the i-th normal sample
        "de.test wilcoxon signed-rank, paired + BH": lambda data, device, lab: de.test(
            data, lab, test="wilcoxon", paired_by=np.arange(len(lab)) // 2, device=device
        ),
        "de.fit ~ condition with the correlation within pairs (block=)": lambda data, device, lab: (
            de.fit(
                data,
                np.column_stack([np.ones(len(lab)), lab == lab[0]]).astype(float),
                block=np.arange(len(lab)) // 2,
                correlation=0.3,
                device=device,
            )
        ),
        "de.array_weights ~ condition (a weight per sample, REML)": lambda data, device, lab: (
            de.array_weights(
                data,
                np.column_stack([np.ones(len(lab)), lab == lab[0]]).astype(float),
                device=device,
            )
        ),
        "pca 50 of the 2,000 most variable genes": lambda data, device, lab: pca(
            data, 50, genes="hvg", device=device
        ),
        "network.modules (WGCNA) of the 5,000 most variable genes, power 6": _network_case,
    }
    rows = []
    for name, run in cases.items():
        if clock.spent():
            rows.append({"case": name, "error": "skipped: the check's time budget was spent"})
            continue
        row: dict[str, Any] = {"case": name, "gigabytes": gigabytes}
        try:
            row["warm_up_cpu"] = timed(lambda r=run: r(small, "cpu", small_labels))
            row["warm_up_gpu"] = timed(lambda r=run: r(xp.asarray(small), "gpu", small_labels))
            row["cpu"] = timed(lambda r=run: r(x, "cpu", labels))
            row["gpu_from_host"] = timed(lambda r=run: r(x, "gpu", labels))
            row["gpu_from_device"] = timed(lambda r=run: r(on_device, "gpu", labels))
            row["speedup_from_host"] = row["cpu"] / row["gpu_from_host"]
            row["speedup_from_device"] = row["cpu"] / row["gpu_from_device"]
            row["gpu_from_device_fraction_of_hbm"] = (
                x.nbytes / row["gpu_from_device"] / H200_HBM_BYTES_PER_SECOND
            )
        except Exception:
            row["error"] = traceback.format_exc(limit=6)
        rows.append(row)
        print(f"speed   {name}: {row}", flush=True)

    if not clock.spent():  # samples per second: the GPU on all samples, the CPU on a tenth
        row = {"case": "Autoencoder (512, 512, 512), samples/s: 2-epoch fit, second epoch"}
        try:
            for device, rows_used in (("gpu", n_samples), ("cpu", max(400, n_samples // 10))):
                model = Autoencoder.dwivedi(max_epochs=2, patience=2, device=device, progress=False)
                model.fit(x[:200])  # warm-up
                seconds = timed(lambda m=model, k=rows_used: m.fit(x[:k]))
                trained = rows_used - len(model.validation_index_)
                row[f"{device}_samples_per_second"] = 2 * trained / seconds
                row[f"{device}_epoch_samples_per_second"] = trained / model.epoch_seconds_[-1]
            row["speedup"] = row["gpu_samples_per_second"] / row["cpu_samples_per_second"]
            row["gpu_plain_loop_samples_per_second"] = _plain_loop(x)
            row["epoch_over_plain_loop"] = (
                row["gpu_epoch_samples_per_second"] / row["gpu_plain_loop_samples_per_second"]
            )
        except Exception:
            row["error"] = traceback.format_exc(limit=6)
        rows.append(row)
        print(f"speed   {row['case']}: {row}", flush=True)
    return rows


def _plain_loop(x: np.ndarray) -> float:
    """Samples per second of one epoch of Dwivedi's network by a plain PyTorch loop over the
    matrix in device memory (cohortex's bench anchor), after a warm-up epoch on 2,048 rows
    (cuBLAS's set-up); the CPU where torch sees no GPU (the dry run)."""
    import torch

    from cohortex.app.bench import plain_training_epoch

    target = "cuda" if torch.cuda.is_available() else "cpu"
    plain_training_epoch(x[:2048], target)
    return x.shape[0] / plain_training_epoch(x, target)


def machine(xp: Any, dry_run: bool) -> dict[str, Any]:
    import torch

    from cohortex._backend import device_name

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "cupy": getattr(xp, "__version__", ""),
        "dry_run": dry_run,
    }
    info["device"] = "CuPy stand-in (CPU)" if dry_run else device_name("gpu")
    return info


def _markdown(report: dict[str, Any]) -> str:
    lines = [f"# GPU check — {report['machine']['device']}", ""]
    lines.append("Machine: " + ", ".join(f"{k} {v}" for k, v in report["machine"].items()))
    lines += [
        "",
        f"## Parity ({report['parity_shape']})",
        "",
        "| case | largest relative difference per output |",
        "|---|---|",
    ]
    for row in report["parity"]:
        if "error" in row:
            lines.append(f"| {row['case']} | ERROR: {row['error'].splitlines()[-1]} |")
            continue
        cells = ", ".join(f"{k} {v:.1e}" for k, v in row["max_relative_difference"].items())
        lines.append(f"| {row['case']} | {cells} |")
    lines += ["", f"## Speed ({report['speed_shape']})", ""]
    header = ["case", "CPU s", "GPU from host s", "GPU from device s"]
    header += ["speed-up (host / device)", "warm-up CPU / GPU s"]
    lines += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for row in report["speed"]:
        if "error" in row:
            lines.append(f"| {row['case']} | ERROR: {row['error'].splitlines()[-1]} | | | | |")
        elif "cpu" in row:
            lines.append(
                f"| {row['case']} | {row['cpu']:.2f} | {row['gpu_from_host']:.2f} | "
                f"{row['gpu_from_device']:.3f} | {row['speedup_from_host']:.1f}× / "
                f"{row['speedup_from_device']:.1f}× | {row['warm_up_cpu']:.1f} / "
                f"{row['warm_up_gpu']:.1f} |"
            )
        else:
            lines.append(
                f"| {row['case']} | {row['cpu_samples_per_second']:.0f} /s | "
                f"{row['gpu_samples_per_second']:.0f} /s (an epoch "
                f"{row['gpu_epoch_samples_per_second']:.0f} /s; plain PyTorch loop "
                f"{row['gpu_plain_loop_samples_per_second']:.0f} /s, "
                f"{row['epoch_over_plain_loop']:.2f}×) | | {row['speedup']:.1f}× | |"
            )
    lines += ["", f"Total {report['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "gpu_check"))
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds for parity + speed")
    args = parser.parse_args()
    clock = Clock(args.budget)
    if args.dry_run:
        xp = _install_standin()
        parity_shape, speed_shape = (1_000, 300), (4_000, 1_000)
    else:
        import cupy as xp

        from cohortex._backend import resolve_device

        resolve_device("gpu")  # a clear error where CuPy finds no device
        parity_shape, speed_shape = (20_000, 2_000), (50_000, 20_000)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "machine": machine(xp, args.dry_run),
        "parity_shape": "{} × {}".format(*parity_shape),
        "speed_shape": "{} × {}".format(*speed_shape),
    }
    with tempfile.TemporaryDirectory() as folder:
        report["parity"] = parity(xp, *parity_shape, Path(folder))
    report["speed"] = speed(xp, *speed_shape, clock)
    report["seconds"] = clock.elapsed()
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "gpu_check.md").write_text(_markdown(report))
    print(_markdown(report))
    failed = [r["case"] for r in report["parity"] + report["speed"] if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
