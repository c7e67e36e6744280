"""CUDA kernels compiled for the host and launched like ``cupy.RawKernel``, for CI without a GPU.

Every ``kernels/*.cu`` builds unmodified with the system C++ compiler under
``cuda_host_shim.h`` into a shared library. :class:`HostKernel` launches a kernel as CuPy does —
``kernel(grid, block, args)`` — running each thread of the grid in turn, and checks every
argument against the kernel's C signature the way a GPU would need it to be right: device
arrays (the CuPy stand-in's) of exactly the pointer's element type, C-contiguous, writeable
where the pointer is not ``const``, and scalars of exactly the parameter's type (CuPy passes a
Python ``int`` as 64 bits and a ``float`` as a double, so those only match ``long long`` and
``double``).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SHIM", "RawModule", "build", "compiler", "kernel_signatures"]

SHIM = Path(__file__).with_name("cuda_host_shim.h")
_BUILD_DIR = Path(tempfile.gettempdir()) / "cohortex-host-kernels"
_KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)', re.S)
# element type of a pointer parameter → NumPy dtype; scalar parameter → (ctypes, NumPy) types
_POINTEES = {
    "double": np.float64,
    "float": np.float32,
    "int": np.int32,
    "unsigned int": np.uint32,
    "long long": np.int64,
    "unsigned long long": np.uint64,
    "int64_t": np.int64,
    "uint64_t": np.uint64,
    "int32_t": np.int32,
    "uint32_t": np.uint32,
    "unsigned char": np.uint8,
    "bool": np.bool_,
}
_SCALARS = {
    "double": (ctypes.c_double, np.float64),
    "float": (ctypes.c_float, np.float32),
    "int": (ctypes.c_int32, np.int32),
    "unsigned int": (ctypes.c_uint32, np.uint32),
    "long long": (ctypes.c_int64, np.int64),
    "unsigned long long": (ctypes.c_uint64, np.uint64),
    "int64_t": (ctypes.c_int64, np.int64),
    "int32_t": (ctypes.c_int32, np.int32),
    "bool": (ctypes.c_bool, np.bool_),
}


class Dim3(ctypes.Structure):
    _fields_ = [("x", ctypes.c_uint), ("y", ctypes.c_uint), ("z", ctypes.c_uint)]


@dataclass(frozen=True)
class Parameter:
    name: str
    base: str  # C type without const/pointer
    pointer: bool
    const: bool


def compiler() -> str | None:
    """The host C++ compiler (``$CXX`` is not consulted: CI installs g++)."""
    return shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def kernel_signatures(code: str) -> dict[str, list[Parameter]]:
    """Every ``extern "C" __global__`` function of a CUDA source with its parameters."""
    kernels = {}
    for name, text in _KERNEL.findall(code):
        parameters = []
        for raw in text.split(","):
            words = raw.replace("*", " * ").replace("__restrict__", " ").split()
            pointer = "*" in words
            const = "const" in words
            words = [w for w in words if w not in ("*", "const")]
            parameters.append(Parameter(words[-1], " ".join(words[:-1]), pointer, const))
        kernels[name] = parameters
    return kernels


def build(
    code: str, *, options: tuple[str, ...] = (), sanitize: bool = False, out_dir: Path | None = None
) -> Path:
    """Compile CUDA source text for the host into a shared library (cached by content)."""
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler (g++) on PATH: .ci/run installs one")
    standard = [o for o in options if o.startswith("-std=")] or ["-std=c++17"]
    flags = [*standard, "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror"]
    if sanitize:
        flags += ["-O1", "-g", "-fno-omit-frame-pointer"]
        flags += ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    else:
        flags += ["-O2"]
    key = hashlib.sha256("\0".join([code, SHIM.read_text(), cxx, *flags]).encode()).hexdigest()[:16]
    folder = out_dir or _BUILD_DIR
    folder.mkdir(parents=True, exist_ok=True)
    library = folder / f"kernel-{key}.so"
    if library.exists():
        return library
    source = folder / f"kernel-{key}.cu"
    source.write_text(code)
    partial = folder / f"kernel-{key}.so.partial"
    done = subprocess.run(
        [cxx, *flags, "-x", "c++", "-include", str(SHIM), str(source), "-o", str(partial)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"host compile failed:\n{done.stderr}")
    partial.replace(library)
    return library


class HostKernel:
    """One kernel of a host-compiled module, launched with CuPy's ``(grid, block, args)``."""

    def __init__(
        self,
        library: ctypes.CDLL,
        name: str,
        parameters: list[Parameter],
        *,
        device_arrays: bool = True,
    ) -> None:
        self.name = name
        self.parameters = parameters
        self.device_arrays = device_arrays  # False: NumPy arrays stand for device memory
        self._function = getattr(library, name)
        self._function.restype = None
        self._index = {
            v: Dim3.in_dll(library, v) for v in ("threadIdx", "blockIdx", "blockDim", "gridDim")
        }

    def __call__(self, grid: Any, block: Any, args: tuple[Any, ...], **options: Any) -> None:
        if len(args) != len(self.parameters):
            raise TypeError(f"{self.name} takes {len(self.parameters)} arguments; got {len(args)}")
        converted = []
        for parameter, value in zip(self.parameters, args, strict=True):
            where = f"{self.name}() argument {parameter.name!r}"
            if parameter.pointer:
                array = _device_memory(value, self.device_arrays)
                if array is None:
                    raise TypeError(f"{where} must be a device array; got {type(value).__name__}")
                expected = np.dtype(_POINTEES[parameter.base])
                if array.dtype != expected:
                    raise TypeError(
                        f"{where} points to {parameter.base}; got a {array.dtype} array"
                    )
                if not array.flags.c_contiguous:
                    raise TypeError(f"{where} must be C-contiguous")
                if not parameter.const and not array.flags.writeable:
                    raise TypeError(f"{where} is written by the kernel but is read-only")
                converted.append(ctypes.c_void_p(array.ctypes.data))
            else:
                c_type, expected = _SCALARS[parameter.base]
                if isinstance(value, bool | np.bool_):
                    given = np.dtype(np.bool_)
                elif isinstance(value, int):
                    given = np.dtype(np.int64)  # how CuPy passes a Python int
                elif isinstance(value, float):
                    given = np.dtype(np.float64)
                elif isinstance(value, np.generic):
                    given = value.dtype
                else:
                    raise TypeError(f"{where} must be a scalar; got {type(value).__name__}")
                if given != np.dtype(expected):
                    raise TypeError(f"{where} is {parameter.base}; got {given}")
                converted.append(c_type(value.item() if isinstance(value, np.generic) else value))
        grid, block = _dims(grid), _dims(block)
        self._index["gridDim"].x, self._index["gridDim"].y, self._index["gridDim"].z = grid
        self._index["blockDim"].x, self._index["blockDim"].y, self._index["blockDim"].z = block
        block_index, thread_index = self._index["blockIdx"], self._index["threadIdx"]
        for bz in range(grid[2]):
            for by in range(grid[1]):
                for bx in range(grid[0]):
                    block_index.x, block_index.y, block_index.z = bx, by, bz
                    for tz in range(block[2]):
                        for ty in range(block[1]):
                            for tx in range(block[0]):
                                thread_index.x, thread_index.y, thread_index.z = tx, ty, tz
                                self._function(*converted)


