"""cohortex's ``de.fit(method="robust")`` next to R's limma ``lmFit(method = "robust")`` +
``eBayes`` (MASS's ``rlm`` for each gene), the tool a user would otherwise pick, on the same
values in the same run: seconds, peak memory, and how closely the moderated t p-values agree.

Data: ``--genes`` log-scale genes (means 4–12, gene standard deviations 0.2–1) in
``--samples`` samples of two conditions of equal size and a numeric covariate; a tenth of the
genes change by N(0, 1) between the conditions; one value in 40 is an outlier (±6 gene
standard deviations), the kind of array a robust fit is for. Written to CSV with 17 digits.

Usage::

    python benchmarks/robust_fit_versus_r.py [--genes 20000] [--samples 12 48] [--repeats 3]

Writes ``robust_fit_versus_r.json`` to ``--out`` and prints a Markdown table.
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

from cohortex import de

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(limma))
x <- as.matrix(read.csv(args[1], row.names = 1, check.names = FALSE))
samples <- read.csv(args[2], row.names = 1)
design <- model.matrix(~ condition + age, samples)
repeats <- as.integer(args[4])
seconds <- numeric(repeats)
for (r in seq_len(repeats)) {
  t0 <- proc.time()[3]
  fit <- eBayes(suppressWarnings(lmFit(x, design, method = "robust")))
  seconds[r] <- proc.time()[3] - t0
}
write.csv(data.frame(p = fit$p.value[, 2], coef = fit$coefficients[, 2]),
          file.path(args[3], "limma.csv"), row.names = FALSE)
cat(median(seconds), "\n")
"""


def simulate(n_genes: int, n_samples: int, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    sd = rng.uniform(0.2, 1.0, n_genes)
    x = rng.uniform(4.0, 12.0, n_genes) + rng.normal(0.0, 1.0, (n_samples, n_genes)) * sd
    condition = np.repeat(["a", "b"], n_samples // 2)
    changed = rng.random(n_genes) < 0.1
    x[np.ix_(condition == "b", changed)] += rng.normal(0.0, 1.0, changed.sum())
    outlier = rng.random(x.shape) < 0.025
    x[outlier] += (rng.choice([-6.0, 6.0], x.shape) * sd)[outlier]
    samples = pd.DataFrame(
        {"condition": condition, "age": np.round(rng.uniform(30, 80, n_samples))},
        index=[f"s{i:04d}" for i in range(n_samples)],
    )
    return x, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=20000)
    parser.add_argument("--samples", type=int, nargs="+", default=[12, 48])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    require_rscript("r-bioc-limma")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for n in args.samples:
            x, samples = simulate(args.genes, n)
            cohort = log_cohort(
                x, condition=samples["condition"].to_numpy(), age=samples["age"].to_numpy()
            )
            pd.DataFrame(x.T, index=cohort["gene"].values, columns=samples.index).to_csv(
                Path(work) / "x.csv", float_format="%.17g"
            )
            samples.to_csv(Path(work) / "samples.csv")
            r_seconds = float(
                run_r(
                    R_SCRIPT,
                    Path(work),
                    str(Path(work) / "x.csv"),
                    str(Path(work) / "samples.csv"),
                    work,
                    str(args.repeats),
                )[0]
            )
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                ours = de.fit(
                    cohort, "~ condition + age", contrasts=["condition[T.b]"], method="robust"
                )
                times.append(time.perf_counter() - start)
            theirs = pd.read_csv(Path(work) / "limma.csv")
            p = ours["pvalue"].sel(contrast="condition[T.b]").values
            relative = np.abs(p - theirs["p"].to_numpy()) / theirs["p"].to_numpy()
            rows.append(
                {
                    "samples": n,
                    "genes": args.genes,
                    "cohortex_s": float(np.median(times)),
                    "r_s": r_seconds,
                    "largest_p_difference": float(relative.max()),
                    "within_1e-8": float(np.mean(relative <= 1e-8)),
                }
            )
            print(rows[-1], flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (args.out / "robust_fit_versus_r.json").write_text(
        json.dumps({"rows": rows, "cohortex_peak_rss_mb": peak_mb}, indent=1)
    )
    print(
        "| samples × genes | cohortex (s) | limma (s) | limma / cohortex "
        "| largest relative p difference | p within 1e-8 |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['samples']} × {row['genes']:,} | {row['cohortex_s']:.2f} | {row['r_s']:.1f} "
            f"| {row['r_s'] / row['cohortex_s']:.0f}× | {row['largest_p_difference']:.0e} "
            f"| {100 * row['within_1e-8']:.2f}% |"
        )
    print(f"cohortex peak RSS {peak_mb:.0f} MB (the whole run, R's not included)")


if __name__ == "__main__":
    main()
