"""cohortex's edgeR quasi-likelihood tests with tximport's transcript lengths next to R's edgeR
(the tximport vignette's route: ``scaleOffset(DGEList(counts), normMat)``, ``estimateDisp``,
``glmQLFit``, ``glmQLFTest``) on the same counts in the same run: seconds of each (from the
counts and lengths to the p-values), cohortex's time without the lengths beside them (the cost
of an offset per count), and how closely they agree.

Data: ``deseq_versus_r.py --lengths``' counts and lengths (``_versus_r``): negative-binomial
genes around 200 reads, two conditions and two batches, a tenth of the genes changed, one
outlier in a thousand genes; average transcript lengths around 1,500, a tenth of the genes
switching isoforms between the conditions.

Usage::

    python benchmarks/edger_lengths_versus_r.py [--genes 20000] [--samples 12 48 200]
        [--repeats 3] [--out DIR]

Writes ``edger_lengths_versus_r.json`` to ``--out`` and prints a Markdown table.
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
from _versus_r import negative_binomial_counts, require_rscript, run_r, transcript_lengths

from cohortex import de, fdr

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(edgeR))
counts <- as.matrix(read.csv(args[1], row.names = 1))
samples <- read.csv(args[2], row.names = 1)
lengths <- as.matrix(read.csv(args[3], row.names = 1))
design <- model.matrix(~ batch + condition, samples)
repeats <- as.integer(args[5])
seconds <- numeric(repeats)
for (r in seq_len(repeats)) {
  t0 <- proc.time()[3]
  norm_mat <- lengths / exp(rowMeans(log(lengths)))
  norm_cts <- counts / norm_mat
  eff_lib <- calcNormFactors(norm_cts) * colSums(norm_cts)
  y <- scaleOffset(DGEList(counts), log(sweep(norm_mat, 2, eff_lib, "*")))
  y <- estimateDisp(y, design)
  res <- glmQLFTest(glmQLFit(y, design), coef = ncol(design))
  seconds[r] <- proc.time()[3] - t0
}
write.csv(data.frame(lfc = res$table$logFC, F = res$table$F, pvalue = res$table$PValue),
          args[4], row.names = FALSE)
cat(median(seconds), "\n")
"""


def simulate(n_genes: int, n_samples: int) -> tuple[xr.Dataset, pd.DataFrame]:
    """deseq_versus_r.py's counts and lengths as a cohort (``length(sample, gene)``), and its
    samples."""
    counts, samples = negative_binomial_counts(n_genes, n_samples)
    lengths = transcript_lengths(samples["condition"].to_numpy(), n_genes)
    ds = xr.Dataset(
        {
            "expression": (("sample", "gene"), counts),
            "length": (("sample", "gene"), lengths),
            "condition": ("sample", samples["condition"].to_numpy()),
            "batch": ("sample", samples["batch"].to_numpy()),
        },
        coords={"sample": list(samples.index), "gene": [f"g{j}" for j in range(n_genes)]},
        attrs={"scale": "counts"},
    )
    return ds, samples


def cohortex_run(ds: xr.Dataset, repeats: int, lengths: str | None) -> tuple[xr.Dataset, float]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = de.glm_ql(ds, "~ batch + condition", contrasts=["condition[T.b]"], lengths=lengths)
        seconds.append(time.perf_counter() - start)
    return result, float(np.median(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=20000)
    parser.add_argument("--samples", type=int, nargs="+", default=[12, 48, 200])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    require_rscript("r-bioc-edger")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        cohortex_run(simulate(300, 8)[0], 1, "auto")  # numba's compiled cache
        for n in args.samples:
            ds, samples = simulate(args.genes, n)
            paths = {name: Path(work) / f"{name}.csv" for name in ("counts", "samples", "lengths")}
            for name in ("expression", "length"):
                table = ds[name].to_pandas().T
                table.to_csv(paths["counts" if name == "expression" else "lengths"])
            samples.to_csv(paths["samples"])
            found = Path(work) / "r.csv"
            output = run_r(
                R_SCRIPT,
                Path(work),
                *(str(paths[name]) for name in ("counts", "samples", "lengths")),
                str(found),
                str(args.repeats),
            )
            expected = pd.read_csv(found)
            result, seconds = cohortex_run(ds, args.repeats, "auto")
            _, plain_seconds = cohortex_run(ds, args.repeats, None)
            gaps = {}
            for ours, theirs in (("coefficient", "lfc"), ("statistic", "F"), ("pvalue", "pvalue")):
                got = result[ours].values[0]
                want = expected[theirs].to_numpy(dtype=float)
                both = ~np.isnan(got) & ~np.isnan(want)
                scale = np.maximum(np.abs(want[both]), 1e-300)
                gaps[ours] = float(np.max(np.abs(got[both] - want[both]) / scale))
            ours_called = np.nan_to_num(result["padj"].values[0], nan=1.0) < 0.05
            theirs_padj = fdr.adjust(expected["pvalue"].to_numpy(dtype=float), "bh")
            calls = ours_called != (np.nan_to_num(theirs_padj, nan=1.0) < 0.05)
            rows.append(
                {
                    "samples": n,
                    "genes": args.genes,
                    "cohortex_s": seconds,
                    "cohortex_plain_s": plain_seconds,
                    "edger_s": float(output[0]),
                    "largest_relative_difference": gaps,
                    "different_calls": int(calls.sum()),
                    "discoveries": int(ours_called.sum()),
                }
            )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (args.out / "edger_lengths_versus_r.json").write_text(
        json.dumps({"rows": rows, "cohortex_peak_rss_mb": peak_mb}, indent=1)
    )
    print(
        "| samples × genes | cohortex with lengths (s) | edgeR (s) | edgeR / cohortex | "
        "cohortex without (s) | largest difference (LFC, F, p) | calls at FDR 0.05 that differ |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        gap = row["largest_relative_difference"]
        print(
            f"| {row['samples']} × {row['genes']:,} | {row['cohortex_s']:.1f} | "
            f"{row['edger_s']:.1f} | {row['edger_s'] / row['cohortex_s']:.1f}× | "
            f"{row['cohortex_plain_s']:.1f} | {gap['coefficient']:.0e}, {gap['statistic']:.0e}, "
            f"{gap['pvalue']:.0e} | {row['different_calls']} of {row['discoveries']:,} |"
        )
    print(f"cohortex peak RSS {peak_mb:.0f} MB (the whole run, R's not included)")


if __name__ == "__main__":
    main()
