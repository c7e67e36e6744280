"""cohortex's ``network.consensus_modules`` next to R's WGCNA (1.72)
``blockwiseConsensusModules``, the tool a user would otherwise pick for modules that several
sets of samples share, on the same matrices in the same run: seconds, peak memory, and whether
the modules agree.

Data: two sets of ``--samples`` samples each, the halves of a cohort from cohortex's simulator
with ``--genes`` log-scale genes, a tenth of them in modules of 100 (each following a hidden
factor through its own sigmoid). Both tools run with ``blockwiseConsensusModules``' defaults
(power 6, an unsigned TOM, blocks of at most 5,000 genes), R with WGCNA's threads enabled (2) on
R's reference BLAS (Debian's default) and with ``sampleForCalibration = FALSE``: the TOMs'
95th percentiles of every entry, as cohortex takes them (R samples 20,000 entries by default).

The pre-clustering starts from R's own random draw (``set.seed(54321); sample(nGenes)``), but
R refreshes the wrong centres after a move (see docs/from_limma.md), so the blocks may differ;
cohortex is therefore run twice: from its own blocks (timed, and the modules compared with R's
by the adjusted Rand index) and from R's blocks (the modules should then be R's gene for
gene).

Usage::

    python benchmarks/wgcna_consensus_versus_r.py [--samples 200] [--genes 5000 10000]

Writes ``wgcna_consensus_versus_r.json`` to ``--out`` and prints a Markdown table.
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
sets <- lapply(args[1:2], function(p) list(data = as.matrix(read.csv(p, row.names = 1,
                                                                     check.names = FALSE))))
t0 <- proc.time()[3]
invisible(capture.output(net <- blockwiseConsensusModules(sets, numericLabels = TRUE,
                                                           sampleForCalibration = FALSE,
                                                           verbose = 0)))
seconds <- proc.time()[3] - t0
write.csv(data.frame(block = net$blocks, unmerged = net$unmergedColors, merged = net$colors),
          file.path(args[3], "labels.csv"), row.names = FALSE)
cat(seconds, gc()[2, 6] + gc()[1, 6], "\n")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200, help="samples in each set")
    parser.add_argument("--genes", type=int, nargs="+", default=[5000, 10000])
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)  # the results are written after the run
    require_rscript("r-cran-wgcna")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for n_genes in args.genes:
            x, _, _ = simulate_array(
                2 * args.samples, n_genes, n_de=0, modules=n_genes // 1000, module_size=100, seed=1
            )
            cohort = log_cohort(np.asarray(x, dtype=np.float64))
            sets = {
                "first": cohort.isel(sample=slice(0, args.samples)),
                "second": cohort.isel(sample=slice(args.samples, None)),
            }
            paths = []
            for name, data in sets.items():
                paths.append(str(Path(work) / f"{name}.csv"))
                data["expression"].to_pandas().to_csv(paths[-1], float_format="%.17g")
            output = run_r(R_SCRIPT, Path(work), *paths, work)
            r_seconds, r_peak_mb = float(output[-2]), float(output[-1])
            labels = pd.read_csv(Path(work) / "labels.csv")
            start = time.perf_counter()
            ours = network.consensus_modules(sets, progress=False)
            seconds = time.perf_counter() - start
            given = network.consensus_modules(
                sets, blocks=labels["block"].to_numpy(), progress=False
            )
            rows.append(
                {
                    "samples_per_set": args.samples,
                    "genes": n_genes,
                    "blocks": int(ours.attrs["n_blocks"]),
                    "r_blocks": int(labels["block"].max()),
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
    (args.out / "wgcna_consensus_versus_r.json").write_text(
        json.dumps({"rows": rows, "cohortex_peak_rss_mb": peak_mb}, indent=1)
    )
    print(
        "| sets × samples × genes | blocks (R) | modules (R) | cohortex (s) | WGCNA (s) | ratio | "
        "R's modules from R's blocks | adjusted Rand index, own blocks |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| 2 × {row['samples_per_set']} × {row['genes']:,} | {row['blocks']} "
            f"({row['r_blocks']}) | {row['modules']} ({row['r_modules']}) | "
            f"{row['cohortex_s']:.1f} | {row['r_s']:.1f} | {row['r_s'] / row['cohortex_s']:.0f}× | "
            f"{'yes' if row['same_modules_from_r_blocks'] else 'no'} | "
            f"{row['ari_own_blocks_vs_r']:.2f} |"
        )
    print(f"cohortex peak RSS {peak_mb:.0f} MB (the whole run, R's not included)")


if __name__ == "__main__":
    main()
