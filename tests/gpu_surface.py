"""A CuPy stand-in for machines without a GPU: NumPy underneath, the installed CuPy's API on top.

CI has no GPU, yet every ``xp`` code path must run there. This module builds a namespace that
behaves like ``cupy`` where it matters for catching GPU-only defects:

* it has exactly the names that the installed CuPy has (``cupy-cuda13x`` imports without a
  driver), each backed by the NumPy function of the same name, so a NumPy-only function is an
  ``AttributeError`` here as on a GPU;
* function calls are checked against the CuPy function's own signature where it has one (a
  keyword that CuPy lacks is a ``TypeError`` here as there);
* its ufuncs offer ``reduce``, ``accumulate``, ``reduceat`` and ``at`` only where the installed
  CuPy does (``cupy.maximum.accumulate`` raises ``NotImplementedError``); which ones those are
  is asked of the installed CuPy's ufunc objects themselves, which check their name before they
  touch a device;
* its array type refuses implicit conversion to NumPy (``__array__`` raises CuPy's
  ``TypeError``), refuses host arrays as ufunc operands (as CuPy's kernels do), returns 0-d
  device arrays where NumPy returns scalars, and exposes only the attributes of
  ``cupy.ndarray``;
* ``RawModule`` compiles ``kernels/*.cu`` for the host under ``tests/host_kernels`` and runs
  every thread of the launch grid (see :mod:`host_kernels`).

``install(monkeypatch)`` makes cohortex's backend use it: ``device="gpu"`` then runs the whole
GPU path of cohortex on this stand-in.
"""

from __future__ import annotations

import functools
import inspect
import types
from typing import Any

import cupy
import cupyx.scipy.special
import numpy as np
import scipy.special
from dask.array.chunk_types import register_chunk_type

import host_kernels

__all__ = ["SurfaceArray", "install", "special", "surface"]

_IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. "
    "Please use `.get()` to construct a NumPy array explicitly."
)
# CuPy functions that take host data (NumPy arrays, lists): the ways onto the device, and
# take(), which moves host indices itself (cupy/_core/_routines_indexing.pyx, _take)
_HOST_INPUT = {"array", "asarray", "asanyarray", "take"}


class SurfaceArray:
    """A ``cupy.ndarray`` stand-in holding a NumPy array (``_a``)."""

    __slots__ = ("_a",)
    __array_priority__ = 100

    def __init__(self, array: np.ndarray) -> None:
        assert isinstance(array, np.ndarray), type(array)
        self._a = array

    # -- what CuPy refuses ------------------------------------------------------------
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(_IMPLICIT)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in _NDARRAY_NAMES:
            raise AttributeError(
                f"cupy.ndarray has no attribute {name!r} (the CuPy stand-in exposes only the "
                "installed CuPy's API)"
            )
        value = getattr(self._a, name)
        if callable(value):
            return _host_call(value, name)
        return _wrap(value)

    # -- plain properties ---------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: SurfaceArray(self._a.T))
    mT = property(lambda self: SurfaceArray(np.swapaxes(self._a, -1, -2)))

    def get(self, stream: Any = None, order: str = "C", out: Any = None) -> np.ndarray:
        """Copy to the host (CuPy's explicit device → host transfer)."""
        if out is not None:
            out[...] = self._a
            return out
        return np.array(self._a, order=order, copy=True)

    def set(self, array: np.ndarray, stream: Any = None) -> None:
        self._a[...] = array

    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any:
        return self._a.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self) -> Any:
        return self._a.__dlpack_device__()

    # -- NumPy's protocols: dispatch to the stand-in namespace, as CuPy does ---------------
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        mine = getattr(surface, ufunc.__name__, None)
        if not isinstance(mine, SurfaceUfunc) or not all(map(_operand, inputs)):
            return NotImplemented
        if "out" in kwargs:
            (kwargs["out"],) = kwargs["out"]
        return getattr(mine, method)(*inputs, **kwargs)

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        module = surface
        for part in func.__module__.split(".")[1:]:
            module = getattr(module, part, None)
            if module is None:
                return NotImplemented
        mine = getattr(module, func.__name__, None)
        if mine is None:
            return NotImplemented
        return mine(*args, **kwargs)

    # -- conversions CuPy allows (each a device → host sync) -----------------------------
    def __bool__(self) -> bool:
        return bool(self._a)

    def __float__(self) -> float:
        return float(self._a)

    def __int__(self) -> int:
        return int(self._a)

    def __complex__(self) -> complex:
        return complex(self._a)

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self) -> Any:
        return (SurfaceArray(np.asarray(row)) for row in self._a)

    def __repr__(self) -> str:
        return f"surface.{self._a!r}"

    def __copy__(self) -> SurfaceArray:
        return SurfaceArray(self._a.copy())

    def __deepcopy__(self, memo: Any) -> SurfaceArray:
        return SurfaceArray(self._a.copy())

    def __reduce__(self) -> Any:
        return (SurfaceArray, (self._a,))

    # -- indexing: host index arrays are fine in CuPy, results are device arrays ----------
    def __getitem__(self, key: Any) -> SurfaceArray:
        return SurfaceArray(np.asarray(self._a[_index(key)]))

    def __setitem__(self, key: Any, value: Any) -> None:
        self._a[_index(key)] = _unwrap(value, host_ok=True)


