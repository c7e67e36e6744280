"""Welch t-test + Benjamini–Hochberg: cohortex against scipy/statsmodels and scanpy.

Every case runs in its own subprocess on the same cohort, so each reports its own peak RSS
(``ru_maxrss``) and time; the data are loaded before the clock starts, except for the
from-Zarr cases, where reading is the point. Cases:

* ``memory_pass``  one streaming pass over the in-memory matrix (``X.sum(axis=0)``): the limit;
* ``cohortex_memory``  ``cohortex.de.test`` on the in-memory NumPy matrix;
* ``scipy``  ``scipy.stats.ttest_ind(equal_var=False)`` + ``statsmodels`` ``fdr_bh``;
* ``scanpy``  ``scanpy.tl.rank_genes_groups(method="t-test")`` (Welch, BH);
* ``zarr_read``  reading the store once through Dask (a per-gene sum): the Zarr limit;
* ``cohortex_zarr``  ``cohortex.de.test`` straight from the store.

Usage::

    python benchmarks/bench_de.py [--samples 50000] [--genes 20000] [--repeats 3]
                                  [--store PATH] [--out DIR] [--skip scanpy,scipy]

Writes ``bench_de.json`` and ``bench_de.md`` into ``--out`` (default benchmarks/out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from _harness import peak_rss_bytes, run_cases

CASES = ["memory_pass", "cohortex_memory", "scipy", "scanpy", "zarr_read", "cohortex_zarr"]


def _load(store: str):
    import cohortex
    from cohortex.app.bench import load_matrix

    ds = cohortex.open_cohort(store)
    x = load_matrix(store)  # through the store API, one allocation
    tumor = ds["condition"].values == "tumor"
    return ds, x, tumor


def run_case(case: str, store: str, repeats: int) -> dict:
    """Run one case in this process; return seconds (median), all times and peak RSS."""
    import numpy as np

    times: list[float] = []
    extra: dict = {}
    if case in ("zarr_read", "cohortex_zarr"):
        import cohortex
        from cohortex import de

        for _ in range(repeats):
            start = time.perf_counter()
            if case == "zarr_read":
                cohortex.open_cohort(store)["expression"].data.sum(axis=0).compute()
            else:
                result = de.test(store, "condition", reference="normal")
            times.append(time.perf_counter() - start)
        if case == "cohortex_zarr":
            np.save(Path(store).parent / "cohortex_zarr_p.npy", result["pvalue"].values)
    else:
        ds, x, tumor = _load(store)
        labels = ds["condition"].values
        if case == "memory_pass":
            for _ in range(repeats):
                start = time.perf_counter()
                x.sum(axis=0)
                times.append(time.perf_counter() - start)
        elif case == "cohortex_memory":
            from cohortex import de

            for _ in range(repeats):
                start = time.perf_counter()
                result = de.test(x, labels, reference="normal", scale="log2")
                times.append(time.perf_counter() - start)
            np.save(Path(store).parent / "cohortex_memory_p.npy", result["pvalue"].values)
        elif case == "scipy":
            from scipy import stats
            from statsmodels.stats.multitest import multipletests

            start = time.perf_counter()
            p = stats.ttest_ind(x[tumor], x[~tumor], equal_var=False).pvalue
            multipletests(p, method="fdr_bh")
            times.append(time.perf_counter() - start)
            np.save(Path(store).parent / "scipy_p.npy", p)
            # the reference on the float64 values (in gene blocks), for the agreement figure
            p64 = np.concatenate(
                [
                    stats.ttest_ind(
                        x[tumor, g : g + 1000].astype(np.float64),
                        x[~tumor, g : g + 1000].astype(np.float64),
                        equal_var=False,
                    ).pvalue
                    for g in range(0, x.shape[1], 1000)
                ]
            )
            np.save(Path(store).parent / "scipy64_p.npy", p64)
        elif case == "scanpy":
            import anndata as ad
            import scanpy as sc

            adata = ad.AnnData(X=x, obs={"condition": labels.astype(str)})
            adata.obs["condition"] = adata.obs["condition"].astype("category")
            start = time.perf_counter()
            sc.tl.rank_genes_groups(
                adata, "condition", groups=["tumor"], reference="normal", method="t-test"
            )
            times.append(time.perf_counter() - start)
    rss = peak_rss_bytes()
    return {
        "case": case,
        "seconds": statistics.median(times),
        "times": times,
        "peak_rss_bytes": rss,
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--store", type=Path, default=None, help="reuse a simulated store")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--skip", default="", help="cases to skip, comma-separated")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)  # internal: one case
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, str(args.store), args.repeats)))
        return

    import numpy as np

    import cohortex

    args.out.mkdir(parents=True, exist_ok=True)
    store = args.store or args.out / f"de_{args.samples}x{args.genes}.zarr"
    if not (Path(store) / "zarr.json").exists():
        print(f"simulating {store} ...", flush=True)
        cohortex.simulate(store, args.samples, args.genes, n_de=0.05, seed=0, progress=False)
    ds = cohortex.open_cohort(store)
    n_samples, n_genes = ds.sizes["sample"], ds.sizes["gene"]
    matrix_bytes = n_samples * n_genes * 4
    skip = set(filter(None, args.skip.split(",")))
    rows = run_cases(__file__, CASES, skip, ["--store", str(store), "--repeats", str(args.repeats)])
    for row in rows:
        row["gbps"] = matrix_bytes / row["seconds"] / 1e9
    by_case = {r["case"]: r for r in rows}
    ratios = {}
    if "cohortex_memory" in by_case:
        mine = by_case["cohortex_memory"]["seconds"]
        if "memory_pass" in by_case:
            ratios["cohortex_memory / memory_pass"] = mine / by_case["memory_pass"]["seconds"]
        for anchor in ("scipy", "scanpy"):  # speed-ups
            if anchor in by_case:
                ratios[f"{anchor} / cohortex_memory"] = by_case[anchor]["seconds"] / mine
    if "cohortex_zarr" in by_case and "zarr_read" in by_case:
        ratios["cohortex_zarr / zarr_read"] = (
            by_case["cohortex_zarr"]["seconds"] / by_case["zarr_read"]["seconds"]
        )
    agreement = None
    folder = Path(store).parent
    if (folder / "scipy64_p.npy").exists() and (folder / "cohortex_memory_p.npy").exists():
        reference = np.load(folder / "scipy64_p.npy")
        mine = np.load(folder / "cohortex_memory_p.npy")
        with np.errstate(divide="ignore", invalid="ignore"):  # p = 0 on both sides gives 0/0
            agreement = float(np.nanmax(np.abs(mine / reference - 1)))
    machine = {
        "node": platform.node(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "device": "cpu",
        "shape": [n_samples, n_genes],
    }
    report = {
        "machine": machine,
        "rows": rows,
        "ratios": ratios,
        "max_relative_p_difference_vs_scipy_float64": agreement,
    }
    (args.out / "bench_de.json").write_text(json.dumps(report, indent=2))
    lines = [
        f"Welch + BH, {n_samples} × {n_genes} float32 ({matrix_bytes / 1e9:.1f} GB), "
        f"{machine['cpus']} CPUs; cohortex cases are medians of {args.repeats} runs.",
        "",
        "| case | seconds | GB/s | peak RSS GB |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['seconds']:.2f} | {r['gbps']:.2f} | "
            f"{r['peak_rss_bytes'] / 1e9:.2f} |"
        )
    lines.append("")
    for name, value in ratios.items():
        lines.append(f"- {name}: {value:.2f}×")
    if agreement is not None:
        lines.append(f"- max relative difference of p-values vs scipy (float64): {agreement:.1e}")
    (args.out / "bench_de.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
