"""The cohort store: an xarray Dataset in Zarr v3 on a local filesystem.

Layout of a store (a Zarr v3 group)::

    expression(sample, gene)   float32, chunked tiles, compressed; NaN marks a missing value
    sample(sample), gene(gene) string ids (coordinates)
    <sample variable>(sample)  sample metadata: condition, batch, age, ...
    <gene variable>(gene)      gene annotation (and a simulator's ground truth)
    results/<name>/            result Datasets written by :func:`write_result`
    attrs: cohortex_format, scale, cohortex_version

String metadata are stored as variable-length UTF-8; a missing label is stored as the empty
string ``""`` and read back as ``""``.

Every chunk of every array carries a CRC-32C checksum (Zarr v3's ``crc32c`` codec, after the
compressor), and every chunk is written, an all-NaN tile too: so an altered or truncated chunk
fails to decode and a missing chunk is an error, where Zarr alone would read a lost chunk as
NaN. :func:`verify` reads every chunk. Stores of format 1 (before checksums) stay readable;
``verify`` says what they lack.

Every write is all-or-nothing. A new store is written into a hidden temporary folder beside the
destination and renamed into place at the end. An append first records, in a journal inside the
store, the metadata files and the boundary chunks it is about to change; if the append fails
(an exception, Ctrl-C, or the process being killed) the journal restores the store byte for
byte, either at once or the next time the store is opened.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import shutil
import signal
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

from ._errors import CohortexError, CohortexWarning
from ._progress import progress_bar

__all__ = [
    "COMPRESSORS",
    "DEFAULT_CHUNKS",
    "FORMAT_VERSION",
    "LOCK_TIMEOUT",
    "SCALES",
    "append_samples",
    "create_cohort",
    "list_results",
    "open_cohort",
    "read_result",
    "verify",
    "write_result",
]

# 2: every chunk checksummed (crc32c) and written; 1: neither (still read)
FORMAT_VERSION = 2
_CHECKSUMMED_FROM = 2
SCALES = ("log2", "log1p", "counts", "linear")
COMPRESSORS = ("lz4", "zstd", "none")
# (samples, genes) per tile, chosen with benchmarks/store_io.py (see benchmarks/RESULTS.md).
DEFAULT_CHUNKS = (1024, 1024)
RESERVED_NAMES = ("expression", "sample", "gene", "results")
_JOURNAL = ".cohortex-journal"
_RESULTS = "results"
_LOCK = ".cohortex.lock"
# seconds a writer waits for another writer of the same store (a reader: for a writer)
LOCK_TIMEOUT = 120.0

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def create_cohort(
    path: PathLike,
    expression: Any,
    *,
    samples: pd.DataFrame | None = None,
    genes: pd.DataFrame | None = None,
    scale: str = "log2",
    chunks: tuple[int, int] | None = None,
    compressor: Any = "lz4",
    overwrite: bool = False,
    progress: bool | None = None,
) -> xr.Dataset:
    """Write an expression matrix and its metadata as a new cohort store.

    Parameters
    ----------
    path : str or path-like
        Destination folder (conventionally ending in ``.zarr``). Must not exist unless
        ``overwrite=True``.
    expression : array-like of shape (n_samples, n_genes)
        NumPy, Dask or CuPy array, pandas DataFrame (index: sample ids, columns: gene ids), or an
        xarray Dataset with an ``expression(sample, gene)`` variable (its sample and gene
        variables become the metadata). Stored as float32; NaN marks a missing value; ±inf is
        refused.
    samples : DataFrame of n_samples rows, optional
        Sample metadata; its index holds the sample ids (a default RangeIndex with a ``sample``
        column uses that column). When ``expression`` is a DataFrame the rows are matched by id.
    genes : DataFrame of n_genes rows, optional
        Gene annotation; its index holds the gene ids, matched like ``samples``.
    scale : {"log2", "log1p", "counts", "linear"}, default "log2"
        What the values are; fold changes depend on it.
    chunks : (int, int), optional
        Tile shape (samples, genes); ``-1`` means the whole axis. Default :data:`DEFAULT_CHUNKS`.
    compressor : {"lz4", "zstd", "none"} or zarr BytesBytesCodec, default "lz4"
        ``"lz4"`` is Blosc-LZ4 with byte shuffle, ``"zstd"`` is Zstandard level 1.
    overwrite : bool, default False
        Replace an existing store at ``path`` (only once the new one is complete).
    progress : bool or None, default None
        Show a progress bar (``None``: only on a terminal).

    Returns
    -------
    xarray.Dataset
        The new store opened with :func:`open_cohort`.
    """
    if isinstance(expression, xr.Dataset):
        expression, samples, genes, scale = _unpack_dataset(expression, samples, genes, scale)
    matrix, sample_ids, gene_ids = _as_matrix(expression)
    samples, sample_ids = _align_metadata(samples, sample_ids, matrix.shape[0], "sample")
    genes, gene_ids = _align_metadata(genes, gene_ids, matrix.shape[1], "gene")
    with CohortWriter(
        path,
        sample_ids=sample_ids,
        gene_ids=gene_ids,
        samples=samples,
        genes=genes,
        scale=scale,
        chunks=chunks,
        compressor=compressor,
        overwrite=overwrite,
    ) as writer:
        blocks = _row_blocks(matrix, writer.chunks[0])
        bar = progress_bar(len(blocks), "writing cohort", progress)
        for start, stop in blocks:
            writer.write(slice(start, stop), slice(None), _to_numpy(matrix[start:stop]))
            bar.update()
        bar.close()
    return open_cohort(path)


def open_cohort(path: PathLike, *, chunks: Any = None) -> xr.Dataset:
    """Open a cohort store lazily.

    The expression matrix stays on disk as a Dask array; sample and gene variables are loaded
    into memory. A store whose last append was interrupted is first restored (with a warning).

    Parameters
    ----------
    path : str or path-like
        A store written by :func:`create_cohort`.
    chunks : dict or None, default None
        Dask chunks for ``expression``; ``None`` keeps the stored tiles.

    Returns
    -------
    xarray.Dataset
        ``expression(sample, gene)`` float32 (Dask) and the metadata variables; attrs hold
        ``scale`` and ``cohortex_format``.
    """
    root = Path(path)
    _restore_replaced(root)
    _check_is_group(root)
    journal = root / _JOURNAL
    if journal.exists() or journal.is_symlink():  # waits for a live writer; a dead one's is undone
        with _store_lock(root, exclusive=True, what="undo an unfinished append in"):
            _recover(root)
    with _store_lock(root, exclusive=False, what="read"):
        return _open(root, chunks)


def _open(root: Path, chunks: Any) -> xr.Dataset:
    """``open_cohort`` once the store is locked against writers."""
    _refuse_links(root)
    try:
        group = zarr.open_group(root, mode="r", zarr_format=3)
        version = _check_format(dict(group.attrs), root)
        with _own_files_unremarked():
            names = sorted(group.array_keys())
    except CohortexError:
        raise
    except Exception as error:
        raise CohortexError(f"The store at {str(root)!r} cannot be opened: {error}") from None
    checked = version >= _CHECKSUMMED_FROM
    if checked:  # the cheap check: every chunk file is there (reading them is verify's job)
        for name in names:
            missing = _missing_chunks(root, name)
            if missing:
                raise _missing_error(root, name, missing)
    try:
        with _own_files_unremarked():
            ds = xr.open_zarr(root, consolidated=False, chunks=None)  # reads the coordinates
    except Exception as error:  # a damaged id chunk, arrays of conflicting lengths, ...
        damaged = [n for n in names if n != "expression" and _damaged_chunk(root, n)]
        where = f" (a damaged chunk: {_damaged_chunk(root, damaged[0])} of {damaged[0]!r})"
        raise CohortexError(
            f"The store at {str(root)!r} cannot be opened{where if damaged else ''}: {error}"
        ) from None
    if "expression" not in ds.data_vars or ds["expression"].dims != ("sample", "gene"):
        raise CohortexError(
            f"The store at {str(root)!r} has no expression(sample, gene) variable; "
            "it is not a cohort store."
        )
    stored = _StoredArray(root, "expression", checked)
    # Metadata in memory, in a stable order: grouped by dimension, then by name.
    ordered = sorted((ds[n].dims, n) for n in ds.data_vars if n != "expression")
    variables = {n: (ds[n].dims, _load(root, n, ds[n])) for _, n in ordered}
    sample_ids, gene_ids = _load(root, "sample", ds["sample"]), _load(root, "gene", ds["gene"])
    for what, ids in (("sample", sample_ids), ("gene", gene_ids)):
        _check_stored_ids(root, what, ids)
    expression = da.from_array(
        stored,
        chunks=_expression_chunks(chunks, stored.chunks),
        asarray=False,
        meta=np.empty((0, 0), dtype=stored.dtype),
        name=f"cohortex-expression-{uuid.uuid4().hex}",
    )
    return xr.Dataset(
        {"expression": (("sample", "gene"), expression, ds["expression"].attrs), **variables},
        coords={"sample": sample_ids, "gene": gene_ids},
        attrs=ds.attrs,
    )


def append_samples(
    path: PathLike,
    expression: Any,
    samples: pd.DataFrame | None = None,
    *,
    progress: bool | None = None,
) -> xr.Dataset:
    """Add samples to an existing cohort store, all or nothing.

    Parameters
    ----------
    path : str or path-like
        An existing cohort store.
    expression : array-like of shape (n_new_samples, n_genes)
        As for :func:`create_cohort`. A DataFrame's columns are matched to the store's gene ids
        (any order); a plain array must be in the store's gene order.
    samples : DataFrame of n_new_samples rows, optional
        Metadata of the new samples, with exactly the store's sample variables as columns. Its
        index holds the new sample ids, which must not be in the store yet. Required when the
        store has sample variables.
    progress : bool or None, default None
        Show a progress bar (``None``: only on a terminal).

    Returns
    -------
    xarray.Dataset
        The grown store, opened with :func:`open_cohort`.
    """
    root = Path(path)
    _check_is_group(root)
    with _store_lock(root, exclusive=True, what="append to"):
        return _append(root, expression, samples, progress)


def _append(
    root: Path, expression: Any, samples: pd.DataFrame | None, progress: bool | None
) -> xr.Dataset:
    """``append_samples`` once the store is locked for this writer alone."""
    current = open_cohort(root)
    old_gene_ids = [str(g) for g in current["gene"].values]
    old_sample_ids = {str(s) for s in current["sample"].values}
    sample_vars = [
        str(name)
        for name in current.data_vars
        if name != "expression" and current[name].dims == ("sample",)
    ]

    matrix, sample_ids, gene_ids = _as_matrix(expression)
    if matrix.shape[1] != len(old_gene_ids):
        raise CohortexError(
            f"The 'expression' passed to append_samples() has {matrix.shape[1]} genes; the store "
            f"has {len(old_gene_ids)}."
        )
    if gene_ids is not None and gene_ids != old_gene_ids:
        missing = sorted(set(old_gene_ids) - set(gene_ids))
        extra = sorted(set(gene_ids) - set(old_gene_ids))
        if missing or extra:
            raise CohortexError(
                "The genes of the appended expression do not match the store's: "
                + _differences(missing=missing, unknown=extra)
                + "."
            )
        order = pd.Index(gene_ids).get_indexer(old_gene_ids)
        matrix = matrix[:, order]
    if samples is None and sample_vars:
        raise CohortexError(
            "The store has sample variables ("
            + ", ".join(sample_vars)
            + "); append_samples() needs a 'samples' DataFrame with them."
        )
    samples, sample_ids = _align_metadata(
        samples, sample_ids, matrix.shape[0], "sample", start=len(old_sample_ids)
    )
    clash = [s for s in sample_ids if s in old_sample_ids]
    if clash:
        raise CohortexError(
            f"Sample ids must be unique; {len(clash)} appended ids are already in the store: "
            + _preview(clash)
            + "."
        )
    new_vars = _metadata_variables(samples, "sample")
    missing = sorted(set(sample_vars) - set(new_vars))
    extra = sorted(set(new_vars) - set(sample_vars))
    if missing or extra:
        raise CohortexError(
            "The sample metadata schema must match the store's: "
            + _differences(missing_columns=missing, unknown_columns=extra)
            + f". Store sample variables: {', '.join(sample_vars) or '(none)'}."
        )
    for name in sample_vars:
        new_vars[name] = _cast_like(new_vars[name], current[name].values, name)
    new_vars["sample"] = np.asarray(sample_ids, dtype=object)

    group = zarr.open_group(root, mode="r+", zarr_format=3)
    old_n = current.sizes["sample"]
    new_n = old_n + matrix.shape[0]
    with _own_files_unremarked():
        members = list(group.arrays())
    sample_arrays = {
        name: _open_array(root / name)
        for name, array in members
        if (getattr(array.metadata, "dimension_names", None) or (None,))[0] == "sample"
    }
    expression_array = sample_arrays["expression"]
    chunk_rows = expression_array.chunks[0]
    blocks = _row_blocks(matrix, chunk_rows, first=old_n)

    _begin_journal(root, {name: a.chunks[0] for name, a in sample_arrays.items()}, old_n)
    try:
        for name, array in sample_arrays.items():
            if name == "expression":
                continue
            with _interrupts_deferred():
                array.resize((new_n, *array.shape[1:]))
                array[old_n:new_n] = new_vars[name]
        with _interrupts_deferred():
            expression_array.resize((new_n, expression_array.shape[1]))
        bar = progress_bar(len(blocks), "appending samples", progress)
        checker = _BlockChecker(gene_ids=old_gene_ids, scale=current.attrs["scale"])
        for start, stop in blocks:
            block = checker(_to_numpy(matrix[start - old_n : stop - old_n]), start)
            _write_block(expression_array, (slice(start, stop), slice(None)), block)
            bar.update()
        bar.close()
    except BaseException:
        _rollback(root)
        raise
    _commit_journal(root)
    return open_cohort(root)


def write_result(path: PathLike, name: str, result: xr.Dataset, *, overwrite: bool = False) -> None:
    """Save a result Dataset inside a cohort store, under ``results/<name>``.

    Parameters
    ----------
    path : str or path-like
        An existing cohort store.
    name : str
        Result name: letters, digits, ``-``, ``_`` and ``.`` (not leading).
    result : xarray.Dataset
        Any Dataset (DE table on ``gene``, PCA scores on ``sample``, ...).
    overwrite : bool, default False
        Replace a result of the same name (only once the new one is written).
    """
    root = Path(path)
    _check_result_name(name, "write_result")
    open_cohort(root)  # checks that this is a cohort store (and recovers an interrupted append)
    with _store_lock(root, exclusive=True, what="write a result into"):
        _write_result(root, name, result, overwrite)


def _write_result(root: Path, name: str, result: xr.Dataset, overwrite: bool) -> None:
    """``write_result`` once the store is locked for this writer alone."""
    results = root / _RESULTS
    if results.is_dir():  # leftovers of interrupted writes: no other writer can be at work now
        for aside in results.glob(".*.old-*"):
            _restore_replaced(results / aside.name[1:].rsplit(".old-", 1)[0])
        for leftover in [*results.glob(".*.tmp-*"), *results.glob(".*.old-*")]:
            shutil.rmtree(leftover, ignore_errors=True)
    if not (results / "zarr.json").is_file():
        zarr.open_group(results, mode="a", zarr_format=3)
    final = results / name
    if final.exists() and not overwrite:
        raise CohortexError(
            f"A result named {name!r} already exists in {str(root)!r}; pass overwrite=True to "
            "replace it."
        )
    tmp = results / f".{name}.tmp-{uuid.uuid4().hex}"
    try:
        result = _strings_to_object(result)
        with _disk_errors(f"writing the result {name!r}"):
            _to_zarr_checked(result, tmp)
        _replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _to_zarr_checked(result: xr.Dataset, tmp: Path) -> None:
    """A result Dataset written with checksums, every chunk written."""
    result.to_zarr(
        tmp,
        mode="w-",
        zarr_format=3,
        consolidated=False,
        encoding={name: {"compressors": _METADATA_CODECS} for name in result.variables},
        write_empty_chunks=True,
    )


def read_result(path: PathLike, name: str) -> xr.Dataset:
    """Load a result saved with :func:`write_result` into memory.

    Parameters
    ----------
    path : str or path-like
        A cohort store.
    name : str
        The result's name; :func:`list_results` lists them.

    Returns
    -------
    xarray.Dataset
    """
    root = Path(path)
    location = root / _RESULTS / _check_result_name(name, "read_result")
    if not (location / "zarr.json").is_file():
        available = ", ".join(list_results(root)) or "(none)"
        raise CohortexError(
            f"No result named {name!r} in {str(root)!r}. Results stored: {available}."
        )
    with xr.open_zarr(location, consolidated=False) as ds:
        loaded = ds.load()
    return xr.Dataset(
        {k: (v.dims, _strings_as_object(v.values), v.attrs) for k, v in loaded.data_vars.items()},
        coords={
            k: (v.dims, _strings_as_object(v.values), v.attrs) for k, v in loaded.coords.items()
        },
        attrs=loaded.attrs,
    )


def list_results(path: PathLike) -> list[str]:
    """Names of the results saved in a cohort store, sorted."""
    results = Path(path) / _RESULTS
    if not results.is_dir():
        return []
    return sorted(
        p.name
        for p in results.iterdir()
        if not p.name.startswith(".") and (p / "zarr.json").is_file()
    )


@dataclass
class StoreReport:
    """What :func:`verify` found.

    Attributes
    ----------
    path : str
    format : int or None
        The store's format version (None where it could not be read).
    problems : list of str
        Damage: anything that makes a value wrong or unreadable. Empty for a sound store.
    notes : list of str
        What the check could not establish, and leftovers that harm nothing.
    chunks_read : int
        Chunks decoded (each checked against its checksum where the store has them).
    """

    path: str
    format: int | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    chunks_read: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        verdict = "sound" if self.ok else f"{len(self.problems)} problem(s)"
        lines = [f"{self.path}: {verdict} (format {self.format}, {self.chunks_read} chunks read)"]
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def verify(path: PathLike, *, progress: bool | None = None) -> StoreReport:
    """Check a store completely, without changing it.

    Reads every chunk of every array (the expression, ids, metadata and results), so that a
    checksum mismatch, a truncated chunk or a missing one is found; checks the schema (format,
    scale, dimensions), that ids are unique and non-empty, and whether an append was left
    unfinished. Stores of format 1 carry no checksums and skip writing all-NaN tiles: the
    report says so instead of reporting their absent chunks as lost.

    Parameters
    ----------
    path : str or path-like
    progress : bool or None, default None
        A bar over the chunks (``None``: only on a terminal).

    Returns
    -------
    StoreReport
        ``ok`` is true when no problem was found.
    """
    root = Path(path)
    report = StoreReport(str(root))
    try:
        _check_is_group(root)
        group = zarr.open_group(root, mode="r", zarr_format=3)
        report.format = _check_format(dict(group.attrs), root)
    except CohortexError as error:
        report.problems.append(str(error))
        return report
    except Exception as error:
        report.problems.append(f"the store's group cannot be opened: {error}")
        return report
    checked = report.format >= _CHECKSUMMED_FROM
    if not checked:
        report.notes.append(
            f"format {report.format}: chunks carry no checksums (an altered value cannot be "
            "detected) and all-NaN tiles were not written (a lost chunk cannot be told from "
            "one); re-import the store with this cohortex to get both"
        )
    journal = root / _JOURNAL
    if journal.is_symlink() or (journal / "manifest.json").is_file():
        try:
            _read_manifest(root, journal / "manifest.json")
            report.problems.append(
                "an append did not finish; opening the store (with write access) rolls it back"
            )
        except CohortexError as error:
            report.problems.append(str(error))
    for leftover in sorted(root.parent.glob(f".{root.name}.*-*")) + sorted(
        (root / _RESULTS).glob(".*.tmp-*")
    ):
        report.notes.append(f"{str(leftover)!r} is left over from an interrupted write")
    try:
        _refuse_links(root)
    except CohortexError as error:
        report.problems.append(str(error))
        return report  # nothing is read through a link
    arrays = _stored_arrays(root)
    _check_chunks_of(root, arrays, checked, report, progress)
    try:
        with _own_files_unremarked():
            ds = xr.open_zarr(root, consolidated=False, chunks=None)
    except Exception as error:
        report.problems.append(f"the arrays do not form a cohort: {error}")
        return report
    if "expression" not in ds.data_vars or ds["expression"].dims != ("sample", "gene"):
        report.problems.append("there is no expression(sample, gene) array")
    for what in ("sample", "gene"):
        if what in ds.coords and not any(what in p for p in report.problems):
            try:
                _check_stored_ids(root, what, _strings_as_object(ds[what].values))
            except CohortexError as error:
                report.problems.append(str(error))
    for name in list_results(root):
        try:
            xr.open_zarr(root / _RESULTS / name, consolidated=False, chunks=None)
        except Exception as error:
            report.problems.append(f"the result {name!r} cannot be opened: {error}")
    return report


def _stored_arrays(root: Path) -> list[str]:
    """Every array of the store (relative paths), results included."""
    found = []
    for metadata in sorted(root.rglob("zarr.json")):
        relative = metadata.parent.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue  # the journal's copies, leftovers of interrupted writes
        try:
            node = json.loads(metadata.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            node = {"node_type": "array"}  # unreadable metadata: reported when opened
        if node.get("node_type") == "array":
            found.append("/".join(relative.parts))
    return found


def _check_chunks_of(
    root: Path, arrays: list[str], checked: bool, report: StoreReport, progress: bool | None
) -> None:
    """Every chunk there (format ≥ 2) and decoding; problems and notes into ``report``."""
    work = []
    for name in arrays:
        try:
            array = zarr.open_array(root / name, mode="r", zarr_format=3)
            missing = _missing_chunks(root, name)
        except Exception as error:
            report.problems.append(f"the array {name!r} cannot be opened: {error}")
            continue
        codecs = [type(c).__name__ for c in getattr(array.metadata, "codecs", ())]
        if checked and "Crc32cCodec" not in codecs:
            report.problems.append(f"the array {name!r} carries no checksums")
        if missing and checked:
            report.problems.append(
                f"{len(missing)} chunk(s) of {name!r} are missing ({_preview(missing)})"
            )
        elif missing:
            report.notes.append(
                f"{len(missing)} chunk(s) of {name!r} are absent and read as missing values "
                f"({_preview(missing)}): in format 1 that is also how an all-NaN tile is kept"
            )
        absent = set(missing)
        for key in _chunk_keys(array.shape, array.chunks):
            if "c/" + "/".join(map(str, key)) not in absent:
                work.append((name, array, key))

    def decode(item: tuple[str, Any, tuple[int, ...]]) -> str | None:
        name, array, key = item
        try:
            array.get_block_selection(key)
        except Exception as error:
            return f"chunk c/{'/'.join(map(str, key))} of {name!r} cannot be read: {error}"
        return None

    bar = progress_bar(len(work), "verifying chunks", progress)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for failure in pool.map(decode, work):
            report.chunks_read += 1
            if failure:
                report.problems.append(failure)
            bar.update()
    bar.close()


# --------------------------------------------------------------------------------------------
# Writing a new store
# --------------------------------------------------------------------------------------------


class CohortWriter:
    """Write a new cohort store block by block, all or nothing.

    Used by :func:`create_cohort`, the importers and the simulator. Ids and metadata are known
    up front; the expression matrix arrives in blocks (any rectangles, ideally whole tiles).
    The store is built in a hidden folder beside ``path`` and renamed into place when the
    ``with`` block ends without error; on error the folder is removed.

    Parameters
    ----------
    path : str or path-like
        Destination of the store.
    sample_ids, gene_ids : sequence of str
        Unique ids, in matrix order.
    samples, genes : DataFrame or None
        Metadata aligned to the ids (same order).
    scale, chunks, compressor, overwrite
        As for :func:`create_cohort`.
    attrs : dict, optional
        Extra Dataset attributes.
    """

    def __init__(
        self,
        path: PathLike,
        *,
        sample_ids: Sequence[str],
        gene_ids: Sequence[str],
        samples: pd.DataFrame | None = None,
        genes: pd.DataFrame | None = None,
        scale: str = "log2",
        chunks: tuple[int, int] | None = None,
        compressor: Any = "lz4",
        overwrite: bool = False,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.sample_ids = _check_ids(sample_ids, "sample")
        self.gene_ids = _check_ids(gene_ids, "gene")
        self.shape = (len(self.sample_ids), len(self.gene_ids))
        self.scale = _check_scale(scale)
        self.chunks = _check_chunks(chunks, self.shape)
        self.codecs = _codecs(compressor)
        self.sample_vars = _metadata_variables(samples, "sample", len(self.sample_ids))
        self.gene_vars = _metadata_variables(genes, "gene", len(self.gene_ids))
        for name in set(self.sample_vars) & set(self.gene_vars):
            raise CohortexError(
                f"The metadata column {name!r} is both a sample variable and a gene variable; "
                "rename one of them."
            )
        _restore_replaced(self.path)
        if self.path.exists() or self.path.is_symlink():
            if not overwrite:
                raise CohortexError(
                    f"{str(self.path)!r} already exists; pass overwrite=True to replace it."
                )
            _check_replaceable(self.path)
        self.attrs = {**(attrs or {}), "scale": self.scale}
        self._tmp: Path | None = None
        self._hold: contextlib.ExitStack | None = None
        self._array: Any = None
        self._written = 0
        self._checker = _BlockChecker(gene_ids=self.gene_ids, scale=self.scale)

    def __enter__(self) -> CohortWriter:
        parent = self.path.parent
        parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(parent, f".{self.path.name}.tmp-*")
        self._tmp = parent / f".{self.path.name}.tmp-{uuid.uuid4().hex}"
        self._hold = contextlib.ExitStack()
        try:
            self._tmp.mkdir()
            # held until the store is in place: a leftover folder is one nobody holds
            self._hold.enter_context(_held_lock(self._tmp / _LOCK))
            with _disk_errors(f"creating the store {str(self.path)!r}"):
                self._write_skeleton(self._tmp)
            self._array = _open_array(self._tmp / "expression")
        except BaseException:
            self._hold.close()
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        return self

    def write(self, rows: slice, cols: slice, block: np.ndarray) -> None:
        """Write ``block`` at ``expression[rows, cols]``.

        Parameters
        ----------
        rows, cols : slice
            Region of the matrix; ``slice(None)`` means the whole axis.
        block : ndarray of shape (len(rows), len(cols))
            Numeric values; cast to float32.
        """
        r0, r1, _ = rows.indices(self.shape[0])
        c0, c1, _ = cols.indices(self.shape[1])
        block = np.asarray(block)
        if block.shape != (r1 - r0, c1 - c0):
            raise CohortexError(
                f"A block of shape {block.shape} cannot be written at rows {r0}:{r1}, "
                f"columns {c0}:{c1}."
            )
        block = self._checker(block, r0, c0)
        _write_block(self._array, (slice(r0, r1), slice(c0, c1)), block)
        self._written += block.size

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self._tmp is not None
        try:
            if exc_type is None:
                expected = self.shape[0] * self.shape[1]
                if self._written != expected:
                    raise CohortexError(
                        f"Only {self._written} of {expected} expression values were written; "
                        "the store was not created."
                    )
                if self.path.exists():
                    _check_replaceable(self.path)
                    with _store_lock(self.path, exclusive=True, what="replace"):
                        _replace_dir(self._tmp, self.path)
                else:
                    _replace_dir(self._tmp, self.path)
        finally:
            assert self._hold is not None
            self._hold.close()
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _write_skeleton(self, where: Path) -> None:
        """The store's arrays and metadata, without expression values, into the (existing,
        empty but for its lock file) folder ``where``."""
        placeholder = da.full(
            self.shape, np.nan, dtype=np.float32, chunks=self.chunks
        )  # never computed: to_zarr(compute=False) writes only the array's metadata
        ds = xr.Dataset(
            {"expression": (("sample", "gene"), placeholder)},
            coords={
                "sample": np.asarray(self.sample_ids, dtype=object),
                "gene": np.asarray(self.gene_ids, dtype=object),
            },
            attrs={
                "cohortex_format": FORMAT_VERSION,
                "cohortex_version": _version(),
                **self.attrs,
            },
        )
        for name, values in self.sample_vars.items():
            ds[name] = ("sample", values)
        for name, values in self.gene_vars.items():
            ds[name] = ("gene", values)
        encoding: dict[str, dict[str, Any]] = {
            str(name): {"compressors": _METADATA_CODECS} for name in ds.variables
        }
        encoding["expression"] = {"chunks": self.chunks, "compressors": self.codecs}
        with _own_files_unremarked():
            ds.to_zarr(
                where,
                mode="a",  # the folder exists (for its lock) and holds nothing else
                zarr_format=3,
                consolidated=False,
                compute=False,
                encoding=encoding,
                write_empty_chunks=True,
            )


class _BlockChecker:
    """Checks every block before it is written: finite or NaN values, plausible scale."""

    def __init__(self, *, gene_ids: Sequence[str], scale: str) -> None:
        self.gene_ids = gene_ids
        self.scale = scale
        self.first = True

    def __call__(self, block: np.ndarray, row0: int, col0: int = 0) -> np.ndarray:
        if block.dtype.kind not in "biuf":
            raise CohortexError(
                f"Expression values must be numeric; got a block of dtype {block.dtype}."
            )
        block = np.ascontiguousarray(block, dtype=np.float32)
        infinite = np.isinf(block)
        if infinite.any():
            r, c = np.argwhere(infinite)[0]
            raise CohortexError(
                f"Expression values must be finite or NaN; found {int(infinite.sum())} infinite "
                f"values in this block, the first at sample {row0 + r}, gene "
                f"{self.gene_ids[col0 + c]!r}."
            )
        if self.scale == "counts" and block.size and np.nanmin(block, initial=0.0) < 0:
            r, c = np.argwhere(block < 0)[0]
            raise CohortexError(
                f"scale='counts' needs values of at least 0; found {block[r, c]:g} at sample "
                f"{row0 + r}, gene {self.gene_ids[col0 + c]!r}. Choose the scale the values "
                "are on (log2, log1p or linear)."
            )
        if self.first and self.scale == "log2" and block.size:
            finite = block[np.isfinite(block)]
            if (
                finite.size
                and finite.min() >= 0
                and finite.max() > 1000
                and np.all(finite == np.round(finite))
            ):
                warnings.warn(
                    "The expression values are whole numbers up to "
                    f"{finite.max():.0f} but scale='log2'; if they are raw counts, "
                    "pass scale='counts' so fold changes are computed correctly.",
                    CohortexWarning,
                    stacklevel=4,
                )
        self.first = False
        return block


# --------------------------------------------------------------------------------------------
# Validation and conversion helpers
# --------------------------------------------------------------------------------------------


def _version() -> str:
    from . import __version__

    return __version__


def _check_format(attrs: dict[str, Any], root: Path) -> int:
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
            f"this cohortex ({_version()}) can read (format {FORMAT_VERSION}); upgrade cohortex."
        )
    if attrs.get("scale") not in SCALES:
        raise CohortexError(
            f"The store at {str(root)!r} has an unknown scale {attrs.get('scale')!r}; "
            f"expected one of {', '.join(SCALES)}."
        )
    return version


@contextlib.contextmanager
def _own_files_unremarked() -> Iterator[None]:
    """Zarr warns about every file in a group's folder that is not Zarr's when it lists the
    group; a store's lock file and an append's journal are cohortex's own."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Object at \.cohortex")
        yield


