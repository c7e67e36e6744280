"""The cohort store: an xarray Dataset in Zarr v3 on a local filesystem.

Layout of a store (a Zarr v3 group)::

    expression(sample, gene)   float32, chunked tiles, compressed; NaN marks a missing value
    sample(sample), gene(gene) string ids (coordinates)
    <sample variable>(sample)  sample metadata: condition, batch, age, ...
    <gene variable>(gene)      gene annotation (and a simulator's ground truth)
    <matrix>(sample, gene)     optional further matrices, float64, tiled as the expression:
                               tximport's per-sample transcript lengths (``length``), say
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

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from .._backend import take_genes
from .._errors import CohortexError
from .._progress import progress_bar
from ._integrity import (
    StoredArray,
    StoreReport,
    damaged_chunk,
    missing_chunks,
    missing_error,
    refuse_links,
    verify,
)
from ._journal import begin_journal, commit_journal, recover, rollback
from ._lock import LOCK_TIMEOUT, store_lock
from ._schema import (
    CHECKSUMMED_FROM,
    COMPRESSORS,
    DEFAULT_CHUNKS,
    FORMAT_VERSION,
    JOURNAL,
    RESULTS,
    SCALES,
    PathLike,
    align_matrix,
    align_metadata,
    as_matrix,
    cast_like,
    check_format,
    check_is_group,
    check_result_name,
    check_stored_ids,
    differences,
    expression_chunks,
    list_results,
    load_variable,
    matrix_names,
    metadata_variables,
    open_array,
    own_files_unremarked,
    preview,
    row_blocks,
    strings_as_object,
    strings_to_object,
    to_numpy,
    unpack_dataset,
)
from ._writer import (
    BlockChecker,
    CohortWriter,
    check_matrix_block,
    disk_errors,
    interrupts_deferred,
    replace_dir,
    restore_replaced,
    to_zarr_checked,
    write_block,
)

__all__ = [
    "COMPRESSORS",
    "DEFAULT_CHUNKS",
    "FORMAT_VERSION",
    "LOCK_TIMEOUT",
    "SCALES",
    "StoreReport",
    "append_samples",
    "create_cohort",
    "describe",
    "list_results",
    "open_cohort",
    "read_result",
    "verify",
    "write_result",
]


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
    matrices: dict[str, Any] | None = None,
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
        variables become the metadata, its other sample × gene variables the ``matrices``,
        its plain attributes the store's). Stored as float32; NaN marks a missing value; ±inf
        is refused.
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
    matrices : dict of str to array-like of shape (n_samples, n_genes), optional
        Further matrices to keep beside the expression, by name: tximport's per-sample average
        transcript lengths as ``length``, which :func:`cohortex.de.deseq` and the edgeR models
        then take. DataFrames and DataArrays are matched by their ids; arrays must be in the
        expression's order. Stored as float64; NaN marks a missing value; ±inf is refused.

    Returns
    -------
    xarray.Dataset
        The new store opened with :func:`open_cohort`.
    """
    attrs: dict[str, Any] = {}
    if isinstance(expression, xr.Dataset):
        expression, samples, genes, scale, found, attrs = unpack_dataset(
            expression, samples, genes, scale
        )
        matrices = {**found, **(matrices or {})}
    matrix, sample_ids, gene_ids = as_matrix(expression)
    samples, sample_ids = align_metadata(samples, sample_ids, matrix.shape[0], "sample")
    genes, gene_ids = align_metadata(genes, gene_ids, matrix.shape[1], "gene")
    if matrices is not None and not isinstance(matrices, dict):
        raise CohortexError(
            f"The 'matrices' parameter must be a dict of name to matrix; got "
            f"{type(matrices).__name__}."
        )
    others = {
        str(name): align_matrix(values, str(name), sample_ids, gene_ids)
        for name, values in (matrices or {}).items()
    }
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
        attrs=attrs,
        matrices=list(others),
    ) as writer:
        blocks = row_blocks(matrix, writer.chunks[0])
        with progress_bar(len(blocks), "writing cohort", progress) as bar:
            for start, stop in blocks:
                writer.write(slice(start, stop), slice(None), to_numpy(matrix[start:stop]))
                for name, values in others.items():
                    writer.write(
                        slice(start, stop), slice(None), to_numpy(values[start:stop]), name
                    )
                bar.update()
    return open_cohort(path)


