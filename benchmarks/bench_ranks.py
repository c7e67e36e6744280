"""Wilcoxon rank-sum (two groups, BH): cohortex against scipy and scanpy on the same cohort.

Each case in its own subprocess (its own peak RSS). Cases:

* ``cohortex_memory``  ``de.test(test="wilcoxon")`` on the in-memory matrix;
* ``cohortex_zarr``    the same straight from the store (gene blocks × all samples);
* ``scipy``            ``scipy.stats.mannwhitneyu(method="asymptotic")`` + statsmodels BH;
* ``scanpy``           ``scanpy.tl.rank_genes_groups(method="wilcoxon")``;
* ``illico``           illico's asymptotic MWU, where the package is installed.

Usage::

    python benchmarks/bench_ranks.py [--samples 50000] [--genes 2000] [--store PATH] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from _harness import peak_rss_bytes, run_cases

CASES = ["cohortex_memory", "cohortex_zarr", "scipy", "scanpy", "illico"]


def run_case(case: str, store: str) -> dict:
    import numpy as np
    import zarr

    import cohortex
    from cohortex import de

    ds = cohortex.open_cohort(store)
    labels = ds["condition"].values
    tumor = labels == "tumor"
    if case == "cohortex_zarr":
        start = time.perf_counter()
        result = de.test(store, "condition", test="wilcoxon", reference="normal")
        seconds = time.perf_counter() - start
        np.save(Path(store).parent / "ranks_cohortex_p.npy", result["pvalue"].values)
    else:
        x = zarr.open_array(Path(store) / "expression", mode="r")[...]
        start = time.perf_counter()
        if case == "cohortex_memory":
            de.test(x, labels, test="wilcoxon", reference="normal")
        elif case == "scipy":
            from scipy import stats
            from statsmodels.stats.multitest import multipletests

            p = stats.mannwhitneyu(x[tumor], x[~tumor], method="asymptotic").pvalue
            multipletests(p, method="fdr_bh")
            np.save(Path(store).parent / "ranks_scipy_p.npy", p)
        elif case == "scanpy":
            import anndata as ad
            import scanpy as sc

            adata = ad.AnnData(X=x, obs={"condition": labels.astype(str)})
            adata.obs["condition"] = adata.obs["condition"].astype("category")
            sc.tl.rank_genes_groups(
                adata, "condition", groups=["tumor"], reference="normal", method="wilcoxon"
            )
        else:
            import illico  # noqa: F401  (optional anchor)

            raise SystemExit("illico is installed but its call is not wired in yet")
        seconds = time.perf_counter() - start
    rss = peak_rss_bytes()
    return {"case": case, "seconds": seconds, "peak_rss_bytes": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--genes", type=int, default=2_000)
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--skip", default="")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, str(args.store))))
        return
    import numpy as np

    import cohortex

    args.out.mkdir(parents=True, exist_ok=True)
    store = args.store or args.out / f"ranks_{args.samples}x{args.genes}.zarr"
    if not (Path(store) / "zarr.json").exists():
        print(f"simulating {store} (negative-binomial counts: heavy ties) ...", flush=True)
        cohortex.simulate(
            store,
            args.samples,
            args.genes,
            distribution="negbinom",
            library_size=2e5,
            n_de=0.05,
            seed=0,
            progress=False,
        )
    skip = set(filter(None, args.skip.split(",")))
    try:
        import illico  # noqa: F401
    except ImportError:
        print("illico is not installed; skipped", flush=True)
        skip.add("illico")
    rows = run_cases(__file__, CASES, skip, ["--store", str(store)])
    folder = Path(store).parent
    agreement = None
    if (folder / "ranks_scipy_p.npy").exists() and (folder / "ranks_cohortex_p.npy").exists():
        mine = np.load(folder / "ranks_cohortex_p.npy")
        reference = np.load(folder / "ranks_scipy_p.npy")
        usable = (reference > 0) & (mine > 0)  # float32 scipy underflows to 0 first
        ratio = mine[usable] / reference[usable]
        agreement = float(np.nanmax(np.abs(ratio - 1)))
    ds = cohortex.open_cohort(store)
    shape = (ds.sizes["sample"], ds.sizes["gene"])
    machine = {"node": platform.node(), "cpus": os.cpu_count(), "shape": list(shape)}
    report = {"machine": machine, "rows": rows, "max_relative_p_difference_vs_scipy": agreement}
    (args.out / "bench_ranks.json").write_text(json.dumps(report, indent=2))
    lines = [
        f"Wilcoxon + BH, {shape[0]} × {shape[1]} counts, {machine['cpus']} CPUs.",
        "",
        "| case | seconds | peak RSS GB |",
        "|---|---|---|",
    ]
    lines += [
        f"| {r['case']} | {r['seconds']:.2f} | {r['peak_rss_bytes'] / 1e9:.2f} |" for r in rows
    ]
    if agreement is not None:
        lines.append(f"\nmax relative difference of p-values vs scipy: {agreement:.1e}")
    (args.out / "bench_ranks.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
