"""What the benchmarks against R share: the simulated cohorts and running R."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr


def log_cohort(x: np.ndarray, **sample_variables: np.ndarray) -> xr.Dataset:
    """Log-scale values (samples × genes) as a cohort, samples ``s0000`` …, genes ``g00000`` …"""
    n_samples, n_genes = x.shape
    return xr.Dataset(
        {
            "expression": (("sample", "gene"), x),
            **{name: ("sample", values) for name, values in sample_variables.items()},
        },
        coords={
            "sample": [f"s{i:04d}" for i in range(n_samples)],
            "gene": [f"g{j:05d}" for j in range(n_genes)],
        },
        attrs={"scale": "log2"},
    )


def require_rscript(package: str) -> None:
    """Stop with the Debian package to install where R is missing."""
    if shutil.which("Rscript") is None:
        raise SystemExit(f"Rscript is needed ({package}).")


def run_r(script: str, work: Path, *arguments: str) -> list[str]:
    """Run an R script (its text) in ``work`` with arguments; the words it prints."""
    path = work / "benchmark.R"
    path.write_text(script)
    return subprocess.run(
        ["Rscript", str(path), *arguments], check=True, capture_output=True, text=True
    ).stdout.split()


def negative_binomial_counts(
    n_genes: int, n_samples: int, seed: int = 0
) -> tuple[np.ndarray, pd.DataFrame]:
    """Counts (samples × genes) and the samples' condition and batch: means log-normal
    around 200 reads, dispersions 0.02 + 1/mean with gene noise, two conditions of equal
    size and two batches, 10% of the genes changed by 2^N(0, 1), library sizes varying by 0.3
    on the log scale, one count in a thousand genes made an outlier (× 30)."""
    rng = np.random.default_rng(seed)
    condition = np.repeat(["a", "b"], [n_samples // 2, n_samples - n_samples // 2])
    batch = np.tile(["x", "y"], n_samples)[:n_samples]
    level = np.exp(rng.normal(np.log(200.0), 1.5, n_genes))
    effect = np.where(rng.random(n_genes) < 0.1, rng.normal(0.0, 1.0, n_genes), 0.0)
    depth = np.exp(rng.normal(0.0, 0.3, n_samples))
    mu = level[None, :] * depth[:, None] * 2.0 ** (effect[None, :] * (condition == "b")[:, None])
    mu *= np.where(batch == "y", 1.2, 1.0)[:, None]
    dispersion = (0.02 + 1.0 / level) * np.exp(rng.normal(0.0, 0.5, n_genes))
    counts = rng.negative_binomial(1.0 / dispersion, 1.0 / (1.0 + mu * dispersion))
    outliers = rng.choice(n_genes, n_genes // 1000, replace=False)
    counts[rng.integers(0, n_samples, outliers.size), outliers] *= 30
    samples = pd.DataFrame(
        {"condition": condition, "batch": batch}, index=[f"s{i:04d}" for i in range(n_samples)]
    )
    return counts.astype(np.float64), samples


def transcript_lengths(condition: np.ndarray, n_genes: int, seed: int = 1) -> np.ndarray:
    """Average transcript lengths (samples × genes), two decimals (exact in a CSV):
    log-normal around 1,500 per gene, 0.15 from sample to sample, a tenth of the genes
    switching isoforms between the conditions (× e^N(0, 0.5) in condition b)."""
    rng = np.random.default_rng(seed)
    n = condition.size
    base = np.exp(rng.normal(np.log(1500.0), 0.6, n_genes))
    lengths = base[None, :] * np.exp(rng.normal(0.0, 0.15, (n, n_genes)))
    switched = rng.random(n_genes) < 0.1
    shift = np.exp(rng.normal(0.0, 0.5, n_genes))
    lengths[np.ix_(condition == "b", switched)] *= shift[switched]
    return np.round(lengths, 2)
