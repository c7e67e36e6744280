"""cohortex: a GPU-accelerated engine for large expression cohorts.

A cohort (samples × genes with sample metadata) lives in a chunked Zarr v3 store, is opened as
a lazy xarray Dataset, and streams through Dask to NumPy or CuPy kernels.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import de, fdr, genesets, io, predict, survival
from ._backend import gpu_available, resolve_device
from ._cluster import cluster
from ._errors import CohortexError, CohortexWarning
from ._normalize import norm_factors, normalize
from ._version import __version__
from .embed import pca, tsne
from .simulate import simulate
from .store import (
    append_samples,
    create_cohort,
    list_results,
    open_cohort,
    read_result,
    verify,
    write_result,
)


def __getattr__(name: str) -> Any:
    """``cohortex.ae`` and ``cohortex.plot`` load on first use: torch and matplotlib add
    about 270 MB to every process that imports cohortex otherwise."""
    if name in ("ae", "plot"):
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'cohortex' has no attribute {name!r}")


__all__ = [
    "CohortexError",
    "CohortexWarning",
    "__version__",
    "ae",
    "append_samples",
    "cluster",
    "create_cohort",
    "de",
    "fdr",
    "genesets",
    "gpu_available",
    "io",
    "list_results",
    "norm_factors",
    "normalize",
    "open_cohort",
    "pca",
    "plot",
    "predict",
    "read_result",
    "resolve_device",
    "simulate",
    "survival",
    "tsne",
    "verify",
    "write_result",
]
