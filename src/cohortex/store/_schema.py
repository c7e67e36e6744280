"""What a cohort store is made of, and the checks on what goes in and comes out.

The format version, scales, codecs and names of a store; the checks of ids, metadata, chunk
shapes, result names and format; the conversions between pandas/xarray values and what Zarr v3
stores. Public inside the package: the store's façade, its writer and the importers
(``cohortex.io``) use these; nothing here writes to a store."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

from .._constants import COMPRESSORS as _COMPRESSORS
from .._constants import SCALES as _SCALES
from .._errors import CohortexError
from .._version import __version__

__all__ = [
    "CHECKSUMMED_FROM",
    "COMPRESSORS",
    "DEFAULT_CHUNKS",
    "FORMAT_VERSION",
    "JOURNAL",
    "LOCK",
    "METADATA_CODECS",
    "RESERVED_NAMES",
    "RESULTS",
    "RESULT_NAME_MAX",
    "SCALES",
    "ZARR_NAMES",
    "PathLike",
    "align_matrix",
    "align_metadata",
    "as_matrix",
    "cast_like",
    "check_chunks",
    "check_format",
    "check_ids",
    "check_is_group",
    "check_matrix_names",
    "check_result_name",
    "check_scale",
    "check_stored_ids",
    "chunk_keys",
    "codecs",
    "differences",
    "expression_chunks",
    "list_results",
    "load_variable",
    "matrix_names",
    "metadata_variables",
    "open_array",
    "own_files_unremarked",
    "preview",
    "row_blocks",
    "strings_as_object",
    "strings_to_object",
    "to_numpy",
    "unpack_dataset",
    "value_kind",
]


# 2: every chunk checksummed (crc32c) and written; 1: neither (still read)
FORMAT_VERSION = 2


CHECKSUMMED_FROM = 2


SCALES, COMPRESSORS = _SCALES, _COMPRESSORS  # defined where the command line reads them cheaply


# (samples, genes) per tile, chosen with benchmarks/store_io.py (see benchmarks/RESULTS.md).
DEFAULT_CHUNKS = (1024, 1024)


RESERVED_NAMES = ("expression", "sample", "gene", "results")


JOURNAL = ".cohortex-journal"


RESULTS = "results"


LOCK = ".cohortex.lock"


PathLike = str | os.PathLike[str]


def check_format(attrs: dict[str, Any], root: Path) -> int:
    """The store's format version (a positive integer), checked; its scale, checked."""
    version = attrs.get("cohortex_format")
    if version is None:
        raise CohortexError(
            f"The Zarr group at {str(root)!r} is not a cohort store (no 'cohortex_format' "
            "attribute)."
        )
    if type(version) is not int or version < 1:
        raise CohortexError(
            f"The store at {str(root)!r} records the format version {version!r}; cohortex "
            "writes whole numbers (1, 2, ...): the store is damaged or not a cohort store."
        )
    if version > FORMAT_VERSION:
        raise CohortexError(
            f"The store at {str(root)!r} was written in cohortex format {version}, newer than "
            f"this cohortex ({__version__}) can read (format {FORMAT_VERSION}); upgrade cohortex."
        )
    if attrs.get("scale") not in SCALES:
        raise CohortexError(
            f"The store at {str(root)!r} has an unknown scale {attrs.get('scale')!r}; "
            f"expected one of {', '.join(SCALES)}."
        )
    return version


