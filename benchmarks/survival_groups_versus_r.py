"""cohortex's comparisons of survival between sample groups next to R, the tool a user would
otherwise pick, on the same outcomes in the same run: the seconds of each and the largest
relative difference between their numbers.

- ``survival.compare_groups`` (4 groups within 2 strata) against ``survdiff``;
- ``survival.median_survival`` (medians, limits, restricted means) against
  ``summary(survfit(...), rmean = "common")$table``;
- ``survival.cumulative_incidence`` (2 causes, 4 groups, Gray's tests) against
  ``cmprsk::cuminc``;
- ``survival.concordance(weights=)`` against ``concordance(..., weights)``.

Outcomes: exponential event times of two competing causes whose hazards differ by group,
uniform censoring, times rounded to 1/100 (ties), non-integer case weights.

Usage::

    python benchmarks/survival_groups_versus_r.py [--sizes 2000 20000 100000] [--repeats 3]

Writes ``survival_groups_versus_r.json`` to ``--out`` and prints a Markdown table.
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

from cohortex import survival

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages({library(survival); library(cmprsk)})
d <- read.csv(args[1])
repeats <- as.integer(args[3])
timed <- function(f) {
  s <- numeric(repeats)
  for (r in seq_len(repeats)) { t0 <- proc.time()[3]; out <- f(); s[r] <- proc.time()[3] - t0 }
  list(out = out, seconds = median(s))
}
diff <- timed(function() survdiff(Surv(time, event) ~ group + strata(stratum), d))
tab <- timed(function() summary(survfit(Surv(time, event) ~ group, d), rmean = "common")$table)
inc <- timed(function() cuminc(d$time, d$status, d$group))
con <- timed(function() concordance(Surv(time, event) ~ risk, d, weights = weight,
                                     reverse = TRUE))
curve <- inc$out[["a 1"]]
after <- seq(3, length(curve$time) - 1, by = 2)
write.csv(data.frame(chisq = diff$out$chisq, median = tab$out[, "median"],
                     rmean = tab$out[, "rmean"], gray1 = inc$out$Tests[1, "stat"],
                     gray2 = inc$out$Tests[2, "stat"], cif_last = tail(curve$est[after], 1),
                     cif_var_last = tail(curve$var[after], 1),
                     concordance = con$out$concordance, concordance_se = sqrt(con$out$var)),
          args[2], row.names = FALSE)
cat(diff$seconds, tab$seconds, inc$seconds, con$seconds, "\n")
"""


def outcomes(n: int, seed: int = 0) -> pd.DataFrame:
    """Two competing causes, hazards by group, uniform censoring, times to 1/100."""
    rng = np.random.default_rng(seed)
    group = rng.choice(list("abcd"), n)
    shift = pd.Series({"a": 0.0, "b": 0.2, "c": 0.4, "d": 0.6})[group].to_numpy()
    first = rng.exponential(1.0 / (0.3 * np.exp(shift)))
    second = rng.exponential(1.0 / 0.2, n)
    censor = rng.uniform(0.5, 8.0, n)
    time = np.round(np.minimum.reduce([first, second, censor]), 2) + 0.01
    status = np.where(censor < np.minimum(first, second), 0, np.where(first < second, 1, 2))
    return pd.DataFrame(
        {
            "time": time,
            "event": (status > 0).astype(int),
            "status": status,
            "group": group,
            "stratum": rng.choice(["s1", "s2"], n),
            "risk": shift + rng.normal(0.0, 1.0, n),
            "weight": rng.uniform(0.5, 2.0, n),
        }
    )


def cohortex_run(d: pd.DataFrame, repeats: int) -> tuple[dict, list[float]]:
    def timed(f):  # type: ignore[no-untyped-def]
        f()  # compile first
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = f()
            seconds.append(time.perf_counter() - start)
        return out, float(np.median(seconds))

    diff, s1 = timed(
        lambda: survival.compare_groups(
            None, d["time"], d["event"], d["group"], strata=d["stratum"]
        )
    )
    table, s2 = timed(lambda: survival.median_survival(None, d["time"], d["event"], by=d["group"]))
    inc, s3 = timed(
        lambda: survival.cumulative_incidence(None, d["time"], d["status"], by=d["group"])
    )
    con, s4 = timed(
        lambda: survival.concordance(None, d["time"], d["event"], d["risk"], weights=d["weight"])
    )
    curve = inc.curves[(inc.curves["group"] == "a") & (inc.curves["cause"] == "1")]
    numbers = {
        "chisq": [diff.statistic],
        "median": table["median"].tolist(),
        "rmean": table["rmean"].tolist(),
        "gray1": [inc.tests.loc["1", "statistic"]],
        "gray2": [inc.tests.loc["2", "statistic"]],
        "cif_last": [curve["estimate"].iloc[-1]],
        "cif_var_last": [curve["variance"].iloc[-1]],
        "concordance": [con.concordance],
        "concordance_se": [con.std_err],
    }
    return numbers, [s1, s2, s3, s4]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 100000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)  # the results are written after the run
    if shutil.which("Rscript") is None:
        raise SystemExit("Rscript is needed (r-cran-survival, r-cran-cmprsk).")
    names = ["survdiff", "survfit table", "cuminc + Gray", "weighted concordance"]
    rows = []
    with tempfile.TemporaryDirectory() as work:
        script = Path(work) / "r.R"
        script.write_text(R_SCRIPT)
        for n in args.sizes:
            d = outcomes(n)
            data, found = Path(work) / "d.csv", Path(work) / "r.csv"
            d.to_csv(data, index=False)
            r_seconds = [
                float(v)
                for v in subprocess.run(
                    ["Rscript", str(script), str(data), str(found), str(args.repeats)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.split()
            ]
            expected = pd.read_csv(found)
            numbers, seconds = cohortex_run(d, args.repeats)
            gap = max(
                float(
                    np.max(
                        np.abs(np.asarray(v) - expected[k].to_numpy()[: len(v)])
                        / np.maximum(np.abs(expected[k].to_numpy()[: len(v)]), 1e-300)
                    )
                )
                for k, v in numbers.items()
            )
            for name, ours, theirs in zip(names, seconds, r_seconds, strict=True):
                rows.append(
                    {"n": n, "step": name, "cohortex_s": ours, "r_s": theirs, "max_rel_diff": gap}
                )
    (args.out / "survival_groups_versus_r.json").write_text(json.dumps(rows, indent=1))
    print("| samples | step | cohortex s | R s | R / cohortex | largest relative difference |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['n']:,} | {row['step']} | {row['cohortex_s']:.4f} | {row['r_s']:.3f} | "
            f"{row['r_s'] / row['cohortex_s']:.1f}× | {row['max_rel_diff']:.1e} |"
        )


if __name__ == "__main__":
    main()
