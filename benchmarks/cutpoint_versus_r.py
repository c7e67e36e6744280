"""cohortex's ``survival.cutpoint`` next to R's maxstat (0.7-25), the tool a user would otherwise
pick (directly, or through survminer's ``surv_cutpoint``), on the same data in the same run:
seconds, and how closely the statistics, cutpoints and p-values agree.

Data: ``--genes`` log-scale genes of ``--samples`` patients with exponential survival times
(70% events); a twentieth of the genes raise the hazard above their 70th percentile. R runs
``maxstat.test(Surv(time, event) ~ gene, smethod = "LogRank", pmethod = "Lau94")`` gene by
gene, as users do; cohortex all genes at once.

Usage::

    python benchmarks/cutpoint_versus_r.py [--samples 200 1000] [--genes 20000]

Writes ``cutpoint_versus_r.json`` to ``--out`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _versus_r import log_cohort, require_rscript, run_r

from cohortex import survival

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages({ library(maxstat); library(survival) })
x <- read.csv(args[1], row.names = 1, check.names = FALSE)
outcome <- read.csv(args[2])
t0 <- proc.time()[3]
rows <- lapply(colnames(x), function(g) {
  frame <- data.frame(time = outcome$time, event = outcome$event, x = x[[g]])
  m <- maxstat.test(Surv(time, event) ~ x, data = frame, smethod = "LogRank", pmethod = "Lau94")
  c(m$statistic, m$estimate, m$p.value)
})
seconds <- proc.time()[3] - t0
out <- do.call(rbind, rows)
colnames(out) <- c("statistic", "cutpoint", "p")
write.csv(out, file.path(args[3], "maxstat.csv"), row.names = FALSE)
cat(seconds, "\n")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--genes", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)  # the results are written after the run
    require_rscript("r-cran-maxstat")
    rows = []
    warm = np.random.default_rng(0)  # cohortex's first call loads Dask: R's libraries load untimed
    survival.cutpoint(warm.normal(size=(50, 5)), warm.exponential(size=50), np.ones(50))
    with tempfile.TemporaryDirectory() as work:
        for n in args.samples:
            rng = np.random.default_rng(n)
            x = rng.normal(8.0, 1.0, (n, args.genes))
            risky = x[:, : args.genes // 20] > np.quantile(x[:, : args.genes // 20], 0.7, axis=0)
            hazard = np.exp(0.5 * risky.sum(axis=1) / max(1, risky.shape[1]) * 10)
            times = np.round(rng.exponential(10.0 / hazard), 3)
            events = (rng.random(n) < 0.7).astype(int)
            cohort = log_cohort(x, time=times, event=events)
            matrix_path, outcome_path = Path(work) / "x.csv", Path(work) / "outcome.csv"
            cohort["expression"].to_pandas().to_csv(matrix_path, float_format="%.17g")
            pd.DataFrame({"time": times, "event": events}).to_csv(outcome_path, index=False)
            r_seconds = float(
                run_r(R_SCRIPT, Path(work), str(matrix_path), str(outcome_path), work)[-1]
            )
            start = time.perf_counter()
            ours = survival.cutpoint(cohort, "time", "event")
            seconds = time.perf_counter() - start
            theirs = pd.read_csv(Path(work) / "maxstat.csv")
            rows.append(
                {
                    "samples": n,
                    "genes": args.genes,
                    "cohortex_s": seconds,
                    "r_s": r_seconds,
                    "largest_statistic_difference": float(
                        np.max(np.abs(ours["statistic"].values - theirs["statistic"]))
                    ),
                    "same_cutpoints": bool(
                        np.allclose(ours["cutpoint"].values, theirs["cutpoint"], rtol=1e-12)
                    ),
                    "largest_pvalue_difference": float(
                        np.max(np.abs(ours["pvalue"].values - np.minimum(theirs["p"], 1)))
                    ),
                }
            )
            print(rows[-1], flush=True)
    (args.out / "cutpoint_versus_r.json").write_text(json.dumps({"rows": rows}, indent=1))
    print(
        "| samples × genes | cohortex (s) | maxstat (s) | ratio | largest statistic / p "
        "difference | same cutpoints |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['samples']:,} × {row['genes']:,} | {row['cohortex_s']:.2f} | "
            f"{row['r_s']:.1f} | {row['r_s'] / row['cohortex_s']:.0f}× | "
            f"{row['largest_statistic_difference']:.0e} / {row['largest_pvalue_difference']:.0e} "
            f"| {'yes' if row['same_cutpoints'] else 'no'} |"
        )


if __name__ == "__main__":
    main()
