"""cohortex's lasso Cox path (``survival.coxnet``) next to R's glmnet on the same cohort: time
of the path and of the cross-validated choice, and how far each solution is from optimal.

glmnet (r-cran-glmnet) is the tool a user would otherwise pick; it runs here through
``Rscript`` on the same matrix (written as doubles), in the same run. Each solution's
distance from optimal is the largest violation of the lasso's KKT conditions along the path,
relative to λ, computed here from the exact Breslow gradient of both paths' coefficients.

Cases (``simulate(survival_genes=10, log_hr=0.5)``, float32 store values):

- ``top200``: 2,000 samples × the 200 genes of largest univariate Cox |z| (what
  ``predict.cross_validate_survival(model="lasso")`` fits in each fold): the path to 1% of
  the largest penalty and a 10-fold cross-validation (cv.glmnet with the same folds and the
  path's lambdas).
- ``wide``: 400 samples × 5,000 genes, the whole default path (glmnet's defaults).
- ``store`` (``--large``, minutes): 2,000 samples × 20,000 genes, the whole path to 1% of
  the largest penalty, once each.

Usage::

    python benchmarks/coxnet_versus_glmnet.py [--repeats 3] [--large] [--out benchmarks/out]

Writes ``coxnet_versus_glmnet.json`` and prints a Markdown table.
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
from sklearn.model_selection import StratifiedKFold

from cohortex import open_cohort, simulate, survival

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(glmnet))
n <- as.integer(args[2]); p <- as.integer(args[3]); ratio <- as.numeric(args[4])
x <- matrix(readBin(args[1], "double", n * p), n, p)
y <- as.matrix(read.csv(args[5], header = FALSE)); colnames(y) <- c("time", "status")
folds <- scan(args[6], quiet = TRUE)
repeats <- as.integer(args[8])
path_times <- cv_times <- numeric(repeats)
for (r in seq_len(repeats)) {
  t0 <- proc.time()[3]; fit <- glmnet(x, y, family = "cox", lambda.min.ratio = ratio)
  path_times[r] <- proc.time()[3] - t0
  if (length(folds) == n) {
    t0 <- proc.time()[3]
    cv <- cv.glmnet(x, y, family = "cox", foldid = folds, lambda = fit$lambda)
    cv_times[r] <- proc.time()[3] - t0
  }
}
write.csv(as.matrix(fit$beta), args[7], row.names = FALSE)
cat(median(path_times), if (length(folds) == n) median(cv_times) else NA,
    length(fit$lambda), if (length(folds) == n) cv$lambda.min else NA,
    tail(fit$dev.ratio, 1), "\n")
"""


def kkt_gap(x: np.ndarray, time_: np.ndarray, event: np.ndarray, lambdas, coefficients) -> float:
    """The largest violation of the lasso's optimality conditions along a path, over λ
    (Breslow's gradient: each event against the samples with a time at or after its own)."""
    order = np.argsort(-time_, kind="stable")
    xs, e, t = x[order].astype(np.float64), event[order] > 0, time_[order]
    stops = np.searchsorted(-t, -t, side="right")[e]  # the end of each event's risk set
    scale = xs.std(axis=0)
    worst = 0.0
    for penalty, beta in zip(lambdas, coefficients, strict=True):
        eta = xs @ beta
        ratio = np.exp(eta - eta.max())
        sums = np.cumsum(ratio)
        weighted = np.cumsum(ratio[:, None] * xs, axis=0)
        gradient = xs[e].sum(axis=0) - (weighted[stops - 1] / sums[stops - 1, None]).sum(axis=0)
        gradient /= x.shape[0] * scale
        standard = beta * scale
        on = standard != 0
        stationary = np.abs(gradient[on] - penalty * np.sign(standard[on])).max(initial=0)
        excess = (np.abs(gradient[~on]) - penalty).max(initial=0)
        worst = max(worst, stationary / penalty, excess / penalty)
    return worst


