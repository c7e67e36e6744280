"""cohortex's ``de.deseq`` next to R's DESeq2 (``DESeq`` + ``results``), the tool a user
would otherwise pick, on the same counts in the same run: seconds of each (from the counts
to the adjusted p-values), peak memory, and how closely they agree (the largest relative
difference of the dispersions, the log2 fold changes and the p-values, and the share of
genes within 1e-6).

Data: negative-binomial counts of ``--genes`` genes (means log-normal around 200 reads,
dispersions 0.02 + a trend 1/mean + gene noise), samples in two conditions of equal size
and two batches; 10% of the genes change by 2^N(0, 1); library sizes vary by 0.3 on the log
scale; one count in a thousand genes is made an outlier. With ``--lengths``, average
transcript lengths too (log-normal around 1,500 per gene, varying by 0.15 from sample to
sample, and by 0.5 more between the conditions for a tenth of the genes: a switch of
isoforms), taken as ``DESeqDataSetFromTximport``'s ``avgTxLength`` by both. With
``--fit-type local``, the dispersion trend is locfit's local fit in both.

Usage::

    python benchmarks/deseq_versus_r.py [--genes 20000] [--samples 12 48 200] [--repeats 1]
        [--lengths] [--fit-type parametric|local]

Writes ``deseq_versus_r.json`` to ``--out`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from _versus_r import negative_binomial_counts, transcript_lengths

from cohortex import de

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(DESeq2))
counts <- as.matrix(read.csv(args[1], row.names = 1))
storage.mode(counts) <- "integer"
samples <- read.csv(args[2], row.names = 1)
samples$condition <- factor(samples$condition)
samples$batch <- factor(samples$batch)
repeats <- as.integer(args[4])
fit_type <- args[5]
seconds <- numeric(repeats)
for (r in seq_len(repeats)) {
  t0 <- proc.time()[3]
  dds <- DESeqDataSetFromMatrix(counts, samples, ~ batch + condition)
  if (length(args) > 5) {  # as DESeqDataSetFromTximport
    assays(dds)[["avgTxLength"]] <- as.matrix(read.csv(args[6], row.names = 1))
  }
  dds <- DESeq(dds, fitType = fit_type, quiet = TRUE)
  res <- results(dds, name = "condition_b_vs_a")
  seconds[r] <- proc.time()[3] - t0
}
write.csv(data.frame(dispersion = mcols(dds)$dispersion, lfc = res$log2FoldChange,
                     pvalue = res$pvalue, padj = res$padj), args[3], row.names = FALSE)
cat(median(seconds), gc()[2, 6] + gc()[1, 6], "\n")
"""


