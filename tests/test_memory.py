"""Freed memory goes back to the system between phases of work."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from cohortex._memory import release_free_memory


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap (Linux)")
def test_freed_blocks_go_back_to_the_system():
    """A blockwise pass (a row block copied, widened to float64, both freed) leaves glibc's
    heap holding tens of MB the process no longer uses: glibc raises its threshold for giving
    a block its own pages once the first such block is freed, and keeps the rest for reuse.
    Releasing gives them back."""
    matrix = np.random.default_rng(0).random((8192, 2000), dtype=np.float32)
    rows = np.sort(np.random.default_rng(1).permutation(8192)[:7000])
    release_free_memory()
    start = _rss_bytes()
    for block in np.array_split(rows, 4):
        copied = matrix[block]
        widened = copied.astype(np.float64)
        del copied, widened
    held = _rss_bytes()
    assert held > start + 16 * 2**20  # the pattern this is for: freed, yet still resident
    assert release_free_memory()
    assert _rss_bytes() < held - 16 * 2**20