def run_case(name: str, x, time_, event, ratio: float, cv: bool, repeats: int, work: Path) -> dict:
    labels = np.zeros(event.size, dtype=np.int64)
    for fold, (_, held_out) in enumerate(
        StratifiedKFold(10, shuffle=True, random_state=0).split(x, event)
    ):
        labels[held_out] = fold
    survival.coxnet(x[:40, :5], time_[:40], event[:40], folds=0, n_lambdas=3)  # compile first
    path_times, cv_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        fit = survival.coxnet(x, time_, event, folds=0, lambda_min_ratio=ratio)
        path_times.append(time.perf_counter() - start)
        lambdas = fit.path["lambda"].to_numpy()
        if cv:
            start = time.perf_counter()
            model = survival.coxnet(x, time_, event, folds=labels, lambdas=lambdas)
            cv_times.append(time.perf_counter() - start)
    x.astype(np.float64).T.tofile(work / "x.bin")
    np.savetxt(work / "y.csv", np.c_[time_, event], delimiter=",")
    np.savetxt(work / "folds.txt", (labels + 1) if cv else np.zeros(1))
    (work / "run.R").write_text(R_SCRIPT)
    found = subprocess.run(
        [
            "Rscript",
            str(work / "run.R"),
            str(work / "x.bin"),
            str(x.shape[0]),
            str(x.shape[1]),
            str(ratio),
            str(work / "y.csv"),
            str(work / "folds.txt"),
            str(work / "beta.csv"),
            str(repeats),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    r_beta = np.loadtxt(work / "beta.csv", delimiter=",", skiprows=1, ndmin=2).T
    r_lambdas = lambdas[: r_beta.shape[0]] if r_beta.shape[0] <= lambdas.size else None
    row = {
        "case": name,
        "samples": x.shape[0],
        "genes": x.shape[1],
        "cohortex_path_s": float(np.median(path_times)),
        "glmnet_path_s": float(found[0]),
        "lambdas": [int(lambdas.size), int(found[2])],
        "cohortex_kkt": kkt_gap(x, time_, event, lambdas, fit.coefficients),
        "final_nonzero": [int(fit.path["nonzero"].iloc[-1]), int(np.count_nonzero(r_beta[-1]))],
        "final_dev_ratio": [float(fit.path["dev_ratio"].iloc[-1]), float(found[4])],
    }
    if r_lambdas is not None:
        row["glmnet_kkt"] = kkt_gap(x, time_, event, r_lambdas, r_beta)
    if cv:
        row.update(
            cohortex_cv_s=float(np.median(cv_times)),
            glmnet_cv_s=float(found[1]),
            lambda_min=[model.lambda_min, float(found[3])],
        )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large", action="store_true", help="add the 2,000 × 20,000 path")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args()
    if shutil.which("Rscript") is None:
        sys.exit("Rscript with r-cran-glmnet is needed (apt-get install r-cran-glmnet).")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        simulate(work / "a.zarr", 2000, 5000, survival_genes=10, log_hr=0.5, seed=3, progress=False)
        ds = open_cohort(work / "a.zarr")
        time_, event = ds["time"].values, ds["event"].values.astype(np.float64)
        top = survival.cox(ds, "time", "event")["statistic"].to_series().abs().nlargest(200)
        x = ds["expression"].sel(gene=list(top.index)).values
        rows.append(run_case("top200", x, time_, event, 0.01, True, args.repeats, work))
        wide = ds["expression"].values[:400]
        rows.append(
            run_case("wide", wide, time_[:400], event[:400], 0.01, False, args.repeats, work)
        )
        if args.large:
            simulate(
                work / "b.zarr", 2000, 20000, survival_genes=10, log_hr=0.5, seed=3, progress=False
            )
            ds = open_cohort(work / "b.zarr")
            time_, event = ds["time"].values, ds["event"].values.astype(np.float64)
            x = ds["expression"].values
            rows.append(run_case("store", x, time_, event, 0.01, False, 1, work))
    (args.out / "coxnet_versus_glmnet.json").write_text(json.dumps(rows, indent=1))
    print(
        "| case | samples × genes | path cohortex / glmnet (s) | CV cohortex / glmnet (s) | "
        "KKT gap cohortex / glmnet (× λ) | λ_min cohortex / glmnet | "
        "last penalty's genes, dev ratio cohortex / glmnet |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        cv = (
            f"{row['cohortex_cv_s']:.2f} / {row['glmnet_cv_s']:.2f}"
            if "glmnet_cv_s" in row
            else "–"
        )
        choice = "–"
        if "lambda_min" in row:
            choice = f"{row['lambda_min'][0]:.4g} / {row['lambda_min'][1]:.4g}"
        print(
            f"| {row['case']} | {row['samples']} × {row['genes']} | "
            f"{row['cohortex_path_s']:.2f} / {row['glmnet_path_s']:.2f} | {cv} | "
            f"{row['cohortex_kkt']:.1e} / {row.get('glmnet_kkt', float('nan')):.1e} | "
            f"{choice} | {row['final_nonzero'][0]}, {row['final_dev_ratio'][0]:.3f} / "
            f"{row['final_nonzero'][1]}, {row['final_dev_ratio'][1]:.3f} |"
        )


if __name__ == "__main__":
    main()
