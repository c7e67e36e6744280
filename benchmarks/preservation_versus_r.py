"""cohortex's ``network.module_preservation`` next to R's WGCNA (1.72) ``modulePreservation``,
the tool a user would otherwise pick, on the same two cohorts and modules in the same run:
seconds, peak memory, how closely the observed statistics agree and how far apart the Z
summaries of the two tools' own random gene sets lie (for the planted modules: grey beyond
1,000 genes and the gold module are themselves random samples of genes).

Data: ``--genes`` log-scale genes of cohortex's simulator with a tenth of them in planted
modules of 100, ``--samples`` samples in the reference and as many in the test cohort (the same
simulation's other samples); the planted modules are the reference's modules. Both tools run
modulePreservation's defaults (100 permutations, an unsigned network, gold module of 1,000
genes at most).

Usage::

    python benchmarks/preservation_versus_r.py [--samples 100] [--genes 1000 2000]

Writes ``preservation_versus_r.json`` to ``--out`` and prints a Markdown table.
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
ref <- as.matrix(read.csv(args[1], row.names = 1, check.names = FALSE))
test <- as.matrix(read.csv(args[2], row.names = 1, check.names = FALSE))
colors <- read.csv(args[3])$module
t0 <- proc.time()[3]
invisible(capture.output(mp <- modulePreservation(
  list(ref = list(data = ref), test = list(data = test)), list(ref = colors), verbose = 0,
  savePermutedStatistics = FALSE)))
seconds <- proc.time()[3] - t0
pick <- function(part) part$ref.ref$inColumnsAlsoPresentIn.test
write.csv(pick(mp$preservation$observed), file.path(args[4], "observed.csv"))
write.csv(pick(mp$preservation$Z), file.path(args[4], "z.csv"))
cat(seconds, gc()[2, 6] + gc()[1, 6], "\n")
"""

OBSERVED = {
    "propVarExplained.pres": "prop_var_explained",
    "meanSignAwareKME.pres": "mean_sign_aware_kme",
    "meanSignAwareCorDat.pres": "mean_sign_aware_cor",
    "meanAdj.pres": "mean_adjacency",
    "cor.kIM": "cor_kim",
    "cor.kME": "cor_kme",
    "cor.cor": "cor_cor",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--genes", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    require_rscript("r-cran-wgcna")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for n_genes in args.genes:
            n_modules = max(2, n_genes // 1000)
            x, _, genes = simulate_array(
                2 * args.samples, n_genes, n_de=0, modules=n_modules, module_size=100, seed=1
            )
            whole = log_cohort(np.asarray(x, dtype=np.float64))
            reference = whole.isel(sample=slice(0, args.samples))
            test = whole.isel(sample=slice(args.samples, None))
            labels = pd.Series(
                genes["module"].to_numpy() + 1, index=whole["gene"].values
            )  # planted 0 … k - 1 → 1 … k; 0: none
            paths = [Path(work) / f"{name}.csv" for name in ("ref", "test", "colors")]
            reference["expression"].to_pandas().to_csv(paths[0], float_format="%.17g")
            test["expression"].to_pandas().to_csv(paths[1], float_format="%.17g")
            pd.DataFrame({"module": labels.to_numpy()}).to_csv(paths[2], index=False)
            output = run_r(R_SCRIPT, Path(work), *(str(p) for p in paths), work)
            r_seconds, r_peak_mb = float(output[-2]), float(output[-1])
            start = time.perf_counter()
            ours = network.module_preservation(reference, test, labels, progress=False)
            seconds = time.perf_counter() - start
            observed = pd.read_csv(Path(work) / "observed.csv", index_col=0)
            z = pd.read_csv(Path(work) / "z.csv", index_col=0)
            # the planted modules: grey beyond 1,000 genes and gold are random samples of genes
            modules = [m for m in ours["module"].values if m > 0]
            largest = max(
                abs(float(ours[mine].sel(module=m)) - observed.loc[m, theirs])
                for m in modules
                for theirs, mine in OBSERVED.items()
            )
            z_gap = max(
                abs(float(ours["z_summary"].sel(module=m)) - z.loc[m, "Zsummary.pres"])
                for m in modules
            )
            rows.append(
                {
                    "samples": args.samples,
                    "genes": n_genes,
                    "modules": n_modules,
                    "cohortex_s": seconds,
                    "r_s": r_seconds,
                    "r_peak_mb": r_peak_mb,
                    "largest_observed_difference": largest,
                    "largest_zsummary_gap": z_gap,
                    "smallest_planted_zsummary": float(ours["z_summary"].sel(module=modules).min()),
                    "zsummary": {
                        str(m): [float(ours["z_summary"].sel(module=m)), z.loc[m, "Zsummary.pres"]]
                        for m in ours["module"].values
                        if m >= 0
                    },
                }
            )
            print(rows[-1], flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (args.out / "preservation_versus_r.json").write_text(
        json.dumps({"rows": rows, "cohortex_peak_rss_mb": peak_mb}, indent=1)
    )
    print(
        "| samples (each cohort) × genes | modules | cohortex (s) | WGCNA (s) | ratio | largest "
        "observed difference | largest Zsummary gap (own permutations) |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['samples']} × {row['genes']:,} | {row['modules']} | {row['cohortex_s']:.1f} "
            f"| {row['r_s']:.1f} | {row['r_s'] / row['cohortex_s']:.0f}× | "
            f"{row['largest_observed_difference']:.0e} | {row['largest_zsummary_gap']:.2f} |"
        )
    print(f"cohortex peak RSS {peak_mb:.0f} MB (the whole run, R's not included)")


if __name__ == "__main__":
    main()
