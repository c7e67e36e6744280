"""How close the streamed randomized PCA comes to the exact SVD, against scikit-learn's default.

The evidence for the number of reads ``pca(method="streaming")`` makes of a matrix too wide for
its covariance path (``cohortex.embed._randomized.PASSES``): for each matrix, the exact SVD of
the centred float64 matrix, cohortex's streamed PCA of the float32 matrix at 3–6 reads, and
scikit-learn's ``PCA(svd_solver="randomized")`` with its defaults (seven power iterations over
the matrix in memory). Reported per method: the largest relative error of the k variances and
of the first five, and the largest principal angle (degrees) between the loadings' subspace
and the exact one for the first 5, 10 and k components.

Usage::

    python benchmarks/pca_accuracy.py [--components 20] [--out DIR]

Writes ``pca_accuracy.json`` and ``pca_accuracy.md`` into ``--out`` (default benchmarks/out).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

import cohortex.embed._pca as pca_module
import cohortex.embed._randomized as randomized_module
from cohortex import pca
from cohortex.simulate import simulate_array

READS = (3, 4, 5, 6)


def matrices() -> dict[str, np.ndarray]:
    """Expression-like float32 matrices: the simulator's, a skewed one, a real cohort's."""
    out = {}
    x, _, _ = simulate_array(4000, 3000, seed=3)
    out["simulate(4000, 3000) defaults"] = x
    x, _, _ = simulate_array(4000, 3000, modules=10, batches=3, seed=3)
    out["simulate, 10 modules, 3 batches"] = x
    x, _, _ = simulate_array(4000, 3000, modules=10, seed=5)
    out["simulate, 10 modules, not logged (expm1)"] = np.expm1(x)
    try:
        import scanpy as sc
    except ImportError:  # pragma: no cover - scanpy is a benchmark extra
        return {name: m.astype(np.float32) for name, m in out.items()}
    adata = sc.datasets.pbmc68k_reduced()
    out["pbmc68k_reduced, scaled X"] = np.asarray(adata.X)
    out["pbmc68k_reduced, raw log counts"] = np.asarray(adata.raw.X.toarray())
    return {name: m.astype(np.float32) for name, m in out.items()}


def errors(
    variances: np.ndarray, loadings: np.ndarray, exact: tuple[np.ndarray, np.ndarray]
) -> dict[str, float]:
    k = len(variances)
    relative = np.abs(variances / exact[0] - 1)
    row: dict[str, float] = {
        "variance_max": float(relative.max()),
        "variance_first5": float(relative[:5].max()),
    }
    for j in (5, 10, k):
        angle = subspace_angles(loadings[:, :j], exact[1][:, :j]).max()
        row[f"angle_{j}"] = float(np.degrees(angle))
    return row


def measure(x: np.ndarray, k: int) -> list[dict[str, Any]]:
    centred = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    exact = (singular[:k] ** 2 / (len(x) - 1), vt[:k].T)
    rows = []
    chunked = da.from_array(x, chunks=(1024, 1024))
    for reads in READS:
        randomized_module.PASSES = reads
        start = time.perf_counter()
        result = pca(chunked, k, method="streaming")
        seconds = time.perf_counter() - start
        assert result.attrs["method"] == "randomized-streaming"
        row = errors(result["explained_variance"].values, result["loadings"].values, exact)
        rows.append({"method": f"cohortex, {reads} reads", "seconds": seconds, **row})
    start = time.perf_counter()
    model = PCA(k, svd_solver="randomized", random_state=0).fit(x)
    seconds = time.perf_counter() - start
    row = errors(model.explained_variance_, model.components_.T, exact)
    rows.append({"method": "scikit-learn randomized (defaults)", "seconds": seconds, **row})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args()
    pca_module.COVARIANCE_MAX_GENES = 0  # the randomized path at any width
    k = args.components
    report: dict[str, list[dict[str, Any]]] = {}
    lines = [
        f"| matrix | method | variances, max rel. error | first 5 | angle° top 5 | top 10 | "
        f"top {k} |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, x in matrices().items():
        report[name] = measure(x, k)
        for row in report[name]:
            lines.append(
                f"| {name} {x.shape[0]} × {x.shape[1]} | {row['method']} | "
                f"{row['variance_max']:.1e} | {row['variance_first5']:.1e} | "
                f"{row['angle_5']:.1e} | {row['angle_10']:.1e} | {row[f'angle_{k}']:.1e} |"
            )
            print(lines[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pca_accuracy.json").write_text(json.dumps(report, indent=1))
    (args.out / "pca_accuracy.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