def _index(key: Any) -> Any:
    if isinstance(key, tuple):
        return tuple(_unwrap(k, host_ok=True) for k in key)
    return _unwrap(key, host_ok=True)


def _operand(value: Any) -> bool:
    """What CuPy's operators take (anything else, a Dask array say, gets its turn)."""
    return isinstance(value, SurfaceArray | np.ndarray | np.generic | int | float | complex)


def _binary(name: str, reflected: bool = False) -> Any:
    def method(self: SurfaceArray, other: Any) -> Any:
        if not _operand(other):
            return NotImplemented
        ufunc = getattr(surface, name)
        return ufunc(other, self) if reflected else ufunc(self, other)

    return method


def _inplace(name: str) -> Any:
    def method(self: SurfaceArray, other: Any) -> SurfaceArray:
        getattr(surface, name)(self, other, out=self)
        return self

    return method


def _unary(name: str) -> Any:
    return lambda self: getattr(surface, name)(self)


for _op, _ufunc in {
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "truediv": "true_divide",
    "floordiv": "floor_divide",
    "mod": "remainder",
    "pow": "power",
    "matmul": "matmul",
    "and": "bitwise_and",
    "or": "bitwise_or",
    "xor": "bitwise_xor",
    "lshift": "left_shift",
    "rshift": "right_shift",
}.items():
    setattr(SurfaceArray, f"__{_op}__", _binary(_ufunc))
    setattr(SurfaceArray, f"__r{_op}__", _binary(_ufunc, reflected=True))
    setattr(SurfaceArray, f"__i{_op}__", _inplace(_ufunc))
for _op, _ufunc in {
    "eq": "equal",
    "ne": "not_equal",
    "lt": "less",
    "le": "less_equal",
    "gt": "greater",
    "ge": "greater_equal",
}.items():
    setattr(SurfaceArray, f"__{_op}__", _binary(_ufunc))
for _op, _ufunc in {
    "neg": "negative",
    "pos": "positive",
    "abs": "absolute",
    "invert": "invert",
}.items():
    setattr(SurfaceArray, f"__{_op}__", _unary(_ufunc))
SurfaceArray.__hash__ = None  # type: ignore[assignment]

_NDARRAY_NAMES = frozenset(n for n in dir(cupy.ndarray) if not n.startswith("_"))


# ------------------------------------------------------------------------ (un)wrapping


