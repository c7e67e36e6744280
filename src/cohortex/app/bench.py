"""``cohortex bench``: the benchmark suite against the tools a user would otherwise pick.

Every case runs in its own Python process (``python -m cohortex.app.bench --case ...``) so that it
reports its own peak RSS, on the same simulated cohort, one after another. Per suite:

``de``        Welch + BH: cohortex in memory and from the store; scipy ``ttest_ind`` +
              statsmodels ``multipletests`` (on ``--scipy-genes`` genes, **extrapolated** to all
              when the cohort is wider), scanpy ``rank_genes_groups(method="t-test")``;
              rapids-singlecell on a GPU.
``wilcoxon``  the same with the rank-sum test; scipy ``mannwhitneyu``, scanpy (wilcoxon),
              illico; rapids-singlecell on a GPU.
``paired``    the Wilcoxon signed-rank test of paired samples (the i-th tumor with the i-th
              normal sample; the rest left out), in memory and from the store; scipy
              ``wilcoxon`` of the differences (on ``--scipy-genes`` genes, **extrapolated**).
``pca``       50 components from the store, of all genes and of the 2,000 most variable ones;
              scikit-learn ``PCA`` (randomized; full on those 2,000 genes) in memory; cuML on a
              GPU.
``tsne``      t-SNE of the first 50 principal components; openTSNE; scikit-learn's ``TSNE`` on
              the first ``--tsne-subset`` samples (it is far slower); cuML on a GPU.
``ae``        two epochs of Dwivedi et al.'s 3 × 512 autoencoder from the store (the note gives
              the samples/s of the whole ``fit`` and of its second epoch alone: one sweep of
              the chunks plus validation, without the one-off scaling and statistics passes);
              one epoch of the same network trained by a plain PyTorch loop on the in-memory
              matrix.
``survival``  a Cox model per gene (Efron ties), its test of proportional hazards (cox.zph)
              and the log-rank test per gene (median split), from the store (cox.zph without
              an anchor); lifelines' ``CoxPHFitter`` and ``logrank_test`` gene by gene on
              ``--scipy-genes`` genes, **extrapolated** to all. The outcome is the store's
              ``time`` and ``event`` (as ``simulate(survival_genes=...)`` writes them) or,
              without them, exponential times with a third censored drawn from a fixed seed.
``predict``   5-fold cross-validated logistic regression of the condition on 500 genes chosen
              inside each training fold, from the store (the note splits selection, reading
              and fitting); the usual workflow for comparison: ``select_k_best`` on all samples
              from the store, then scikit-learn's ``cross_val_score`` on the selected matrix
              (it leaks the held-out labels into the selection; its time is the target's
              "DE pass plus scikit-learn": cohortex within 2× of it).
``genesets``  preranked GSEA of 10,000 random gene sets (15–500 genes, fixed seed) on the Welch
              t of the cohort (computed before the clock starts), 10,000 permutations; GSEApy's
              ``prerank`` on 100 of the sets with 1,000 permutations, **extrapolated** linearly
              in sets × permutations (marked). limma's fry of 1,000 of such sets for the
              condition on the first ``--r-samples`` samples in memory, beside R's ``fry`` of
              the same sets and values; roast (limma's ``mroast``, 1,999 rotations) and
              romer (999 rotations) of the first 100 of them beside R's; GSVA's scores of
              the 1,000 sets (its Gaussian kernel) in the first 200 samples beside R's GSVA.
``voom``      limma-voom on a counts store (the cohort itself when its scale is counts, else a
              negative-binomial cohort of the same shape simulated beside it): ``de.voom`` with
              TMM factors and the weighted ``de.fit`` from the store, and the same with the
              unweighted fit (each row notes the fit's own seconds: the target is weighted ≤ 3×
              unweighted); on the first ``--r-samples`` samples, cohortex in memory and R's
              ``voom(calcNormFactors(DGEList(counts)), design)`` + ``lmFit`` + ``eBayes`` (timed
              inside R; the note extrapolates it linearly to the whole cohort, marked so).
              edgeR's voomLmFit (``de.voom_lm_fit``, exact zeros left out of the df) from the
              store and on the slice beside R's ``voomLmFit`` + ``eBayes`` (the note counts the
              genes that lost df). Sample quality weights: ``de.voom(sample_weights=True)``
              and the fit from the store (no R beside it: limma's REML would sum an n × n
              matrix per gene), and on the first 200 samples in memory beside R's
              ``voomWithQualityWeights(method = "reml")`` + ``lmFit`` + ``eBayes`` on them.
              edgeR's quasi-likelihood F-tests (``de.glm_ql``: estimateDisp, glmQLFit,
              glmQLFTest; TMM factors) on the slice beside R's ``estimateDisp`` + ``glmQLFit``
              + ``glmQLFTest`` of ``calcNormFactors(DGEList(counts))`` (not from the whole
              store: 21 negative-binomial fits of every gene take ~1 µs a value a core),
              and the same with ``glmTreat(lfc = log2(1.2))`` in place of glmQLFTest;
              classic edgeR (``de.exact_test``: estimateDisp of the groups, exactTest) on the
              slice beside R's ``exactTest(estimateDisp(calcNormFactors(DGEList(counts,
              group))))``.
``block``     samples correlated within blocks, consecutive samples taken as pairs: limma's
              ``duplicateCorrelation`` (``de.duplicate_correlation``) and the block fit
              (``de.fit(block=, correlation=)``) on ``~ condition``, from the store and on the
              first ``--r-samples`` samples in memory; R's ``duplicateCorrelation`` +
              ``lmFit(block=)`` + ``eBayes`` on those samples and their first 20 genes (it
              decomposes the blocks afresh for every gene), **extrapolated** linearly to all
              genes (marked).
``weights``   sample quality weights: limma's ``arrayWeights`` by REML (``de.array_weights``,
              a weight per sample) on ``~ condition`` and the fit with them, from the store
              and on the first ``--r-samples`` samples in memory; R's ``arrayWeights(method =
              "reml")`` + ``lmFit(weights=)`` + ``eBayes`` on those samples (timed inside R).
              limma's gene-by-gene update (``method="genebygene"``, R's default for small
              studies with missing values or weights) on the first 48 samples, beside R's.
``batch``     sva's ComBat (``de.combat``, parametric) of three batches (every third sample),
              the corrected values computed: from the store, and on the first
              ``--r-samples`` samples in memory beside R's ``ComBat(y, batch)`` on them.
              sva's ComBat-seq (``de.combat_seq``) of the same batches on the voom suite's
              counts, the corrected counts computed: from the store, and on its first 300
              samples in memory beside R's ``ComBat_seq(counts, batch)`` (an R loop over
              every count).

Each process first runs its case on a small cohort (600 × 2,048), so that the timed run is not
charged for loading or compiling numba code (cohortex's and scanpy's alike). The warm-up cohort
is wider than one rank block (1,024 genes at 600 samples), so that its blocks are views of the
matrix like the timed run's: numba compiles a view and a contiguous array separately. Limits
(measured in the same run): one streaming pass over the in-memory matrix
(``X.sum(axis=0)``, on the device for a GPU run: its memory bandwidth) and one plain read of the
store through Dask. ``fraction of limit`` is limit seconds / case seconds (1 = at the limit);
``speed-up`` is the anchor's seconds / cohortex's seconds on the same device and data source.
Anchors that are not installed are listed as skipped; nothing is estimated except the scipy
rows marked as extrapolated.

Each case also reports its start-up: the first call of a fresh process, on the small cohort
(numba's cache load or compilation, imports). ``repeats`` runs every cohortex case that many
times, each in a fresh process (the median is reported, every run listed). For ``de``,
``wilcoxon`` and ``paired`` the report gives the agreement of cohortex's p-values with
scipy's (float64) on the genes scipy ran: the largest relative difference. The scripts
``benchmarks/bench_de.py``, ``bench_ranks.py``, ``bench_embed.py`` and ``bench_voom.py`` are
entry points over :func:`run_bench`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SUITES",
    "load_matrix",
    "peak_rss_bytes",
    "plain_training_epoch",
    "run_bench",
    "script",
]


@dataclass(frozen=True)
class Case:
    suite: str
    name: str
    role: str  # "limit", "cohortex" or "anchor"
    # "memory", "zarr", "hvg" (the 2,000 most variable genes), "pcs", "slice" (the first
    # samples), "quality" (the first _QUALITY_SAMPLES samples), "genebygene" (the first
    # _GENE_BY_GENE_SAMPLES samples), "gsva" (the first _GSVA_SAMPLES samples) or "ranking"
    # (a statistic per gene: no matrix is timed)
    source: str
    module: str | None = None  # the package an anchor needs
    gpu: bool = True  # whether the case runs on a GPU (device=gpu), or only on the CPU
    against: str | None = None  # the cohortex case an anchor is compared with (default: by source)


_CASES = [
    Case("limits", "memory_pass", "limit", "memory"),
    Case("limits", "zarr_read", "limit", "zarr", gpu=False),
    Case("de", "cohortex_memory", "cohortex", "memory"),
    Case("de", "cohortex_zarr", "cohortex", "zarr"),
    Case("de", "scipy", "anchor", "memory", "scipy", gpu=False),
    Case("de", "scanpy", "anchor", "memory", "scanpy", gpu=False),
    Case("de", "rapids_singlecell", "anchor", "memory", "rapids_singlecell"),
    Case("wilcoxon", "cohortex_memory", "cohortex", "memory"),
    Case("wilcoxon", "cohortex_zarr", "cohortex", "zarr"),
    Case("wilcoxon", "scipy", "anchor", "memory", "scipy", gpu=False),
    Case("wilcoxon", "scanpy", "anchor", "memory", "scanpy", gpu=False),
    Case("wilcoxon", "illico", "anchor", "memory", "illico", gpu=False),
    Case("wilcoxon", "rapids_singlecell", "anchor", "memory", "rapids_singlecell"),
    Case("paired", "cohortex_memory", "cohortex", "memory"),
    Case("paired", "cohortex_zarr", "cohortex", "zarr"),
    Case("paired", "scipy", "anchor", "memory", "scipy", gpu=False),
    Case("pca", "cohortex_zarr", "cohortex", "zarr"),
    Case("pca", "scikit_learn", "anchor", "memory", "sklearn", gpu=False),
    Case("pca", "cuml", "anchor", "memory", "cuml"),
    Case("pca", "cohortex_zarr_hvg", "cohortex", "zarr"),
    Case("pca", "scikit_learn_hvg", "anchor", "hvg", "sklearn", False, "cohortex_zarr_hvg"),
    Case("pca", "scikit_learn_full_hvg", "anchor", "hvg", "sklearn", False, "cohortex_zarr_hvg"),
    Case("tsne", "cohortex", "cohortex", "pcs"),
    Case("tsne", "opentsne", "anchor", "pcs", "openTSNE", gpu=False),
    Case("tsne", "scikit_learn_subset", "anchor", "pcs", "sklearn", gpu=False),
    Case("tsne", "cuml", "anchor", "pcs", "cuml"),
    Case("ae", "cohortex_zarr", "cohortex", "zarr"),
    Case("ae", "torch_loop", "anchor", "memory", "torch"),
    Case("survival", "cohortex_zarr", "cohortex", "zarr"),
    Case("survival", "logrank_zarr", "cohortex", "zarr"),
    Case("survival", "zph_zarr", "cohortex", "zarr"),
    Case("survival", "lifelines", "anchor", "memory", "lifelines", False, "cohortex_zarr"),
    Case("survival", "lifelines_logrank", "anchor", "memory", "lifelines", False, "logrank_zarr"),
    Case("predict", "cohortex_zarr", "cohortex", "zarr"),
    Case("predict", "select_then_sklearn", "anchor", "zarr", "sklearn", False),
    Case("genesets", "cohortex_gsea", "cohortex", "ranking"),
    Case("genesets", "gseapy", "anchor", "ranking", "gseapy", False, "cohortex_gsea"),
    Case("genesets", "cohortex_fry", "cohortex", "slice"),
    Case(
        "genesets", "limma_fry_r", "anchor", "slice", "Rscript:limma,statmod", False, "cohortex_fry"
    ),
    Case("genesets", "cohortex_gsva", "cohortex", "gsva"),
    Case(
        "genesets",
        "gsva_r",
        "anchor",
        "gsva",
        "Rscript:limma,edgeR,GSVA",
        False,
        "cohortex_gsva",
    ),
    Case("genesets", "cohortex_roast", "cohortex", "slice"),
    Case(
        "genesets",
        "limma_roast_r",
        "anchor",
        "slice",
        "Rscript:limma,statmod",
        False,
        "cohortex_roast",
    ),
    Case("genesets", "cohortex_romer", "cohortex", "slice"),
    Case(
        "genesets",
        "limma_romer_r",
        "anchor",
        "slice",
        "Rscript:limma,statmod",
        False,
        "cohortex_romer",
    ),
    Case("voom", "cohortex_zarr", "cohortex", "zarr"),
    Case("voom", "unweighted_zarr", "cohortex", "zarr"),
    Case("voom", "cohortex_slice", "cohortex", "slice"),
    Case("voom", "limma_r", "anchor", "slice", "Rscript:limma,edgeR", False, "cohortex_slice"),
    Case("voom", "lmfit_zarr", "cohortex", "zarr"),
    Case("voom", "lmfit_slice", "cohortex", "slice"),
    Case("voom", "edger_lmfit_r", "anchor", "slice", "Rscript:limma,edgeR", False, "lmfit_slice"),
    Case("voom", "glm_ql_slice", "cohortex", "slice"),
    Case("voom", "edger_ql_r", "anchor", "slice", "Rscript:limma,edgeR", False, "glm_ql_slice"),
    Case("voom", "treat_slice", "cohortex", "slice"),
    Case("voom", "edger_treat_r", "anchor", "slice", "Rscript:limma,edgeR", False, "treat_slice"),
    Case("voom", "exact_slice", "cohortex", "slice"),
    Case("voom", "edger_exact_r", "anchor", "slice", "Rscript:limma,edgeR", False, "exact_slice"),
    Case("voom", "quality_zarr", "cohortex", "zarr"),
    Case("voom", "quality_slice", "cohortex", "quality"),
    Case("voom", "limma_quality_r", "anchor", "quality", "Rscript:limma,edgeR", gpu=False),
    Case("block", "cohortex_zarr", "cohortex", "zarr"),
    Case("block", "cohortex_slice", "cohortex", "slice"),
    Case("block", "limma_r", "anchor", "slice", "Rscript:limma,statmod", gpu=False),
    Case("weights", "cohortex_zarr", "cohortex", "zarr"),
    Case("weights", "cohortex_slice", "cohortex", "slice"),
    Case("weights", "limma_r", "anchor", "slice", "Rscript:limma", gpu=False),
    Case("weights", "genebygene_slice", "cohortex", "genebygene", gpu=False),
    Case("weights", "limma_genebygene_r", "anchor", "genebygene", "Rscript:limma", gpu=False),
    Case("batch", "combat_zarr", "cohortex", "zarr"),
    Case("batch", "combat_slice", "cohortex", "slice"),
    Case("batch", "sva_r", "anchor", "slice", "Rscript:limma,edgeR,sva", False, "combat_slice"),
    Case("batch", "combat_seq_zarr", "cohortex", "zarr"),
    Case("batch", "combat_seq_slice", "cohortex", "seq_slice"),
    Case(
        "batch",
        "sva_seq_r",
        "anchor",
        "seq_slice",
        "Rscript:limma,edgeR,sva",
        False,
        "combat_seq_slice",
    ),
]
SUITES = (
    "de",
    "wilcoxon",
    "paired",
    "pca",
    "tsne",
    "ae",
    "survival",
    "predict",
    "genesets",
    "voom",
    "block",
    "weights",
    "batch",
)
_GSEA_SETS, _GSEA_PERMUTATIONS = 10_000, 10_000
_GSEAPY_SETS, _GSEAPY_PERMUTATIONS = 100, 1_000
_FRY_SETS = 1_000
_ROAST_SETS = 100  # the first of fry's sets: R's mroast takes ~0.5 s a set at 2,000 samples
_ROMER_ROTATIONS = 999  # R's romer takes ~26 ms a rotation at 2,000 × 20,000
_GSVA_SAMPLES = 200  # GSVA's kernel sums are n² per gene: R takes ~1 min at 200 × 20,000
_R_PREAMBLE = r"""
suppressPackageStartupMessages({library(limma); library(edgeR)})
args <- commandArgs(trailingOnly = TRUE)
n_samples <- as.integer(args[2]); n_genes <- as.integer(args[3])
y <- matrix(readBin(args[1], "double", n_samples * n_genes), n_genes, n_samples)
group <- factor(readLines(args[4]))
design <- model.matrix(~ group)
"""


def _timed_in_r(body: str, setup: str = "") -> str:
    """An R script for :func:`_seconds_in_r`: the values as ``y`` (genes × samples), the
    samples' ``group`` and ``design <- model.matrix(~ group)``, then ``setup``, then ``body``
    timed inside R (the seconds printed)."""
    timed = "elapsed <- system.time({\n" + body + '\n})[["elapsed"]]\ncat(elapsed, "\\n")\n'
    return _R_PREAMBLE + setup + "\n" + timed


_FRY_R = _timed_in_r(
    'fry(y, index, design, contrast = 2, sort = "none")',
    setup='index <- lapply(strsplit(readLines(args[5]), " "), as.integer)',
)
_ROAST_R = _timed_in_r(
    'mroast(y, index, design, contrast = 2, sort = "none")',
    setup='index <- lapply(strsplit(readLines(args[5]), " "), as.integer)',
)
_ROMER_R = _timed_in_r(
    f"romer(y, index, design, contrast = 2, nrot = {_ROMER_ROTATIONS})",
    setup='index <- lapply(strsplit(readLines(args[5]), " "), as.integer)',
)
_GSVA_R = _timed_in_r(
    "invisible(capture.output(scores <- gsva(y, sets, verbose = FALSE)))",
    setup="suppressPackageStartupMessages(library(GSVA))\n"
    'rownames(y) <- paste0("g", seq_len(n_genes))\n'
    'sets <- lapply(strsplit(readLines(args[5]), " "), function(i) paste0("g", i))\n'
    'names(sets) <- paste0("set", seq_along(sets))',
)
_VOOM_R = _timed_in_r(
    "v <- voom(calcNormFactors(DGEList(y)), design)\nfit <- eBayes(lmFit(v, design))"
)
_VOOM_LM_FIT_R = _timed_in_r("fit <- eBayes(voomLmFit(calcNormFactors(DGEList(y)), design))")
_GLM_QL_R = _timed_in_r(
    "d <- estimateDisp(calcNormFactors(DGEList(y)), design)\nres <- glmQLFTest(glmQLFit(d, design))"
)
_GLM_TREAT_R = _timed_in_r(
    "d <- estimateDisp(calcNormFactors(DGEList(y)), design)\n"
    "res <- glmTreat(glmQLFit(d, design), lfc = log2(1.2))"
)
_COMBAT_R = _timed_in_r(  # the labels are the batches
    "out <- ComBat(y, group)", setup="suppressPackageStartupMessages(library(sva))"
)
_COMBAT_SEQ_R = _timed_in_r(  # the labels are the batches; sva prints as it goes
    "invisible(capture.output(out <- ComBat_seq(y, group)))",
    setup="suppressPackageStartupMessages(library(sva))",
)
_COMBAT_SEQ_SAMPLES = 300  # R's ComBat_seq matches quantiles in an R loop over every count
_EXACT_R = _timed_in_r("res <- exactTest(estimateDisp(calcNormFactors(DGEList(y, group = group))))")
_QUALITY_R = _timed_in_r(
    'v <- voomWithQualityWeights(calcNormFactors(DGEList(y)), design, method = "reml")\n'
    "fit <- eBayes(lmFit(v, design))"
)
_QUALITY_SAMPLES = 200  # R's REML with voom's weights sums an n × n matrix gene by gene
_BLOCK_R = _timed_in_r(
    "dup <- duplicateCorrelation(y, design, block = pair)\n"
    "fit <- eBayes(lmFit(y, design, block = pair, correlation = dup$consensus.correlation))",
    setup="pair <- (seq_len(n_samples) - 1) %/% 2",
)
_WEIGHTS_R = _timed_in_r(
    'aw <- arrayWeights(y, design, method = "reml")\nfit <- eBayes(lmFit(y, design, weights = aw))'
)
_GENE_BY_GENE_R = _WEIGHTS_R.replace('method = "reml"', 'method = "genebygene"')
_GENE_BY_GENE_SAMPLES = 48  # a small study, where limma's gene-by-gene update is its default
_BLOCK_R_GENES = 20  # R's duplicateCorrelation decomposes the blocks afresh for every gene
_WARM_GENES = 2048  # the warm-up cohort: 600 samples × this many genes
_GPU_ONLY = {"rapids_singlecell", "cuml"}


def peak_rss_bytes() -> int:
    """This process's peak resident set size in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _installed(module: str | None) -> bool:
    if module is None:
        return True
    if module.startswith("Rscript:"):  # R and these packages
        import shutil

        if shutil.which("Rscript") is None:
            return False
        load = "; ".join(f"library({name})" for name in module.split(":", 1)[1].split(","))
        return subprocess.run(["Rscript", "-e", load], capture_output=True).returncode == 0
    import importlib.util

    return importlib.util.find_spec(module) is not None


