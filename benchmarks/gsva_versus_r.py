"""cohortex's ``genesets.gsva`` next to R's GSVA (``gsva()``, GSVA 1.46), the tool a user would
otherwise pick, on the same matrix and sets in the same run: seconds of each method (GSVA with
its Gaussian kernel, ssGSEA, combined z-scores, PLAGE), peak memory, and how closely the
scores agree (the largest absolute difference; PLAGE up to each set's sign).

Data: ``--genes`` log-scale genes (means 4–10, sd 0.3–1.2) in ``--samples`` samples, 40
modules of 30 genes sharing a sample-level activity, values rounded to 3 decimals (as
microarray and log-CPM tables are written); ``--sets`` sets of 15 to 500 genes (log-uniform
sizes, as MSigDB's), a fifth of them drawn mostly from one module.

Usage::

    python benchmarks/gsva_versus_r.py [--genes 20000] [--samples 100 400] [--sets 1000]

Writes ``gsva_versus_r.json`` to ``--out`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from cohortex.genesets import GeneSets, gsva

METHODS = ("gsva", "ssgsea", "zscore", "plage")

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(GSVA))
x <- as.matrix(read.csv(args[1], row.names = 1, check.names = FALSE))
lines <- strsplit(readLines(args[2]), "\t")
sets <- lapply(lines, function(l) l[-(1:2)])
names(sets) <- vapply(lines, `[`, "", 1)
seconds <- c()
for (method in c("gsva", "ssgsea", "zscore", "plage")) {
  t0 <- proc.time()[3]
  invisible(capture.output(scores <- gsva(x, sets, method = method, verbose = FALSE)))
  seconds[method] <- proc.time()[3] - t0
  write.csv(scores, file.path(args[3], paste0(method, ".csv")))
}
cat(seconds, gc()[2, 6] + gc()[1, 6], "\n")
"""


def simulate(
    n_genes: int, n_samples: int, n_sets: int, seed: int = 0
) -> tuple[np.ndarray, list[str], GeneSets]:
    """Values (samples × genes), gene ids and the sets."""
    rng = np.random.default_rng(seed)
    genes = [f"g{j:05d}" for j in range(n_genes)]
    x = rng.normal(0.0, 1.0, (n_samples, n_genes)) * rng.uniform(0.3, 1.2, n_genes)
    x += rng.uniform(4.0, 10.0, n_genes)
    modules = rng.choice(n_genes, (40, 30), replace=False)
    for members in modules:
        x[:, members] += rng.normal(0.0, 0.8, n_samples)[:, None]
    x = np.round(x, 3)
    sizes = np.exp(rng.uniform(np.log(15), np.log(500), n_sets)).astype(int)
    sets = {}
    for s, size in enumerate(sizes):
        members = rng.choice(n_genes, size, replace=False)
        if s % 5 == 0:
            module = modules[rng.integers(40)]
            members = np.unique(np.concatenate([module[: min(size, 30)], members[: size // 2]]))
        sets[f"set{s:04d}"] = [genes[j] for j in members]
    return x, genes, GeneSets.from_dict(sets)


def cohortex_run(x: np.ndarray, genes: list[str], sets: GeneSets, method: str) -> tuple[Any, float]:
    ds = xr.Dataset(
        {"expression": (("sample", "gene"), x)},
        coords={"sample": [f"s{i:04d}" for i in range(x.shape[0])], "gene": genes},
    )
    start = time.perf_counter()
    result = gsva(ds, sets, method=method, device="cpu")
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=20000)
    parser.add_argument("--samples", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--sets", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)  # the results are written after the run
    if shutil.which("Rscript") is None:
        raise SystemExit("Rscript is needed (r-bioc-gsva).")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        script = Path(work) / "gsva.R"
        script.write_text(R_SCRIPT)
        warm_x, warm_genes, warm_sets = simulate(2000, 20, 10)
        for method in METHODS:
            cohortex_run(warm_x, warm_genes, warm_sets, method)  # numba's compiled cache
        for n in args.samples:
            x, genes, sets = simulate(args.genes, n, args.sets)
            matrix_path, sets_path = Path(work) / "x.csv", Path(work) / "sets.gmt"
            pd.DataFrame(x.T, index=genes, columns=[f"s{i:04d}" for i in range(n)]).to_csv(
                matrix_path
            )
            sets.to_gmt(sets_path)
            output = subprocess.run(
                ["Rscript", str(script), str(matrix_path), str(sets_path), work],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            r_seconds = dict(zip(METHODS, map(float, output[:4]), strict=True))
            r_peak_mb = float(output[4])
            for method in METHODS:
                result, seconds = cohortex_run(x, genes, sets, method)
                expected = pd.read_csv(Path(work) / f"{method}.csv", index_col=0)
                ours = result["expression"].to_pandas().T.loc[expected.index, expected.columns]
                got, theirs = ours.to_numpy(), expected.to_numpy()
                if method == "plage":
                    got = got * np.sign(np.sum(got * theirs, axis=1))[:, None]
                rows.append(
                    {
                        "samples": n,
                        "genes": args.genes,
                        "sets": len(expected),
                        "method": method,
                        "cohortex_s": seconds,
                        "gsva_s": r_seconds[method],
                        "gsva_peak_mb": r_peak_mb,
                        "largest_difference": float(np.max(np.abs(got - theirs))),
                    }
                )
                print(rows[-1], flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (args.out / "gsva_versus_r.json").write_text(
        json.dumps({"rows": rows, "cohortex_peak_rss_mb": peak_mb}, indent=1)
    )
    print(
        "| samples × genes, sets | method | cohortex (s) | GSVA (s) | GSVA / cohortex "
        "| largest difference |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['samples']} × {row['genes']:,}, {row['sets']:,} | {row['method']} | "
            f"{row['cohortex_s']:.2f} | {row['gsva_s']:.1f} | "
            f"{row['gsva_s'] / row['cohortex_s']:.0f}× | {row['largest_difference']:.0e} |"
        )
    print(f"cohortex peak RSS {peak_mb:.0f} MB (the whole run, R's not included)")


if __name__ == "__main__":
    main()