def _device_memory(value: Any, device_arrays: bool) -> np.ndarray | None:
    """The NumPy array behind a kernel's pointer argument, or None if it is not device memory."""
    if not device_arrays:
        return value if isinstance(value, np.ndarray) else None
    from gpu_surface import SurfaceArray  # the stand-in's device arrays

    return value._a if isinstance(value, SurfaceArray) else None


def _dims(value: Any) -> tuple[int, int, int]:
    values = (value,) if isinstance(value, int) else tuple(int(v) for v in value)
    if not 1 <= len(values) <= 3 or any(v < 1 for v in values):
        raise ValueError(f"grid and block must be 1 to 3 positive sizes; got {value!r}")
    return (*values, *(1,) * (3 - len(values)))  # type: ignore[return-value]


class RawModule:
    """``cupy.RawModule(code=..., options=...)`` compiled for the host."""

    def __init__(self, code: str | None = None, *, options: tuple[str, ...] = (), **_: Any) -> None:
        if code is None:
            raise TypeError("the host RawModule needs code=")
        self._signatures = kernel_signatures(code)
        self._library = _load(build(code, options=tuple(options)))

    def get_function(self, name: str) -> HostKernel:
        if name not in self._signatures:
            raise AttributeError(f"no kernel {name!r} in the module")
        return HostKernel(self._library, name, self._signatures[name])


def load(code: str, *, sanitize: bool = False) -> dict[str, HostKernel]:
    """Every kernel of a CUDA source, built for the host, taking NumPy arrays as its memory."""
    library = _load(build(code, sanitize=sanitize))
    return {
        name: HostKernel(library, name, parameters, device_arrays=False)
        for name, parameters in kernel_signatures(code).items()
    }


@functools.cache
def _load(path: Path) -> ctypes.CDLL:
    return ctypes.CDLL(str(path))
