"""cohortex's Fine–Gray model (``survival.fine_gray``) next to R's ``cmprsk::crr``, the tool
a user would otherwise pick, on the same data in the same run: seconds of each (fit and
sandwich variance) and the largest relative difference of the coefficients and their
standard errors.

Data: two competing causes whose first depends on five standard-normal covariates (log
hazard ratios 0.5, −0.3, 0.2, 0, 0), uniform censoring, times to 1/100 (ties).

Usage::

    python benchmarks/fine_gray_versus_crr.py [--sizes 1000 4000 10000] [--repeats 3]

Writes ``fine_gray_versus_crr.json`` to ``--out`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from cohortex import survival

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(cmprsk))
d <- read.csv(args[1])
x <- as.matrix(d[, grep("^x", names(d))])
repeats <- as.integer(args[3])
seconds <- numeric(repeats)
for (r in seq_len(repeats)) {
  t0 <- proc.time()[3]
  fit <- crr(d$time, d$status, x)
  seconds[r] <- proc.time()[3] - t0
}
write.csv(data.frame(coef = fit$coef, se = sqrt(diag(fit$var))), args[2], row.names = FALSE)
cat(median(seconds), "\n")
"""


def data(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    first = rng.exponential(1.0 / (0.3 * np.exp(x @ np.array([0.5, -0.3, 0.2, 0.0, 0.0]))))
    second = rng.exponential(1.0 / 0.2, n)
    censor = rng.uniform(0.5, 8.0, n)
    time_ = np.round(np.minimum.reduce([first, second, censor]), 2) + 0.01
    status = np.where(censor < np.minimum(first, second), 0, np.where(first < second, 1, 2))
    table = pd.DataFrame(x, columns=[f"x{j}" for j in range(5)])
    table["time"], table["status"] = time_, status
    return table


def cohortex_run(table: pd.DataFrame, repeats: int) -> tuple[pd.DataFrame, float]:
    genes = [f"x{j}" for j in range(5)]
    ds = xr.Dataset(
        {"expression": (("sample", "gene"), table[genes].to_numpy())},
        coords={"sample": [f"s{i}" for i in range(len(table))], "gene": genes},
    )
    ds["time"] = ("sample", table["time"].to_numpy())
    ds["status"] = ("sample", table["status"].to_numpy())
    survival.fine_gray(ds, "time", "status", genes=genes)  # warm
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        model = survival.fine_gray(ds, "time", "status", genes=genes)
        seconds.append(time.perf_counter() - start)
    return model.terms, float(np.median(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)  # the results are written after the run
    if shutil.which("Rscript") is None:
        raise SystemExit("Rscript is needed (r-cran-cmprsk).")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        script = Path(work) / "crr.R"
        script.write_text(R_SCRIPT)
        for n in args.sizes:
            table = data(n)
            path, found = Path(work) / "d.csv", Path(work) / "r.csv"
            table.to_csv(path, index=False)
            r_seconds = float(
                subprocess.run(
                    ["Rscript", str(script), str(path), str(found), str(args.repeats)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.split()[0]
            )
            expected = pd.read_csv(found)
            terms, seconds = cohortex_run(table, args.repeats)
            gap = max(
                float(np.max(np.abs(terms["coefficient"].to_numpy() / expected["coef"] - 1))),
                float(np.max(np.abs(terms["se"].to_numpy() / expected["se"] - 1))),
            )
            rows.append({"n": n, "cohortex_s": seconds, "crr_s": r_seconds, "max_rel_diff": gap})
    (args.out / "fine_gray_versus_crr.json").write_text(json.dumps(rows, indent=1))
    print("| samples | cohortex (s) | crr (s) | crr / cohortex | largest relative difference |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['n']:,} | {row['cohortex_s']:.3f} | {row['crr_s']:.2f} | "
            f"{row['crr_s'] / row['cohortex_s']:.0f}× | {row['max_rel_diff']:.1e} |"
        )


if __name__ == "__main__":
    main()
