"""Wilcoxon rank-sum (two groups, BH): cohortex against scipy, scanpy and illico on the same data.

Each case in its own subprocess (its own peak RSS), every tool on the same thread count. Every
tool first runs once on a small slice (every 80th sample × 64 genes): its one-off start-up in a
fresh process (numba's lazy initialisation and compiled-code cache, dask's import of
``distributed`` on its first compute, scanpy's and illico's numba functions) is timed there and
reported as ``startup_seconds``, apart from the timed call on the whole matrix. Data:

* ``--kind tied``    log1p of negative-binomial counts (few distinct values, heavy ties);
* ``--kind untied``  the simulator's log-normal floats (microarray-like, next to no ties).

Cases:

* ``cohortex_memory``  ``de.test(test="wilcoxon")`` on the in-memory float32 matrix;
* ``cohortex_zarr``    the same straight from the store (gene blocks × all samples; tied data
                       through the lazy ``normalize(store, "log1p")`` layer);
* ``scipy``            ``scipy.stats.mannwhitneyu(method="asymptotic")`` + statsmodels BH on the
                       first ``--scipy-genes`` genes, **extrapolated** linearly to all genes
                       (on the whole matrix it needs more than 24 GB);
* ``scanpy``           ``scanpy.tl.rank_genes_groups(method="wilcoxon")``;
* ``illico``           ``illico.asymptotic_wilcoxon`` (dense, one-vs-one), ``n_threads`` = CPUs.

Usage::

    python benchmarks/bench_ranks.py --kind untied --store /tmp/big/cohort.zarr
    python benchmarks/bench_ranks.py --kind tied [--samples 50000] [--genes 20000]
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


def _matrix(store: str, kind: str, rows=slice(None), genes=None):  # type: ignore[no-untyped-def]
    import numpy as np
    import zarr

    x = zarr.open_array(Path(store) / "expression", mode="r")[rows, :genes]
    if kind == "tied":
        np.log1p(x, out=x)
    return x


def run_case(case: str, store: str, kind: str, scipy_genes: int) -> dict:
    import numpy as np

    import cohortex
    from cohortex import de

    # imports stay outside every tool's timing (scanpy's takes seconds); each tool's one-off
    # start-up in the process is timed apart, on a small slice first
    if case.startswith("cohortex"):
        import cohortex.stats._cpu.rank_sums
    elif case in ("scanpy", "illico"):
        import anndata as ad
        import pandas as pd

        if case == "scanpy":
            import scanpy as sc
        else:
            import illico

    threads = os.cpu_count() or 1
    ds = cohortex.open_cohort(store)
    labels = ds["condition"].values
    folder = Path(store).parent
    extrapolated_from = None

    def wilcoxon(x, labels, scipy_genes=None):  # type: ignore[no-untyped-def]
        """One call of this case's tool on ``x`` (samples × genes)."""
        if case == "cohortex_memory":
            return de.test(x, labels, test="wilcoxon", reference="normal")
        if case == "scipy":
            from scipy import stats
            from statsmodels.stats.multitest import multipletests

            in_group = labels == "tumor"
            part = x[:, :scipy_genes].astype(np.float64)  # float32 ranks lose digits in scipy
            p = stats.mannwhitneyu(part[in_group], part[~in_group], method="asymptotic").pvalue
            multipletests(p, method="fdr_bh")
            return p
        if case == "scanpy":
            sc.tl.rank_genes_groups(
                x, "condition", groups=["tumor"], reference="normal", method="wilcoxon"
            )
            return None
        return illico.asymptotic_wilcoxon(
            x,
            is_log1p=kind == "tied",
            group_keys="condition",
            reference="normal",
            n_threads=threads,
        )

    def prepared(x, labels):  # type: ignore[no-untyped-def]
        """The tool's input (scanpy, illico: an AnnData, built outside the timing)."""
        if case in ("scanpy", "illico"):
            obs = pd.DataFrame({"condition": pd.Categorical(labels.astype(str))})
            return ad.AnnData(X=x, obs=obs)
        return x

    small_rows = slice(None, None, 80)
    if case == "cohortex_zarr":
        x_small = _matrix(store, kind, rows=small_rows, genes=64)
        start = time.perf_counter()
        de.test(x_small, labels[small_rows], test="wilcoxon", reference="normal")
        startup = time.perf_counter() - start
        start = time.perf_counter()
        source = cohortex.normalize(store, "log1p") if kind == "tied" else store
        result = de.test(source, "condition", test="wilcoxon", reference="normal")
        seconds = time.perf_counter() - start
        np.save(folder / f"ranks_{kind}_cohortex_p.npy", result["pvalue"].values)
    else:
        x = _matrix(store, kind)
        # a view, like the blocks of the timed call (the rank loop compiles one signature for
        # every layout since session 4; other tools' compiled code may not)
        small = prepared(x[small_rows, :64], labels[small_rows])
        start = time.perf_counter()
        wilcoxon(small, labels[small_rows], scipy_genes=64)
        startup = time.perf_counter() - start
        data = prepared(x, labels)
        start = time.perf_counter()
        p = wilcoxon(data, labels, scipy_genes=scipy_genes)
        seconds = time.perf_counter() - start
        if case == "scipy":
            np.save(folder / f"ranks_{kind}_scipy_p.npy", p)
            extrapolated_from = scipy_genes
    rss = peak_rss_bytes()
    row = {"case": case, "seconds": seconds, "startup_seconds": startup, "peak_rss_bytes": rss}
    if extrapolated_from:
        row["measured_seconds"] = seconds
        row["seconds"] = seconds * x.shape[1] / extrapolated_from
        row["method"] = f"extrapolated from {extrapolated_from} genes ({seconds:.1f} s)"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--kind", choices=["tied", "untied"], default="tied")
    parser.add_argument("--scipy-genes", type=int, default=500)
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--skip", default="")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each cohortex case (median reported)"
    )
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, str(args.store), args.kind, args.scipy_genes)))
        return
    import numpy as np

    import cohortex

    args.out.mkdir(parents=True, exist_ok=True)
    store = args.store or args.out / f"ranks_{args.kind}_{args.samples}x{args.genes}.zarr"
    if not (Path(store) / "zarr.json").exists():
        print(f"simulating {store} ({args.kind}) ...", flush=True)
        cohortex.simulate(
            store,
            args.samples,
            args.genes,
            distribution="negbinom" if args.kind == "tied" else "lognormal",
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
    extra = ["--store", str(store), "--kind", args.kind, "--scipy-genes", str(args.scipy_genes)]
    repeats = {"cohortex_memory": args.repeat, "cohortex_zarr": args.repeat}
    rows = run_cases(__file__, CASES, skip, extra, repeats)
    folder = Path(store).parent
    agreement = None
    mine_file, scipy_file = (folder / f"ranks_{args.kind}_{w}_p.npy" for w in ("cohortex", "scipy"))
    if mine_file.exists() and scipy_file.exists():
        reference = np.load(scipy_file)
        mine = np.load(mine_file)[: len(reference)]
        usable = (reference > 0) & (mine > 0)
        ratio = mine[usable] / reference[usable]
        agreement = float(np.nanmax(np.abs(ratio - 1)))
    ds = cohortex.open_cohort(store)
    shape = (ds.sizes["sample"], ds.sizes["gene"])
    machine = {"node": platform.node(), "cpus": os.cpu_count(), "shape": list(shape)}
    report = {
        "machine": machine,
        "kind": args.kind,
        "rows": rows,
        "max_relative_p_difference_vs_scipy": agreement,
    }
    (args.out / f"bench_ranks_{args.kind}.json").write_text(json.dumps(report, indent=2))
    mine_seconds = {r["case"]: r["seconds"] for r in rows}.get("cohortex_memory")
    lines = [
        f"Wilcoxon + BH, {shape[0]} × {shape[1]} {args.kind}, {machine['cpus']} CPUs.",
        "",
        "| case | seconds | × cohortex in memory | start-up s (first call, small slice) "
        "| peak RSS GB | note |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r['seconds'] / mine_seconds:.1f}" if mine_seconds else ""
        lines.append(
            f"| {r['case']} | {r['seconds']:.2f} | {ratio} | {r['startup_seconds']:.2f} | "
            f"{r['peak_rss_bytes'] / 1e9:.2f} | {r.get('method', '')}"
            f"{'median of ' + ', '.join(f'{t:.2f}' for t in r['runs']) if r.get('runs') else ''} |"
        )
    if agreement is not None:
        lines.append(f"\nmax relative difference of p-values vs scipy: {agreement:.1e}")
    (args.out / f"bench_ranks_{args.kind}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
