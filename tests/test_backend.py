"""The backend: device choice, namespaces, host/device moves, kernel sources."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from cohortex import CohortexError, _backend
from cohortex._backend import (
    gpu_available,
    kernel_dir,
    namespace,
    resolve_device,
    to_device,
    to_host,
)

HAS_GPU = gpu_available()


def test_env_override_forces_cpu(monkeypatch):
    monkeypatch.setenv("COHORTEX_DEVICE", "cpu")
    assert gpu_available() is False
    assert resolve_device("auto") == "cpu"


def test_auto_follows_the_probe(monkeypatch):
    monkeypatch.delenv("COHORTEX_DEVICE", raising=False)
    assert resolve_device("auto") == ("gpu" if HAS_GPU else "cpu")
    assert resolve_device("CPU") == "cpu"


def test_bad_device_values(monkeypatch):
    with pytest.raises(
        CohortexError, match="'device' parameter must be one of 'auto', 'cpu', 'gpu'; got 'cuda'"
    ):
        resolve_device("cuda")
    monkeypatch.setenv("COHORTEX_DEVICE", "tpu")
    with pytest.raises(
        CohortexError,
        match="COHORTEX_DEVICE environment variable must be one of 'auto', 'cpu', 'gpu'; got 'tpu'",
    ):
        resolve_device("auto")


@pytest.mark.skipif(HAS_GPU, reason="checks the message on machines without a GPU")
def test_gpu_without_device_names_the_install(monkeypatch):
    with pytest.raises(
        CohortexError,
        match=r"device='gpu' was requested but .*pip install "
        r"'cohortex\[cuda12\]'",
    ):
        resolve_device("gpu")
    monkeypatch.setenv("COHORTEX_DEVICE", "gpu")
    with pytest.raises(CohortexError, match="device='gpu' was requested"):
        resolve_device("auto")


def test_probe_survives_a_broken_cupy(monkeypatch):
    """A CuPy that raises on import or on the device query means 'no GPU', not a crash."""

    def broken():
        raise RuntimeError("CUDA driver version is insufficient")

    monkeypatch.setattr(
        _backend,
        "_import_cupy",
        lambda: type("FakeCupy", (), {"is_available": staticmethod(broken)})(),
    )
    _backend._probe_gpu.cache_clear()
    try:
        assert _backend._probe_gpu() is False
    finally:
        _backend._probe_gpu.cache_clear()


def test_numpy_namespace_and_moves():
    x = np.arange(6.0).reshape(2, 3)
    assert namespace(x) is np
    assert namespace(da.from_array(x, chunks=1)) is np
    assert namespace([1, 2]) is np
    assert to_host(x) is not None and np.array_equal(to_host(x), x)
    moved = to_device(da.from_array(x, chunks=1), "cpu")
    assert isinstance(moved, da.Array) and np.array_equal(moved.compute(), x)
    assert np.array_equal(to_device(x, "cpu"), x)


def test_kernel_dir_is_the_repository_folder():
    assert kernel_dir().name == "kernels"
    assert kernel_dir().is_dir()
    with pytest.raises(CohortexError, match="No CUDA kernel source 'nope.cu'"):
        _backend.kernel_source("nope.cu")


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="no CUDA device")
def test_cupy_round_trip_through_dask():
    import cupy

    x = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    on_device = to_device(da.from_array(x, chunks=(2, 2)), "gpu")
    assert namespace(on_device) is cupy
    assert isinstance(on_device._meta, cupy.ndarray)
    block = on_device.blocks[0, 0].compute()
    assert isinstance(block, cupy.ndarray)
    back = to_host(on_device).compute()
    assert isinstance(back, np.ndarray) and np.array_equal(back, x)
    assert namespace(to_device(x, "gpu")) is cupy
