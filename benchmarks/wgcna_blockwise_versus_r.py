"""cohortex's ``network.blockwise_modules`` next to R's WGCNA (1.72) ``blockwiseModules``, the
tool a user would otherwise pick for more genes than one TOM holds, on the same matrix in the
same run: seconds, peak memory, and whether the modules agree.

Data: ``--genes`` log-scale genes in ``--samples`` samples from cohortex's simulator, with a
tenth of the genes in modules of 100 (each following a hidden factor through its own sigmoid).
Both tools run with ``blockwiseModules``' defaults (power 6, blocks of at most 5,000 genes); R
with WGCNA's threads enabled (2) on R's reference BLAS (Debian's default).

The pre-clustering starts from R's own random draw (``set.seed(54321); sample(nGenes)``), but
R refreshes the wrong centres after a move (see docs/from_limma.md), so the blocks may differ;
cohortex is therefore run twice: from its own blocks (timed, and the modules compared with R's
by the adjusted Rand index) and from R's blocks (the modules should then be R's gene for
gene).

``--missing 0.05`` leaves that share of the values out at random: both tools then take
``blockwiseModules``' defaults for missing values (the pre-clustering of the scaled genes
imputed by impute.knn, each pair correlated over the samples both have, each module's genes
imputed for its eigengene).

Usage::

    python benchmarks/wgcna_blockwise_versus_r.py [--samples 200] [--genes 10000 20000]
        [--missing 0.05]

Writes ``wgcna_blockwise_versus_r.json`` (``wgcna_blockwise_versus_r_missing.json`` with
``--missing``) to ``--out`` and prints a Markdown table.
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
from sklearn.metrics import adjusted_rand_score

from cohortex import network
from cohortex.simulate import simulate_array

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(WGCNA))
invisible(capture.output(enableWGCNAThreads(2)))
x <- as.matrix(read.csv(args[1], row.names = 1, check.names = FALSE))
t0 <- proc.time()[3]
net <- blockwiseModules(x, numericLabels = TRUE, verbose = 0)
seconds <- proc.time()[3] - t0
write.csv(data.frame(block = net$blocks, unmerged = net$unmergedColors, merged = net$colors),
          file.path(args[2], "labels.csv"), row.names = FALSE)
cat(seconds, gc()[2, 6] + gc()[1, 6], "\n")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--genes", type=int, nargs="+", default=[10000, 20000])
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--missing", type=float, default=0.0, help="share of values left out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)  # the results are written after the run
    require_rscript("r-cran-wgcna")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for n_genes in args.genes:
            x, _, _ = simulate_array(
                args.samples, n_genes, n_de=0, modules=n_genes // 1000, module_size=100, seed=1
            )
            values = np.asarray(x, dtype=np.float64)
            if args.missing:
                values[np.random.default_rng(2).random(values.shape) < args.missing] = np.nan
            cohort = log_cohort(values)
            matrix_path = Path(work) / "x.csv"
            cohort["expression"].to_pandas().to_csv(matrix_path, float_format="%.17g")
            output = run_r(R_SCRIPT, Path(work), str(matrix_path), work)
            r_seconds, r_peak_mb = float(output[-2]), float(output[-1])
            labels = pd.read_csv(Path(work) / "labels.csv")
            start = time.perf_counter()
            ours = network.blockwise_modules(cohort, progress=False)
            seconds = time.perf_counter() - start
            given = network.blockwise_modules(
                cohort, blocks=labels["block"].to_numpy(), progress=False
            )
            rows.append(
                {
                    "samples": args.samples,
                    "genes": n_genes,
                    "blocks": int(ours.attrs["n_blocks"]),
                    "r_blocks": int(labels["block"].max()),
                    "same_blocks": bool(np.array_equal(ours["block"].values, labels["block"])),
                    "missing": args.missing,
                    "modules": int(ours.attrs["n_modules"]),
                    "r_modules": int(labels["merged"].max()),
                    "cohortex_s": seconds,
                    "r_s": r_seconds,
                    "r_peak_mb": r_peak_mb,
                    "same_modules_from_r_blocks": bool(
                        np.array_equal(given["label"].values, labels["merged"])
                        and np.array_equal(given["unmerged_label"].values, labels["unmerged"])
                    ),
                    "ari_own_blocks_vs_r": float(
                        adjusted_rand_score(ours["label"].values, labels["merged"])
                    ),
                }
            )
            print(rows[-1], flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    name = (
        "wgcna_blockwise_versus_r_missing.json" if args.missing else "wgcna_blockwise_versus_r.json"
    )
    (args.out / name).write_text(
        json.dumps({"rows": rows, "cohortex_peak_rss_mb": peak_mb}, indent=1)
    )
    print(
        "| samples × genes | blocks (R) | R's blocks | modules (R) | cohortex (s) | WGCNA (s) | "
        "ratio | R's modules from R's blocks | adjusted Rand index, own blocks |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['samples']} × {row['genes']:,} | {row['blocks']} ({row['r_blocks']}) | "
            f"{'yes' if row['same_blocks'] else 'no'} | "
            f"{row['modules']} ({row['r_modules']}) | {row['cohortex_s']:.1f} | "
            f"{row['r_s']:.1f} | {row['r_s'] / row['cohortex_s']:.0f}× | "
            f"{'yes' if row['same_modules_from_r_blocks'] else 'no'} | "
            f"{row['ari_own_blocks_vs_r']:.2f} |"
        )
    print(f"cohortex peak RSS {peak_mb:.0f} MB (the whole run, R's not included)")


if __name__ == "__main__":
    main()
