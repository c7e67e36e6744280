"""The array backend: the only module that imports CuPy, and the array plumbing.

Everything else asks this module for the namespace of an array (``numpy`` or ``cupy``), moves
arrays between host and device, puts a matrix into Dask on the device a computation runs on
(:func:`dask_on`), selects genes tile by tile (:func:`take_genes`), merges per-chunk
statistics in a balanced tree (:func:`tree_reduce`), and loads CUDA kernels from
``kernels/*.cu``. CuPy is imported lazily, so machines without it (or without a driver) run
the NumPy path unchanged. Rules: nothing here knows xarray or the
store; ``stats/`` may import this module and nothing else of the package but ``_errors``.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import dask
import dask.array as da
import numpy as np

from ._errors import CohortexError

__all__ = [
    "as_dask",
    "as_device_dask",
    "dask_on",
    "device_name",
    "gpu_available",
    "kernel_dir",
    "kernel_source",
    "load_kernel",
    "namespace",
    "resolve_device",
    "special",
    "take_genes",
    "to_device",
    "to_host",
    "tree_reduce",
]

Device = Literal["cpu", "gpu"]
DEVICE_ENV = "COHORTEX_DEVICE"
# Top-level modules whose array types live on the GPU (recognised by name, so that asking
# for the namespace of a NumPy array never imports CuPy)
DEVICE_ARRAY_MODULES: tuple[str, ...] = ("cupy",)
GPU_INSTALL_HINT = (
    "install the CUDA extra that matches the driver: pip install 'cohortex[cuda12]' "
    "or 'cohortex[cuda13]'"
)


def _import_cupy() -> ModuleType | None:
    try:
        import cupy
    except Exception:  # ImportError, or a broken CUDA install raising at import
        return None
    return cupy


@functools.cache
def _probe_gpu() -> bool:
    cupy = _import_cupy()
    if cupy is None:
        return False
    try:
        # is_available() asks the driver for a device count; it never raises on a machine
        # without a driver, but older CuPy releases may, hence the guard.
        return bool(cupy.is_available())
    except Exception:
        return False


def gpu_available() -> bool:
    """Whether a CUDA device can be used.

    The probe runs once per process and is cached. The environment variable
    ``COHORTEX_DEVICE=cpu`` makes this return ``False`` even on a GPU machine.

    Returns
    -------
    bool
    """
    if os.environ.get(DEVICE_ENV, "").strip().lower() == "cpu":
        return False
    return _probe_gpu()


def device_name(device: str = "auto") -> str:
    """A readable name of the device a computation runs on (for benchmark reports).

    Parameters
    ----------
    device : {"auto", "cpu", "gpu"}

    Returns
    -------
    str
        ``"cpu"``, or the CUDA device's name as the driver reports it (e.g. ``"NVIDIA H100 80GB
        HBM3"``) with its memory.
    """
    if resolve_device(device) == "cpu":
        return "cpu"
    cupy = _import_cupy()
    assert cupy is not None
    properties = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = properties["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    return f"{name} ({properties['totalGlobalMem'] / 2**30:.0f} GiB)"


def resolve_device(device: str = "auto") -> Device:
    """Turn a ``device`` argument into ``"cpu"`` or ``"gpu"``.

    Parameters
    ----------
    device : {"auto", "cpu", "gpu"}, default "auto"
        ``"auto"`` picks the GPU when one is available. The environment variable
        ``COHORTEX_DEVICE`` (``cpu``, ``gpu`` or ``auto``) overrides ``"auto"``.

    Returns
    -------
    {"cpu", "gpu"}

    Raises
    ------
    CohortexError
        For an unknown value, or ``"gpu"`` on a machine without a usable CUDA device.
    """
    allowed = ("auto", "cpu", "gpu")
    if not isinstance(device, str) or device.lower() not in allowed:
        raise CohortexError(
            f"The 'device' parameter must be one of 'auto', 'cpu', 'gpu'; got {device!r}."
        )
    device = device.lower()
    if device == "auto":
        override = os.environ.get(DEVICE_ENV, "auto").strip().lower() or "auto"
        if override not in allowed:
            raise CohortexError(
                f"The {DEVICE_ENV} environment variable must be one of 'auto', 'cpu', 'gpu'; "
                f"got {override!r}."
            )
        device = override
        if device == "auto":
            return "gpu" if gpu_available() else "cpu"
    if device == "gpu" and not _probe_gpu():
        reason = "CuPy is not installed" if _import_cupy() is None else "no CUDA device was found"
        raise CohortexError(f"device='gpu' was requested but {reason}; {GPU_INSTALL_HINT}.")
    return device  # type: ignore[return-value]


def namespace(x: Any) -> ModuleType:
    """The array namespace of ``x``: ``cupy`` for CuPy arrays, ``numpy`` otherwise.

    Dask arrays report the namespace of their chunks (their ``_meta``).

    Parameters
    ----------
    x : array-like
        A NumPy, CuPy or Dask array, or anything NumPy accepts.

    Returns
    -------
    module
    """
    meta = getattr(x, "_meta", x)  # dask arrays carry an empty chunk of the right type
    if type(meta).__module__.split(".")[0] in DEVICE_ARRAY_MODULES:
        cupy = _import_cupy()
        assert cupy is not None  # a CuPy array exists, so CuPy imports
        return cupy
    return np


def to_host(x: Any) -> Any:
    """Return ``x`` with NumPy chunks: a NumPy array, or a Dask array of NumPy chunks.

    Parameters
    ----------
    x : array
        NumPy, CuPy or Dask array.

    Returns
    -------
    numpy.ndarray or dask.array.Array
    """
    if _is_dask(x):
        if namespace(x) is np:
            return x
        return x.map_blocks(_block_to_host, meta=np.empty((0,) * x.ndim, dtype=x.dtype))
    return _block_to_host(x)


def to_device(x: Any, device: str = "auto") -> Any:
    """Move ``x`` to ``device``: CuPy (chunks) for ``"gpu"``, NumPy (chunks) for ``"cpu"``.

    Parameters
    ----------
    x : array
        NumPy, CuPy or Dask array.
    device : {"auto", "cpu", "gpu"}, default "auto"

    Returns
    -------
    array
        The same kind of container (plain or Dask) with chunks on the requested device.
    """
    if resolve_device(device) == "cpu":
        return to_host(x)
    if _is_dask(x):
        return as_device_dask(x)
    cupy = _import_cupy()
    assert cupy is not None  # resolve_device checked
    return cupy.asarray(x)


def as_device_dask(x: Any) -> Any:
    """Map a Dask array's chunks to CuPy, with a CuPy ``meta`` so Dask knows the chunk type.

    Parameters
    ----------
    x : dask.array.Array

    Returns
    -------
    dask.array.Array
        Same shape, chunks and dtype; chunks are ``cupy.ndarray``.
    """
    cupy = _import_cupy()
    if cupy is None:
        raise CohortexError(f"CuPy is needed to move Dask chunks to the GPU; {GPU_INSTALL_HINT}.")
    if namespace(x) is cupy:
        return x
    return x.map_blocks(cupy.asarray, meta=cupy.empty((0,) * x.ndim, dtype=x.dtype))


def as_dask(x: Any, chunks: tuple[int, int]) -> da.Array:
    """A Dask view of an in-memory (NumPy or CuPy) matrix, without copying it.

    ``da.from_array`` copies array-likes that have a ``copy`` method and hashes the data to
    name the array; at 4 GB that costs more than the statistics. The view below exposes only
    ``shape``, ``dtype`` and slicing, and the array gets a random name.

    Parameters
    ----------
    x : array of shape (n_samples, n_genes)
    chunks : (int, int)
        ``-1`` for a whole axis.
    """
    return da.from_array(_Sliceable(x), chunks=chunks, name=False, asarray=False, meta=x[:0, :0])


class _Sliceable:
    """Just enough of an array for ``da.from_array``: shape, dtype, ndim and slicing."""

    def __init__(self, array: Any) -> None:
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.ndim = array.ndim

    def __getitem__(self, key: Any) -> Any:
        return self.array[key]


def dask_on(x: Any, device: Device, chunks: tuple[int, int]) -> da.Array:
    """``x`` as a Dask array whose chunks live on ``device``.

    Parameters
    ----------
    x : NumPy, CuPy or Dask array of shape (n_samples, n_genes)
        An in-memory matrix becomes a copy-free view in ``chunks``; a Dask array keeps its own.
    device : {"cpu", "gpu"}
        Already resolved (:func:`resolve_device`).

    Returns
    -------
    dask.array.Array
        CuPy chunks for ``"gpu"`` (copied to the device as they are computed), NumPy chunks
        for ``"cpu"``.
    """
    if not isinstance(x, da.Array):
        x = as_dask(x, chunks)
    if device == "gpu":
        return as_device_dask(x)
    return to_host(x)


def take_genes(x: da.Array, keep: np.ndarray) -> da.Array:
    """The columns of ``x`` (samples × genes) where ``keep`` is true, selected in each tile.

    Dask's own ``x[:, keep]`` regroups the kept columns into new chunks that straddle the
    tiles, so every pass over the selection reads about twice the data; here each tile keeps
    its own columns (a tile may keep none). ``np.take`` gathers ~6× faster than a mask.
    """
    edges = np.cumsum((0, *x.chunks[1]))
    kept_in = [np.flatnonzero(keep[a:b]) for a, b in itertools.pairwise(edges)]
    widths = tuple(int(positions.size) for positions in kept_in)

    def select(block: Any, block_info: Any = None) -> Any:
        positions = kept_in[block_info[0]["chunk-location"][1]]
        return namespace(block).take(block, namespace(block).asarray(positions), axis=1)

    # the meta of x: a device array stays one to Dask (select cannot run on a meta array)
    return da.map_blocks(select, x, chunks=(x.chunks[0], widths), dtype=x.dtype, meta=x._meta)


def tree_reduce(parts: list[Any], combine: Callable[[Any, Any], Any]) -> Any:
    """Merge delayed parts pairwise, level by level (a balanced tree), with ``combine``.

    A balanced tree keeps results independent of the chunking (to rounding) and the depth
    logarithmic. Returns the one delayed result (``parts[0]`` for a single part).
    """
    merge = dask.delayed(combine, pure=True)
    while len(parts) > 1:
        paired = [merge(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            paired.append(parts[-1])
        parts = paired
    return parts[0]


def special(xp: ModuleType) -> ModuleType:
    """``scipy.special`` for NumPy, ``cupyx.scipy.special`` for CuPy."""
    if xp is np:
        import scipy.special

        return scipy.special
    return _import_device_special()


def _import_device_special() -> ModuleType:
    import cupyx.scipy.special

    return cupyx.scipy.special


def _block_to_host(x: Any) -> Any:
    if hasattr(x, "get") and namespace(x) is not np:
        return x.get()
    return np.asarray(x)


def _is_dask(x: Any) -> bool:
    return isinstance(x, da.Array)


def kernel_dir() -> Path:
    """The folder holding the CUDA sources.

    Installed wheels carry them at ``cohortex/kernels``; a source checkout (editable install)
    keeps them at the repository root.
    """
    packaged = Path(__file__).parent / "kernels"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "kernels"


@functools.cache
def kernel_source(filename: str) -> str:
    """The text of ``kernels/<filename>``; read once and cached."""
    path = kernel_dir() / filename
    if not path.is_file():
        raise CohortexError(f"No CUDA kernel source {filename!r} in {kernel_dir()}.")
    return path.read_text()


@functools.cache
def _raw_module(filename: str) -> Any:
    resolve_device("gpu")
    cupy = _import_cupy()
    assert cupy is not None
    return cupy.RawModule(code=kernel_source(filename), options=("-std=c++17",))


def load_kernel(filename: str, function: str) -> Any:
    """Return ``function`` from ``kernels/<filename>``, compiled once per process.

    Parameters
    ----------
    filename : str
        Name of a ``.cu`` file in :func:`kernel_dir`.
    function : str
        Name of an ``extern "C" __global__`` function in it.

    Returns
    -------
    cupy.RawKernel
    """
    return _raw_module(filename).get_function(function)
