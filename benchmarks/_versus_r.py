"""What the benchmarks against R share: the simulated cohort's Dataset and running R."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
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