def load_matrix(store: str | os.PathLike[str]) -> np.ndarray:
    """A store's whole expression matrix in memory, read through the store API (every chunk
    checked) into one allocation: Dask writes each chunk into place, nothing is concatenated."""
    import dask.array as da

    from ..store import open_cohort

    stored = open_cohort(store)["expression"].data
    out = np.empty(stored.shape, dtype=stored.dtype)
    da.store(stored, out, lock=False)
    return out


def _matrix(store: str, device: str) -> Any:
    """The whole expression matrix in memory (float32), on the device of the run."""
    from .._backend import to_device

    x = load_matrix(store)
    return to_device(x, "gpu") if device == "gpu" else x


def _labels(store: str) -> np.ndarray:
    from ..store import open_cohort

    return np.asarray(open_cohort(store)["condition"].values)


def _pair_ids(labels: np.ndarray) -> np.ndarray:
    """Pairs for the paired suite: the i-th tumor with the i-th normal sample, in store order;
    the samples of the larger group beyond those get ids of their own (left out)."""
    ids = np.asarray([f"alone{row}" for row in range(len(labels))], dtype=object)
    partnered = min(int(np.sum(labels == "tumor")), int(np.sum(labels == "normal")))
    for label in ("tumor", "normal"):
        rows = np.flatnonzero(labels == label)[:partnered]
        ids[rows] = [f"pair{i}" for i in range(partnered)]
    return ids


