"""Names the store and the command line share, in a module light enough for ``--help``."""

from __future__ import annotations

__all__ = ["COMPRESSORS", "SCALES"]

SCALES = ("log2", "log1p", "counts", "linear")

COMPRESSORS = ("lz4", "zstd", "none")
