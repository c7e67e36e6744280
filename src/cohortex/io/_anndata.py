"""AnnData (.h5ad and AnnData-Zarr) in and out, NumPy and pandas in memory.

AnnData keeps observations (our samples) in rows and variables (our genes) in columns, the same
orientation as a cohort. Import reads ``X`` (or a layer) block by block from the file, dense or
sparse, without loading it; export writes the Dask-backed matrix chunk by chunk.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from .._constants import SCALES
from .._errors import CohortexError, CohortexWarning
from .._progress import progress_bar
from ..store import open_cohort
from ..store._schema import align_metadata, check_chunks, matrix_names
from ..store._writer import CohortWriter, replace_dir
from ._text import as_dataset, read_metadata

if TYPE_CHECKING:
    import anndata as ad

__all__ = ["export_anndata", "from_anndata", "import_anndata", "to_anndata", "to_pandas"]

# rows of a sparse X densified per task when an in-memory AnnData is read lazily (~64 MB)
_DENSE_BLOCK_BYTES = 64 << 20


def from_anndata(
    adata: ad.AnnData, *, layer: str | None = None, raw: bool = False, scale: str | None = None
) -> xr.Dataset:
    """An AnnData object as a cohort Dataset (what every entry point does with one).

    Nothing is copied up front: a dense ``X`` (in memory or backed) becomes a Dask array over
    it, a sparse one is made dense block by block when a task reads it.

    Parameters
    ----------
    adata : anndata.AnnData
    layer : str, optional
        Use ``layers[layer]`` instead of ``X``.
    raw : bool, default False
        Use ``adata.raw`` (its ``X`` and ``var``; scanpy keeps the log-normalised values there
        when ``X`` has been scaled).
    scale : {"log2", "log1p", "counts", "linear"}, optional
        Default for ``X`` and ``raw``: from ``uns["log1p"]`` (scanpy's ``sc.pp.log1p``:
        natural log, or its ``base``), else ``uns["cohortex"]["scale"]``; otherwise (and for
        a layer) guessed from the values — negative: linear, whole numbers: counts, else
        log1p — with a warning that says what was assumed.

    Returns
    -------
    xarray.Dataset
        ``expression(sample, gene)``, the ``obs`` columns as sample variables and the ``var``
        columns as gene variables (text for categoricals; a ``var`` column whose name an
        ``obs`` column has is kept as ``var_<name>``).
    """
    import dask
    import dask.array as da

    if raw and layer is not None:
        raise CohortexError("Choose 'raw' or a 'layer' of the AnnData, not both.")
    if raw:
        if adata.raw is None:
            raise CohortexError("The AnnData has no .raw; pass raw=False.")
        matrix, var = adata.raw.X, adata.raw.var
    elif layer is not None:
        if layer not in adata.layers:
            known = ", ".join(adata.layers.keys()) or "(none)"
            raise CohortexError(
                f"The 'layer' parameter names no layer of the AnnData; got {layer!r}. "
                f"Layers: {known}."
            )
        matrix, var = adata.layers[layer], adata.var
    else:
        matrix, var = adata.X, adata.var
    if matrix is None:
        raise CohortexError("The AnnData has no X.")
    n_samples, n_genes = matrix.shape
    if hasattr(matrix, "toarray"):  # scipy sparse (or a backed sparse dataset)
        rows = max(1, _DENSE_BLOCK_BYTES // max(1, n_genes * 4))
        blocks = [
            da.from_delayed(
                dask.delayed(_dense_rows)(matrix, start, min(start + rows, n_samples)),
                shape=(min(start + rows, n_samples) - start, n_genes),
                dtype=np.dtype(matrix.dtype),
            )
            for start in range(0, n_samples, rows)
        ]
        expression = da.concatenate(blocks, axis=0)
    else:
        expression = da.from_array(matrix, chunks=(min(n_samples, 4096), n_genes))
    if scale is None:
        # uns["log1p"] was written for X (and for .raw, which scanpy's flow snapshots after
        # log1p); a layer (conventionally counts) is judged by its values
        uns = {} if layer is not None else adata.uns
        scale = _anndata_scale(
            uns, matrix, "adata.raw" if raw else f"layer {layer!r}" if layer else "X"
        )
    if scale not in SCALES:
        raise CohortexError(f"The 'scale' must be one of {', '.join(SCALES)}; got {scale!r}.")
    ds = xr.Dataset(
        {"expression": (("sample", "gene"), expression)},
        coords={
            "sample": np.asarray([str(i) for i in adata.obs_names], dtype=object),
            "gene": np.asarray([str(i) for i in var.index], dtype=object),
        },
        attrs={"scale": scale},
    )
    reserved = {"sample", "gene", "expression"}
    for name, column in _plain_columns(adata.obs).items():  # type: ignore[union-attr]
        if str(name) not in reserved:
            ds[str(name)] = ("sample", column.to_numpy())
    for name, column in _plain_columns(var).items():  # type: ignore[union-attr]
        key = str(name) if str(name) not in ds.variables else f"var_{name}"
        if key not in reserved:
            ds[key] = ("gene", column.to_numpy())
    return ds


def _dense_rows(matrix: Any, start: int, stop: int) -> np.ndarray:
    return np.asarray(matrix[start:stop].toarray())


def _anndata_scale(uns: Any, matrix: Any, what: str) -> str:
    """The value scale an AnnData records, or a guess from its values (with a warning)."""
    if "log1p" in uns:
        base = (uns["log1p"] or {}).get("base") if hasattr(uns["log1p"], "get") else None
        if base is None:
            return "log1p"
        if float(base) == 2.0:
            return "log2"
        raise CohortexError(
            f"uns['log1p'] says the values are log1p in base {base}; cohortex knows natural "
            "log1p and log2. Pass scale= to say how to read them."
        )
    recorded = uns.get("cohortex", {}).get("scale") if hasattr(uns, "get") else None
    if recorded is not None:
        return str(recorded)
    sample = matrix[: min(matrix.shape[0], 500)]
    values = np.asarray(sample.toarray() if hasattr(sample, "toarray") else sample)
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() < 0:
        guess, why = "linear", "it has negative values (scaled data?)"
    elif finite.size and np.all(finite == np.round(finite)):
        guess, why = "counts", "its values are whole numbers"
    else:
        guess, why = "log1p", "its values are non-negative and not whole (scanpy's sc.pp.log1p)"
    warnings.warn(
        f"The AnnData records no scale (no uns['log1p']): reading {what} as {guess!r}, since "
        f"{why}. Pass scale= (or from_anndata(..., scale=)) if that is wrong.",
        CohortexWarning,
        stacklevel=4,
    )
    return guess


def import_anndata(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    layer: str | None = None,
    samples: pd.DataFrame | str | os.PathLike[str] | None = None,
    scale: str | None = None,
    chunks: tuple[int, int] | None = None,
    compressor: Any = "lz4",
    overwrite: bool = False,
    progress: bool | None = None,
) -> xr.Dataset:
    """Import an AnnData file (``.h5ad``, or an AnnData Zarr folder) without loading it.

    Parameters
    ----------
    src : path
        ``.h5ad`` file or AnnData Zarr store.
    dest : path
        New cohort store.
    layer : str, optional
        Import ``layers[layer]`` instead of ``X``.
    samples : DataFrame or path, optional
        Sample metadata replacing ``obs`` (the ids must match ``obs_names``).
    scale : {"log2", "log1p", "counts", "linear"}, optional
        Default: scanpy's ``uns["log1p"]`` (natural log, or its ``base``), else the scale
        recorded by :func:`export_anndata` in ``uns["cohortex"]``, else guessed from the values
        as :func:`from_anndata` does, with a warning that says what was assumed.
    chunks, compressor, overwrite, progress
        As for :func:`cohortex.create_cohort`.

    Returns
    -------
    xarray.Dataset
        The new store, opened. ``obs`` columns become sample variables, ``var`` columns gene
        variables (categoricals as text).
    """
    import anndata as ad  # on use: only AnnData import and export need it

    path = Path(src)
    if not path.exists():
        raise CohortexError(f"The input file {str(path)!r} does not exist.")
    try:
        if path.is_file():
            root: Any = h5py.File(path, "r")
        else:
            with _quiet_consolidated():
                root = zarr.open_group(path, mode="r")
    except Exception as error:  # not HDF5, truncated, not a Zarr group, ...
        kind = ".h5ad (HDF5) file" if path.is_file() else "AnnData Zarr folder"
        raise CohortexError(f"{str(path)!r} is not a readable {kind}: {error}") from None
    try:
        if "X" not in root or "obs" not in root or "var" not in root:
            raise CohortexError(f"{str(path)!r} is not an AnnData file (no X, obs and var).")
        obs = ad.io.read_elem(root["obs"])
        var = ad.io.read_elem(root["var"])
        if layer is None:
            matrix = root["X"]
        else:
            if "layers" not in root or layer not in root["layers"]:
                known = ", ".join(root["layers"].keys()) if "layers" in root else "(none)"
                raise CohortexError(
                    f"The 'layer' parameter names no layer of {str(path)!r}; got {layer!r}. "
                    f"Layers: {known}."
                )
            matrix = root["layers"][layer]
        if not hasattr(matrix, "shape"):  # a sparse matrix is a group with data/indices/indptr
            matrix = ad.io.sparse_dataset(matrix)
        if scale is None:
            scale = _recorded_scale(root) or _anndata_scale({}, matrix, f"{path.name}'s X")
        sample_meta = obs if samples is None else read_metadata(samples, "sample")
        sample_meta, sample_ids = align_metadata(
            sample_meta, [str(i) for i in obs.index], len(obs), "sample"
        )
        gene_meta, gene_ids = align_metadata(var, [str(i) for i in var.index], len(var), "gene")
        if tuple(matrix.shape) != (len(sample_ids), len(gene_ids)):
            raise CohortexError(
                f"The matrix of {str(path)!r} has shape {tuple(matrix.shape)}; obs and var give "
                f"{(len(sample_ids), len(gene_ids))}."
            )
        tile = check_chunks(chunks, (len(sample_ids), len(gene_ids)))
        with CohortWriter(
            dest,
            sample_ids=sample_ids,
            gene_ids=gene_ids,
            samples=_plain_columns(sample_meta),
            genes=_plain_columns(gene_meta),
            scale=scale,
            chunks=tile,
            compressor=compressor,
            overwrite=overwrite,
        ) as writer:
            n = len(sample_ids)
            with progress_bar(-(-n // tile[0]), f"importing {path.name}", progress) as bar:
                for start in range(0, n, tile[0]):
                    stop = min(start + tile[0], n)
                    block = matrix[start:stop]
                    if hasattr(block, "toarray"):
                        block = block.toarray()
                    writer.write(slice(start, stop), slice(None), np.asarray(block))
                    bar.update()
    except (OSError, KeyError, ValueError, TypeError) as error:
        if isinstance(error, CohortexError):
            raise
        raise CohortexError(f"{str(path)!r} cannot be read as AnnData: {error}") from None
    finally:
        if isinstance(root, h5py.File):
            root.close()
    return open_cohort(dest)


def to_anndata(cohort: Any, *, lazy: bool = False, results: bool = True) -> ad.AnnData:
    """The cohort as an AnnData object (samples as ``obs``, genes as ``var``).

    Parameters
    ----------
    cohort : path or xarray.Dataset
    lazy : bool, default False
        Keep ``X`` as the Dask array instead of loading it into memory.
    results : bool, default True
        With a store path, also carry its stored results where AnnData has a place for them:
        a PCA as ``obsm["X_pca"]``, ``varm["PCs"]`` (0 for genes it did not use) and
        ``uns["pca"]["variance_ratio"]``; a t-SNE as ``obsm["X_tsne"]``; each differential
        expression result of :func:`cohortex.de.test` as ``uns[<its name>]`` in scanpy's
        ``rank_genes_groups`` layout (so ``sc.get.rank_genes_groups_df(adata, group,
        key=<name>)`` and ``sc.pl.rank_genes_groups(adata, key=<name>)`` read it).

    Returns
    -------
    anndata.AnnData
        ``uns["cohortex"]`` records the scale; ``uns["log1p"]`` is set as scanpy's
        ``sc.pp.log1p`` sets it for a ``log1p`` cohort (``base`` 2 for ``log2``). The cohort's
        other sample × gene matrices (tximport's ``length``) are its ``layers``.
    """
    import anndata as ad  # on use: only AnnData import and export need it

    ds = as_dataset(cohort)
    expression = ds["expression"].transpose("sample", "gene").data
    if not lazy:
        expression = np.asarray(expression)
    obs = _table(ds, "sample")
    var = _table(ds, "gene")
    scale = ds.attrs.get("scale", "log2")
    uns: dict[str, Any] = {"cohortex": {"scale": scale}}
    if scale in ("log1p", "log2"):
        uns["log1p"] = {"base": None if scale == "log1p" else 2}
    layers = {}
    for name in matrix_names(ds):  # tximport's lengths, say: AnnData's layers
        layers[name] = ds[name].transpose("sample", "gene").data
        if not lazy:
            layers[name] = np.asarray(layers[name])
    adata = ad.AnnData(X=expression, obs=obs, var=var, uns=uns, layers=layers)
    if results and isinstance(cohort, str | os.PathLike):
        _carry_results(adata, cohort)
    return adata


def _carry_results(adata: ad.AnnData, store: str | os.PathLike[str]) -> None:
    """Stored results into the places scanpy looks for them (see :func:`to_anndata`)."""
    from ..store import list_results, read_result

    for name in list_results(store):
        result = read_result(store, name)
        if "scores" in result and result["scores"].dims == ("sample", "pc"):
            if list(result["sample"].values) != list(adata.obs_names):
                continue  # computed on other samples
            adata.obsm["X_pca"] = np.asarray(result["scores"].values, dtype=np.float32)
            loadings = np.zeros((adata.n_vars, result.sizes["pc"]), dtype=np.float32)
            position = {g: i for i, g in enumerate(adata.var_names)}
            for row, gene in enumerate(result["gene"].values):
                if str(gene) in position:
                    loadings[position[str(gene)]] = result["loadings"].values[row]
            adata.varm["PCs"] = loadings
            if "explained_variance_ratio" in result:
                ratio = np.asarray(result["explained_variance_ratio"].values)
                adata.uns["pca"] = {"variance_ratio": ratio}
        elif "embedding" in result and result["embedding"].dims[0] == "sample":
            if list(result["sample"].values) == list(adata.obs_names):
                adata.obsm["X_tsne"] = np.asarray(result["embedding"].values, dtype=np.float32)
        elif {"statistic", "pvalue", "padj", "log2fc"} <= set(result.data_vars) and (
            "group" in result.coords and result["statistic"].dims[-1] == "gene"
        ):
            adata.uns[name] = _rank_genes_groups(result)


def _rank_genes_groups(result: xr.Dataset) -> dict[str, Any]:
    """A DE result in scanpy's ``rank_genes_groups`` layout: per group a column of genes
    sorted by score (the statistic), with their scores, p-values and log2 fold changes."""
    if "contrast" not in result.dims:
        result = result.expand_dims("contrast")
    groups = [str(g) for g in np.atleast_1d(result["group"].values)]
    references = {str(r) for r in np.atleast_1d(result["reference"].values)}
    genes = np.asarray([str(g) for g in result["gene"].values], dtype=object)
    fields: dict[str, list[np.ndarray]] = {
        "names": [],
        "scores": [],
        "pvals": [],
        "pvals_adj": [],
        "logfoldchanges": [],
    }
    for index in range(result.sizes["contrast"]):
        row = result.isel(contrast=index)
        score = np.asarray(row["statistic"].values, dtype=np.float64)
        order = np.argsort(-np.nan_to_num(score, nan=-np.inf), kind="stable")
        fields["names"].append(genes[order])
        fields["scores"].append(score[order].astype(np.float32))
        fields["pvals"].append(np.asarray(row["pvalue"].values, dtype=np.float64)[order])
        fields["pvals_adj"].append(np.asarray(row["padj"].values, dtype=np.float64)[order])
        fields["logfoldchanges"].append(np.asarray(row["log2fc"].values, dtype=np.float32)[order])
    method = {"welch": "t-test_overestim_var", "student": "t-test", "wilcoxon": "wilcoxon"}
    return {
        "params": {
            "groupby": str(result.attrs.get("groupby", "")),
            "reference": references.pop() if len(references) == 1 else "rest",
            "method": method.get(str(result.attrs.get("test")), str(result.attrs.get("test"))),
            "use_raw": False,
            "layer": None,
            "corr_method": "benjamini-hochberg",
        },
        **{
            key: np.rec.fromarrays(
                columns, dtype=[(g, c.dtype) for g, c in zip(groups, columns, strict=True)]
            )
            for key, columns in fields.items()
        },
    }


def export_anndata(cohort: Any, dest: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Write the cohort as ``.h5ad`` (a file) or AnnData Zarr (any other name), chunk by chunk.

    Parameters
    ----------
    cohort : path or xarray.Dataset
    dest : path
        ``*.h5ad`` writes HDF5; anything else an AnnData Zarr store.
    overwrite : bool, default False
    """
    import anndata as ad  # on use: only AnnData import and export need it

    dest = Path(dest)
    h5ad = dest.suffix.lower() == ".h5ad"
    if dest.exists() or dest.is_symlink():
        if not overwrite:
            raise CohortexError(f"{str(dest)!r} already exists; pass overwrite=True to replace it.")
        # replace only what this function writes: never another folder or file
        replaceable = (
            dest.is_file() if h5ad else dest.is_dir() and (dest / "zarr.json").is_file()
        ) and not dest.is_symlink()
        if not replaceable and not (dest.is_dir() and not any(dest.iterdir())):
            raise CohortexError(
                f"{str(dest)!r} exists and is not an AnnData "
                f"{'file' if h5ad else 'Zarr store'}; overwrite replaces only that."
            )
    adata = to_anndata(cohort, lazy=True)
    tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex}"
    try:
        if dest.suffix.lower() == ".h5ad":
            adata.write_h5ad(tmp)
            os.replace(tmp, dest)
        else:
            settings: dict[str, Any] = {"zarr_write_format": 3}  # Zarr v3, like cohort stores
            if hasattr(ad.settings, "auto_shard_zarr_v3"):
                settings["auto_shard_zarr_v3"] = False  # plain chunks, as in our stores
            with ad.settings.override(**settings), _quiet_consolidated():
                adata.write_zarr(tmp)
            replace_dir(tmp, dest)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def to_pandas(cohort: Any) -> pd.DataFrame:
    """The expression matrix as a DataFrame (samples × genes), loaded into memory.

    Parameters
    ----------
    cohort : path or xarray.Dataset

    Returns
    -------
    DataFrame of shape (n_samples, n_genes)
        Index: sample ids; columns: gene ids. The metadata are ``ds[...]`` variables, or
        :func:`to_anndata`'s ``obs`` and ``var``.
    """
    ds = as_dataset(cohort)
    values = np.asarray(ds["expression"].transpose("sample", "gene").data)
    return pd.DataFrame(
        values,
        index=pd.Index(ds["sample"].values.astype(str), name="sample"),
        columns=pd.Index(ds["gene"].values.astype(str), name="gene"),
    )