def cohortex_run(
    counts: np.ndarray,
    samples: pd.DataFrame,
    repeats: int,
    lengths: np.ndarray | None = None,
    fit_type: str = "parametric",
) -> tuple[xr.Dataset, float]:
    ds = xr.Dataset(
        {
            "expression": (("sample", "gene"), counts),
            "condition": ("sample", samples["condition"].to_numpy()),
            "batch": ("sample", samples["batch"].to_numpy()),
        },
        coords={"sample": list(samples.index), "gene": [f"g{j}" for j in range(counts.shape[1])]},
        attrs={"scale": "counts"},
    )
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = de.deseq(
            ds,
            "~ batch + condition",
            contrasts=["condition[T.b]"],
            lengths=lengths,
            fit_type=fit_type,
        )
        seconds.append(time.perf_counter() - start)
    return result, float(np.median(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=20000)
    parser.add_argument("--samples", type=int, nargs="+", default=[12, 48, 200])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--lengths", action="store_true", help="average transcript lengths")
    parser.add_argument("--fit-type", choices=["parametric", "local"], default="parametric")
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)  # the results are written after the run
    if shutil.which("Rscript") is None:
        raise SystemExit("Rscript is needed (r-bioc-deseq2).")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        script = Path(work) / "deseq.R"
        script.write_text(R_SCRIPT)
        warm_counts, warm_samples = negative_binomial_counts(200, 8)
        warm_lengths = transcript_lengths(warm_samples["condition"].to_numpy(), 200)
        cohortex_run(
            warm_counts, warm_samples, 1, warm_lengths if args.lengths else None, args.fit_type
        )
        for n in args.samples:
            counts, samples = negative_binomial_counts(args.genes, n)
            counts_path, samples_path = Path(work) / "counts.csv", Path(work) / "samples.csv"
            found = Path(work) / "r.csv"
            pd.DataFrame(
                counts.T.astype(np.int64),
                index=[f"g{j}" for j in range(args.genes)],
                columns=samples.index,
            ).to_csv(counts_path)
            samples.to_csv(samples_path)
            lengths, extra = None, []
            if args.lengths:
                lengths = transcript_lengths(samples["condition"].to_numpy(), args.genes)
                lengths_path = Path(work) / "lengths.csv"
                pd.DataFrame(
                    lengths.T, index=[f"g{j}" for j in range(args.genes)], columns=samples.index
                ).to_csv(lengths_path)
                extra = [str(lengths_path)]
            output = subprocess.run(
                [
                    "Rscript",
                    str(script),
                    str(counts_path),
                    str(samples_path),
                    str(found),
                    str(args.repeats),
                    args.fit_type,
                    *extra,
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            r_seconds, r_peak_mb = float(output[0]), float(output[1])
            expected = pd.read_csv(found)
            result, seconds = cohortex_run(counts, samples, args.repeats, lengths, args.fit_type)
            ours = {
                "dispersion": result["dispersion"].values,
                "lfc": result["coefficient"].values[0],
                "pvalue": result["pvalue"].values[0],
                "padj": result["padj"].values[0],
            }
            gaps, within = {}, np.ones(args.genes, dtype=bool)
            within_4 = np.ones(args.genes, dtype=bool)
            for name, values in ours.items():
                theirs = expected[name].to_numpy(dtype=float)
                both = ~np.isnan(theirs) & ~np.isnan(values)
                rel = np.zeros(args.genes)
                rel[both] = np.abs(values[both] - theirs[both]) / np.maximum(
                    np.abs(theirs[both]), 1e-300
                )
                rel[np.isnan(theirs) != np.isnan(values)] = np.inf
                gaps[name] = float(rel.max())
                within &= rel <= 1e-6
                within_4 &= rel <= 1e-4
            calls = (np.nan_to_num(ours["padj"], nan=1.0) < 0.1) != (
                np.nan_to_num(expected["padj"].to_numpy(dtype=float), nan=1.0) < 0.1
            )
            rows.append(
                {
                    "samples": n,
                    "genes": args.genes,
                    "lengths": bool(args.lengths),
                    "fit_type": args.fit_type,
                    "cohortex_s": seconds,
                    "deseq2_s": r_seconds,
                    "deseq2_peak_mb": r_peak_mb,
                    "largest_relative_difference": gaps,
                    "share_within_1e-6": float(within.mean()),
                    "share_within_1e-4": float(within_4.mean()),
                    "discoveries": int((np.nan_to_num(ours["padj"], nan=1.0) < 0.1).sum()),
                    "different_calls": int(calls.sum()),
                }
            )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (args.out / "deseq_versus_r.json").write_text(
        json.dumps({"rows": rows, "cohortex_peak_rss_mb": peak_mb}, indent=1)
    )
    print(
        "| samples × genes | cohortex (s) | DESeq2 (s) | DESeq2 / cohortex | genes within 1e-6 "
        "| within 1e-4 | largest difference (dispersion, LFC, p) | calls at padj < 0.1 that "
        "differ |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        gap = row["largest_relative_difference"]
        print(
            f"| {row['samples']} × {row['genes']:,} | {row['cohortex_s']:.1f} | "
            f"{row['deseq2_s']:.1f} | {row['deseq2_s'] / row['cohortex_s']:.1f}× | "
            f"{100 * row['share_within_1e-6']:.2f}% | {100 * row['share_within_1e-4']:.2f}% | "
            f"{gap['dispersion']:.0e}, {gap['lfc']:.0e}, {gap['pvalue']:.0e} | "
            f"{row['different_calls']} of {row['discoveries']:,} |"
        )
    print(f"cohortex peak RSS {peak_mb:.0f} MB (the whole run, R's not included)")


if __name__ == "__main__":
    main()
