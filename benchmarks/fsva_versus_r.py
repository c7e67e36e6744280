"""cohortex's ``de.fsva`` next to R's sva (3.46) ``fsva``, "fast" and "exact", on the same
matrices in the same run: seconds, peak memory, and how closely the corrected new samples and
their surrogate variables (up to sign) agree.

Data: ``benchmarks/sva_versus_r.py``'s simulated cohort (``--genes`` log-scale genes, two
conditions, hidden batches and a hidden continuous factor), its first ``--train`` samples the
cohort sva runs on (irw, n.sv = 2; each tool its own) and the next ``--new`` the new samples.

Usage::

    python benchmarks/fsva_versus_r.py [--genes 20000] [--train 100 200] [--new 50 100]

Writes ``fsva_versus_r.json`` to ``--out`` and prints a Markdown table.
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
from _versus_r import require_rscript, run_r
from sva_versus_r import simulate

from cohortex import de

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(sva))
x <- as.matrix(read.csv(args[1], row.names = 1, check.names = FALSE))
samples <- read.csv(args[2], row.names = 1)
n_train <- as.integer(args[4])
train <- x[, 1:n_train]
new <- x[, (n_train + 1):ncol(x)]
kept <- samples[1:n_train, , drop = FALSE]
mod <- model.matrix(~ condition, kept)
invisible(capture.output(fit <- sva(train, mod, model.matrix(~ 1, kept), n.sv = 2)))
seconds <- c()
for (method in c("fast", "exact")) {
  t0 <- proc.time()[3]
  corrected <- fsva(train, mod, fit, newdat = new, method = method)
  seconds[method] <- proc.time()[3] - t0
  write.csv(corrected$new, file.path(args[3], paste0(method, "_new.csv")))
  write.csv(corrected$newsv, file.path(args[3], paste0(method, "_newsv.csv")))
}
cat(seconds, gc()[2, 6] + gc()[1, 6], "\n")
"""
METHODS = ("fast", "exact")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=20000)
    parser.add_argument("--train", type=int, nargs="+", default=[100, 200])
    parser.add_argument("--new", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    if len(args.train) != len(args.new):
        raise SystemExit("--train and --new give one size each per case.")
    args.out.mkdir(parents=True, exist_ok=True)  # the results are written after the run
    require_rscript("r-bioc-sva")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for n_train, n_new in zip(args.train, args.new, strict=True):
            x, cohort = simulate(args.genes, n_train + n_new)
            matrix_path, samples_path = Path(work) / "x.csv", Path(work) / "samples.csv"
            pd.DataFrame(x.T, index=cohort["gene"].values, columns=cohort["sample"].values).to_csv(
                matrix_path
            )
            cohort["condition"].to_pandas().to_frame().to_csv(samples_path)
            output = run_r(
                R_SCRIPT, Path(work), str(matrix_path), str(samples_path), work, str(n_train)
            )
            r_seconds = dict(zip(METHODS, map(float, output[:2]), strict=True))
            train = cohort.isel(sample=slice(0, n_train))
            new = cohort.isel(sample=slice(n_train, None))
            frozen = de.sva(train, "~ condition", n_sv=2, device="cpu")
            for method in METHODS:
                start = time.perf_counter()
                _, corrected = de.fsva(
                    train, "~ condition", frozen, new, method=method, device="cpu"
                )
                values = corrected["expression"].values
                seconds = time.perf_counter() - start
                expected = pd.read_csv(Path(work) / f"{method}_new.csv", index_col=0).to_numpy().T
                expected_sv = pd.read_csv(
                    Path(work) / f"{method}_newsv.csv", index_col=0
                ).to_numpy()
                got_sv = np.column_stack([corrected["sv1"].values, corrected["sv2"].values])
                got_sv = got_sv * np.sign(np.sum(got_sv * expected_sv, axis=0))
                rows.append(
                    {
                        "train": n_train,
                        "new": n_new,
                        "genes": args.genes,
                        "method": method,
                        "cohortex_s": seconds,
                        "sva_s": r_seconds[method],
                        "r_peak_mb": float(output[2]),
                        "new_difference": float(np.max(np.abs(values - expected))),
                        "sv_difference": float(np.max(np.abs(got_sv - expected_sv))),
                    }
                )
                print(rows[-1], flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (args.out / "fsva_versus_r.json").write_text(
        json.dumps({"rows": rows, "cohortex_peak_rss_mb": peak_mb}, indent=1)
    )
    print(
        "| cohort + new × genes | method | cohortex (s) | sva (s) | ratio | largest difference "
        "(new values, new sv) |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['train']} + {row['new']} × {row['genes']:,} | {row['method']} | "
            f"{row['cohortex_s']:.2f} | {row['sva_s']:.2f} | "
            f"{row['sva_s'] / row['cohortex_s']:.0f}× | "
            f"{row['new_difference']:.0e}, {row['sv_difference']:.0e} |"
        )
    print(f"cohortex peak RSS {peak_mb:.0f} MB (the whole run, R's not included)")


if __name__ == "__main__":
    main()