def _pcs(store: str, scratch: Path) -> np.ndarray:
    """The first 50 principal components of the cohort, computed once per run and cached."""
    path = scratch / "pcs.npy"
    if not path.exists():
        from .._backend import to_host
        from ..embed import pca

        np.save(path, to_host(pca(store, 50, device="cpu")["scores"].values))
    return np.load(path)


def _hvg(store: str, scratch: Path) -> np.ndarray:
    """Indices of the 2,000 genes ``pca(genes="hvg")`` selects, computed once per run."""
    path = scratch / "hvg.npy"
    if not path.exists():
        from ..embed import pca

        genes = pca(store, 2, genes="hvg", device="cpu")["gene"].values
        position = {g: i for i, g in enumerate(_gene_ids(store))}
        np.save(path, np.asarray([position[g] for g in genes]))
    return np.load(path)


def _time_case(
    case: Case,
    store: str,
    device: str,
    scratch: Path,
    scipy_genes: int,
    tsne_subset: int,
    r_samples: int = 2000,
) -> dict:
    """Run one case; returns seconds and extras (called in the case's own process)."""
    from .._backend import to_host

    extra: dict[str, Any] = {}
    labels: Any = _labels(store) if case.suite in ("de", "wilcoxon", "paired", "pca") else None
    test = "welch" if case.suite == "de" else "wilcoxon"
    pairs = _pair_ids(labels) if case.suite == "paired" else None
    x: Any = _matrix(store, device) if case.source in ("memory", "hvg") else None
    if case.source == "hvg":
        x = x[:, _hvg(store, scratch)]
    pcs: Any = _pcs(store, scratch) if case.source == "pcs" else None
    start = time.perf_counter()
    if case.name == "memory_pass":
        to_host(x.sum(axis=0))  # to_host waits for the device
    elif case.name == "zarr_read":
        import dask.array as da

        da.from_zarr(str(Path(store) / "expression")).sum(axis=0).compute()
    elif case.suite in ("de", "wilcoxon", "paired") and case.role == "cohortex":
        import warnings

        from ..de import test as de_test

        data = x if case.source == "memory" else store
        grouping = labels if case.source == "memory" else "condition"
        with warnings.catch_warnings():  # the samples without a partner, left out
            warnings.simplefilter("ignore")
            result = de_test(
                data, grouping, test=test, reference="normal", paired_by=pairs, device=device
            )
        p = to_host(result["pvalue"].values)[: min(scipy_genes, result.sizes["gene"])]
        np.save(scratch / f"{case.suite}_{case.name}_{device}_p.npy", p)
    elif case.name == "scipy":
        from scipy import stats
        from statsmodels.stats.multitest import multipletests

        assert x is not None and labels is not None
        part = x[:, : min(scipy_genes, x.shape[1])].astype(np.float64)
        tumor = labels == "tumor"
        start = time.perf_counter()
        if case.suite == "paired":  # the same pairs as cohortex: i-th tumor, i-th normal
            partnered = min(int(tumor.sum()), int((~tumor).sum()))
            first = np.flatnonzero(tumor)[:partnered]
            second = np.flatnonzero(labels == "normal")[:partnered]
            p = stats.wilcoxon(part[first] - part[second], axis=0).pvalue
        elif test == "welch":
            p = stats.ttest_ind(part[tumor], part[~tumor], equal_var=False).pvalue
        else:
            p = stats.mannwhitneyu(part[tumor], part[~tumor], method="asymptotic").pvalue
        multipletests(p, method="fdr_bh")
        if part.shape[1] < x.shape[1]:
            extra["extrapolated_from_genes"] = part.shape[1]
        np.save(scratch / f"{case.suite}_scipy_p.npy", p)
    elif case.name in ("scanpy", "rapids_singlecell"):
        import anndata as ad
        import pandas as pd

        obs = pd.DataFrame({"condition": pd.Categorical(np.asarray(labels, dtype=str))})
        adata = ad.AnnData(X=x, obs=obs)
        method = "t-test" if test == "welch" else "wilcoxon"
        if case.name == "scanpy":
            import scanpy as sc

            rank = sc.tl.rank_genes_groups
        else:
            import rapids_singlecell as rsc

            rank = rsc.tl.rank_genes_groups
        start = time.perf_counter()
        rank(adata, "condition", groups=["tumor"], reference="normal", method=method)
    elif case.name == "illico":
        import anndata as ad
        import illico
        import pandas as pd

        obs = pd.DataFrame({"condition": pd.Categorical(np.asarray(labels, dtype=str))})
        adata = ad.AnnData(X=x, obs=obs)
        start = time.perf_counter()
        illico.asymptotic_wilcoxon(
            adata,
            is_log1p=False,
            group_keys="condition",
            reference="normal",
            n_threads=os.cpu_count() or 1,
        )
    elif case.suite == "pca":
        if case.role == "cohortex":
            from ..embed import pca

            genes = "hvg" if case.name.endswith("hvg") else None
            embedded = pca(store, 50, genes=genes, device=device)
            extra["method"] = embedded.attrs.get("method", "")
        elif case.name.startswith("scikit_learn"):
            from sklearn.decomposition import PCA

            solver = "full" if "full" in case.name else "randomized"
            PCA(50, svd_solver=solver, random_state=0).fit(x).transform(x)
        else:
            from cuml.decomposition import PCA as CumlPCA

            CumlPCA(n_components=50).fit_transform(x)
    elif case.suite == "tsne":
        if case.role == "cohortex":
            from ..embed import tsne

            tsne(pcs, perplexity=30, n_iter=500, seed=0, device=device)
        elif case.name == "opentsne":
            from openTSNE import TSNE

            TSNE(perplexity=30, n_iter=500, random_state=0, n_jobs=-1).fit(pcs)
        elif case.name == "scikit_learn_subset":
            from sklearn.manifold import TSNE as SklearnTSNE

            subset = pcs[:tsne_subset]
            start = time.perf_counter()
            SklearnTSNE(perplexity=30, max_iter=750, random_state=0).fit_transform(subset)
            extra["samples"] = len(subset)
        else:
            from cuml.manifold import TSNE as CumlTSNE

            from ..embed._tsne import cuml_arguments

            # what cohortex's tsne(n_iter=500) asks of cuML: 250 exaggeration + 500 iterations
            CumlTSNE(**cuml_arguments(perplexity=30, n_iter=500, seed=0)).fit_transform(pcs)
    elif case.suite == "ae":
        extra.update(_train_one_epoch(case, store, x, device))
    elif case.suite == "voom":
        extra.update(_voom_case(case, store, device, r_samples))
    elif case.suite == "block":
        extra.update(_block_case(case, store, device, r_samples))
    elif case.suite == "weights":
        extra.update(_weights_case(case, store, device, r_samples))
    elif case.suite == "batch":
        extra.update(_batch_case(case, store, device, r_samples))
    elif case.suite == "survival":
        extra.update(_survival_case(case, store, x, device, scipy_genes))
    elif case.suite == "predict":
        extra.update(_predict_case(case, store, device))
    elif case.suite == "genesets" and case.source == "gsva":
        extra.update(_gsva_case(case, store, device))
    elif case.suite == "genesets" and case.source == "slice":
        extra.update(_fry_case(case, store, device, r_samples))
    elif case.suite == "genesets":
        extra.update(_gsea_case(case, store, device))
    else:
        raise ValueError(f"unknown case {case.suite}:{case.name}")
    seconds = extra.pop("timed_seconds", time.perf_counter() - start)
    if "extrapolated_from_genes" in extra:
        n_genes = _n_genes(store)
        extra["measured_seconds"] = seconds
        seconds *= n_genes / extra["extrapolated_from_genes"]
    return {"seconds": seconds, **extra}


