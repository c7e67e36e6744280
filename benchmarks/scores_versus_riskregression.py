"""cohortex's time-dependent scores of predicted survival (``survival.time_dependent_scores``)
next to R's ``riskRegression::Score``, the tool a user would otherwise pick, on the same
outcomes and predictions in the same run: the seconds of each, and the largest difference
between their numbers.

Outcomes: ``simulate(n, 50 genes, survival_genes=5)``'s times and events; predictions: a
Cox model of its five survival genes (``survival.fit_cox``) at three times, the quartiles of
the event times. Both compute the IPCW Brier score with its Kaplan–Meier null model and the
IPA, the time-dependent AUC, and their standard errors with the censoring curve's influence
(Score's default ``conservative = FALSE``).

Usage::

    python benchmarks/scores_versus_riskregression.py [--sizes 2000 20000 50000] [--repeats 3]

Writes ``scores_versus_riskregression.json`` to ``--out`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cohortex import open_cohort, simulate, survival

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages({library(survival); library(riskRegression)})
data <- read.csv(args[1])
times <- as.numeric(strsplit(args[2], ",")[[1]])
repeats <- as.integer(args[4])
risk <- 1 - as.matrix(data[, grep("^t[0-9]+$", names(data))])
seconds <- numeric(repeats)
for (r in seq_len(repeats)) {
  t0 <- proc.time()[3]
  sc <- Score(list(model = risk), formula = Surv(time, event) ~ 1, data = data, times = times,
              metrics = c("auc", "brier"), summary = "ipa", cens.model = "km")
  seconds[r] <- proc.time()[3] - t0
}
brier <- as.data.frame(sc$Brier$score)
brier <- brier[brier$model == "model", ]
auc <- as.data.frame(sc$AUC$score)
write.csv(data.frame(brier = brier$Brier, brier_se = brier$se, ipa = brier$IPA,
                     auc = auc$AUC, auc_se = auc$se), args[3], row.names = FALSE)
cat(median(seconds), "\n")
"""

COLUMNS = ["brier", "brier_se", "ipa", "auc", "auc_se"]


def run_size(n: int, repeats: int, work: Path) -> dict:
    store = work / f"s{n}.zarr"
    simulate(store, n, 50, survival_genes=5, log_hr=0.5, seed=3, progress=False)
    ds = open_cohort(store)
    planted = [str(g) for g in ds["gene"].values[ds["true_log_hr"].values != 0]]
    model = survival.fit_cox(ds, "time", "event", genes=planted)
    event_times = ds["time"].values[ds["event"].values == 1]
    times = [float(t) for t in np.quantile(event_times, [0.25, 0.5, 0.75])]
    table = model.predict_survival(ds, times)
    matrix = table["survival"].to_numpy().reshape(-1, len(times))
    ours = []
    for _ in range(repeats):
        start = time.perf_counter()
        found = survival.time_dependent_scores(ds, "time", "event", matrix, times)
        ours.append(time.perf_counter() - start)
    frame = pd.DataFrame(matrix, columns=[f"t{j + 1}" for j in range(len(times))])
    frame.insert(0, "event", ds["event"].values)
    frame.insert(0, "time", ds["time"].values)
    data_path, result_path = work / f"d{n}.csv", work / f"r{n}.csv"
    frame.to_csv(data_path, index=False, float_format="%.17g")
    script = work / "score.R"
    script.write_text(R_SCRIPT)
    output = subprocess.run(
        [
            "Rscript",
            str(script),
            str(data_path),
            ",".join(f"{t:.17g}" for t in times),
            str(result_path),
            str(repeats),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    r_seconds = float(output.split()[-1])
    theirs = pd.read_csv(result_path)
    difference = {
        column: float(np.max(np.abs(found[column].to_numpy() - theirs[column].to_numpy())))
        for column in COLUMNS
    }
    return {
        "samples": n,
        "times": times,
        "cohortex_s": float(np.median(ours)),
        "riskregression_s": r_seconds,
        "max_abs_difference": difference,
        "auc": found["auc"].tolist(),
        "ipa": found["ipa"].tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 50000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args()
    if shutil.which("Rscript") is None:
        sys.exit("Rscript with r-cran-riskregression is needed (apt-get install it).")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        rows = [run_size(n, args.repeats, Path(folder)) for n in args.sizes]
    (args.out / "scores_versus_riskregression.json").write_text(json.dumps(rows, indent=1))
    print(
        "| samples | cohortex (s) | riskRegression Score (s) | ratio | largest difference "
        "(Brier, its se, IPA, AUC, its se) | AUC at the quartiles |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        gaps = ", ".join(f"{row['max_abs_difference'][c]:.1e}" for c in COLUMNS)
        print(
            f"| {row['samples']:,} | {row['cohortex_s']:.3f} | {row['riskregression_s']:.2f} | "
            f"{row['riskregression_s'] / row['cohortex_s']:.0f}× | {gaps} | "
            + ", ".join(f"{a:.3f}" for a in row["auc"])
            + " |"
        )


if __name__ == "__main__":
    main()
