"""The kernels' on-disk cache, filled by several processes at once (cohortex._jit)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from numba.core.caching import NullCache
from numba.core.registry import CPUDispatcher

import cohortex
from cohortex import _jit

fcntl = pytest.importorskip("fcntl")

KERNEL = """
from cohortex._jit import njit


@njit(cache=True)
def twice_plus_one(x):
    return x * 2 + 1
"""

# Each process compiles one signature. The pause after every index read keeps all of them
# between reading the index and writing it at once, the moment numba's own cache loses
# entries or sends one signature to another's machine code.
COMPILE = """
import sys, time
import numpy as np
from numba.core import caching

read_index = caching.IndexDataCacheFile._load_index

def slow_read(self):
    index = read_index(self)
    time.sleep(float(sys.argv[2]))
    return index

caching.IndexDataCacheFile._load_index = slow_read
sys.path.insert(0, sys.argv[3])
from kernels import twice_plus_one

print(twice_plus_one(np.arange(3, dtype=sys.argv[1])).tolist())
"""

RELOAD = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from kernels import twice_plus_one

for dtype in sys.argv[2:]:
    x = np.arange(3, dtype=dtype)
    y = twice_plus_one(x)
    assert y.dtype.kind == x.dtype.kind and y.tolist() == [1, 3, 5], (dtype, y)
stats = twice_plus_one.stats
print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""


def test_concurrent_compiles_leave_a_complete_cache(tmp_path: Path) -> None:
    (tmp_path / "kernels.py").write_text(KERNEL)
    dtypes = ["int64", "float64", "int32"]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", COMPILE, dtype, "1.0", str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for dtype in dtypes
    ]
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        assert ast.literal_eval(out) == [1, 3, 5]
    assert (tmp_path / "__pycache__" / _jit.LOCK_NAME).exists()

    # A fresh process finds every signature in the cache, each with its own machine code.
    reload = subprocess.run(
        [sys.executable, "-c", RELOAD, str(tmp_path), *dtypes],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert reload.returncode == 0, reload.stderr
    assert reload.stdout.split() == ["3", "0"]


def test_a_cache_that_cannot_be_locked_is_not_written(tmp_path: Path, monkeypatch) -> None:
    """A file system without flock: the kernel runs, nothing is saved, a warning says so."""
    import errno
    import importlib.util

    def no_lock(descriptor: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(_jit.fcntl, "flock", no_lock)
    monkeypatch.setattr(_jit, "_WARNED", set())
    (tmp_path / "unlocked.py").write_text(KERNEL)
    spec = importlib.util.spec_from_file_location("unlocked", tmp_path / "unlocked.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.warns(cohortex.CohortexWarning, match="could not save compiled kernels"):
        assert module.twice_plus_one(3.0) == 7.0
    assert not list((tmp_path / "__pycache__").glob("*.nbi"))


def test_every_cached_kernel_saves_under_the_lock() -> None:
    """Every cohortex kernel that caches uses the locked cache file, none numba's own."""
    dispatchers = []
    for module_info in pkgutil.walk_packages(cohortex.__path__, "cohortex."):
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher) and value.__module__ == module.__name__:
                dispatchers.append(value)
    assert len(dispatchers) > 100
    cached = [d for d in dispatchers if not isinstance(d._cache, NullCache)]
    assert cached == dispatchers, [d.py_func.__qualname__ for d in dispatchers if d not in cached]
    assert all(type(d._cache._cache_file) is _jit.LockedCacheFile for d in cached)


def test_a_kernel_without_cache_compiles_in_memory() -> None:
    def add(a, b):  # type: ignore[no-untyped-def]
        return a + b

    kernel = _jit.njit()(add)
    assert kernel(2, 3) == 5
    assert isinstance(kernel._cache, NullCache)


def test_no_module_compiles_with_numba_directly() -> None:
    """Kernels defined inside functions escape the check above; their source does not."""
    source = Path(cohortex.__file__).parent
    direct = [
        str(path.relative_to(source))
        for path in source.rglob("*.py")
        if path.name != "_jit.py"
        and any(
            pattern in path.read_text()
            for pattern in ("numba.njit", "numba.jit", "from numba import", "numba.vectorize")
        )
    ]
    assert direct == []
