"""cohortex's ``fdr.ihw`` next to the Bioconductor package IHW's ``ihw()`` (SYMPHONY's linear
programmes), the tool a user would otherwise pick, on the same p-values in the same run:
seconds, peak memory, and how the results agree (λ per fold, rejections, weights).

Data: DESeq2 Wald tests by cohortex (``de.deseq``) of ``--genes`` simulated negative-binomial
genes in 8 samples (4 against 4, a tenth of the genes changed; ``negative_binomial_counts``),
the covariate their mean normalised count, as ``results(dds, filterFun = ihw)`` uses it; the
tests repeated with fresh noise up to each size in ``--tests``. Written with 17 digits.

Usage::

    python benchmarks/ihw_versus_r.py [--tests 20000 60000] [--repeats 3]

Writes ``ihw_versus_r.json`` to ``--out`` and prints a Markdown table.
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
from _versus_r import negative_binomial_counts, require_rscript, run_r

from cohortex import de, fdr

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(IHW))
tests <- read.csv(args[1], colClasses = "character")
p <- as.numeric(tests$p)
covariate <- as.numeric(tests$mean)
repeats <- as.integer(args[3])
seconds <- numeric(repeats)
for (r in seq_len(repeats)) {
  t0 <- proc.time()[3]
  result <- ihw(p, covariate, alpha = 0.1)
  seconds[r] <- proc.time()[3] - t0
}
write.csv(data.frame(adj = sprintf("%.17g", adj_pvalues(result)),
                     weight = sprintf("%.17g", weights(result))),
          file.path(args[2], "ihw.csv"), row.names = FALSE)
write.csv(data.frame(lambda = regularization_term(result)), file.path(args[2], "lambdas.csv"),
          row.names = FALSE)
cat(median(seconds), "\n")
"""


def deseq_tests(n_tests: int, genes_per_run: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """Wald p-values and mean counts of DESeq2 runs on simulated counts, (n_tests,) each."""
    p, mean = [], []
    seed = 0
    while sum(v.size for v in p) < n_tests:
        counts, samples = negative_binomial_counts(genes_per_run, 8, seed=seed)
        cohort = xr.Dataset(
            {
                "expression": (("sample", "gene"), counts),
                "condition": ("sample", samples["condition"].to_numpy()),
            },
            coords={"sample": samples.index, "gene": [f"g{j:05d}" for j in range(genes_per_run)]},
            attrs={"scale": "counts"},
        )
        result = de.deseq(cohort, "~ condition").isel(contrast=0)
        p.append(result["pvalue"].values)
        mean.append(result["mean_expression"].values)
        seed += 1
    return np.concatenate(p)[:n_tests], np.concatenate(mean)[:n_tests]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, nargs="+", default=[20000, 60000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    require_rscript("r-bioc-ihw")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for n in args.tests:
            p, mean = deseq_tests(n)
            pd.DataFrame({"p": p, "mean": mean}).to_csv(
                Path(work) / "tests.csv", index=False, float_format="%.17g"
            )
            r_seconds = float(
                run_r(R_SCRIPT, Path(work), str(Path(work) / "tests.csv"), work, str(args.repeats))[
                    0
                ]
            )
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                ours = fdr.ihw(p, mean, 0.1)
                times.append(time.perf_counter() - start)
            theirs = pd.read_csv(Path(work) / "ihw.csv")
            lambdas = pd.read_csv(Path(work) / "lambdas.csv")["lambda"].to_numpy()
            adjusted = theirs["adj"].to_numpy()
            present = ~np.isnan(p)
            rows.append(
                {
                    "tests": int(present.sum()),
                    "bins": ours.n_bins,
                    "cohortex_s": float(np.median(times)),
                    "r_s": r_seconds,
                    "same_lambdas": bool(np.array_equal(ours.fold_lambdas, lambdas)),
                    "rejections": ours.rejections,
                    "r_rejections": int(np.sum(adjusted <= 0.1)),
                    "bh_rejections": int(np.sum(fdr.adjust(p) <= 0.1)),
                    "largest_weight_difference": float(
                        np.nanmax(np.abs(ours.weights - theirs["weight"].to_numpy()))
                    ),
                    "decisions_differing": int(np.sum((ours.adjusted <= 0.1) != (adjusted <= 0.1))),
                }
            )
            print(rows[-1], flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (args.out / "ihw_versus_r.json").write_text(
        json.dumps({"rows": rows, "cohortex_peak_rss_mb": peak_mb}, indent=1)
    )
    print(
        "| tests (bins) | cohortex (s) | IHW (s) | IHW / cohortex | same λ | rejections "
        "(cohortex, IHW, BH) | largest weight difference | decisions differing |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['tests']:,} ({row['bins']}) | {row['cohortex_s']:.2f} | {row['r_s']:.2f} "
            f"| {row['r_s'] / row['cohortex_s']:.1f}× | {'yes' if row['same_lambdas'] else 'no'} "
            f"| {row['rejections']:,}, {row['r_rejections']:,}, {row['bh_rejections']:,} "
            f"| {row['largest_weight_difference']:.0e} | {row['decisions_differing']} |"
        )
    print(f"cohortex peak RSS {peak_mb:.0f} MB (the whole run, R's not included)")


if __name__ == "__main__":
    main()