def _refuse_links(root: Path) -> None:
    """A store holds no symbolic links: through one, reading or writing a chunk (Zarr writes
    a chunk's temporary file into its folder) would reach outside the store."""
    for folder, subfolders, files in os.walk(root):
        for name in (*subfolders, *files):
            path = Path(folder) / name
            if path.is_symlink():
                raise CohortexError(
                    f"The store at {str(root)!r} holds a symbolic link, "
                    f"{str(path.relative_to(root))!r} → {os.readlink(path)!r}: through it "
                    "cohortex would read or write outside the store, so it refuses the store. "
                    "Copy the store with the links resolved (cp -rL) if you trust them."
                )


def _check_is_group(root: Path) -> None:
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


def _load(root: Path, name: Any, variable: xr.DataArray) -> np.ndarray:
    """A stored sample or gene variable in memory; a chunk that fails to decode is named."""
    try:
        return _strings_as_object(variable.values)
    except Exception as error:
        raise CohortexError(
            f"The variable {str(name)!r} of the store at {str(root)!r} cannot be read ({error}): "
            f"a chunk is damaged. `cohortex verify {root}` names every damaged chunk."
        ) from None


def _check_stored_ids(root: Path, what: str, ids: np.ndarray) -> None:
    index = pd.Index(ids)
    if index.has_duplicates:
        repeated = list(index[index.duplicated()].unique())
        raise CohortexError(
            f"The store at {str(root)!r} holds {what} ids more than once ({_preview(repeated)}): "
            "it is damaged or was not written by cohortex."
        )
    if any(i == "" for i in ids):
        raise CohortexError(
            f"The store at {str(root)!r} holds empty {what} ids: it is damaged (a lost chunk of "
            f"the {what} ids reads as empty strings)."
        )