def _train_one_epoch(case: Case, store: str, x: Any, device: str) -> dict:
    """One epoch of the 3 × 512 autoencoder: cohortex from the store, or a plain torch loop."""
    if case.role == "cohortex":
        from ..ae import Autoencoder

        # Dwivedi et al.'s network, the one the plain loop below builds
        model = Autoencoder.dwivedi(max_epochs=2, patience=2, device=device, progress=False)
        model.fit(store)
        n_train = int(_n_samples(store) - len(model.validation_index_))
        return {
            "samples_trained": 2 * n_train,
            "epoch_samples_per_second": n_train / model.epoch_seconds_[-1],
        }
    from .._backend import to_host

    plain_training_epoch(np.asarray(to_host(x)), "cuda" if device == "gpu" else "cpu")
    return {"samples_trained": int(x.shape[0])}


def plain_training_epoch(x: np.ndarray, target: str) -> float:
    """One epoch of Dwivedi et al.'s network (3 × 512 sigmoid, Adam 1e-4, batches of 256) by
    the plain PyTorch loop a user would write, over ``x`` (samples × genes) min–max scaled in
    ``target``'s memory ("cpu" or "cuda"): the anchor of the autoencoder's throughput.

    Returns
    -------
    float
        Seconds of the loop alone (synchronised on a GPU), without moving and scaling ``x``.
    """
    import torch

    data = torch.as_tensor(x, device=target)
    low, high = data.min(dim=0).values, data.max(dim=0).values
    data = (data - low) / torch.clamp(high - low, min=1e-12)
    sizes = [data.shape[1], 512, 512, 512, data.shape[1]]
    layers: list[torch.nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [torch.nn.Linear(a, b), torch.nn.Sigmoid()]
    net = torch.nn.Sequential(*layers).to(target)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    if target == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for batch in torch.randperm(data.shape[0], device=target).split(256):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(net(data[batch]), data[batch])
        loss.backward()
        optimizer.step()
    if target == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _outcome(store: str) -> tuple[np.ndarray, np.ndarray]:
    """The store's survival times and events, or a fixed-seed draw when it has none."""
    from ..store import open_cohort

    cohort = open_cohort(store)
    if "time" in cohort and "event" in cohort:
        return np.asarray(cohort["time"].values), np.asarray(cohort["event"].values)
    rng = np.random.default_rng(0)
    n = cohort.sizes["sample"]
    event_time, censor_time = rng.exponential(5.0, n), rng.exponential(10.0, n)
    return np.minimum(event_time, censor_time), (event_time <= censor_time).astype(np.int64)


def _survival_case(case: Case, store: str, x: Any, device: str, anchor_genes: int) -> dict:
    """Cox models or log-rank tests of every gene from the store, or lifelines' gene by gene."""
    from .. import survival

    time_, event = _outcome(store)
    extra: dict[str, Any] = {}
    start = time.perf_counter()
    if case.name == "cohortex_zarr":
        survival.cox(store, time_, event, device=device)
    elif case.name == "logrank_zarr":
        survival.logrank(store, time_, event, device=device)
    elif case.name == "zph_zarr":  # cox.zph: each gene's Cox fit, then its test
        survival.cox_zph(store, time_, event, device=device)
    elif case.name == "lifelines_logrank":
        from lifelines.statistics import logrank_test

        genes = min(anchor_genes, x.shape[1])
        start = time.perf_counter()
        for g in range(genes):
            values = x[:, g].astype(np.float64)
            high = values > np.quantile(values, 0.5)  # as survival.logrank: ties go low
            logrank_test(time_[high], time_[~high], event[high], event[~high])
        if genes < x.shape[1]:
            extra["extrapolated_from_genes"] = genes
    else:
        import warnings

        import pandas as pd
        from lifelines import CoxPHFitter

        genes = min(anchor_genes, x.shape[1])
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lifelines' convergence chatter
            for g in range(genes):
                frame = pd.DataFrame({"x": x[:, g].astype(np.float64), "T": time_, "E": event})
                CoxPHFitter().fit(frame, "T", "E")
        if genes < x.shape[1]:
            extra["extrapolated_from_genes"] = genes
    extra["timed_seconds"] = time.perf_counter() - start
    return extra


def _predict_case(case: Case, store: str, device: str) -> dict:
    """In-fold selection and 5-fold logistic regression, or select-then-cross-validate."""
    from .. import predict
    from ..de import select_k_best

    k = min(500, _n_genes(store))
    start = time.perf_counter()
    if case.role == "cohortex":
        result = predict.cross_validate(store, "condition", k=k, folds=5, device=device)
        extra: dict[str, Any] = {f"{stage}_seconds": t for stage, t in result.timings.items()}
        return {**extra, "timed_seconds": time.perf_counter() - start, "auroc": result.auroc}
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..store import open_cohort

    chosen = select_k_best(store, "condition", k, device=device)["gene"].values
    cohort = open_cohort(store)
    position = {g: i for i, g in enumerate(cohort["gene"].values)}
    columns = np.sort([position[g] for g in chosen])
    values = np.asarray(cohort["expression"].data[:, columns].compute(), dtype=np.float64)
    labels = np.asarray(cohort["condition"].values)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    scores = cross_val_score(model, values, labels, cv=folds, scoring="roc_auc")
    return {"timed_seconds": time.perf_counter() - start, "auroc": float(scores.mean())}


def _gsea_case(case: Case, store: str, device: str) -> dict:
    """Preranked GSEA of random sets on the Welch t: cohortex, or GSEApy on a subset."""
    import pandas as pd

    from .. import genesets
    from ..de import test

    welch = test(store, "condition", reference="normal", device=device)
    ranking = pd.Series(
        np.asarray(welch["statistic"].values, dtype=np.float64).ravel(),
        index=[str(g) for g in welch["gene"].values],
    )
    rng = np.random.default_rng(0)
    genes = ranking.index.to_numpy()
    high = min(500, genes.size - 1)
    sets = {
        f"set{j}": rng.choice(genes, int(rng.integers(min(15, high), high + 1)), replace=False)
        for j in range(_GSEA_SETS)
    }
    start = time.perf_counter()
    if case.role == "cohortex":
        collection = genesets.GeneSets.from_dict(sets)
        genesets.gsea(ranking, collection, permutations=_GSEA_PERMUTATIONS, min_size=1)
        return {"timed_seconds": time.perf_counter() - start}
    import gseapy

    subset = {name: list(sets[name]) for name in list(sets)[:_GSEAPY_SETS]}
    start = time.perf_counter()
    gseapy.prerank(
        rnk=ranking,
        gene_sets=subset,
        permutation_num=_GSEAPY_PERMUTATIONS,
        min_size=1,
        max_size=1000,
        seed=0,
        outdir=None,
        threads=os.cpu_count() or 1,
        verbose=False,
    )
    measured = time.perf_counter() - start
    scale = (_GSEA_SETS / _GSEAPY_SETS) * (_GSEA_PERMUTATIONS / _GSEAPY_PERMUTATIONS)
    return {
        "timed_seconds": measured * scale,
        "measured_seconds": measured,
        "extrapolated_from": f"{_GSEAPY_SETS} sets × {_GSEAPY_PERMUTATIONS} permutations",
    }


def _fry_case(case: Case, store: str, device: str, r_samples: int) -> dict:
    """limma's fry of :data:`_FRY_SETS` random sets (15–500 genes) for the condition, on the
    first ``r_samples`` samples in memory: cohortex, or R's fry on the same sets; roast
    (mroast, 1,999 rotations) and romer (:data:`_ROMER_ROTATIONS` rotations) of the first
    :data:`_ROAST_SETS` of them."""
    from .. import genesets
    from ..store import open_cohort

    data = open_cohort(store).isel(sample=slice(0, r_samples)).load()
    genes = [str(g) for g in data["gene"].values]
    members = _random_sets(len(genes))
    test = next((t for t in ("roast", "romer") if t in case.name), "fry")
    if test != "fry":
        members = members[:_ROAST_SETS]
    extra: dict[str, Any] = {"samples": int(data.sizes["sample"]), "sets": len(members)}
    if case.role == "anchor":
        values = np.asarray(data["expression"].values, dtype=np.float64)
        script = {"fry": _FRY_R, "roast": _ROAST_R, "romer": _ROMER_R}[test]
        seconds = _seconds_in_r(script, values, data["condition"].values, members)
        return {**extra, "timed_seconds": seconds}
    sets = genesets.GeneSets.from_dict(
        {f"set{j}": [genes[i] for i in m] for j, m in enumerate(members)}
    )
    start = time.perf_counter()
    if test == "romer":
        genesets.romer(data, "~ condition", sets, n_rotations=_ROMER_ROTATIONS, device=device)
    else:
        (genesets.roast if test == "roast" else genesets.fry)(
            data, "~ condition", sets, device=device
        )
    return {**extra, "timed_seconds": time.perf_counter() - start}


def _random_sets(n_genes: int) -> list[np.ndarray]:
    """:data:`_FRY_SETS` sets of 15–500 random genes (positions), from a fixed seed."""
    rng = np.random.default_rng(0)
    high = min(500, n_genes - 1)
    return [
        rng.choice(n_genes, int(rng.integers(min(15, high), high + 1)), replace=False)
        for _ in range(_FRY_SETS)
    ]


def _gsva_case(case: Case, store: str, device: str) -> dict:
    """GSVA's scores (its defaults: the Gaussian kernel) of fry's :data:`_FRY_SETS` sets in
    the first :data:`_GSVA_SAMPLES` samples in memory: cohortex, or R's GSVA."""
    from .. import genesets
    from ..store import open_cohort

    data = open_cohort(store).isel(sample=slice(0, _GSVA_SAMPLES)).load()
    genes = [str(g) for g in data["gene"].values]
    members = _random_sets(len(genes))
    extra: dict[str, Any] = {"samples": int(data.sizes["sample"]), "sets": len(members)}
    if case.role == "anchor":
        values = np.asarray(data["expression"].values, dtype=np.float64)
        seconds = _seconds_in_r(_GSVA_R, values, data["condition"].values, members)
        return {**extra, "timed_seconds": seconds}
    sets = genesets.GeneSets.from_dict(
        {f"set{j}": [genes[i] for i in m] for j, m in enumerate(members)}
    )
    start = time.perf_counter()
    genesets.gsva(data, sets, device=device)
    return {**extra, "timed_seconds": time.perf_counter() - start}


def _voom_case(case: Case, store: str, device: str, r_samples: int) -> dict:
    """limma-voom: cohortex from the store (weighted or not), or on a slice in memory, or R."""
    from .. import de
    from ..store import open_cohort

    scripts = {
        "limma_r": _VOOM_R,
        "edger_lmfit_r": _VOOM_LM_FIT_R,
        "edger_ql_r": _GLM_QL_R,
        "edger_treat_r": _GLM_TREAT_R,
        "edger_exact_r": _EXACT_R,
    }
    if case.name in scripts:
        return _voom_in_r(store, r_samples, scripts[case.name])
    if case.name == "limma_quality_r":
        ds = open_cohort(store).isel(sample=slice(0, _QUALITY_SAMPLES))
        counts = np.asarray(ds["expression"].values, dtype=np.float64)
        seconds = _seconds_in_r(_QUALITY_R, counts, ds["condition"].values)
        return {"timed_seconds": seconds, "samples": counts.shape[0]}
    extra: dict[str, Any] = {}
    data: Any = store
    if case.source in ("slice", "quality"):
        first = r_samples if case.source == "slice" else _QUALITY_SAMPLES
        data = open_cohort(store).isel(sample=slice(0, first)).load()
        extra["samples"] = int(data.sizes["sample"])
    start = time.perf_counter()
    if case.name == "exact_slice":  # classic edgeR: estimateDisp without a design, exactTest
        tested = de.exact_test(data, "condition")
        extra.update(
            timed_seconds=time.perf_counter() - start,
            common_dispersion=tested.attrs["common_dispersion"],
        )
        return extra
    if case.name in ("glm_ql_slice", "treat_slice"):  # estimateDisp, glmQLFit, glmQLFTest
        threshold = float(np.log2(1.2)) if case.name == "treat_slice" else None  # or glmTreat
        tested = de.glm_ql(data, "~ condition", treat_lfc=threshold)
        extra.update(
            timed_seconds=time.perf_counter() - start,
            common_dispersion=tested.attrs["common_dispersion"],
        )
        return extra
    if case.name in ("lmfit_zarr", "lmfit_slice"):  # edgeR's voomLmFit + eBayes in one call
        fitted = de.voom_lm_fit(data, "~ condition", norm_factors="tmm", device=device)
        df = fitted["df_residual"].values
        extra.update(
            timed_seconds=time.perf_counter() - start, genes_losing_df=int((df < df.max()).sum())
        )
        return extra
    quality = case.name in ("quality_zarr", "quality_slice")  # voomWithQualityWeights
    voomed = de.voom(data, "~ condition", norm_factors="tmm", sample_weights=quality, device=device)
    if case.name == "unweighted_zarr":
        voomed = voomed.drop_vars("weights")
    fit_start = time.perf_counter()
    de.fit(voomed, "~ condition", device=device)
    end = time.perf_counter()
    extra.update(timed_seconds=end - start, fit_seconds=end - fit_start)
    return extra


def _block_case(case: Case, store: str, device: str, r_samples: int) -> dict:
    """Consecutive samples as pairs (blocks of two): the correlation within them and the block
    fit, cohortex from the store or on a slice in memory, or R on the slice's first genes."""
    from .. import de
    from ..store import open_cohort

    if case.name == "limma_r":
        return _block_in_r(store, r_samples)
    extra: dict[str, Any] = {}
    data: Any = open_cohort(store)
    if case.source == "slice":
        data = data.isel(sample=slice(0, r_samples)).load()
        extra["samples"] = int(data.sizes["sample"])
    pairs = np.arange(data.sizes["sample"]) // 2
    start = time.perf_counter()
    estimated = de.duplicate_correlation(data, "~ condition", pairs, device=device)
    fit_start = time.perf_counter()
    correlation = estimated.attrs["consensus_correlation"]
    de.fit(data, "~ condition", block=pairs, correlation=correlation, device=device)
    end = time.perf_counter()
    extra.update(timed_seconds=end - start, fit_seconds=end - fit_start, correlation=correlation)
    return extra


def _batch_case(case: Case, store: str, device: str, r_samples: int) -> dict:
    """ComBat of three batches (every third sample), its corrected values computed: cohortex
    from the store or on a slice in memory, or R's sva on the slice."""
    from .. import de
    from ..store import open_cohort

    data: Any = open_cohort(store)
    extra: dict[str, Any] = {}
    if case.source in ("slice", "seq_slice"):
        first = r_samples if case.source == "slice" else _COMBAT_SEQ_SAMPLES
        data = data.isel(sample=slice(0, first)).load()
        extra["samples"] = int(data.sizes["sample"])
    batch = np.array(["s1", "s2", "s3"])[np.arange(data.sizes["sample"]) % 3]
    on_counts = _on_counts(case)
    if case.role == "anchor":
        values = np.asarray(data["expression"].values, dtype=np.float64)
        script = _COMBAT_SEQ_R if on_counts else _COMBAT_R
        return {**extra, "timed_seconds": _seconds_in_r(script, values, batch)}
    start = time.perf_counter()
    if on_counts:
        corrected = de.combat_seq(data, batch)
        corrected["expression"].data.sum().compute()  # the corrected counts, as R returns them
        return {**extra, "timed_seconds": time.perf_counter() - start}
    corrected = de.combat(data, batch, device=device)
    extra["iterations"] = corrected.attrs["combat_iterations"]
    corrected["expression"].data.sum().compute()  # the corrected values, as R returns them
    return {**extra, "timed_seconds": time.perf_counter() - start}


def _weights_case(case: Case, store: str, device: str, r_samples: int) -> dict:
    """Sample weights by REML and the fit with them: cohortex from the store or on a slice in
    memory, or R on the slice."""
    from .. import de
    from ..store import open_cohort

    data: Any = open_cohort(store)
    extra: dict[str, Any] = {}
    if case.source in ("slice", "genebygene"):
        first = r_samples if case.source == "slice" else _GENE_BY_GENE_SAMPLES
        data = data.isel(sample=slice(0, first)).load()
        extra["samples"] = int(data.sizes["sample"])
    method = "genebygene" if case.source == "genebygene" else "reml"
    if case.role == "anchor":
        values = np.asarray(data["expression"].values, dtype=np.float64)
        script = _GENE_BY_GENE_R if method == "genebygene" else _WEIGHTS_R
        seconds = _seconds_in_r(script, values, data["condition"].values)
        return {**extra, "timed_seconds": seconds}
    start = time.perf_counter()
    weights = de.array_weights(data, "~ condition", method=method, device=device)
    fit_start = time.perf_counter()
    de.fit(data, "~ condition", weights=weights, device=device)
    end = time.perf_counter()
    extra.update(
        timed_seconds=end - start,
        fit_seconds=end - fit_start,
        iterations=weights.attrs["iterations"],
    )
    return extra


def _block_in_r(store: str, r_samples: int) -> dict:
    """R's duplicateCorrelation + lmFit(block=) + eBayes on the first ``r_samples`` samples
    and :data:`_BLOCK_R_GENES` genes, timed inside R."""
    from ..store import open_cohort

    ds = open_cohort(store).isel(sample=slice(0, r_samples), gene=slice(0, _BLOCK_R_GENES))
    values = np.asarray(ds["expression"].values, dtype=np.float64)  # samples × genes
    measured = _seconds_in_r(_BLOCK_R, values, ds["condition"].values)
    return {
        "timed_seconds": measured * _n_genes(store) / values.shape[1],
        "measured_seconds": measured,
        "extrapolated_from": f"{values.shape[1]} genes on {values.shape[0]} samples",
    }


def _voom_in_r(store: str, r_samples: int, script: str) -> dict:
    """R's limma-voom (or edgeR's voomLmFit, or its QL pipeline) on the first ``r_samples``
    samples, timed inside R."""
    from ..store import open_cohort

    ds = open_cohort(store).isel(sample=slice(0, r_samples))
    counts = np.asarray(ds["expression"].values, dtype=np.float64)  # samples × genes
    seconds = _seconds_in_r(script, counts, ds["condition"].values)
    return {
        "timed_seconds": seconds,
        "samples": counts.shape[0],
        "extrapolated_seconds": seconds * _n_samples(store) / counts.shape[0],
    }


def _seconds_in_r(
    script_text: str, values: np.ndarray, labels: Any, sets: list[np.ndarray] | None = None
) -> float:
    """Run an R script on ``values`` (samples × genes, float64) and the samples' ``labels``
    (and gene ``sets``: positions, one set a line, 1-based); it prints the seconds it timed
    itself."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        matrix = Path(folder) / "values.bin"
        values.tofile(matrix)  # R reads it column-major: genes × samples
        names = Path(folder) / "labels.txt"
        names.write_text("\n".join(map(str, labels)) + "\n")
        script = Path(folder) / "timed.R"
        script.write_text(script_text)
        shape = [str(values.shape[0]), str(values.shape[1])]
        more = []
        if sets is not None:
            members = Path(folder) / "sets.txt"
            members.write_text("".join(" ".join(map(str, m + 1)) + "\n" for m in sets))
            more.append(str(members))
        done = subprocess.run(
            ["Rscript", str(script), str(matrix), *shape, str(names), *more],
            capture_output=True,
            text=True,
            check=True,
        )
    return float(done.stdout.split()[0])


def _on_counts(case: Case) -> bool:
    """Whether the case runs on the counts store (the voom suite, ComBat-seq)."""
    return case.suite == "voom" or case.name.startswith(("combat_seq", "sva_seq"))


def _counts_store(store: Path, out: Path) -> Path:
    """The voom suite's counts: the cohort itself when it holds counts, else a simulated
    negative-binomial cohort of the same shape (made once, beside the report)."""
    from ..store import open_cohort

    cohort = open_cohort(store)
    if cohort.attrs.get("scale") == "counts":
        return store
    n_samples, n_genes = cohort.sizes["sample"], cohort.sizes["gene"]
    counts = out / f"counts_{n_samples}x{n_genes}.zarr"
    if not (counts / "zarr.json").exists() or _n_samples(str(counts)) != n_samples:
        from ..simulate import simulate

        simulate(
            counts,
            n_samples,
            n_genes,
            n_de=0.05,
            distribution="negbinom",
            seed=0,
            progress=False,
            overwrite=True,
        )
    return counts


def _gene_ids(store: str) -> list[str]:
    from ..store import open_cohort

    return [str(g) for g in open_cohort(store)["gene"].values]


def _n_genes(store: str) -> int:
    return len(_gene_ids(store))


def _n_samples(store: str) -> int:
    from ..store import open_cohort

    return int(open_cohort(store).sizes["sample"])


def machine_description(device: str) -> dict:
    """Where the figures come from: host, CPU model, cores, memory, Python, the device."""
    cpu_model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = (
        os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    )
    from .._backend import device_name

    return {
        "node": platform.node(),
        "cpu": cpu_model,
        "cpus": os.cpu_count(),
        "memory_gb": round(memory / 1e9, 1),
        "python": platform.python_version(),
        "device": device_name(device),
    }


def _run_in_process(case: Case, args: argparse.Namespace, device: str) -> dict:
    """The case in fresh processes (``args.repeats`` of them for cohortex's cases): the median
    run, every run's seconds, the largest peak RSS."""
    command = [
        sys.executable,
        "-m",
        "cohortex.app.bench",
        "--case",
        f"{case.suite}:{case.name}",
        "--store",
        str(args.counts_store if _on_counts(case) else args.store),
        "--r-samples",
        str(args.r_samples),
        "--device",
        device,
        "--scratch",
        str(args.scratch),
        "--scipy-genes",
        str(args.scipy_genes),
        "--tsne-subset",
        str(args.tsne_subset),
    ]
    runs = []
    for _ in range(args.repeats if case.role == "cohortex" else 1):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            failure = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
            return {"error": failure}
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    runs.sort(key=lambda r: r["seconds"])
    row = dict(runs[len(runs) // 2])
    row["peak_rss_bytes"] = max(r["peak_rss_bytes"] for r in runs)
    if len(runs) > 1:
        row["runs"] = [r["seconds"] for r in runs]
    return row


def run_bench(
    store: Path,
    out: Path,
    *,
    suites: tuple[str, ...] = SUITES,
    devices: tuple[str, ...] = ("cpu",),
    scipy_genes: int = 500,
    repeats: int = 1,
    skip: frozenset[str] = frozenset(),
    tsne_subset: int = 5000,
    r_samples: int = 2000,
    progress: bool = True,
    name: str = "bench",
) -> dict:
    """Run the suite on ``store``; write ``bench.json`` and ``bench.md`` into ``out``.

    Parameters
    ----------
    store : path
        A cohort store with a ``condition`` holding ``tumor`` and ``normal`` (as simulated).
    out : path
        Folder for the report (and a scratch file of principal components).
    suites : tuple of str
        Any of :data:`SUITES`.
    devices : tuple of {"cpu", "gpu"}
    scipy_genes : int
        Genes given to scipy (it is extrapolated to the whole width, and says so).
    repeats : int
        Runs of each cohortex case, each in a fresh process (the median is reported).
    skip : set of str
        Case names to leave out (``"scanpy"``, ``"scipy"`` …).
    tsne_subset : int
        Samples given to scikit-learn's t-SNE.
    r_samples : int
        Samples given to R's limma-voom and block fit (and to cohortex beside them).
    progress : bool
        Print each case as it finishes.
    name : str
        Stem of the report files (``NAME.json``, ``NAME.md``).

    Returns
    -------
    dict
        The report written to ``bench.json``: machine, rows, and the Markdown table.
    """
    out.mkdir(parents=True, exist_ok=True)
    args = argparse.Namespace(
        store=store,
        scratch=out,
        scipy_genes=scipy_genes,
        repeats=repeats,
        tsne_subset=tsne_subset,
        r_samples=r_samples,
        counts_store=_counts_store(store, out) if {"voom", "batch"} & set(suites) else store,
    )
    from ..simulate import simulate

    for warm, distribution in (("cohort.zarr", "lognormal"), ("counts.zarr", "negbinom")):
        path = out / "warm-up" / warm
        if distribution == "negbinom" and not {"voom", "batch"} & set(suites):
            continue
        if not (path / "zarr.json").exists() or _n_genes(str(path)) != _WARM_GENES:
            simulate(
                path,
                600,
                _WARM_GENES,
                n_de=0.05,
                distribution=distribution,
                seed=1,
                progress=False,
                overwrite=True,
            )
    n_samples, n_genes = _n_samples(str(store)), _n_genes(str(store))
    matrix_bytes = n_samples * n_genes * 4
    rows: list[dict] = []
    for device in devices:
        for case in _CASES:
            if case.suite != "limits" and case.suite not in suites:
                continue
            if device == "gpu" and not case.gpu:
                continue
            if (device == "cpu" and case.name in _GPU_ONLY) or case.name in skip:
                continue
            row: dict[str, Any] = {"suite": case.suite, "case": case.name, "device": device}
            row.update(role=case.role, source=case.source)
            if not _installed(case.module):
                row["skipped"] = f"{case.module} is not installed"
            else:
                row.update(_run_in_process(case, args, device))
            rows.append(row)
            if progress:
                shown = row.get("seconds")
                status = f"{shown:9.2f} s" if shown is not None else row.get("skipped", "")
                status = status or f"failed: {row.get('error')}"
                print(f"{device:4s} {case.suite:9s} {case.name:18s} {status}", flush=True)
    _add_ratios(rows, matrix_bytes)
    report: dict[str, Any] = {
        "machine": machine_description(devices[-1]),
        "shape": [n_samples, n_genes],
        "rows": rows,
        "agreement": _agreement(out, suites, devices),
    }
    markdown = _markdown(report)
    report["markdown"] = markdown
    (out / f"{name}.json").write_text(json.dumps(report, indent=2))
    (out / f"{name}.md").write_text(markdown)
    return report


def _agreement(out: Path, suites: tuple[str, ...], devices: tuple[str, ...]) -> dict[str, float]:
    """Largest relative difference of cohortex's p-values from scipy's, per suite and case."""
    found = {}
    for suite in ("de", "wilcoxon", "paired"):
        reference_file = out / f"{suite}_scipy_p.npy"
        if suite not in suites or not reference_file.exists():
            continue
        reference = np.load(reference_file)
        for device in devices:
            for case in ("cohortex_memory", "cohortex_zarr"):
                mine_file = out / f"{suite}_{case}_{device}_p.npy"
                if mine_file.exists():
                    mine = np.load(mine_file)[: len(reference)]
                    usable = (reference > 0) & (mine > 0)
                    ratio = mine[usable] / reference[usable]
                    found[f"{suite} {case} {device}"] = float(np.max(np.abs(ratio - 1)))
    return found


def _add_ratios(rows: list[dict], matrix_bytes: int) -> None:
    """GB/s, fraction of the limit and speed-ups, each against its own device and source."""
    limits = {
        (r["device"], r["case"]): r["seconds"]
        for r in rows
        if r["role"] == "limit" and "seconds" in r
    }
    mine = {
        (r["device"], r["suite"], r["source"]): r["seconds"]
        for r in rows
        if r["role"] == "cohortex" and "seconds" in r and not r["case"].endswith("_hvg")
    }
    by_name = {
        (r["device"], r["suite"], r["case"]): r["seconds"]
        for r in rows
        if r["role"] == "cohortex" and "seconds" in r
    }
    against = {(c.suite, c.name): c.against for c in _CASES if c.against}
    # training runs a different number of epochs in each case: compare samples per second
    rates = {
        (r["device"], r["suite"]): r["samples_trained"] / r["seconds"]
        for r in rows
        if r["role"] == "cohortex" and "seconds" in r and "samples_trained" in r
    }
    for r in rows:
        if "seconds" not in r:
            continue
        streaming = r["source"] in ("memory", "zarr") and r["suite"] != "ae"
        if streaming:
            r["gbps"] = matrix_bytes / r["seconds"] / 1e9
        limit = limits.get((r["device"], "memory_pass" if r["source"] == "memory" else "zarr_read"))
        if limit is not None and r["role"] == "cohortex" and streaming:
            r["fraction_of_limit"] = limit / r["seconds"]
        if r["role"] == "anchor" and "samples_trained" in r:
            rate = rates.get((r["device"], r["suite"]))
            if rate is not None:
                r["speedup"] = rate / (r["samples_trained"] / r["seconds"])
        elif r["role"] == "anchor":
            if (r["suite"], r["case"]) in against:
                reference = by_name.get((r["device"], r["suite"], against[r["suite"], r["case"]]))
            else:
                reference = mine.get((r["device"], r["suite"], r["source"]))
            if reference is None:  # anchors in memory vs cohortex from the store (pca, ae)
                reference = mine.get((r["device"], r["suite"], "zarr"))
            if reference is not None:
                r["speedup"] = r["seconds"] / reference
        if "samples_trained" in r:
            r["samples_per_second"] = r["samples_trained"] / r["seconds"]


def _markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [
        f"cohortex bench, {report['shape'][0]} × {report['shape'][1]} float32 on "
        f"{machine['node']} ({machine['cpu']}, {machine['cpus']} CPUs, "
        f"{machine['memory_gb']} GB; device: {machine['device']}).",
        "",
        "| device | suite | case | seconds | GB/s | fraction of limit | peak RSS GB | "
        "cohortex speed-up | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(value: Any, form: str) -> str:
        return format(value, form) if value is not None else ""

    for r in report["rows"]:
        note = r.get("skipped") or r.get("error") or ""
        if "extrapolated_from_genes" in r:
            note = (
                f"extrapolated from {r['extrapolated_from_genes']} genes "
                f"({r['measured_seconds']:.1f} s)"
            )
        if "samples_per_second" in r:
            note = f"{r['samples_per_second']:.0f} samples/s"
            if "epoch_samples_per_second" in r:
                note += f" (whole fit), {r['epoch_samples_per_second']:.0f} per epoch"
        if r.get("method"):
            note = r["method"]
        if "samples" in r:
            note = f"on {r['samples']} samples"
        if "extrapolated_from" in r:
            note = f"**extrapolated** from {r['extrapolated_from']} ({r['measured_seconds']:.1f} s)"
        if "extrapolated_seconds" in r:
            note += f"; {r['extrapolated_seconds']:.0f} s **extrapolated** to all samples"
        if "fit_seconds" in r:
            note = f"the fit alone {r['fit_seconds']:.2f} s"
        if "genes_losing_df" in r:
            note += (
                "; " if note else ""
            ) + f"exact zeros cut the df of {r['genes_losing_df']} genes"
        if "selection_seconds" in r:
            note = (
                f"selection {r['selection_seconds']:.2f} s, reading "
                f"{r['reading_seconds']:.2f} s, fitting {r['fitting_seconds']:.2f} s"
            )
        if "auroc" in r:
            note = (note + "; " if note else "") + f"AUROC {r['auroc']:.3f}"
        if r.get("runs"):
            note += ("; " if note else "") + f"median of {', '.join(f'{t:.2f}' for t in r['runs'])}"
        if "startup_seconds" in r:
            note += f" (start-up {r['startup_seconds']:.2f} s)"
        rss = r.get("peak_rss_bytes")
        lines.append(
            f"| {r['device']} | {r['suite']} | {r['case']} | {cell(r.get('seconds'), '.2f')} | "
            f"{cell(r.get('gbps'), '.2f')} | {cell(r.get('fraction_of_limit'), '.2f')} | "
            f"{cell(rss / 1e9 if rss else None, '.2f')} | "
            f"{cell(r.get('speedup'), '.1f')}{'×' if 'speedup' in r else ''} | {note} |"
        )
    if report.get("agreement"):
        lines.append("")
    for label, difference in report.get("agreement", {}).items():
        lines.append(f"- {label}: p-values within {difference:.1e} (relative) of scipy's")
    return "\n".join(lines) + "\n"


def script(
    suites: tuple[str, ...],
    name: str,
    description: str,
    scipy_genes: int | None,
    kind: str = "untied",
    samples: int = 50_000,
) -> None:
    """The command line of a script in ``benchmarks/``: one or more suites of this harness.

    Options: ``--samples``/``--genes`` (of the simulated cohort; ``--kind tied`` simulates
    negative-binomial counts at a library size of 2e5, many ties; ``counts`` the same at 1e7;
    ``untied`` log-normal values; default ``kind``), ``--store`` (use this
    store instead), ``--repeats``, ``--skip`` (case names), ``--scipy-genes`` (default: all
    genes when ``scipy_genes`` is None), ``--tsne-subset``, ``--r-samples``, ``--out``.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--samples", type=int, default=samples)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--kind", choices=("untied", "tied", "counts"), default=kind)
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip", default="", help="case names to leave out, comma-separated")
    parser.add_argument("--scipy-genes", type=int, default=scipy_genes)
    parser.add_argument("--tsne-subset", type=int, default=5000)
    parser.add_argument("--r-samples", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks") / "out")
    args = parser.parse_args()
    store = args.store
    if store is None:
        from ..simulate import simulate

        store = args.out / f"cohort_{args.kind}_{args.samples}x{args.genes}.zarr"
        if not (store / "zarr.json").exists():
            print(f"simulating {store} ...", flush=True)
            simulate(
                store,
                args.samples,
                args.genes,
                distribution="lognormal" if args.kind == "untied" else "negbinom",
                library_size=2e5 if args.kind == "tied" else 1e7,
                n_de=0.05,
                seed=0,
                progress=False,
            )
    report = run_bench(
        store,
        args.out,
        suites=suites,
        repeats=args.repeats,
        skip=frozenset(filter(None, args.skip.split(","))),
        scipy_genes=args.scipy_genes or _n_genes(str(store)),
        tsne_subset=args.tsne_subset,
        r_samples=args.r_samples,
        name=name,
    )
    print("\n" + report["markdown"])


def _main() -> None:
    """Entry of one case's own process: print its JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--scipy-genes", type=int, default=500)
    parser.add_argument("--tsne-subset", type=int, default=5000)
    parser.add_argument("--r-samples", type=int, default=2000)
    args = parser.parse_args()
    suite, name = args.case.split(":")
    case = next(c for c in _CASES if c.suite == suite and c.name == name)
    # warm-up on a small store: numba's first call of a process loads (or compiles) its
    # machine code, and scanpy's numba kernels do the same; the timed run is the second call
    warm = args.scratch / "warm-up"
    warm_store = warm / ("counts.zarr" if _on_counts(case) else "cohort.zarr")
    start = time.perf_counter()
    _time_case(case, str(warm_store), args.device, warm, args.scipy_genes, 500, 200)
    startup = time.perf_counter() - start
    row = _time_case(
        case,
        args.store,
        args.device,
        args.scratch,
        args.scipy_genes,
        args.tsne_subset,
        args.r_samples,
    )
    row["peak_rss_bytes"] = peak_rss_bytes()
    row["startup_seconds"] = startup
    print(json.dumps(row))


if __name__ == "__main__":
    _main()