def open_cohort(path: PathLike, *, chunks: Any = None, genes: Any = None) -> xr.Dataset:
    """Open a cohort store lazily.

    The expression matrix stays on disk as a Dask array; sample and gene variables are loaded
    into memory. A store whose last append was interrupted is first restored (with a warning).

    Parameters
    ----------
    path : str or path-like
        A store written by :func:`create_cohort`.
    chunks : dict or None, default None
        Dask chunks for ``expression``; ``None`` keeps the stored tiles.
    genes : array of bool of shape (n_genes,), optional
        The genes to keep (e.g. :func:`cohortex.filter_by_expr`'s ``keep``), selected tile by
        tile: each stored tile is read once and keeps its place. (``isel(gene=keep)`` on the
        opened cohort gives the same values, but Dask regroups the kept genes into new
        chunks that straddle the tiles: a pass over them reads ~2× the data.)

    Returns
    -------
    xarray.Dataset
        ``expression(sample, gene)`` float32 (Dask), the store's other sample × gene
        matrices (float64, Dask, chunked as the expression) and the metadata variables; attrs
        hold ``scale`` and ``cohortex_format``.
    """
    root = Path(path)
    restore_replaced(root)
    check_is_group(root)
    journal = root / JOURNAL
    if journal.exists() or journal.is_symlink():  # waits for a live writer; a dead one's is undone
        with store_lock(root, exclusive=True, what="undo an unfinished append in"):
            recover(root)
    with store_lock(root, exclusive=False, what="read"):
        ds = _open(root, chunks)
    return ds if genes is None else _keep_genes(ds, genes)


def _keep_genes(ds: xr.Dataset, genes: Any) -> xr.Dataset:
    """``ds`` with the genes where ``genes`` is true, the expression selected per tile."""
    keep = np.asarray(getattr(genes, "values", genes))
    if keep.dtype != np.bool_ or keep.shape != (ds.sizes["gene"],):
        raise CohortexError(
            f"'genes' must be {ds.sizes['gene']} booleans (one per gene, e.g. filter_by_expr's "
            f"keep); got {keep.dtype} of shape {keep.shape}."
        )
    kept = ds.isel(gene=keep)  # the gene variables and coordinates (in memory)
    for name in ("expression", *matrix_names(ds)):
        selected = take_genes(ds[name].data, keep)
        kept[name] = (("sample", "gene"), selected, ds[name].attrs)
    return kept


def _open(root: Path, chunks: Any) -> xr.Dataset:
    """``open_cohort`` once the store is locked against writers."""
    refuse_links(root)
    try:
        group = zarr.open_group(root, mode="r", zarr_format=3)
        version = check_format(dict(group.attrs), root)
        with own_files_unremarked():
            names = sorted(group.array_keys())
    except CohortexError:
        raise
    except Exception as error:
        raise CohortexError(f"The store at {str(root)!r} cannot be opened: {error}") from None
    checked = version >= CHECKSUMMED_FROM
    if checked:  # the cheap check: every chunk file is there (reading them is verify's job)
        for name in names:
            missing = missing_chunks(root, name)
            if missing:
                raise missing_error(root, name, missing)
    try:
        with own_files_unremarked():
            ds = xr.open_zarr(root, consolidated=False, chunks=None)  # reads the coordinates
    except Exception as error:  # a damaged id chunk, arrays of conflicting lengths, ...
        damaged = [n for n in names if n != "expression" and damaged_chunk(root, n)]
        where = f" (a damaged chunk: {damaged_chunk(root, damaged[0])} of {damaged[0]!r})"
        raise CohortexError(
            f"The store at {str(root)!r} cannot be opened{where if damaged else ''}: {error}"
        ) from None
    if "expression" not in ds.data_vars or ds["expression"].dims != ("sample", "gene"):
        raise CohortexError(
            f"The store at {str(root)!r} has no expression(sample, gene) variable; "
            "it is not a cohort store."
        )
    stored = StoredArray(root, "expression", checked)
    dask_chunks = expression_chunks(chunks, stored.chunks)
    lazy = {}
    for name in ["expression", *matrix_names(ds)]:
        if ds[name].dims != ("sample", "gene"):
            raise CohortexError(
                f"The store at {str(root)!r} holds {name!r} with its dimensions as "
                f"{ds[name].dims}; cohortex writes (sample, gene): it is damaged."
            )
        array = stored if name == "expression" else StoredArray(root, name, checked)
        lazy[name] = (
            ("sample", "gene"),
            da.from_array(
                array,
                chunks=dask_chunks,
                asarray=False,
                meta=np.empty((0, 0), dtype=array.dtype),
                name=f"cohortex-{name}-{uuid.uuid4().hex}",
            ),
            ds[name].attrs,
        )
    # Metadata in memory, in a stable order: grouped by dimension, then by name.
    ordered = sorted((ds[n].dims, n) for n in ds.data_vars if n not in lazy)
    variables = {n: (ds[n].dims, load_variable(root, n, ds[n])) for _, n in ordered}
    sample_ids, gene_ids = (
        load_variable(root, "sample", ds["sample"]),
        load_variable(root, "gene", ds["gene"]),
    )
    for what, ids in (("sample", sample_ids), ("gene", gene_ids)):
        check_stored_ids(root, what, ids)
    return xr.Dataset(
        {**lazy, **variables},
        coords={"sample": sample_ids, "gene": gene_ids},
        attrs=ds.attrs,
    )