def _unwrap(value: Any, *, host_ok: bool) -> Any:
    """Arguments for NumPy: stand-in arrays → their NumPy array; host data refused unless
    ``host_ok`` (CuPy's kernels take device arrays and scalars only)."""
    if isinstance(value, SurfaceArray):
        return value._a
    if isinstance(value, np.ndarray):
        if not host_ok:
            raise TypeError(
                f"Unsupported type {type(value)} (a NumPy array of shape {value.shape} given to "
                "a CuPy function: move it to the device with cupy.asarray first)"
            )
        return value
    if isinstance(value, list | tuple):
        items = [_unwrap(v, host_ok=host_ok) for v in value]
        return type(value)(items) if not hasattr(value, "_fields") else type(value)(*items)
    return value


def _wrap(value: Any) -> Any:
    """Results for the caller: arrays and NumPy scalars become (0-d) device arrays."""
    if isinstance(value, np.ndarray):
        return SurfaceArray(value)
    if isinstance(value, np.generic):
        return SurfaceArray(np.asarray(value))
    if isinstance(value, tuple):
        items = [_wrap(v) for v in value]
        return tuple(items)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _host_call(function: Any, name: str, signature: inspect.Signature | None = None) -> Any:
    host_ok = name in _HOST_INPUT

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        if signature is not None:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as error:
                raise TypeError(f"cupy.{name}(): {error} (CuPy's signature: {signature})") from None
        out = kwargs.pop("out", None)
        kwargs = {k: _unwrap(v, host_ok=host_ok) for k, v in kwargs.items()}
        if out is not None:
            kwargs["out"] = _unwrap(out, host_ok=False)
        try:
            arguments = [_unwrap(a, host_ok=host_ok) for a in args]
        except TypeError as error:
            raise TypeError(f"cupy.{name}(): {error}") from None
        result = function(*arguments, **kwargs)
        return _wrap(result)

    return call