@contextlib.contextmanager
def own_files_unremarked() -> Iterator[None]:
    """Zarr warns about every file in a group's folder that is not Zarr's when it lists the
    group; a store's lock file and an append's journal are cohortex's own."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Object at \.cohortex")
        yield


def check_is_group(root: Path) -> None:
    """A folder holding a Zarr v3 group's readable metadata, or a clear error."""
    if not root.is_dir():
        what = "a file" if root.exists() else "nothing"
        raise CohortexError(f"No cohort store at {str(root)!r}: there is {what} there.")
    metadata = root / "zarr.json"
    if not metadata.is_file():
        raise CohortexError(f"No cohort store at {str(root)!r}: there is no Zarr v3 group there.")
    try:
        node = json.loads(metadata.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise CohortexError(
            f"The store's metadata {str(metadata)!r} is unreadable ({error}); the store is damaged."
        ) from None
    if not isinstance(node, dict) or node.get("node_type") != "group":
        raise CohortexError(f"{str(metadata)!r} does not describe a Zarr v3 group.")


def load_variable(root: Path, name: Any, variable: xr.DataArray) -> np.ndarray:
    """A stored sample or gene variable in memory; a chunk that fails to decode is named."""
    try:
        return strings_as_object(variable.values)
    except Exception as error:
        raise CohortexError(
            f"The variable {str(name)!r} of the store at {str(root)!r} cannot be read ({error}): "
            f"a chunk is damaged. `cohortex verify {root}` names every damaged chunk."
        ) from None


def check_stored_ids(root: Path, what: str, ids: np.ndarray) -> None:
    index = pd.Index(ids)
    if index.has_duplicates:
        repeated = list(index[index.duplicated()].unique())
        raise CohortexError(
            f"The store at {str(root)!r} holds {what} ids more than once ({preview(repeated)}): "
            "it is damaged or was not written by cohortex."
        )
    if any(i == "" for i in ids):
        raise CohortexError(
            f"The store at {str(root)!r} holds empty {what} ids: it is damaged (a lost chunk of "
            f"the {what} ids reads as empty strings)."
        )


def expression_chunks(chunks: Any, stored: tuple[int, ...]) -> tuple[int, ...]:
    """Dask chunks of the expression from ``open_cohort``'s ``chunks`` (by dimension name)."""
    if chunks is None:
        return stored
    if not isinstance(chunks, dict) or set(chunks) - {"sample", "gene"}:
        raise CohortexError(
            "The 'chunks' parameter of open_cohort() must be a dict keyed by 'sample' and/or "
            f"'gene'; got {chunks!r}."
        )
    return (chunks.get("sample", stored[0]), chunks.get("gene", stored[1]))


def chunk_keys(shape: tuple[int, ...], chunks: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    """Every chunk index of an array (none along an empty axis)."""
    return itertools.product(*(range(-(-n // c)) for n, c in zip(shape, chunks, strict=True)))


def check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise CohortexError(
            f"The 'scale' parameter must be one of {', '.join(repr(s) for s in SCALES)}; "
            f"got {scale!r}."
        )
    return scale


def check_chunks(chunks: tuple[int, int] | None, shape: tuple[int, int]) -> tuple[int, int]:
    if chunks is None:
        chunks = DEFAULT_CHUNKS
    if len(chunks) != 2 or not all(isinstance(c, int | np.integer) for c in chunks):
        raise CohortexError(
            f"The 'chunks' parameter must be two integers (samples, genes); got {chunks!r}."
        )
    out = []
    for size, extent in zip(chunks, shape, strict=True):
        if size == -1:
            size = extent
        if size < 1:
            raise CohortexError(f"Chunk sizes must be positive or -1; got {chunks!r}.")
        out.append(int(min(size, max(extent, 1))))
    return out[0], out[1]


def codecs(compressor: Any) -> list[Any]:
    """The expression array's bytes codecs: the compressor, then the checksum of its output."""
    if compressor is None or compressor == "none":
        return [Crc32cCodec()]
    if compressor == "lz4":
        return [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"), Crc32cCodec()]
    if compressor == "zstd":
        return [ZstdCodec(level=1), Crc32cCodec()]
    if isinstance(compressor, str):
        raise CohortexError(
            f"The 'compressor' parameter must be one of {', '.join(COMPRESSORS)} or a zarr codec; "
            f"got {compressor!r}."
        )
    return [compressor, Crc32cCodec()]


# sample and gene variables, ids and results
METADATA_CODECS = [ZstdCodec(level=1), Crc32cCodec()]


def open_array(path: Path, mode: str = "r+") -> Any:
    """A stored array that writes every chunk, even one that is all NaN (Zarr would skip it,
    and a chunk that is not there could not be told from one that was lost)."""
    array = zarr.open_array(path, mode=mode, zarr_format=3)
    return array.with_config({"write_empty_chunks": True})


def preview(ids: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(repr(str(i)) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def differences(**groups: Sequence[str]) -> str:
    """'2 missing ('a', 'b'); 1 unknown ('c')' for the non-empty groups, labels from the keys."""
    return "; ".join(
        f"{len(ids)} {label.replace('_', ' ')} ({preview(ids)})"
        for label, ids in groups.items()
        if ids
    )


def check_ids(ids: Sequence[Any], what: str) -> list[str]:
    out = [str(i) for i in ids]
    if not out:
        raise CohortexError(f"A cohort needs at least one {what}; got none.")
    if any(i == "" for i in out):
        raise CohortexError(f"{what.capitalize()} ids must not be empty strings.")
    counts = pd.Index(out).value_counts()
    duplicated = counts[counts > 1]
    if len(duplicated):
        raise CohortexError(
            f"{what.capitalize()} ids must be unique; {len(duplicated)} ids occur more than once: "
            + preview(list(duplicated.index))
            + "."
        )
    return out


def as_matrix(
    expression: Any, dtype: type = np.float32
) -> tuple[Any, list[str] | None, list[str] | None]:
    """Return (2-D array-like, sample ids or None, gene ids or None); a DataFrame's values
    become ``dtype``."""
    sample_ids = gene_ids = None
    if isinstance(expression, pd.DataFrame):
        non_numeric = [c for c, t in expression.dtypes.items() if t.kind not in "biuf"]
        if non_numeric:
            raise CohortexError(
                "Expression values must be numeric; these columns are not: "
                + preview(non_numeric)
                + "."
            )
        sample_ids = [str(i) for i in expression.index]
        gene_ids = [str(c) for c in expression.columns]
        matrix: Any = expression.to_numpy(dtype=dtype)
    elif isinstance(expression, xr.DataArray):
        if expression.ndim == 2 and expression.dims == ("gene", "sample"):
            expression = expression.T
        if "sample" in expression.coords:
            sample_ids = [str(i) for i in expression["sample"].values]
        if "gene" in expression.coords:
            gene_ids = [str(i) for i in expression["gene"].values]
        matrix = expression.data
    elif type(expression).__module__.startswith(("dask.", "cupy")):
        matrix = expression
    else:
        matrix = np.asarray(expression)
    if matrix.ndim != 2:
        raise CohortexError(
            f"The expression matrix must be 2-D (samples × genes); got {matrix.ndim} dimensions "
            f"with shape {matrix.shape}."
        )
    if np.dtype(matrix.dtype).kind not in "biuf":
        raise CohortexError(
            f"Expression values must be numeric; got an array of dtype {matrix.dtype}."
        )
    return matrix, sample_ids, gene_ids


def align_matrix(values: Any, name: str, sample_ids: list[str], gene_ids: list[str]) -> Any:
    """A sample × gene matrix besides the expression (tximport's lengths, say) in the
    cohort's sample and gene order: a DataFrame or DataArray is matched by its ids, an array
    must already be in order."""
    try:
        matrix, rows, columns = as_matrix(values, np.float64)
    except CohortexError as error:
        raise CohortexError(f"The matrix {name!r} cannot be stored: {error}") from None
    for axis, what, given, ids in ((0, "sample", rows, sample_ids), (1, "gene", columns, gene_ids)):
        if given is None or given == ids:
            if matrix.shape[axis] != len(ids):
                raise CohortexError(
                    f"The matrix {name!r} has {matrix.shape[axis]} {what}s; the expression has "
                    f"{len(ids)}."
                )
            continue
        missing = [i for i in ids if i not in set(given)]
        unknown = [i for i in given if i not in set(ids)]
        if missing or unknown or len(given) != len(ids):
            raise CohortexError(
                f"The {what}s of the matrix {name!r} do not match the expression's: "
                + (differences(missing=missing, unknown=unknown) or f"{what} ids repeated")
                + "."
            )
        order = pd.Index(given).get_indexer(ids)
        matrix = matrix[order] if axis == 0 else matrix[:, order]
    return matrix


def check_matrix_names(names: Sequence[Any], *metadata: dict[str, Any]) -> list[str]:
    """The names of a store's sample × gene matrices besides the expression, checked as
    metadata names are and against the metadata's."""
    out = []
    for given in names:
        name = str(given)
        if name in RESERVED_NAMES or name.startswith((".", "_")) or "/" in name or not name:
            raise CohortexError(
                f"{name!r} cannot name a matrix: the names {', '.join(RESERVED_NAMES)}, names "
                "with '/' and names starting with '.' or '_' are reserved."
            )
        if any(name in variables for variables in metadata):
            raise CohortexError(
                f"{name!r} names both a matrix and a sample or gene variable; rename one of them."
            )
        out.append(name)
    return out


def matrix_names(ds: xr.Dataset) -> list[str]:
    """The cohort's sample × gene variables besides the expression."""
    return [
        str(n) for n in ds.data_vars if n != "expression" and set(ds[n].dims) == {"sample", "gene"}
    ]


def align_metadata(
    meta: pd.DataFrame | None, ids: list[str] | None, n: int, what: str, start: int = 0
) -> tuple[pd.DataFrame | None, list[str]]:
    """Match a metadata table to the matrix's ids; return it in matrix order and the ids.

    Without ids anywhere, ids ``S1, S2, ...`` (``G1, ...`` for genes) are made, numbered from
    ``start + 1`` so that appended samples continue the numbering.
    """
    if meta is not None:
        if not isinstance(meta, pd.DataFrame):
            raise CohortexError(
                f"The {what} metadata must be a pandas DataFrame; got {type(meta).__name__}."
            )
        if isinstance(meta.index, pd.RangeIndex) and what in meta.columns:
            meta = meta.set_index(what)
        meta = meta.copy()
        meta.index = pd.Index([str(i) for i in meta.index])
        check_ids(list(meta.index), what)
        if ids is None:
            if len(meta) != n:
                raise CohortexError(
                    f"The {what} metadata has {len(meta)} rows; the expression matrix has "
                    f"{n} {what}s."
                )
            return meta, list(meta.index)
        known, described = set(ids), set(meta.index)
        unknown = [i for i in meta.index if i not in known]
        undescribed = [i for i in ids if i not in described]
        if unknown or undescribed:
            raise CohortexError(
                f"The {what} metadata does not match the expression matrix: "
                + differences(
                    **{
                        f"metadata rows match no {what}": unknown,
                        f"{what}s have no metadata row": undescribed,
                    }
                )
                + "."
            )
        return meta.loc[ids], ids
    if ids is None:
        prefix = "S" if what == "sample" else "G"
        ids = [f"{prefix}{i}" for i in range(start + 1, start + n + 1)]
    if len(ids) != n:
        raise CohortexError(f"Got {len(ids)} {what} ids for {n} {what}s.")
    return None, ids


def metadata_variables(
    meta: pd.DataFrame | None, dim: str, n: int | None = None
) -> dict[str, np.ndarray]:
    """Turn metadata columns into 1-D arrays that Zarr v3 stores faithfully."""
    if meta is None:
        return {}
    if n is not None and len(meta) != n:
        raise CohortexError(f"The {dim} metadata has {len(meta)} rows; expected {n}.")
    out: dict[str, np.ndarray] = {}
    for column in meta.columns:
        name = str(column)
        if name in RESERVED_NAMES or name.startswith((".", "_")) or "/" in name or not name:
            raise CohortexError(
                f"{name!r} cannot name a {dim} variable: the names "
                f"{', '.join(RESERVED_NAMES)}, names with '/' and names starting with '.' or '_' "
                "are reserved."
            )
        series = meta[column]
        dtype = series.dtype
        if pd.api.types.is_bool_dtype(dtype) and not series.isna().any():
            out[name] = series.to_numpy(dtype=bool)
        elif pd.api.types.is_integer_dtype(dtype) and not series.isna().any():
            out[name] = series.to_numpy(dtype=np.int64)
        elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            out[name] = series.to_numpy(dtype=np.float64, na_value=np.nan)
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            out[name] = series.to_numpy(dtype="datetime64[ns]")
        else:
            out[name] = np.asarray(
                ["" if pd.isna(v) else str(v) for v in series.to_numpy(dtype=object)],
                dtype=object,
            )
    return out


def cast_like(values: np.ndarray, existing: np.ndarray, name: str) -> np.ndarray:
    """Cast appended metadata to the stored variable's dtype, refusing a change of kind."""
    kind_old, kind_new = value_kind(existing.dtype), value_kind(values.dtype)
    if kind_old == "number" and kind_new == "number":
        if existing.dtype.kind in "iu" and values.dtype.kind == "f":
            raise CohortexError(
                f"The sample variable {name!r} holds integers; the appended values are not "
                "whole numbers (or have missing values)."
            )
        return values.astype(existing.dtype)
    if kind_old != kind_new:
        raise CohortexError(
            f"The sample variable {name!r} holds {kind_old} values; the appended metadata has "
            f"{kind_new} values."
        )
    return values.astype(object) if kind_old == "text" else values.astype(existing.dtype)


def value_kind(dtype: np.dtype) -> str:
    if dtype.kind == "b":
        return "boolean"
    if dtype.kind in "iuf":
        return "number"
    if dtype.kind == "M":
        return "date"
    return "text"


def strings_as_object(values: Any) -> Any:
    """Read-back strings come as NumPy StringDType; object arrays suit pandas and users."""
    if values.dtype.kind in "TUS":
        return values.astype(object)
    return values


def strings_to_object(ds: xr.Dataset) -> xr.Dataset:
    """Fixed-width NumPy strings have no Zarr v3 spec; store them as variable-length."""
    converted = {
        name: var.astype(object) for name, var in ds.variables.items() if var.dtype.kind in "US"
    }
    return ds.assign_coords({k: v for k, v in converted.items() if k in ds.coords}).assign(
        {k: v for k, v in converted.items() if k not in ds.coords}
    )


def unpack_dataset(
    ds: xr.Dataset, samples: pd.DataFrame | None, genes: pd.DataFrame | None, scale: str
) -> tuple[Any, pd.DataFrame | None, pd.DataFrame | None, str, dict[str, Any], dict[str, Any]]:
    """A Dataset's expression, metadata (unless given), scale, other sample × gene
    matrices (by name) and the attributes worth keeping: plain values that describe them."""
    if "expression" not in ds.data_vars:
        raise CohortexError("The Dataset passed as 'expression' has no 'expression' variable.")
    expression = ds["expression"].transpose("sample", "gene")
    if samples is None:
        names = [n for n in ds.data_vars if ds[n].dims == ("sample",)]
        samples = ds[names].to_dataframe() if names else None
    if genes is None:
        names = [n for n in ds.data_vars if ds[n].dims == ("gene",)]
        genes = ds[names].to_dataframe() if names else None
    matrices = {n: ds[n].transpose("sample", "gene") for n in matrix_names(ds)}
    attrs = {
        str(k): v
        for k, v in ds.attrs.items()
        if k not in ("scale", "cohortex_format", "cohortex_version")
        and isinstance(v, str | bool | int | float)
        and not (isinstance(v, float) and not np.isfinite(v))
    }
    return expression, samples, genes, ds.attrs.get("scale", scale), matrices, attrs


def row_blocks(matrix: Any, chunk_rows: int, first: int = 0) -> list[tuple[int, int]]:
    """Row ranges (in store coordinates) aligned to the store's tiles, starting at ``first``."""
    n = matrix.shape[0]
    edges = [first]
    next_edge = (first // chunk_rows + 1) * chunk_rows
    while next_edge < first + n:
        edges.append(next_edge)
        next_edge += chunk_rows
    edges.append(first + n)
    return list(itertools.pairwise(edges))


def to_numpy(block: Any) -> np.ndarray:
    if hasattr(block, "compute"):
        block = block.compute()
    if hasattr(block, "get") and type(block).__module__.startswith("cupy"):
        block = block.get()
    return np.asarray(block)


# names Zarr gives meaning to inside a group's folder (v3 and v2 metadata)
ZARR_NAMES = ("zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata", "c")


RESULT_NAME_MAX = 128


def check_result_name(name: Any, function: str) -> str:
    """A result name is one plain folder name in ``results/``: never a path, never Zarr's."""
    if (
        not isinstance(name, str)
        or not name
        or len(name) > RESULT_NAME_MAX
        or name.startswith(".")
        or name in ZARR_NAMES
        or not all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in name)
    ):
        raise CohortexError(
            f"The 'name' parameter of {function}() must be 1 to {RESULT_NAME_MAX} letters, "
            "digits, '-', '_' or '.' (not leading), and not one of Zarr's names "
            f"({', '.join(ZARR_NAMES)}); got {name!r}."
        )
    return name


def list_results(path: PathLike) -> list[str]:
    """Names of the results saved in a cohort store, sorted."""
    results = Path(path) / RESULTS
    if not results.is_dir():
        return []
    return sorted(
        p.name
        for p in results.iterdir()
        if not p.name.startswith(".") and (p / "zarr.json").is_file()
    )
