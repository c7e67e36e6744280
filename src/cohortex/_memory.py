"""The machine's memory, and handing memory that finished work freed back to the system.

glibc keeps freed blocks of up to 32 MB in its heaps for reuse, and a heap whose top is in use
cannot shrink: after a pass that allocated and freed many chunk-sized arrays (Dask's reads,
torch's float64 copies), the process keeps hundreds of MB it no longer uses, and the next pass
adds its own on top. ``malloc_trim`` returns those pages; it costs a few milliseconds, so it is
called between large phases of work, never inside a loop. Elsewhere (macOS, musl) it does
nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from typing import Any

__all__ = ["physical_memory", "release_free_memory"]


@functools.cache
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def release_free_memory() -> bool:
    """Return the heap's free pages to the system; ``True`` where the C library can."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def physical_memory() -> int:
    """Bytes of memory of this machine (0 where unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 0
