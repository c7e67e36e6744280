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

``--missing 0.05`` leaves that share of the values out at random in both cohorts (both tools
then take modulePreservation's defaults for them; R's impute.knn is wrapped to restore the
random state it sets, without which every one of R's Z's is infinite, see
docs/from_limma.md). ``--correlation bicor`` makes every correlation bicor's in both
(``corFnc = "bicor"``).

Usage::

    python benchmarks/preservation_versus_r.py [--samples 100] [--genes 1000 2000]
        [--missing 0.05] [--correlation bicor]

Writes ``preservation_versus_r.json`` (``_missing`` and ``_bicor`` added to the name with those
options) to ``--out`` and prints a Markdown table.
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
if (anyNA(ref) || anyNA(test)) {  # impute.knn, restoring the random state it sets
  restoring_knn <- function(data, ...) {
    state <- get(".Random.seed", envir = globalenv())
    on.exit(assign(".Random.seed", state, envir = globalenv()))
    impute::impute.knn(data, ...)
  }
  imports <- parent.env(asNamespace("WGCNA"))
  unlockBinding("impute.knn", imports)
  assign("impute.knn", restoring_knn, envir = imports)
}
t0 <- proc.time()[3]
invisible(capture.output(mp <- modulePreservation(
  list(ref = list(data = ref), test = list(data = test)), list(ref = colors), verbose = 0,
  savePermutedStatistics = FALSE, corFnc = args[5])))
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
}  # R names the last three after corFnc: bicor.kIM, bicor.kME, bicor.bicor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--genes", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--missing", type=float, default=0.0, help="share of values left out")
    parser.add_argument("--correlation", choices=("pearson", "bicor"), default="pearson")
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)  # the results are written after the run
    require_rscript("r-cran-wgcna")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for n_genes in args.genes:
            n_modules = max(2, n_genes // 1000)
            x, _, genes = simulate_array(
                2 * args.samples, n_genes, n_de=0, modules=n_modules, module_size=100, seed=1
            )
            values = np.asarray(x, dtype=np.float64)
            values[np.random.default_rng(2).random(values.shape) < args.missing] = np.nan
            whole = log_cohort(values)
            reference = whole.isel(sample=slice(0, args.samples))
            test = whole.isel(sample=slice(args.samples, None))
            labels = pd.Series(
                genes["module"].to_numpy() + 1, index=whole["gene"].values
            )  # planted 0 … k - 1 → 1 … k; 0: none
            paths = [Path(work) / f"{name}.csv" for name in ("ref", "test", "colors")]
            for cohort, path in ((reference, paths[0]), (test, paths[1])):
                cohort["expression"].to_pandas().to_csv(path, float_format="%.17g", na_rep="NA")
            pd.DataFrame({"module": labels.to_numpy()}).to_csv(paths[2], index=False)
            r_correlation = "cor" if args.correlation == "pearson" else "bicor"
            output = run_r(R_SCRIPT, Path(work), *(str(p) for p in paths), work, r_correlation)
            r_seconds, r_peak_mb = float(output[-2]), float(output[-1])
            start = time.perf_counter()
            ours = network.module_preservation(
                reference, test, labels, correlation_type=args.correlation, progress=False
            )
            seconds = time.perf_counter() - start
            observed = pd.read_csv(Path(work) / "observed.csv", index_col=0)
            observed.columns = [
                c.replace("bicor.bicor", "cor.cor").replace("bicor.", "cor.")
                for c in observed.columns
            ]
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
                    "missing": args.missing,
                    "correlation": args.correlation,
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
    name = "preservation_versus_r" + ("_missing" if args.missing else "")
    name += ("_bicor" if args.correlation == "bicor" else "") + ".json"
    (args.out / name).write_text(
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
