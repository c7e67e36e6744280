"""cohortex's ``network.modules`` next to R's WGCNA (1.72), the tool a user would otherwise pick,
on the same matrix in the same run: seconds, peak memory, and how closely the modules,
eigengenes and kME agree.

Data: ``--genes`` log-scale genes in ``--samples`` samples from cohortex's simulator, with a
fifth of the genes in modules of 100 (each following a hidden factor through its own sigmoid).
Both tools run WGCNA's tutorial, step by step, at power 6: ``adjacency``, ``TOMsimilarity``,
``hclust(average)`` of 1 - TOM, ``cutreeDynamic(deepSplit = 2, pamRespectsDendro = FALSE,
minClusterSize = 30)``, ``mergeCloseModules(cutHeight = 0.25)``, ``moduleEigengenes`` and
``signedKME``; R with WGCNA's threads enabled (2) on R's reference BLAS (Debian's default).

``--missing 0.05`` leaves that share of the values out at random: both tools then take WGCNA's
defaults for missing values (each pair correlated over the samples both have, each module's
genes imputed by impute.knn for its eigengene, kME over each gene's samples).
``--correlation bicor`` (or ``spearman``) makes the adjacency's correlation the biweight
midcorrelation (Spearman's) in both (``adjacency(corFnc = "bicor")``, ``corOptions = list(use =
"p", method = "spearman")``; with missing values each pair's medians, or ranks, over the
samples it shares); merging, eigengenes and kME stay Pearson's, the defaults.

Usage::

    python benchmarks/wgcna_versus_r.py [--samples 200] [--genes 1000 2000 5000] [--missing 0.05]
        [--correlation bicor|spearman]

Writes ``wgcna_versus_r.json`` (``_missing`` and ``_bicor`` or ``_spearman`` added to the name
with those options) to ``--out`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _versus_r import log_cohort, require_rscript, run_r

from cohortex import network
from cohortex.simulate import simulate_array

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(WGCNA))
invisible(capture.output(enableWGCNAThreads(2)))
x <- as.matrix(read.csv(args[1], row.names = 1, check.names = FALSE))
t0 <- proc.time()[3]
options <- list(use = "p")
if (args[3] == "spearman") options$method <- "spearman"
adj <- adjacency(x, power = 6, corFnc = if (args[3] == "bicor") "bicor" else "cor",
                 corOptions = options)
diss <- 1 - TOMsimilarity(adj, verbose = 0)
tree <- hclust(as.dist(diss), method = "average")
dynamic <- cutreeDynamic(tree, distM = diss, deepSplit = 2, pamRespectsDendro = FALSE,
                         minClusterSize = 30, verbose = 0)
merged <- mergeCloseModules(x, dynamic, cutHeight = 0.25, verbose = 0)
mes <- moduleEigengenes(x, merged$colors)$eigengenes
kme <- signedKME(x, mes)
seconds <- proc.time()[3] - t0
write.csv(data.frame(dynamic = dynamic, merged = merged$colors), file.path(args[2], "labels.csv"),
          row.names = FALSE)
write.csv(mes, file.path(args[2], "eigengenes.csv"), row.names = FALSE)
write.csv(kme, file.path(args[2], "kme.csv"), row.names = FALSE)
cat(seconds, gc()[2, 6] + gc()[1, 6], "\n")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--genes", type=int, nargs="+", default=[1000, 2000, 5000])
    parser.add_argument("--missing", type=float, default=0.0, help="share of values left out")
    parser.add_argument(
        "--correlation", choices=("pearson", "bicor", "spearman"), default="pearson"
    )
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)  # the results are written after the run
    require_rscript("r-cran-wgcna")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for n_genes in args.genes:
            x, _, _ = simulate_array(
                args.samples, n_genes, n_de=0, modules=n_genes // 500, module_size=100, seed=1
            )
            values = np.asarray(x, dtype=np.float64)
            values[np.random.default_rng(2).random(values.shape) < args.missing] = np.nan
            cohort = log_cohort(values)
            matrix_path = Path(work) / "x.csv"
            cohort["expression"].to_pandas().to_csv(matrix_path, float_format="%.17g", na_rep="NA")
            output = run_r(R_SCRIPT, Path(work), str(matrix_path), work, args.correlation)
            r_seconds, r_peak_mb = float(output[-2]), float(output[-1])
            start = time.perf_counter()
            ours = network.modules(
                cohort, power=6, correlation_type=args.correlation, progress=False
            )
            seconds = time.perf_counter() - start
            labels = pd.read_csv(Path(work) / "labels.csv")
            same_cut = bool(np.all(ours["dynamic_label"].values == labels["dynamic"]))
            pairs = pd.crosstab(ours["label"].values, labels["merged"].to_numpy())
            same_modules = bool(
                (pairs > 0).sum(axis=1).eq(1).all() and (pairs > 0).sum(axis=0).eq(1).all()
            )
            eigengenes = pd.read_csv(Path(work) / "eigengenes.csv")
            kme = pd.read_csv(Path(work) / "kme.csv")
            largest_me = largest_kme = 0.0
            if same_modules:
                for module in ours["module"].values:
                    theirs = int(pairs.columns[pairs.loc[module].to_numpy().argmax()])
                    largest_me = max(
                        largest_me,
                        float(
                            np.max(
                                np.abs(
                                    ours["eigengene"].sel(module=module).values
                                    - eigengenes[f"ME{theirs}"]
                                )
                            )
                        ),
                    )
                    largest_kme = max(
                        largest_kme,
                        float(
                            np.max(
                                np.abs(ours["kme"].sel(module=module).values - kme[f"kME{theirs}"])
                            )
                        ),
                    )
            rows.append(
                {
                    "samples": args.samples,
                    "genes": n_genes,
                    "missing": args.missing,
                    "correlation": args.correlation,
                    "modules": int(ours.attrs["n_modules"]),
                    "cohortex_s": seconds,
                    "r_s": r_seconds,
                    "r_peak_mb": r_peak_mb,
                    "same_tree_cut": same_cut,
                    "same_modules": same_modules,
                    "largest_eigengene_difference": largest_me,
                    "largest_kme_difference": largest_kme,
                }
            )
            print(rows[-1], flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    name = "wgcna_versus_r" + ("_missing" if args.missing else "")
    name += ("" if args.correlation == "pearson" else f"_{args.correlation}") + ".json"
    (args.out / name).write_text(
        json.dumps({"rows": rows, "cohortex_peak_rss_mb": peak_mb}, indent=1)
    )
    print(
        "| samples × genes | modules | cohortex (s) | WGCNA (s) | ratio | same tree cut and "
        "modules | largest eigengene / kME difference |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        same = "yes" if row["same_tree_cut"] and row["same_modules"] else "no"
        print(
            f"| {row['samples']} × {row['genes']:,} | {row['modules']} | "
            f"{row['cohortex_s']:.1f} | {row['r_s']:.1f} | {row['r_s'] / row['cohortex_s']:.0f}× "
            f"| {same} | {row['largest_eigengene_difference']:.0e} / "
            f"{row['largest_kme_difference']:.0e} |"
        )
    print(f"cohortex peak RSS {peak_mb:.0f} MB (the whole run, R's not included)")


if __name__ == "__main__":
    main()