class SurfaceUfunc:
    """A NumPy ufunc with the methods that the installed CuPy's ufunc of that name supports."""

    def __init__(self, numpy_ufunc: np.ufunc, cupy_ufunc: Any, name: str) -> None:
        self._numpy = numpy_ufunc
        self._cupy_name = getattr(cupy_ufunc, "name", f"cupy_{name}")
        self._supported = {
            m for m in ("reduce", "accumulate", "reduceat", "at") if _probe(cupy_ufunc, m)
        }
        self.__name__ = name
        self.nin, self.nout = numpy_ufunc.nin, numpy_ufunc.nout

    def __repr__(self) -> str:
        return f"<surface ufunc {self.__name__!r}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = kwargs.pop("out", None)
        if out is not None:
            kwargs["out"] = _unwrap(out, host_ok=False)
        comparisons = ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")
        if (
            self.__name__ in comparisons
        ):  # CuPy turns 0-d NumPy operands of comparisons into scalars
            args = tuple(a.item() if isinstance(a, np.ndarray) and a.ndim == 0 else a for a in args)
        result = self._numpy(
            *(_unwrap(a, host_ok=False) for a in args),
            **{k: v if k == "out" else _unwrap(v, host_ok=False) for k, v in kwargs.items()},
        )
        return out if out is not None else _wrap(result)

    def outer(self, a: Any, b: Any, **kwargs: Any) -> Any:
        return _wrap(self._numpy.outer(_unwrap(a, host_ok=False), _unwrap(b, host_ok=False)))

    def _method(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if method not in self._supported:
            raise NotImplementedError(f"`{self._cupy_name}.{method}` is not supported yet")
        out = kwargs.pop("out", None)
        if out is not None:
            kwargs["out"] = _unwrap(out, host_ok=False)
        args = tuple(_unwrap(a, host_ok=method == "at" and i == 1) for i, a in enumerate(args))
        return _wrap(getattr(self._numpy, method)(*args, **kwargs))

    def reduce(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("reduce", *args, **kwargs)

    def accumulate(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("accumulate", *args, **kwargs)

    def reduceat(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("reduceat", *args, **kwargs)

    def at(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("at", *args, **kwargs)


def _probe(cupy_ufunc: Any, method: str) -> bool:
    """Whether the installed CuPy's ufunc implements ``method``.

    CuPy's ufunc methods check the ufunc's name (or scatter operation) before they use their
    argument, so calling them with ``None`` tells without a device: ``NotImplementedError`` for
    an unsupported method, an ``AttributeError`` on ``None`` for a supported one.
    """
    try:
        if method in ("reduceat", "at"):
            getattr(cupy_ufunc, method)(None, None)
        else:
            getattr(cupy_ufunc, method)(None)
    except NotImplementedError:
        return False
    except Exception:
        return True
    return True


def _signature(function: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        return None


def _namespace(name: str, cupy_module: Any, numpy_module: Any) -> types.ModuleType:
    """A module with the public names of ``cupy_module``, implemented by ``numpy_module``."""
    module = types.ModuleType(name)
    for attribute in dir(cupy_module):
        if attribute.startswith("_") or not hasattr(numpy_module, attribute):
            continue
        cupy_value = getattr(cupy_module, attribute)
        numpy_value = getattr(numpy_module, attribute)
        if isinstance(numpy_value, np.ufunc):
            setattr(module, attribute, SurfaceUfunc(numpy_value, cupy_value, attribute))
        elif isinstance(numpy_value, type) or not callable(numpy_value):
            setattr(module, attribute, numpy_value)  # dtypes, exceptions, constants
        else:
            setattr(
                module,
                attribute,
                _host_call(numpy_value, attribute, _signature(cupy_value)),
            )
    return module


surface = _namespace("gpu_surface.surface", cupy, np)
surface.ndarray = SurfaceArray
surface.linalg = _namespace("gpu_surface.surface.linalg", cupy.linalg, np.linalg)
surface.__version__ = cupy.__version__
special = _namespace("gpu_surface.special", cupyx.scipy.special, scipy.special)


def _asnumpy(a: Any, stream: Any = None, order: str = "C", out: Any = None) -> np.ndarray:
    return a.get(order=order, out=out) if isinstance(a, SurfaceArray) else np.asarray(a)


surface.asnumpy = _asnumpy
surface.is_available = lambda: True
surface.get_array_module = lambda *arrays: (
    surface if any(isinstance(a, SurfaceArray) for a in arrays) else np
)
surface.RawModule = host_kernels.RawModule


def _register_with_dask() -> None:
    """What Dask registers for ``cupy.ndarray`` (dask/array/backends.py, register_cupy, and
    dask/array/chunk_types.py), registered for the stand-in with its own functions."""
    from dask.array import backends
    from dask.sizeof import sizeof

    register_chunk_type(SurfaceArray)
    backends.concatenate_lookup.register(SurfaceArray, surface.concatenate)
    backends.take_lookup.register(SurfaceArray, surface.take)
    backends.tensordot_lookup.register(SurfaceArray, surface.tensordot)
    backends.percentile_lookup.register(SurfaceArray, backends.percentile)
    backends.numel_lookup.register(SurfaceArray, backends._numel_arraylike)
    backends.nannumel_lookup.register(SurfaceArray, backends._nannumel)
    backends.empty_lookup.register(SurfaceArray, surface.empty)
    backends.to_numpy_dispatch.register(SurfaceArray, lambda data, **kwargs: data.get())
    backends.einsum_lookup.register(SurfaceArray, surface.einsum)
    sizeof.register(SurfaceArray, lambda x: x.nbytes)


_register_with_dask()


def install(monkeypatch: Any) -> types.ModuleType:
    """Make cohortex's backend take this stand-in for CuPy (and a GPU as present)."""
    from cohortex import _backend

    monkeypatch.setattr(_backend, "_import_cupy", lambda: surface)
    monkeypatch.setattr(
        _backend, "DEVICE_ARRAY_MODULES", (*_backend.DEVICE_ARRAY_MODULES, __name__)
    )
    monkeypatch.setattr(_backend, "_import_device_special", lambda: special)
    monkeypatch.setattr(_backend, "_probe_gpu", lambda: True)
    monkeypatch.delenv("COHORTEX_DEVICE", raising=False)
    _backend._raw_module.cache_clear()
    return surface
