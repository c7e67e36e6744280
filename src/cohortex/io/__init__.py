"""Importers and exporters: delimited text, GEO series matrices, GCT, AnnData, NumPy, pandas,
and the transcript quantifications of Salmon, kallisto, RSEM and StringTie (summarised as
tximport).

In memory, :func:`cohortex.create_cohort` takes NumPy/Dask arrays and DataFrames directly;
:func:`to_pandas` and :func:`to_anndata` give them back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._errors import CohortexError
from ..store import create_cohort
from ._anndata import export_anndata, from_anndata, import_anndata, to_anndata, to_pandas
from ._quantifications import (
    COUNTS_FROM_ABUNDANCE,
    QUANTIFIERS,
    import_quantifications,
    read_quantifications,
)
from ._text import (
    ORIENTATIONS,
    export_gct,
    export_table,
    import_featurecounts,
    import_gct,
    import_table,
    is_featurecounts,
    read_metadata,
)

__all__ = [
    "COUNTS_FROM_ABUNDANCE",
    "ORIENTATIONS",
    "QUANTIFIERS",
    "export_anndata",
    "export_gct",
    "export_table",
    "from_anndata",
    "import_anndata",
    "import_featurecounts",
    "import_file",
    "import_gct",
    "import_quantifications",
    "import_table",
    "read_metadata",
    "read_quantifications",
    "to_anndata",
    "to_pandas",
]


def import_file(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    orientation: str = "genes-by-samples",
    samples: Any = None,
    scale: str | None = None,
    **options: Any,
) -> xr.Dataset:
    """Import any supported file, choosing the reader by its name.

    ``.gct`` → :func:`import_gct`; ``.h5ad`` or a folder → :func:`import_anndata`; ``.npy`` →
    a NumPy matrix of shape (n_samples, n_genes), opened memory-mapped; featureCounts output
    (by its first line) → :func:`import_featurecounts`; anything else (``.tsv``, ``.txt``,
    ``.csv``, optionally ``.gz``) → :func:`import_table`.

    Parameters
    ----------
    src, dest : path
    orientation : str, default "genes-by-samples"
        For text files only.
    samples : DataFrame or path, optional
        Sample metadata.
    scale : str, optional
        Default ``"log2"`` (for AnnData: the recorded scale, else ``"log2"``; for featureCounts:
        ``"counts"``).
    **options
        ``chunks``, ``compressor``, ``overwrite``, ``progress``; ``layer`` for AnnData;
        ``annotation_columns`` for text tables.
    """
    path = Path(src)
    name = path.name.lower()
    if path.is_dir() or name.endswith(".h5ad"):
        return import_anndata(path, dest, samples=samples, scale=scale, **options)
    layer = options.pop("layer", None)
    if layer is not None:
        raise CohortexError("The 'layer' option applies to AnnData inputs only.")
    annotation_columns = options.pop("annotation_columns", 0)
    if annotation_columns and (name.endswith((".gct", ".npy")) or is_featurecounts(path)):
        raise CohortexError(
            "The 'annotation_columns' option applies to plain text tables only (GCT and "
            "featureCounts files name their own annotation columns)."
        )
    if not name.endswith((".gct", ".npy")) and is_featurecounts(path):
        return import_featurecounts(path, dest, samples=samples, scale=scale or "counts", **options)
    scale = scale or "log2"
    if name.endswith(".gct"):
        return import_gct(path, dest, samples=samples, scale=scale, **options)
    if name.endswith(".npy"):
        if not path.is_file():
            raise CohortexError(f"The input file {str(path)!r} does not exist.")
        try:
            matrix = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:  # object arrays, truncated, not .npy
            raise CohortexError(
                f"{str(path)!r} is not a readable NumPy matrix of numbers: {error}"
            ) from None
        meta = None if samples is None else read_metadata(samples, "sample")
        return create_cohort(dest, matrix, samples=meta, scale=scale, **options)
    return import_table(
        path,
        dest,
        orientation=orientation,
        samples=samples,
        annotation_columns=annotation_columns,
        scale=scale,
        **options,
    )
