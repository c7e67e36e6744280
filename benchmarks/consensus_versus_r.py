"""cohortex's ``consensus_clusters`` next to R's ConsensusClusterPlus (1.62), the tool a user
would otherwise pick, on the same matrix with the same seed in the same run: seconds, peak
memory, and how closely the consensus matrices and clusters agree.

Data: ``--genes`` log-scale genes in ``--samples`` samples of four subtypes (unequal sizes;
each raises or lowers 100 genes by 1), prepared as the package's vignette prepares them (the
5,000 genes of largest MAD, median-centred); both tools run their defaults (hierarchical
clustering, Pearson distance, average linkage) for k = 2 … 6 on ``--reps`` subsamples of 80%
of the samples, both with seed 1 (cohortex draws R's subsamples itself);
``--cluster-algorithm pam`` partitions each subsample around medoids instead (``clusterAlg =
"pam"``), ``km`` clusters it by R's kmeans (from the starts R draws between subsamples).

Usage::

    python benchmarks/consensus_versus_r.py [--genes 10000] [--samples 200 500] [--reps 1000]
        [--cluster-algorithm hc|pam|km]

Writes ``consensus_versus_r_<algorithm>.json`` to ``--out`` and prints a Markdown table.
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

from cohortex import consensus_clusters

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(ConsensusClusterPlus))
x <- as.matrix(read.csv(args[1], row.names = 1, check.names = FALSE))
reps <- as.integer(args[3])
algorithm <- args[4]
t0 <- proc.time()[3]
mads <- apply(x, 1, mad)
d <- x[rev(order(mads))[1:5000], ]
d <- sweep(d, 1, apply(d, 1, median, na.rm = TRUE))
pdf(NULL)
res <- suppressMessages(ConsensusClusterPlus(d, maxK = 6, reps = reps, pItem = 0.8, seed = 1,
                                             clusterAlg = algorithm))
seconds <- proc.time()[3] - t0
invisible(dev.off())
for (k in 2:6) {
  write.csv(res[[k]]$consensusMatrix, file.path(args[2], paste0("k", k, ".csv")),
            row.names = FALSE)
}
classes <- sapply(2:6, function(k) res[[k]]$consensusClass)
write.csv(classes, file.path(args[2], "classes.csv"), row.names = FALSE)
cat(seconds, gc()[2, 6] + gc()[1, 6], "\n")
"""


def simulate(n_genes: int, n_samples: int, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (n_samples, n_genes)) * rng.uniform(0.3, 1.2, n_genes)
    x += rng.uniform(4.0, 10.0, n_genes)
    subtype = rng.choice(4, n_samples, p=[0.4, 0.3, 0.2, 0.1])
    for s in range(4):
        genes = rng.choice(n_genes, 100, replace=False)
        x[np.ix_(subtype == s, genes)] += rng.choice([-1.0, 1.0], 100)
    return log_cohort(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=10000)
    parser.add_argument("--samples", type=int, nargs="+", default=[200, 500])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--cluster-algorithm", choices=("hc", "pam", "km"), default="hc")
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)  # the results are written after the run
    require_rscript("r-bioc-consensusclusterplus")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for n in args.samples:
            cohort = simulate(args.genes, n)
            matrix_path = Path(work) / "x.csv"
            cohort["expression"].to_pandas().T.to_csv(matrix_path)
            output = run_r(
                R_SCRIPT, Path(work), str(matrix_path), work, str(args.reps), args.cluster_algorithm
            )
            r_seconds, r_peak_mb = float(output[0]), float(output[1])
            start = time.perf_counter()
            ours = consensus_clusters(
                cohort,
                max_k=6,
                reps=args.reps,
                seed=1,
                genes=5000,
                cluster_algorithm=args.cluster_algorithm,
                progress=False,
            )
            seconds = time.perf_counter() - start
            largest = max(
                float(
                    np.max(
                        np.abs(
                            ours["consensus"].sel(k=k).values
                            - pd.read_csv(Path(work) / f"k{k}.csv").to_numpy()
                        )
                    )
                )
                for k in range(2, 7)
            )
            classes = pd.read_csv(Path(work) / "classes.csv").to_numpy()
            same = int(np.all(ours["consensus_class"].values == classes.T))
            rows.append(
                {
                    "samples": n,
                    "genes": args.genes,
                    "reps": args.reps,
                    "cluster_algorithm": args.cluster_algorithm,
                    "cohortex_s": seconds,
                    "r_s": r_seconds,
                    "r_peak_mb": r_peak_mb,
                    "largest_consensus_difference": largest,
                    "same_clusters": same,
                }
            )
            print(rows[-1], flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (args.out / f"consensus_versus_r_{args.cluster_algorithm}.json").write_text(
        json.dumps({"rows": rows, "cohortex_peak_rss_mb": peak_mb}, indent=1)
    )
    print(
        "| samples × genes, reps | cohortex (s) | ConsensusClusterPlus (s) | ratio "
        "| largest consensus difference | same clusters (k = 2 … 6) |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['samples']} × {row['genes']:,}, {row['reps']:,} | {row['cohortex_s']:.1f} "
            f"| {row['r_s']:.1f} | {row['r_s'] / row['cohortex_s']:.0f}× | "
            f"{row['largest_consensus_difference']:.0e} | "
            f"{'yes' if row['same_clusters'] else 'no'} |"
        )
    print(f"cohortex peak RSS {peak_mb:.0f} MB (the whole run, R's not included)")


if __name__ == "__main__":
    main()
