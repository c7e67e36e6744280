"""cohortex: a GPU-accelerated engine for large expression cohorts.

A cohort (samples × genes with sample metadata) lives in a chunked Zarr v3 store, is opened as
a lazy xarray Dataset, and streams through Dask to NumPy or CuPy kernels.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._errors import CohortexError, CohortexWarning
from ._version import __version__
from .simulate import simulate  # bound now: the module cohortex.simulate would shadow it

# Everything else loads on first use, so that `import cohortex` (and `cohortex --help`) does not
# pay for Dask, Zarr, xarray, SciPy and Numba until a function needs them; torch and matplotlib
# (cohortex.ae, cohortex.plot) add about 270 MB more.
_SUBMODULES = ("ae", "de", "fdr", "genesets", "io", "network", "plot", "predict", "survival")
_FUNCTIONS = {
    "append_samples": "store",
    "cluster": "_cluster",
    "consensus_clusters": "embed",
    "create_cohort": "store",
    "filter_by_expr": "_filter",
    "gpu_available": "_backend",
    "list_results": "store",
    "mds": "embed",
    "norm_factors": "_normalize",
    "normalize": "_normalize",
    "open_cohort": "store",
    "pca": "embed",
    "read_result": "store",
    "resolve_device": "_backend",
    "tsne": "embed",
    "verify": "store",
    "write_result": "store",
}


def __getattr__(name: str) -> Any:
    """The public modules and functions, imported on first use."""
    if name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    elif name in _FUNCTIONS:
        value = getattr(importlib.import_module(f".{_FUNCTIONS[name]}", __name__), name)
    else:
        raise AttributeError(f"module 'cohortex' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "CohortexError",
    "CohortexWarning",
    "__version__",
    "ae",
    "append_samples",
    "cluster",
    "consensus_clusters",
    "create_cohort",
    "de",
    "fdr",
    "filter_by_expr",
    "genesets",
    "gpu_available",
    "io",
    "list_results",
    "mds",
    "network",
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
