"""cohortex's Kruskal–Wallis test of every gene (``de.test(test="kruskal")``) next to
``scipy.stats.kruskal`` along the samples' axis, on the same matrix in the same run: medians of
``--repeats`` runs, the ratio, GB/s of the float32 matrix, and the largest relative difference
of the statistics.

Data: ``--samples`` × ``--genes`` float32 log-normal values rounded to 2 decimals (ties, as
expression tables have) in four groups of unequal size.

Usage::

    python benchmarks/kruskal_versus_scipy.py [--samples 5000] [--genes 5000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
from scipy import stats

from cohortex import de


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--genes", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)  # the results are written after the run
    rng = np.random.default_rng(0)
    x = np.round(rng.lognormal(1.0, 0.5, (args.samples, args.genes)), 2).astype(np.float32)
    labels = rng.choice(["a", "b", "c", "d"], args.samples, p=[0.4, 0.3, 0.2, 0.1])
    x[labels == "a", : args.genes // 10] += 0.3
    de.test(x[:200, :50], labels[:200], test="kruskal")  # numba's compiled cache
    ours, theirs = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = de.test(x, labels, test="kruskal", device="cpu")
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        expected = stats.kruskal(*(x[labels == g].astype(np.float64) for g in "abcd"), axis=0)
        theirs.append(time.perf_counter() - start)
    got = result["statistic"].values
    row = {
        "samples": args.samples,
        "genes": args.genes,
        "cohortex_s": float(np.median(ours)),
        "scipy_s": float(np.median(theirs)),
        "gb_per_s": x.nbytes / 1e9 / float(np.median(ours)),
        "largest_relative_difference": float(
            np.max(np.abs(got - expected.statistic) / np.abs(expected.statistic))
        ),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    (args.out / "kruskal_versus_scipy.json").write_text(json.dumps(row, indent=1))
    print("| samples × genes | cohortex (s) | scipy (s) | ratio | GB/s | largest difference |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {row['samples']:,} × {row['genes']:,} | {row['cohortex_s']:.2f} | "
        f"{row['scipy_s']:.2f} | {row['scipy_s'] / row['cohortex_s']:.1f}× | "
        f"{row['gb_per_s']:.2f} | {row['largest_relative_difference']:.0e} |"
    )
    print(f"peak RSS {row['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
