"""Shared fixtures: the array-namespace fixture and small cohorts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohortex._backend import gpu_available


def _cupy_param():
    marks = [pytest.mark.gpu]
    if not gpu_available():
        marks.append(pytest.mark.skip(reason="no CUDA device"))
    return pytest.param("cupy", marks=marks, id="cupy")


@pytest.fixture(
    params=[
        pytest.param("numpy", id="numpy"),
        pytest.param("surface", id="cupy-surface"),
        _cupy_param(),
    ]
)
def xp(request, monkeypatch):
    """The array namespace under test.

    ``numpy`` everywhere; ``cupy-surface`` everywhere too: the CuPy stand-in of
    ``tests/gpu_surface.py`` (NumPy underneath, the installed CuPy's API surface, kernels
    compiled for the host), installed as cohortex's GPU, so ``device="gpu"`` runs the GPU path;
    ``cupy`` where a CUDA device is present.
    """
    if request.param == "numpy":
        return np
    if request.param == "surface":
        import gpu_surface

        return gpu_surface.install(monkeypatch)
    import cupy

    return cupy


@pytest.fixture
def surface(monkeypatch):
    """The CuPy stand-in installed as cohortex's GPU (for tests of GPU-only code paths)."""
    import gpu_surface

    return gpu_surface.install(monkeypatch)


@pytest.fixture(params=[pytest.param("surface", id="cupy-surface"), _cupy_param()])
def gpu_xp(request, monkeypatch):
    """A GPU for ``device="gpu"``: the CuPy stand-in everywhere, CuPy on a CUDA device."""
    if request.param == "surface":
        import gpu_surface

        return gpu_surface.install(monkeypatch)
    import cupy

    monkeypatch.delenv("COHORTEX_DEVICE", raising=False)
    return cupy


def to_numpy(x):
    """A NumPy copy of a NumPy, CuPy or stand-in array."""
    return x.get() if hasattr(x, "get") and not isinstance(x, np.ndarray) else np.asarray(x)


@pytest.fixture
def small_matrix():
    """A 23 × 17 float32 matrix with a NaN, plus sample and gene tables."""
    rng = np.random.default_rng(42)
    x = rng.normal(5.0, 2.0, (23, 17)).astype(np.float32)
    x[3, 4] = np.nan
    samples = pd.DataFrame(
        {
            "condition": np.where(np.arange(23) % 2 == 0, "tumor", "normal"),
            "age": rng.integers(20, 80, 23),
            "weight": rng.normal(70, 10, 23),
            "smoker": rng.random(23) > 0.5,
        },
        index=[f"P{i:02d}" for i in range(23)],
    )
    samples.loc["P05", "condition"] = None
    genes = pd.DataFrame(
        {"symbol": [f"SYM{i}" for i in range(17)], "length": rng.integers(500, 5000, 17)},
        index=[f"ENSG{i:05d}" for i in range(17)],
    )
    return x, samples, genes


def fixture_cohort(expression: Path, samples: Path, *, scale: str, chunks=None):
    """An R fixture's genes × samples CSV and its samples' CSV as a cohort Dataset (float64,
    in Dask tiles of ``chunks`` when given)."""
    import dask.array as da
    import xarray as xr

    table = pd.read_csv(expression, index_col=0)
    variables = pd.read_csv(samples, index_col=0)
    values = table.to_numpy(dtype=np.float64).T
    return xr.Dataset(
        {
            "expression": (
                ("sample", "gene"),
                da.from_array(values, chunks=chunks) if chunks else values,
            ),
            **{name: ("sample", variables[name].to_numpy()) for name in variables.columns},
        },
        coords={"sample": list(variables.index), "gene": list(table.index)},
        attrs={"scale": scale},
    )


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the SHA-256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


_GPU_GROUPS = {
    "CuPy stand-in (xp fixture's cupy-surface)": lambda r: (
        "cupy-surface" in r.nodeid and not r.nodeid.startswith("tests/test_device_parity.py")
    ),
    "CuPy stand-in (public entry points)": lambda r: r.nodeid.startswith(
        "tests/test_device_parity.py"
    ),
    "kernels built for the host, NVRTC, sanitizers": lambda r: (
        r.nodeid.startswith("tests/stats/test_kernels.py") and "gpu" not in r.keywords
    ),
    "cuML / dask-cuda frozen argument lists": lambda r: r.nodeid.startswith(
        "tests/test_gpu_apis.py"
    ),
    "marked gpu (a CUDA device)": lambda r: "gpu" in r.keywords,
}


def pytest_terminal_summary(terminalreporter):
    """How much of the GPU path ran here: counts per group, so that a CI log shows them."""
    lines = []
    for group, member in _GPU_GROUPS.items():
        counts = {
            status: sum(1 for r in terminalreporter.stats.get(status, []) if member(r))
            for status in ("passed", "failed", "skipped")
        }
        if any(counts.values()):
            lines.append(f"{group}: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    if lines:
        terminalreporter.section("GPU path without a GPU")
        for line in lines:
            terminalreporter.write_line(line)
