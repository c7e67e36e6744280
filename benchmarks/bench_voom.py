"""voom + the weighted linear model: cohortex against R's limma, and against its own
unweighted fit on the same data.

Cases, each in a fresh process (its peak RSS is its own):

* ``voom`` — ``de.voom(store, "~ condition", norm_factors="tmm")``: TMM factors (three passes
  over the counts), library sizes, the ordinary fit of log-CPM, R's lowess;
* ``weighted fit`` — ``de.fit`` on that result (its weights: one more pass, the weights
  computed chunk by chunk from the counts);
* ``unweighted fit`` — ``de.fit`` on the same voom log-CPM without the weights (the baseline:
  target weighted ≤ 3× unweighted);
* ``limma (R)`` — ``voom(calcNormFactors(DGEList(counts)), design)``, ``lmFit``, ``eBayes`` on the
  first ``--r-samples`` samples, timed inside R and extrapolated linearly to the whole cohort
  (marked as such), with cohortex on the same slice in memory for a like-for-like ratio.

Usage::

    python benchmarks/bench_voom.py --store COUNTS.zarr [--r-samples 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = r"""
import json, sys, time
import numpy as np
import cohortex
from cohortex import de
from cohortex.app.bench import peak_rss_bytes
store, case = sys.argv[1], sys.argv[2]
start = time.perf_counter()
if case == "slice":
    n = int(sys.argv[3])
    ds = cohortex.open_cohort(store).isel(sample=slice(0, n)).load()
    v = de.voom(ds, "~ condition", norm_factors="tmm")
    result = de.fit(v, "~ condition")
    result["pvalue"].values
else:
    v = de.voom(store, "~ condition", norm_factors="tmm")
    if case == "voom":
        pass
    elif case == "weighted":
        start = time.perf_counter()
        result = de.fit(v, "~ condition")
    else:
        start = time.perf_counter()
        result = de.fit(v.drop_vars("weights"), "~ condition")
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_rss": peak_rss_bytes()}))
"""

R_SCRIPT = r"""
suppressPackageStartupMessages({library(limma); library(edgeR)})
args <- commandArgs(trailingOnly = TRUE)
n_samples <- as.integer(args[2]); n_genes <- as.integer(args[3])
counts <- matrix(readBin(args[1], "double", n_samples * n_genes), n_genes, n_samples)
group <- factor(readLines(args[4]))
design <- model.matrix(~ group)
elapsed <- system.time({
  v <- voom(calcNormFactors(DGEList(counts)), design)
  fit <- eBayes(lmFit(v, design))
})[["elapsed"]]
cat(elapsed, "\n")
"""


def _child(store: Path, case: str, *extra: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(store), case, *extra],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _r_limma(store: Path, n_samples: int) -> float | None:
    if subprocess.run(
        ["Rscript", "-e", "library(limma); library(edgeR)"], capture_output=True
    ).returncode:
        return None
    import cohortex

    ds = cohortex.open_cohort(store).isel(sample=slice(0, n_samples))
    counts = np.asarray(ds["expression"].values, dtype=np.float64)  # samples × genes
    with tempfile.TemporaryDirectory() as folder:
        matrix = Path(folder) / "counts.bin"
        counts.tofile(matrix)  # read by R column-major as genes × samples
        labels = Path(folder) / "labels.txt"
        labels.write_text("\n".join(map(str, ds["condition"].values)) + "\n")
        script = Path(folder) / "voom.R"
        script.write_text(R_SCRIPT)
        done = subprocess.run(
            [
                "Rscript",
                str(script),
                str(matrix),
                str(counts.shape[0]),
                str(counts.shape[1]),
                str(labels),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    return float(done.stdout.split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, required=True, help="a counts store")
    parser.add_argument("--r-samples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    import cohortex

    ds = cohortex.open_cohort(args.store)
    n_samples, n_genes = ds.sizes["sample"], ds.sizes["gene"]
    rows: dict[str, dict[str, object]] = {}
    for case in ("voom", "weighted", "unweighted"):
        runs = [_child(args.store, case) for _ in range(args.repeats)]
        rows[case] = {
            "seconds": float(np.median([r["seconds"] for r in runs])),
            "runs": [round(r["seconds"], 2) for r in runs],
            "peak_rss_gb": max(r["peak_rss"] for r in runs) / 1e9,
        }
        print(case, rows[case], flush=True)
    slice_runs = [_child(args.store, "slice", str(args.r_samples)) for _ in range(args.repeats)]
    r_seconds = [_r_limma(args.store, args.r_samples) for _ in range(args.repeats)]
    scale = n_samples / args.r_samples
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "store": str(args.store),
        "shape": [n_samples, n_genes],
        "cases": rows,
        "weighted_over_unweighted": rows["weighted"]["seconds"] / rows["unweighted"]["seconds"],
        "slice": {
            "samples": args.r_samples,
            "cohortex_seconds": float(np.median([r["seconds"] for r in slice_runs])),
            "limma_seconds": None if None in r_seconds else float(np.median(r_seconds)),
            "limma_extrapolated_seconds": None
            if None in r_seconds
            else float(np.median(r_seconds)) * scale,
        },
    }
    (args.out / "bench_voom.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
