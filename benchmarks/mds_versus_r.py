"""cohortex's ``mds`` next to limma's ``plotMDS`` (3.54), the view every limma and edgeR user
takes of the samples, on the same matrix in the same run: seconds, peak memory, and how
closely the coordinates (up to sign) agree.

Data: ``--genes`` log-scale genes in ``--samples`` samples of three groups (each shifting 200
genes by 1) and two hidden batches (a quarter of the genes by N(0, 0.5)). Both tools run
limma's default (pairwise leading log-fold-change distances over the top 500 genes) and the
common-genes variant.

Usage::

    python benchmarks/mds_versus_r.py [--genes 20000] [--samples 100 300]

Writes ``mds_versus_r.json`` to ``--out`` and prints a Markdown table.
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
import xarray as xr
from _versus_r import log_cohort, require_rscript, run_r

from cohortex import mds

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(limma))
x <- as.matrix(read.csv(args[1], row.names = 1, check.names = FALSE))
seconds <- c()
for (selection in c("pairwise", "common")) {
  t0 <- proc.time()[3]
  m <- plotMDS(x, gene.selection = selection, plot = FALSE)
  seconds[selection] <- proc.time()[3] - t0
  lambda <- pmax(m$eigen.values, 0)
  coordinates <- sapply(1:2, function(i) m$eigen.vectors[, i] * sqrt(lambda[i]))
  write.csv(coordinates, file.path(args[2], paste0(selection, ".csv")), row.names = FALSE)
}
cat(seconds, gc()[2, 6] + gc()[1, 6], "\n")
"""
SELECTIONS = ("pairwise", "common")


def simulate(n_genes: int, n_samples: int, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (n_samples, n_genes)) * rng.uniform(0.3, 1.2, n_genes)
    x += rng.uniform(4.0, 10.0, n_genes)
    group = np.arange(n_samples) % 3
    for g in range(3):
        x[np.ix_(group == g, rng.choice(n_genes, 200, replace=False))] += 1.0
    batch = rng.permutation(np.arange(n_samples) % 2)
    shifted = rng.choice(n_genes, n_genes // 4, replace=False)
    x[np.ix_(batch == 1, shifted)] += rng.normal(0.0, 0.5, shifted.size)
    return log_cohort(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=20000)
    parser.add_argument("--samples", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)  # the results are written after the run
    require_rscript("r-bioc-limma")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for n in args.samples:
            cohort = simulate(args.genes, n)
            matrix_path = Path(work) / "x.csv"
            cohort["expression"].to_pandas().T.to_csv(matrix_path)
            output = run_r(R_SCRIPT, Path(work), str(matrix_path), work)
            r_seconds = dict(zip(SELECTIONS, map(float, output[:2]), strict=True))
            for selection in SELECTIONS:
                start = time.perf_counter()
                ours = mds(cohort, gene_selection=selection, device="cpu", progress=False)
                seconds = time.perf_counter() - start
                expected = pd.read_csv(Path(work) / f"{selection}.csv").to_numpy()
                got = ours["embedding"].values
                got = got * np.sign(np.sum(got * expected, axis=0))
                rows.append(
                    {
                        "samples": n,
                        "genes": args.genes,
                        "selection": selection,
                        "cohortex_s": seconds,
                        "limma_s": r_seconds[selection],
                        "r_peak_mb": float(output[2]),
                        "largest_difference": float(np.max(np.abs(got - expected))),
                    }
                )
                print(rows[-1], flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (args.out / "mds_versus_r.json").write_text(
        json.dumps({"rows": rows, "cohortex_peak_rss_mb": peak_mb}, indent=1)
    )
    print("| samples × genes | selection | cohortex (s) | limma (s) | ratio | largest difference |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['samples']} × {row['genes']:,} | {row['selection']} | "
            f"{row['cohortex_s']:.2f} | {row['limma_s']:.2f} | "
            f"{row['limma_s'] / row['cohortex_s']:.0f}× | {row['largest_difference']:.0e} |"
        )
    print(f"cohortex peak RSS {peak_mb:.0f} MB (the whole run, R's not included)")


if __name__ == "__main__":
    main()