def append_samples(
    path: PathLike,
    expression: Any,
    samples: pd.DataFrame | None = None,
    *,
    progress: bool | None = None,
    matrices: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Add samples to an existing cohort store, all or nothing.

    Parameters
    ----------
    path : str or path-like
        An existing cohort store.
    expression : array-like of shape (n_new_samples, n_genes), or xarray.Dataset
        As for :func:`create_cohort`. A DataFrame's columns are matched to the store's gene ids
        (any order); a plain array must be in the store's gene order. A Dataset (new samples
        from :func:`cohortex.io.read_quantifications`, say) gives the expression, the sample
        metadata and the store's matrices unless they are passed (its others, such as
        read_quantifications' ``abundance``, are not kept); its scale and its
        ``counts_from_abundance`` must be the store's. (tximport gives a gene with no
        abundance in a sample its mean length over the samples read with it: appended
        samples take theirs from their own batch.)
    samples : DataFrame of n_new_samples rows, optional
        Metadata of the new samples, with exactly the store's sample variables as columns. Its
        index holds the new sample ids, which must not be in the store yet. Required when the
        store has sample variables.
    progress : bool or None, default None
        Show a progress bar (``None``: only on a terminal).
    matrices : dict of str to array-like of shape (n_new_samples, n_genes), optional
        The new samples' values of each of the store's other sample × gene matrices (its
        ``length``, say), by name: exactly the store's. Matched as for :func:`create_cohort`.

    Returns
    -------
    xarray.Dataset
        The grown store, opened with :func:`open_cohort`.
    """
    root = Path(path)
    check_is_group(root)
    with store_lock(root, exclusive=True, what="append to"):
        return _append(root, expression, samples, progress, matrices)


def _append(
    root: Path,
    expression: Any,
    samples: pd.DataFrame | None,
    progress: bool | None,
    matrices: dict[str, Any] | None,
) -> xr.Dataset:
    """``append_samples`` once the store is locked for this writer alone."""
    current = open_cohort(root)
    if isinstance(expression, xr.Dataset):
        expression, samples, matrices = _unpack_appended(expression, samples, matrices, current)
    old_gene_ids = [str(g) for g in current["gene"].values]
    old_sample_ids = {str(s) for s in current["sample"].values}
    sample_vars = [
        str(name)
        for name in current.data_vars
        if name != "expression" and current[name].dims == ("sample",)
    ]

    matrix, sample_ids, gene_ids = as_matrix(expression)
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
                + differences(missing=missing, unknown=extra)
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
    samples, sample_ids = align_metadata(
        samples, sample_ids, matrix.shape[0], "sample", start=len(old_sample_ids)
    )
    clash = [s for s in sample_ids if s in old_sample_ids]
    if clash:
        raise CohortexError(
            f"Sample ids must be unique; {len(clash)} appended ids are already in the store: "
            + preview(clash)
            + "."
        )
    new_vars = metadata_variables(samples, "sample")
    missing = sorted(set(sample_vars) - set(new_vars))
    extra = sorted(set(new_vars) - set(sample_vars))
    if missing or extra:
        raise CohortexError(
            "The sample metadata schema must match the store's: "
            + differences(missing_columns=missing, unknown_columns=extra)
            + f". Store sample variables: {', '.join(sample_vars) or '(none)'}."
        )
    for name in sample_vars:
        new_vars[name] = cast_like(new_vars[name], current[name].values, name)
    new_vars["sample"] = np.asarray(sample_ids, dtype=object)
    others = _appended_matrices(matrices, matrix_names(current), sample_ids, old_gene_ids)

    group = zarr.open_group(root, mode="r+", zarr_format=3)
    old_n = current.sizes["sample"]
    new_n = old_n + matrix.shape[0]
    with own_files_unremarked():
        members = list(group.arrays())
    sample_arrays = {
        name: open_array(root / name)
        for name, array in members
        if (getattr(array.metadata, "dimension_names", None) or (None,))[0] == "sample"
    }
    expression_array = sample_arrays["expression"]
    chunk_rows = expression_array.chunks[0]
    blocks = row_blocks(matrix, chunk_rows, first=old_n)

    begin_journal(root, {name: a.chunks[0] for name, a in sample_arrays.items()}, old_n)
    try:
        for name, array in sample_arrays.items():
            if name == "expression" or name in others:
                continue
            with interrupts_deferred():
                array.resize((new_n, *array.shape[1:]))
                array[old_n:new_n] = new_vars[name]
        for name in ("expression", *others):
            with interrupts_deferred():
                sample_arrays[name].resize((new_n, sample_arrays[name].shape[1]))
        with progress_bar(len(blocks), "appending samples", progress) as bar:
            checker = BlockChecker(gene_ids=old_gene_ids, scale=current.attrs["scale"])
            for start, stop in blocks:
                block = checker(to_numpy(matrix[start - old_n : stop - old_n]), start)
                write_block(expression_array, (slice(start, stop), slice(None)), block)
                for name, values in others.items():
                    other = to_numpy(values[start - old_n : stop - old_n])
                    other = check_matrix_block(other, name, start, 0, old_gene_ids)
                    write_block(sample_arrays[name], (slice(start, stop), slice(None)), other)
                bar.update()
    except BaseException:
        rollback(root)
        raise
    commit_journal(root)
    return open_cohort(root)


def _unpack_appended(
    ds: xr.Dataset, samples: pd.DataFrame | None, matrices: dict[str, Any] | None, store: xr.Dataset
) -> tuple[Any, pd.DataFrame | None, dict[str, Any] | None]:
    """An appended Dataset's expression, sample metadata and matrices (those not given),
    refused unless its values are what the store's are."""
    scale = store.attrs["scale"]
    expression, found_samples, _, given_scale, found, attrs = unpack_dataset(
        ds, samples, None, scale
    )
    for what, theirs, ours in (
        ("scale", given_scale, scale),
        (
            "counts_from_abundance",
            attrs.get("counts_from_abundance"),
            store.attrs.get("counts_from_abundance"),
        ),
    ):
        if theirs != ours:
            raise CohortexError(
                f"The appended Dataset's {what} is {theirs!r}; the store's is {ours!r}: its "
                "values are not the store's kind, and appending them would mix the two."
            )
    if matrices is None:  # the store's: read_quantifications' abundance, say, is not kept
        matrices = {name: values for name, values in found.items() if name in store}
    return expression, found_samples, matrices


