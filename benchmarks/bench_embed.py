"""PCA and t-SNE: cohortex against scikit-learn and openTSNE on the same cohort.

Each case runs in its own subprocess (its own peak RSS). Cases:

* ``pca_zarr_all``       cohortex.pca from the store, all genes (→ streaming randomized SVD)
* ``pca_zarr_hvg``       cohortex.pca from the store, 2,000 most variable genes (→ covariance)
* ``sklearn_rand_all``   scikit-learn PCA(svd_solver="randomized") in memory, all genes
* ``sklearn_rand_hvg``   the same on the 2,000 genes cohortex selected
* ``sklearn_full_hvg``   scikit-learn PCA(svd_solver="full") on those 2,000 genes
* ``tsne_cohortex``      cohortex.tsne on the 50 PCs of ``pca_zarr_hvg``
* ``tsne_opentsne``      raw openTSNE with the same parameters on the same PCs
* ``tsne_sklearn``       scikit-learn TSNE on a stated subset of the PCs (it is much slower)

Usage::

    python benchmarks/bench_embed.py --store PATH [--out DIR] [--skip a,b] [--tsne-subset 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from _harness import peak_rss_bytes, run_cases

CASES = [
    "pca_zarr_all",
    "pca_zarr_hvg",
    "sklearn_rand_all",
    "sklearn_rand_hvg",
    "sklearn_full_hvg",
    "tsne_cohortex",
    "tsne_opentsne",
    "tsne_sklearn",
]


def run_case(case: str, store: str, scratch: Path, subset: int) -> dict:
    import numpy as np

    import cohortex
    from cohortex.app.bench import load_matrix

    extra: dict = {}
    hvg_file = scratch / "hvg.npy"
    pcs_file = scratch / "pcs.npy"
    if case.startswith("sklearn"):
        from sklearn.decomposition import PCA

        x = load_matrix(store)
        if case.endswith("hvg"):
            x = x[:, np.load(hvg_file)]
        solver = "full" if "full" in case else "randomized"
        start = time.perf_counter()
        model = PCA(50, svd_solver=solver, random_state=0).fit(x)
        model.transform(x)
        seconds = time.perf_counter() - start
        extra["explained_variance_ratio_sum"] = float(model.explained_variance_ratio_.sum())
    elif case.startswith("pca_zarr"):
        start = time.perf_counter()
        result = cohortex.pca(store, 50, genes="hvg" if case.endswith("hvg") else None)
        seconds = time.perf_counter() - start
        extra["method"] = result.attrs["method"]
        extra["explained_variance_ratio_sum"] = float(result["explained_variance_ratio"].sum())
        if case.endswith("hvg"):
            genes = list(cohortex.open_cohort(store)["gene"].values)
            position = {g: i for i, g in enumerate(genes)}
            np.save(hvg_file, np.asarray([position[g] for g in result["gene"].values]))
            np.save(pcs_file, result["scores"].values)
    else:
        pcs = np.load(pcs_file)
        if case == "tsne_sklearn":
            from sklearn.manifold import TSNE

            pcs = pcs[:subset]
            extra["samples"] = len(pcs)
            start = time.perf_counter()
            TSNE(perplexity=30, max_iter=750, random_state=0).fit_transform(pcs)
        elif case == "tsne_opentsne":
            from openTSNE import TSNE

            start = time.perf_counter()
            TSNE(
                perplexity=30, n_iter=500, random_state=0, n_jobs=-1, negative_gradient_method="fft"
            ).fit(pcs)
        else:
            start = time.perf_counter()
            cohortex.tsne(pcs, perplexity=30, n_iter=500, seed=0)
        seconds = time.perf_counter() - start
    rss = peak_rss_bytes()
    return {"case": case, "seconds": seconds, "peak_rss_bytes": rss, **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--skip", default="")
    parser.add_argument("--tsne-subset", type=int, default=5000)
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.case:
        print(json.dumps(run_case(args.case, str(args.store), args.out, args.tsne_subset)))
        return
    import cohortex

    ds = cohortex.open_cohort(args.store)
    shape = (ds.sizes["sample"], ds.sizes["gene"])
    skip = set(filter(None, args.skip.split(",")))
    rows = run_cases(
        __file__,
        CASES,
        skip,
        [
            "--store",
            str(args.store),
            "--out",
            str(args.out),
            "--tsne-subset",
            str(args.tsne_subset),
        ],
    )
    machine = {"node": platform.node(), "cpus": os.cpu_count(), "shape": list(shape)}
    (args.out / "bench_embed.json").write_text(
        json.dumps({"machine": machine, "rows": rows}, indent=2)
    )
    lines = [
        f"{shape[0]} × {shape[1]} float32, {machine['cpus']} CPUs, one run per case.",
        "",
        "| case | seconds | peak RSS GB | note |",
        "|---|---|---|---|",
    ]
    for r in rows:
        note = r.get("method", "")
        if "samples" in r:
            note = f"{r['samples']} samples"
        lines.append(
            f"| {r['case']} | {r['seconds']:.1f} | {r['peak_rss_bytes'] / 1e9:.2f} | {note} |"
        )
    (args.out / "bench_embed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
