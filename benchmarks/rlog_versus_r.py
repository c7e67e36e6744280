"""cohortex's ``de.rlog`` next to R's DESeq2 (1.38) ``rlog``, on the same counts in the same run:
seconds and the largest difference.

Data: ``--genes`` negative-binomial genes (means from a log-normal, dispersion 0.05 + 1/mean)
in ``--samples`` samples of two groups, a tenth of the genes changed twofold. Both run
``rlog(dds)`` with its defaults (blind, parametric trend, ratio size factors).

Usage::

    python benchmarks/rlog_versus_r.py [--samples 12 24] [--genes 10000]

Writes ``rlog_versus_r.json`` to ``--out`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from _versus_r import require_rscript, run_r

from cohortex import de

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(DESeq2))
counts <- as.matrix(read.csv(args[1], row.names = 1, check.names = FALSE))
storage.mode(counts) <- "integer"
dds <- DESeqDataSetFromMatrix(counts, data.frame(row.names = colnames(counts)), ~ 1)
t0 <- proc.time()[3]
rld <- suppressMessages(rlog(dds))
seconds <- proc.time()[3] - t0
write.csv(assay(rld), file.path(args[2], "rlog.csv"))
cat(seconds, "\n")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, nargs="+", default=[12, 24])
    parser.add_argument("--genes", type=int, default=10000)
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)  # the results are written after the run
    require_rscript("r-bioc-deseq2")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for n in args.samples:
            rng = np.random.default_rng(n)
            mean = np.exp(rng.normal(3.0, 2.0, args.genes))
            fold = np.where(np.arange(args.genes) < args.genes // 10, 2.0, 1.0)
            group = np.arange(n) % 2
            mu = mean[None, :] * np.where(group[:, None] == 1, fold[None, :], 1.0)
            dispersion = 0.05 + 1.0 / mean
            counts = rng.negative_binomial(1.0 / dispersion, 1.0 / (1.0 + mu * dispersion))
            names = [f"g{j:05d}" for j in range(args.genes)]
            samples = [f"s{i:03d}" for i in range(n)]
            path = Path(work) / "counts.csv"
            pd.DataFrame(counts.T, index=names, columns=samples).to_csv(path)
            r_seconds = float(run_r(R_SCRIPT, Path(work), str(path), work)[-1])
            cohort = xr.Dataset(
                {"expression": (("sample", "gene"), counts.astype(np.float64))},
                coords={"sample": samples, "gene": names},
                attrs={"scale": "counts"},
            )
            de.rlog(cohort.isel(gene=slice(0, 200)))  # warm-up: numba's compiled fits load
            start = time.perf_counter()
            ours = de.rlog(cohort)
            seconds = time.perf_counter() - start
            theirs = pd.read_csv(Path(work) / "rlog.csv", index_col=0).to_numpy().T
            rows.append(
                {
                    "samples": n,
                    "genes": args.genes,
                    "cohortex_s": seconds,
                    "r_s": r_seconds,
                    "largest_difference": float(np.max(np.abs(ours["expression"].values - theirs))),
                }
            )
            print(rows[-1], flush=True)
    (args.out / "rlog_versus_r.json").write_text(json.dumps({"rows": rows}, indent=1))
    print("| samples × genes | cohortex (s) | DESeq2 rlog (s) | ratio | largest difference |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['samples']} × {row['genes']:,} | {row['cohortex_s']:.1f} | "
            f"{row['r_s']:.1f} | {row['r_s'] / row['cohortex_s']:.0f}× | "
            f"{row['largest_difference']:.0e} |"
        )


if __name__ == "__main__":
    main()
