"""numba's ``njit`` with an on-disk cache that several processes can fill at once.

numba saves a compiled signature by reading the function's index file, picking the first free
data-file name, writing the index and then the data file. Two processes that compile different
signatures of one kernel at the same moment both pick the same name; the index then sends one
signature to the other's machine code, which crashes (or reads its arrays as the wrong type) in
every later process until the cache is deleted (numba issues #4807 and #10128). A cold cache is
filled concurrently whenever cohortex starts: dask worker processes of ``cohortex.cluster``,
a job array over one shared installation, two commands in two shells.

So every cached cohortex kernel saves under an advisory lock on its cache directory (``flock``,
released by the kernel if the process dies), reads the index inside the lock, and writes the
data file before the index entry that names it. Loading needs no lock: files are replaced
atomically and an index never names a data file that is not yet complete. Where ``fcntl`` is
missing (Windows) numba's own cache is used unchanged.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numba
from numba.core import caching

from ._errors import CohortexWarning

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "LockedCacheFile", "directory_lock", "njit"]

#: The lock file in each cache directory (``__pycache__`` beside the module, or numba's
#: user-wide cache directory where that is read-only).
LOCK_NAME = "cohortex-numba.lock"


@contextlib.contextmanager
def directory_lock(path: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path/LOCK_NAME`` (created if missing)."""
    descriptor = os.open(os.path.join(path, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


class LockedCacheFile(caching.IndexDataCacheFile):  # type: ignore[misc]
    """numba's index and data files, saved under the directory lock, data before index.

    Where the lock or the files cannot be written (a file system without ``flock``, a full
    disk), the kernel is used without being saved, and a warning says so once per directory:
    a cache written without the lock could send a later process to the wrong machine code.
    """

    def save(self, key: Any, data: Any) -> None:
        try:
            with directory_lock(self._cache_path):
                self._save_locked(key, data)
        except OSError as error:
            _not_saved(self._cache_path, error)

    def _save_locked(self, key: Any, data: Any) -> None:
        overloads = self._load_index()
        data_name = overloads.get(key)
        if data_name is not None:
            self._save_data(data_name, data)
            return
        taken = set(overloads.values())
        data_name = next(
            name for name in map(self._data_name, itertools.count(1)) if name not in taken
        )
        self._save_data(data_name, data)
        overloads[key] = data_name
        self._save_index(overloads)


_WARNED: set[str] = set()


def _not_saved(path: str, error: OSError) -> None:
    if path in _WARNED:
        return
    _WARNED.add(path)
    warnings.warn(
        f"cohortex could not save compiled kernels in {path!r} ({error}); they are compiled "
        "again in each process. Point NUMBA_CACHE_DIR at a local, writable directory.",
        CohortexWarning,
        stacklevel=2,
    )


class _LockedFunctionCache(caching.FunctionCache):  # type: ignore[misc]
    """numba's per-function cache with :class:`LockedCacheFile` in place of its file."""

    def __init__(self, py_func: Callable[..., Any]) -> None:
        super().__init__(py_func)
        self._cache_file = LockedCacheFile(
            cache_path=self._cache_path,
            filename_base=self._impl.filename_base,
            source_stamp=self._impl.locator.get_source_stamp(),
        )


def njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(**options)``; with ``cache=True`` the cache is saved under the lock.

    Parameters
    ----------
    **options
        numba's ``njit`` options (``cache``, ``nogil``, ``parallel``, ``error_model``, ...).

    Returns
    -------
    callable
        A decorator that returns numba's dispatcher.
    """
    cache = options.pop("cache", False)

    def decorate(function: Callable[..., Any]) -> Any:
        dispatcher = numba.njit(cache=cache and fcntl is None, **options)(function)
        if cache and fcntl is not None:
            # what Dispatcher.enable_caching does, with the locked cache
            dispatcher._cache = _LockedFunctionCache(function)
        return dispatcher

    return decorate