def _expression_chunks(chunks: Any, stored: tuple[int, ...]) -> tuple[int, ...]:
    """Dask chunks of the expression from ``open_cohort``'s ``chunks`` (by dimension name)."""
    if chunks is None:
        return stored
    if not isinstance(chunks, dict) or set(chunks) - {"sample", "gene"}:
        raise CohortexError(
            "The 'chunks' parameter of open_cohort() must be a dict keyed by 'sample' and/or "
            f"'gene'; got {chunks!r}."
        )
    return (chunks.get("sample", stored[0]), chunks.get("gene", stored[1]))


def _chunk_keys(shape: tuple[int, ...], chunks: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    """Every chunk index of an array (none along an empty axis)."""
    return itertools.product(*(range(-(-n // c)) for n, c in zip(shape, chunks, strict=True)))


def _missing_chunks(root: Path, name: str) -> list[str]:
    """The chunk keys (``c/i/j``) of a stored array that have no file."""
    metadata = json.loads((root / name / "zarr.json").read_text(encoding="utf-8"))
    shape = tuple(metadata["shape"])
    chunks = tuple(metadata["chunk_grid"]["configuration"]["chunk_shape"])
    folder = root / name / "c"
    present: set[str] = set()
    if folder.is_dir():
        for dirpath, _, files in os.walk(folder):
            prefix = Path(dirpath).relative_to(folder).parts
            present.update("/".join((*prefix, f)) for f in files)
    return [
        "c/" + "/".join(map(str, key))
        for key in _chunk_keys(shape, chunks)
        if "/".join(map(str, key)) not in present
    ]


def _damaged_chunk(root: Path, name: str) -> str | None:
    """The first chunk of an array that fails to decode (None: every one decodes)."""
    try:
        array = zarr.open_array(root / name, mode="r", zarr_format=3)
    except Exception:
        return "zarr.json"
    for key in _chunk_keys(array.shape, array.chunks):
        try:
            array.get_block_selection(key)
        except Exception:
            return "c/" + "/".join(map(str, key))
    return None


def _missing_error(root: Path, name: str, missing: list[str]) -> CohortexError:
    return CohortexError(
        f"The store at {str(root)!r} has lost {len(missing)} chunk"
        f"{'s' if len(missing) != 1 else ''} of {name!r} ({_preview(missing)}): their values "
        "would read as missing (NaN or empty). Restore the store from a copy; "
        f"`cohortex verify {root}` lists every problem."
    )


class _StoredArray:
    """The expression array for Dask: each read checks that its chunks exist (format ≥ 2)
    and names the chunk that fails to decode (a checksum mismatch, a truncated file)."""

    def __init__(self, root: Path, name: str, check_chunks: bool) -> None:
        self.root, self.name, self.check_chunks = root, name, check_chunks
        self.array = zarr.open_array(root / name, mode="r", zarr_format=3)
        self.shape = self.array.shape
        self.dtype = self.array.dtype
        self.ndim = self.array.ndim
        self.chunks = self.array.chunks

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        keys = self._chunks_of(key)
        if self.check_chunks:
            missing = [k for k in keys if not (self.root / self.name / k).is_file()]
            if missing:
                raise _missing_error(self.root, self.name, missing)
        try:
            return np.asarray(self.array[key])
        except Exception as error:
            raise CohortexError(
                f"The store at {str(self.root)!r} holds a damaged chunk of {self.name!r} "
                f"({self._first_damaged(keys) or _preview(keys)}): {error}. "
                f"`cohortex verify {self.root}` lists every damaged chunk."
            ) from None

    def _chunks_of(self, key: tuple[slice, ...]) -> list[str]:
        ranges = []
        for part, size, extent in zip(key, self.chunks, self.shape, strict=True):
            start, stop, _ = part.indices(extent)
            ranges.append(range(start // size, -(-stop // size)))
        return ["c/" + "/".join(map(str, k)) for k in itertools.product(*ranges)]

    def _first_damaged(self, keys: list[str]) -> str | None:
        for key in keys:
            index = tuple(int(i) for i in key.split("/")[1:])
            try:
                self.array.get_block_selection(index)
            except Exception:
                return key
        return None


def _check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise CohortexError(
            f"The 'scale' parameter must be one of {', '.join(repr(s) for s in SCALES)}; "
            f"got {scale!r}."
        )
    return scale


def _check_chunks(chunks: tuple[int, int] | None, shape: tuple[int, int]) -> tuple[int, int]:
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


def _codecs(compressor: Any) -> list[Any]:
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
_METADATA_CODECS = [ZstdCodec(level=1), Crc32cCodec()]


def _open_array(path: Path, mode: str = "r+") -> Any:
    """A stored array that writes every chunk, even one that is all NaN (Zarr would skip it,
    and a chunk that is not there could not be told from one that was lost)."""
    array = zarr.open_array(path, mode=mode, zarr_format=3)
    return array.with_config({"write_empty_chunks": True})


def _preview(ids: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(repr(str(i)) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _differences(**groups: Sequence[str]) -> str:
    """'2 missing ('a', 'b'); 1 unknown ('c')' for the non-empty groups, labels from the keys."""
    return "; ".join(
        f"{len(ids)} {label.replace('_', ' ')} ({_preview(ids)})"
        for label, ids in groups.items()
        if ids
    )


def _check_ids(ids: Sequence[Any], what: str) -> list[str]:
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
            + _preview(list(duplicated.index))
            + "."
        )
    return out


def _as_matrix(expression: Any) -> tuple[Any, list[str] | None, list[str] | None]:
    """Return (2-D array-like, sample ids or None, gene ids or None)."""
    sample_ids = gene_ids = None
    if isinstance(expression, pd.DataFrame):
        non_numeric = [c for c, t in expression.dtypes.items() if t.kind not in "biuf"]
        if non_numeric:
            raise CohortexError(
                "Expression values must be numeric; these columns are not: "
                + _preview(non_numeric)
                + "."
            )
        sample_ids = [str(i) for i in expression.index]
        gene_ids = [str(c) for c in expression.columns]
        matrix: Any = expression.to_numpy(dtype=np.float32)
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


def _align_metadata(
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
        _check_ids(list(meta.index), what)
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
                + _differences(
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


def _metadata_variables(
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


def _cast_like(values: np.ndarray, existing: np.ndarray, name: str) -> np.ndarray:
    """Cast appended metadata to the stored variable's dtype, refusing a change of kind."""
    kind_old, kind_new = _value_kind(existing.dtype), _value_kind(values.dtype)
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


def _value_kind(dtype: np.dtype) -> str:
    if dtype.kind == "b":
        return "boolean"
    if dtype.kind in "iuf":
        return "number"
    if dtype.kind == "M":
        return "date"
    return "text"


def _strings_as_object(values: Any) -> Any:
    """Read-back strings come as NumPy StringDType; object arrays suit pandas and users."""
    if values.dtype.kind in "TUS":
        return values.astype(object)
    return values


def _strings_to_object(ds: xr.Dataset) -> xr.Dataset:
    """Fixed-width NumPy strings have no Zarr v3 spec; store them as variable-length."""
    converted = {
        name: var.astype(object) for name, var in ds.variables.items() if var.dtype.kind in "US"
    }
    return ds.assign_coords({k: v for k, v in converted.items() if k in ds.coords}).assign(
        {k: v for k, v in converted.items() if k not in ds.coords}
    )


def _unpack_dataset(
    ds: xr.Dataset, samples: pd.DataFrame | None, genes: pd.DataFrame | None, scale: str
) -> tuple[Any, pd.DataFrame | None, pd.DataFrame | None, str]:
    if "expression" not in ds.data_vars:
        raise CohortexError("The Dataset passed as 'expression' has no 'expression' variable.")
    expression = ds["expression"].transpose("sample", "gene")
    if samples is None:
        names = [n for n in ds.data_vars if ds[n].dims == ("sample",)]
        samples = ds[names].to_dataframe() if names else None
    if genes is None:
        names = [n for n in ds.data_vars if ds[n].dims == ("gene",)]
        genes = ds[names].to_dataframe() if names else None
    return expression, samples, genes, ds.attrs.get("scale", scale)


def _row_blocks(matrix: Any, chunk_rows: int, first: int = 0) -> list[tuple[int, int]]:
    """Row ranges (in store coordinates) aligned to the store's tiles, starting at ``first``."""
    n = matrix.shape[0]
    edges = [first]
    next_edge = (first // chunk_rows + 1) * chunk_rows
    while next_edge < first + n:
        edges.append(next_edge)
        next_edge += chunk_rows
    edges.append(first + n)
    return list(itertools.pairwise(edges))


def _to_numpy(block: Any) -> np.ndarray:
    if hasattr(block, "compute"):
        block = block.compute()
    if hasattr(block, "get") and type(block).__module__.startswith("cupy"):
        block = block.get()
    return np.asarray(block)


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C until the block inside has finished.

    Zarr finishes a write on its own I/O thread; an interrupt that lands mid-write would let
    that thread go on writing while we roll back. Deferring it makes interrupts land between
    blocks. Only the main thread can handle signals, so elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[Any] = []
    previous = signal.signal(signal.SIGINT, lambda *args: received.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt


def _write_block(array: Any, region: tuple[slice, slice], block: np.ndarray) -> None:
    """The one place expression values reach the disk."""
    with _interrupts_deferred(), _disk_errors("writing expression values"):
        array[region] = block


@contextlib.contextmanager
def _disk_errors(doing: str) -> Iterator[None]:
    """A full disk, a quota or a read-only file system as a clear error (the caller's
    all-or-nothing machinery then leaves nothing half-written)."""
    try:
        yield
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
            raise
        raise CohortexError(
            f"The disk refused {doing}: {os.strerror(error.errno)} ({error.filename or ''}). "
            "Nothing was left half-written."
        ) from None


def _replace_dir(src: Path, dest: Path) -> None:
    """Move a finished folder into place; an existing ``dest`` is removed only afterwards.

    Where the kernel can (Linux's ``renameat2`` with ``RENAME_EXCHANGE``), the two folders
    trade places in one step, so that no moment leaves ``dest`` missing; the old folder, now
    at ``src``, is then removed (if that is cut short, it is a leftover that later writes
    remove). Elsewhere the old folder is first renamed aside to ``.NAME.old-<id>``, which
    :func:`_restore_replaced` puts back if the process dies before the new one is in place.
    """
    if not dest.exists():
        os.replace(src, dest)
        return
    if _exchange(src, dest):
        shutil.rmtree(src, ignore_errors=True)
        return
    old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex}"
    os.replace(dest, old)
    os.replace(src, dest)
    shutil.rmtree(old, ignore_errors=True)


def _check_replaceable(path: Path) -> None:
    """Only a cohort store, or an empty folder, may be replaced: never other files."""
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        return
    metadata = path / "zarr.json"
    is_store = False
    if path.is_dir() and not path.is_symlink() and metadata.is_file():
        try:
            node = json.loads(metadata.read_text(encoding="utf-8"))
            is_store = "cohortex_format" in node.get("attributes", {})
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            is_store = False
    if not is_store:
        raise CohortexError(
            f"{str(path)!r} exists and is not a cohort store; overwrite replaces only a cohort "
            "store (or an empty folder), never other files. Choose another destination."
        )


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where that is not available."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return done == 0  # EINVAL/ENOSYS: the file system or kernel cannot exchange


def _restore_replaced(dest: Path) -> None:
    """Put back a store that a replacement moved aside and did not finish replacing."""
    if dest.exists():
        return
    aside = sorted(dest.parent.glob(f".{dest.name}.old-*"))
    if len(aside) == 1 and (aside[0] / "zarr.json").is_file():
        os.replace(aside[0], dest)
        warnings.warn(
            f"The store at {str(dest)!r} was being replaced when a process stopped; the previous "
            "store has been put back.",
            CohortexWarning,
            stacklevel=3,
        )


def _remove_leftovers(folder: Path, pattern: str) -> None:
    """Remove folders of interrupted writes (``pattern`` in ``folder``) that no live writer
    holds: each writer keeps its temporary folder's lock file locked while it works."""
    for leftover in folder.glob(pattern):
        if not leftover.is_dir() or leftover.is_symlink():
            continue
        with _try_lock(leftover / _LOCK) as free:
            if free:
                shutil.rmtree(leftover, ignore_errors=True)


try:
    import fcntl
except ImportError:  # not POSIX: stores are not locked (one writer at a time is the user's)
    fcntl = None  # type: ignore[assignment]

# the stores this thread holds exclusively: it does not lock them again (another thread, with a
# lock file descriptor of its own, waits like another process)
_held = threading.local()


@contextlib.contextmanager
def _store_lock(root: Path, *, exclusive: bool, what: str) -> Iterator[None]:
    """One writer at a time: an advisory lock on ``root/.cohortex.lock``.

    Writers (append, results, replacing the store) hold it exclusively; readers hold it shared
    while they read the store's metadata, so they never meet a half-done append. Either waits
    up to :data:`LOCK_TIMEOUT` for the other, then fails with a clear error. A thread that
    holds a store exclusively does not lock it again. A reader of a store it cannot lock (read
    only) goes without.
    """
    key = str(root.resolve())
    held: set[str] = _held.__dict__.setdefault("stores", set())
    if fcntl is None or key in held:
        yield
        return
    try:
        fd = os.open(root / _LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as error:
        if exclusive:
            raise CohortexError(
                f"Cannot {what} the store at {str(root)!r}: its lock file cannot be opened "
                f"({error})."
            ) from None
        yield
        return
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise CohortexError(
                        f"Cannot {what} the store at {str(root)!r}: another process has been "
                        f"writing to it for over {LOCK_TIMEOUT:.0f} s. Try again once it has "
                        "finished."
                    ) from None
                time.sleep(0.05)
        if exclusive:
            held.add(key)
        try:
            yield
        finally:
            held.discard(key)
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def _try_lock(path: Path) -> Iterator[bool]:
    """Take an exclusive lock on ``path`` without waiting: True if no one holds it."""
    if fcntl is None:
        yield False
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:  # a folder whose writer never got to lock it: stale if not new
        yield time.time() - path.parent.stat().st_mtime > 60
        return
    except OSError:
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        yield False
        return
    try:
        yield True
    finally:
        os.close(fd)


@contextlib.contextmanager
def _held_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a writer's temporary folder) while working in it."""
    if fcntl is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# names Zarr gives meaning to inside a group's folder (v3 and v2 metadata)
_ZARR_NAMES = ("zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata", "c")
_RESULT_NAME_MAX = 128


def _check_result_name(name: Any, function: str) -> str:
    """A result name is one plain folder name in ``results/``: never a path, never Zarr's."""
    if (
        not isinstance(name, str)
        or not name
        or len(name) > _RESULT_NAME_MAX
        or name.startswith(".")
        or name in _ZARR_NAMES
        or not all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in name)
    ):
        raise CohortexError(
            f"The 'name' parameter of {function}() must be 1 to {_RESULT_NAME_MAX} letters, "
            "digits, '-', '_' or '.' (not leading), and not one of Zarr's names "
            f"({', '.join(_ZARR_NAMES)}); got {name!r}."
        )
    return name


# --------------------------------------------------------------------------------------------
# The append journal
# --------------------------------------------------------------------------------------------


def _begin_journal(root: Path, chunk_rows: dict[str, int], old_n: int) -> None:
    """Copy what an append may change; the manifest, written last, makes the journal valid."""
    journal = root / _JOURNAL
    shutil.rmtree(journal, ignore_errors=True)
    backup = journal / "files"
    backup.mkdir(parents=True)
    saved: list[str] = ["zarr.json"]
    last_chunk = {name: (old_n - 1) // rows for name, rows in chunk_rows.items()}
    for name, last in last_chunk.items():
        saved.append(f"{name}/zarr.json")
        if (root / name / "c" / str(last)).exists():
            saved.append(f"{name}/c/{last}")
    for relative in saved:
        _copy_path(root / relative, backup / relative)
    manifest = {"last_chunk": last_chunk, "saved": saved}
    tmp = journal / "manifest.json.tmp"
    with open(tmp, "w") as f:
        json.dump(manifest, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, journal / "manifest.json")


def _commit_journal(root: Path) -> None:
    journal = root / _JOURNAL
    os.remove(journal / "manifest.json")  # from here on, the append stands
    shutil.rmtree(journal, ignore_errors=True)


def _rollback(root: Path) -> None:
    """Undo an append: drop chunks past the old end, restore the saved files. Idempotent.

    The journal is read as untrusted input (a store may come from anywhere): every path it
    names is checked to be one that an append writes, inside the store and reached without a
    symbolic link, before anything is removed or copied; otherwise nothing is touched.
    """
    journal = root / _JOURNAL
    if journal.is_symlink():
        raise _bad_journal(root, f"{_JOURNAL} is a symbolic link")
    manifest_path = journal / "manifest.json"
    if not manifest_path.is_file():  # the journal never became valid: nothing was changed
        shutil.rmtree(journal, ignore_errors=True)
        return
    last_chunk, saved = _read_manifest(root, manifest_path)
    backup = journal / "files"
    for name, last in last_chunk.items():
        chunk_dir = root / name / "c"
        if not chunk_dir.is_dir():
            continue
        for child in chunk_dir.iterdir():
            if child.name.isdigit() and int(child.name) >= last:
                _remove_path(child)
    for relative in saved:
        _remove_path(root / relative)
        _copy_path(backup / relative, root / relative)
    os.remove(manifest_path)
    shutil.rmtree(journal, ignore_errors=True)


def _read_manifest(root: Path, manifest_path: Path) -> tuple[dict[str, int], list[str]]:
    """The journal's (last chunk per array, saved files), each checked (see :func:`_rollback`)."""
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise _bad_journal(root, f"its manifest cannot be read ({error})") from None
    if not isinstance(manifest, dict):
        raise _bad_journal(root, "its manifest is not a JSON object")
    last_chunk, saved = manifest.get("last_chunk"), manifest.get("saved")
    if not isinstance(last_chunk, dict) or not isinstance(saved, list):
        raise _bad_journal(root, "its manifest lacks 'last_chunk' or 'saved'")
    for name, last in last_chunk.items():
        if not _is_plain_name(name) or type(last) is not int or last < 0:
            raise _bad_journal(root, f"it names the array {name!r} with last chunk {last!r}")
        _check_inside(root, root / name / "c", root)
    for relative in saved:
        parts = relative.split("/") if isinstance(relative, str) else []
        # what _begin_journal saves: the group's and an array's metadata, an array's last chunk
        allowed = (
            parts == ["zarr.json"]
            or (len(parts) == 2 and parts[0] in last_chunk and parts[1] == "zarr.json")
            or (
                len(parts) == 3
                and parts[0] in last_chunk
                and parts[1] == "c"
                and parts[2].isdigit()
            )
        )
        if not allowed:
            raise _bad_journal(root, f"it lists {relative!r}, which no append saves")
        _check_inside(root, root / relative, root)
        _check_inside(root, root / _JOURNAL / "files" / relative, root / _JOURNAL / "files")
    return last_chunk, saved


def _is_plain_name(name: Any) -> bool:
    """A single path component that is not special: no separators, not '.', '..' or hidden."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= 255
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
    )


def _check_inside(root: Path, path: Path, container: Path) -> None:
    """Refuse ``path`` unless it lies in ``container`` with no symbolic link on the way."""
    base = container.resolve()
    resolved = path.resolve()
    if not resolved.is_relative_to(base) or resolved != base / path.relative_to(container):
        raise _bad_journal(root, f"{str(path)!r} lies outside the store or behind a link")


def _bad_journal(root: Path, why: str) -> CohortexError:
    return CohortexError(
        f"The store at {str(root)!r} holds the journal of an unfinished append, but it is not "
        f"one cohortex wrote: {why}. Nothing was changed. If you trust this store, check it "
        f"with `cohortex verify` after removing {str(root / _JOURNAL)!r}; otherwise discard it."
    )


def _recover(root: Path) -> None:
    journal = root / _JOURNAL
    if journal.exists() or journal.is_symlink():
        if journal.is_symlink():
            raise _bad_journal(root, f"{_JOURNAL} is a symbolic link")
        if (journal / "manifest.json").is_file():
            _read_manifest(root, journal / "manifest.json")  # refuses a journal it did not write
            warnings.warn(
                f"The last append to {str(root)!r} did not finish; the store has been restored "
                "to its state before that append.",
                CohortexWarning,
                stacklevel=3,
            )
        _rollback(root)


def _copy_path(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dest)
    else:
        shutil.copy2(src, dest)


def _remove_path(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