def _appended_matrices(
    matrices: dict[str, Any] | None, stored: list[str], sample_ids: list[str], gene_ids: list[str]
) -> dict[str, Any]:
    """The appended samples' values of the store's other matrices, checked and in order."""
    if matrices is not None and not isinstance(matrices, dict):
        raise CohortexError(
            f"The 'matrices' parameter must be a dict of name to matrix; got "
            f"{type(matrices).__name__}."
        )
    given = {str(k): v for k, v in (matrices or {}).items()}
    missing = [n for n in stored if n not in given]
    unknown = [n for n in given if n not in stored]
    if missing or unknown:
        raise CohortexError(
            "append_samples() needs the new samples' values of exactly the store's other "
            f"matrices ({', '.join(stored) or 'none'}) as 'matrices': "
            + differences(missing=missing, unknown=unknown)
            + "."
        )
    return {n: align_matrix(given[n], n, sample_ids, gene_ids) for n in stored}


# attribute of a stored result: its variables in the order they were written
_VARIABLE_ORDER = "cohortex_variable_order"


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
    check_result_name(name, "write_result")
    open_cohort(root)  # checks that this is a cohort store (and recovers an interrupted append)
    with store_lock(root, exclusive=True, what="write a result into"):
        _write_result(root, name, result, overwrite)


