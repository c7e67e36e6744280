"""cohortex's ``de.sva`` and ``de.num_sv`` next to R's sva (3.46), the tool a user would
otherwise pick, on the same matrix in the same run: seconds, peak memory, and how closely the
surrogate variables (up to sign) and the genes' probabilities agree.

Data: ``--genes`` log-scale genes (means 4–10, sd 0.3–1.2) in ``--samples`` samples, two
conditions (10% of the genes differ by 1), two hidden batches (a quarter of the genes shifted
by N(0, 0.7)) and a hidden continuous factor (another quarter, loadings N(0, 0.5)). sva runs
its iteratively reweighted method (B = 5) with ``n.sv`` given; ``num.sv``'s permutation count
(B = 20) runs at the sizes up to ``--count-up-to`` samples (R's takes minutes beyond).

Usage::

    python benchmarks/sva_versus_r.py [--genes 20000] [--samples 100 400] [--count-up-to 100]

Writes ``sva_versus_r.json`` to ``--out`` and prints a Markdown table.
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

from cohortex import de

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(sva))
x <- as.matrix(read.csv(args[1], row.names = 1, check.names = FALSE))
samples <- read.csv(args[2], row.names = 1)
mod <- model.matrix(~ condition, samples)
mod0 <- model.matrix(~ 1, samples)
count <- NA
count_s <- NA
if (args[4] == "count") {
  t0 <- proc.time()[3]
  count <- num.sv(x, mod, method = "be", seed = 1)
  count_s <- proc.time()[3] - t0
}
t0 <- proc.time()[3]
invisible(capture.output(fit <- sva(x, mod, mod0, n.sv = as.integer(args[5]))))
sva_s <- proc.time()[3] - t0
sv <- fit$sv
colnames(sv) <- paste0("sv", seq_len(ncol(sv)))
write.csv(sv, file.path(args[3], "sv.csv"))
write.csv(data.frame(pprob_gam = fit$pprob.gam, pprob_b = fit$pprob.b),
          file.path(args[3], "genes.csv"))
cat(sva_s, count_s, count, gc()[2, 6] + gc()[1, 6], "\n")
"""
N_SV = 2


def simulate(n_genes: int, n_samples: int, seed: int = 0) -> tuple[np.ndarray, xr.Dataset]:
    """Values (samples × genes) and the cohort holding them with the condition."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (n_samples, n_genes)) * rng.uniform(0.3, 1.2, n_genes)
    x += rng.uniform(4.0, 10.0, n_genes)
    condition = np.where(np.arange(n_samples) % 2 == 0, "a", "b")
    x[condition == "b", : n_genes // 10] += 1.0
    batch = rng.permutation(np.arange(n_samples) % 2)
    shifted = rng.choice(n_genes, n_genes // 4, replace=False)
    x[np.ix_(batch == 1, shifted)] += rng.normal(0.0, 0.7, shifted.size)
    factor = rng.normal(0.0, 1.0, n_samples)
    loaded = rng.choice(n_genes, n_genes // 4, replace=False)
    x[:, loaded] += np.outer(factor, rng.normal(0.0, 0.5, loaded.size))
    return x, log_cohort(x, condition=condition)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=20000)
    parser.add_argument("--samples", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--count-up-to", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)  # the results are written after the run
    require_rscript("r-bioc-sva")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        _, warm = simulate(500, 20)
        de.num_sv(warm, "~ condition", permutations=2, device="cpu")  # numba's compiled cache
        for n in args.samples:
            x, cohort = simulate(args.genes, n)
            matrix_path, samples_path = Path(work) / "x.csv", Path(work) / "samples.csv"
            pd.DataFrame(x.T, index=cohort["gene"].values, columns=cohort["sample"].values).to_csv(
                matrix_path
            )
            cohort["condition"].to_pandas().to_frame().to_csv(samples_path)
            count = n <= args.count_up_to
            output = run_r(
                R_SCRIPT,
                Path(work),
                str(matrix_path),
                str(samples_path),
                work,
                "count" if count else "no",
                str(N_SV),
            )
            r_sva_s, r_count_s, r_count, r_peak_mb = (
                float("nan") if v == "NA" else float(v) for v in output
            )
            start = time.perf_counter()
            ours = de.sva(cohort, "~ condition", n_sv=N_SV, device="cpu")
            sva_s = time.perf_counter() - start
            count_s, our_count = float("nan"), float("nan")
            if count:
                start = time.perf_counter()
                our_count = de.num_sv(cohort, "~ condition", seed=1, device="cpu")
                count_s = time.perf_counter() - start
            expected = pd.read_csv(Path(work) / "sv.csv", index_col=0).to_numpy()
            genes = pd.read_csv(Path(work) / "genes.csv", index_col=0)
            got = np.column_stack([ours[f"sv{i + 1}"].values for i in range(N_SV)])
            got = got * np.sign(np.sum(got * expected, axis=0))
            rows.append(
                {
                    "samples": n,
                    "genes": args.genes,
                    "cohortex_sva_s": sva_s,
                    "sva_s": r_sva_s,
                    "cohortex_num_sv_s": count_s,
                    "num_sv_s": r_count_s,
                    "cohortex_count": our_count,
                    "r_count": r_count,
                    "r_peak_mb": r_peak_mb,
                    "sv_difference": float(np.max(np.abs(got - expected))),
                    "pprob_difference": float(
                        max(
                            np.max(np.abs(ours["pprob_gam"].values - genes["pprob_gam"])),
                            np.max(np.abs(ours["pprob_b"].values - genes["pprob_b"])),
                        )
                    ),
                }
            )
            print(rows[-1], flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (args.out / "sva_versus_r.json").write_text(
        json.dumps({"rows": rows, "cohortex_peak_rss_mb": peak_mb}, indent=1)
    )
    print(
        "| samples × genes | sva irw (s): cohortex / R | ratio | num.sv be (s): cohortex / R "
        "| counts | largest difference (sv, pprob) |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        counted = (
            f"{row['cohortex_num_sv_s']:.1f} / {row['num_sv_s']:.1f} "
            f"({row['num_sv_s'] / row['cohortex_num_sv_s']:.0f}×)"
            if np.isfinite(row["num_sv_s"])
            else "–"
        )
        counts = (
            "–"
            if np.isnan(row["r_count"])
            else f"{row['cohortex_count']:.0f} / {row['r_count']:.0f}"
        )
        print(
            f"| {row['samples']} × {row['genes']:,} | {row['cohortex_sva_s']:.2f} / "
            f"{row['sva_s']:.1f} | {row['sva_s'] / row['cohortex_sva_s']:.0f}× | {counted} | "
            f"{counts} | "
            f"{row['sv_difference']:.0e}, {row['pprob_difference']:.0e} |"
        )
    print(f"cohortex peak RSS {peak_mb:.0f} MB (the whole run, R's not included)")


if __name__ == "__main__":
    main()