@contextlib.contextmanager
def _quiet_consolidated() -> Iterator[None]:
    """AnnData consolidates Zarr v3 metadata, which zarr-python warns is not yet in the spec."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        yield


def _table(ds: xr.Dataset, dim: str) -> pd.DataFrame:
    names = [n for n in ds.data_vars if ds[n].dims == (dim,)]
    frame = pd.DataFrame({n: ds[n].values for n in names}, index=ds[dim].values.astype(str))
    return frame


def _plain_columns(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """AnnData keeps text as categoricals; cohorts keep plain values."""
    if frame is None:
        return None
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype(object)
    return out


def _recorded_scale(root: Any) -> str | None:
    """The scale an AnnData file records: scanpy's ``uns/log1p`` (its ``base``), else
    cohortex's ``uns/cohortex/scale``; None when it records none."""
    if "uns" not in root:
        return None
    uns = root["uns"]
    if "log1p" in uns:
        entry = uns["log1p"]
        has_base = hasattr(entry, "keys") and "base" in entry
        base = np.asarray(entry["base"][()]) if has_base else None
        if base is None or base.dtype.kind not in "iuf":  # no base (None): the natural log
            return "log1p"
        if float(base) == 2.0:
            return "log2"
        raise CohortexError(
            f"uns/log1p says the values are log1p in base {base}; cohortex knows natural log1p "
            "and log2. Pass scale= to say how to read them."
        )
    try:
        scale = uns["cohortex"]["scale"][()]
    except (KeyError, TypeError):
        return None
    if isinstance(scale, bytes):
        scale = scale.decode()
    return str(np.asarray(scale).item() if hasattr(scale, "shape") else scale)