def _write_result(root: Path, name: str, result: xr.Dataset, overwrite: bool) -> None:
    """``write_result`` once the store is locked for this writer alone."""
    results = root / RESULTS
    if results.is_dir():  # leftovers of interrupted writes: no other writer can be at work now
        for aside in results.glob(".*.old-*"):
            restore_replaced(results / aside.name[1:].rsplit(".old-", 1)[0])
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
        result = strings_to_object(result)
        # a Zarr group lists its arrays in the file system's order: keep the result's own
        result = result.assign_attrs({_VARIABLE_ORDER: [str(v) for v in result.data_vars]})
        with disk_errors(f"writing the result {name!r}"):
            to_zarr_checked(result, tmp)
        replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
    location = root / RESULTS / check_result_name(name, "read_result")
    if not (location / "zarr.json").is_file():
        available = ", ".join(list_results(root)) or "(none)"
        raise CohortexError(
            f"No result named {name!r} in {str(root)!r}. Results stored: {available}."
        )
    with xr.open_zarr(location, consolidated=False) as ds:
        loaded = ds.load()
    attrs = dict(loaded.attrs)
    order = attrs.pop(_VARIABLE_ORDER, None)
    names = list(loaded.data_vars)
    if isinstance(order, list):  # written by write_result; anything else is left as listed
        ordered = [n for n in order if isinstance(n, str) and n in loaded.data_vars]
        names = ordered + [n for n in names if n not in ordered]
    return xr.Dataset(
        {k: (loaded[k].dims, strings_as_object(loaded[k].values), loaded[k].attrs) for k in names},
        coords={
            k: (v.dims, strings_as_object(v.values), v.attrs) for k, v in loaded.coords.items()
        },
        attrs=attrs,
    )


def describe(path: PathLike) -> dict[str, Any]:
    """A JSON-ready summary of a store: dimensions, chunks, codecs, size, metadata, other
    matrices, results."""
    root = Path(path)
    ds = open_cohort(root)
    array = ds["expression"]
    codecs = json.loads((root / "expression" / "zarr.json").read_text())["codecs"]
    on_disk = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    raw = array.size * array.dtype.itemsize
    summary: dict[str, Any] = {
        "path": str(root),
        "samples": ds.sizes["sample"],
        "genes": ds.sizes["gene"],
        "dtype": str(array.dtype),
        "chunks": [int(max(c)) for c in array.chunks] if array.chunks else None,
        "codecs": [c["name"] for c in codecs],
        "scale": ds.attrs.get("scale"),
        "format": ds.attrs.get("cohortex_format"),
        "bytes_on_disk": on_disk,
        "bytes_uncompressed": raw,
        "sample_variables": {},
        "gene_variables": {},
        "matrices": {},
        "results": list_results(root),
    }
    others = matrix_names(ds)
    for matrix in others:
        summary["matrices"][matrix] = {"dtype": str(ds[matrix].dtype)}
    for name in ds.data_vars:
        if name == "expression" or name in others:
            continue
        dim = ds[name].dims[0]
        summary[f"{dim}_variables"][name] = _describe_variable(np.asarray(ds[name].values))
    return summary


def _describe_variable(values: np.ndarray) -> dict[str, Any]:
    if values.dtype.kind == "b":
        return {"type": "bool", "true": int(values.sum()), "false": int((~values).sum())}
    if values.dtype.kind in "iuf":
        finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
        out: dict[str, Any] = {"type": "number", "missing": int(values.size - finite.size)}
        if finite.size:
            out.update(min=float(finite.min()), max=float(finite.max()), mean=float(finite.mean()))
        return out
    labels, counts = np.unique(values.astype(str), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    levels = {str(labels[i]) if labels[i] else "(missing)": int(counts[i]) for i in order[:8]}
    return {"type": "text", "distinct": len(labels), "top": levels}
