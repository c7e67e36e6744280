"""The benchmark harness reads stores through the store API, like every other reader."""

from __future__ import annotations

import numpy as np
import pytest

from cohortex import CohortexError, create_cohort
from cohortex.app.bench import load_matrix


def test_load_matrix_reads_every_chunk_through_the_store(tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 30)).astype(np.float32)
    create_cohort(tmp_path / "c.zarr", x, chunks=(16, 8))
    np.testing.assert_array_equal(load_matrix(tmp_path / "c.zarr"), x)
    chunk = tmp_path / "c.zarr" / "expression" / "c" / "1" / "2"
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 1
    chunk.write_bytes(bytes(raw))
    with pytest.raises(CohortexError, match="c/1/2"):
        load_matrix(tmp_path / "c.zarr")
