"""Writing a new store block by block, all or nothing, and replacing folders safely."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import threading
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from .._errors import CohortexError, CohortexWarning
from .._version import __version__
from ._lock import held_lock, store_lock, try_lock
from ._schema import (
    FORMAT_VERSION,
    LOCK,
    METADATA_CODECS,
    PathLike,
    check_chunks,
    check_ids,
    check_matrix_names,
    check_scale,
    codecs,
    metadata_variables,
    open_array,
    own_files_unremarked,
)

__all__ = [
    "BlockChecker",
    "CohortWriter",
    "check_matrix_block",
    "check_replaceable",
    "disk_errors",
    "exchange",
    "interrupts_deferred",
    "remove_leftovers",
    "replace_dir",
    "restore_replaced",
    "to_zarr_checked",
    "write_block",
]


def to_zarr_checked(result: xr.Dataset, tmp: Path) -> None:
    """A result Dataset written with checksums, every chunk written."""
    result.to_zarr(
        tmp,
        mode="w-",
        zarr_format=3,
        consolidated=False,
        encoding={name: {"compressors": METADATA_CODECS} for name in result.variables},
        write_empty_chunks=True,
    )


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
    matrices : sequence of str, default ()
        Names of sample × gene matrices to store besides the expression (float64, tiled and
        compressed as it is), each written block by block with ``write(..., matrix=name)``.
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
        matrices: Sequence[str] = (),
    ) -> None:
        self.path = Path(path)
        self.sample_ids = check_ids(sample_ids, "sample")
        self.gene_ids = check_ids(gene_ids, "gene")
        self.shape = (len(self.sample_ids), len(self.gene_ids))
        self.scale = check_scale(scale)
        self.chunks = check_chunks(chunks, self.shape)
        self.codecs = codecs(compressor)
        self.sample_vars = metadata_variables(samples, "sample", len(self.sample_ids))
        self.gene_vars = metadata_variables(genes, "gene", len(self.gene_ids))
        for name in set(self.sample_vars) & set(self.gene_vars):
            raise CohortexError(
                f"The metadata column {name!r} is both a sample variable and a gene variable; "
                "rename one of them."
            )
        self.matrices = check_matrix_names(matrices, self.sample_vars, self.gene_vars)
        if len(set(self.matrices)) != len(self.matrices):
            raise CohortexError(f"A matrix is named twice: {', '.join(self.matrices)}.")
        restore_replaced(self.path)
        if self.path.exists() or self.path.is_symlink():
            if not overwrite:
                raise CohortexError(
                    f"{str(self.path)!r} already exists; pass overwrite=True to replace it."
                )
            check_replaceable(self.path)
        self.attrs = {**(attrs or {}), "scale": self.scale}
        self._tmp: Path | None = None
        self._hold: contextlib.ExitStack | None = None
        self._arrays: dict[str, Any] = {}
        self._written = dict.fromkeys(["expression", *self.matrices], 0)
        self._checker = BlockChecker(gene_ids=self.gene_ids, scale=self.scale)

    def __enter__(self) -> CohortWriter:
        parent = self.path.parent
        parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(parent, f".{self.path.name}.tmp-*")
        self._tmp = parent / f".{self.path.name}.tmp-{uuid.uuid4().hex}"
        self._hold = contextlib.ExitStack()
        try:
            self._tmp.mkdir()
            # held until the store is in place: a leftover folder is one nobody holds
            self._hold.enter_context(held_lock(self._tmp / LOCK))
            with disk_errors(f"creating the store {str(self.path)!r}"):
                self._write_skeleton(self._tmp)
            self._arrays = {name: open_array(self._tmp / name) for name in self._written}
        except BaseException:
            self._hold.close()
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        return self

    def write(
        self, rows: slice, cols: slice, block: np.ndarray, matrix: str = "expression"
    ) -> None:
        """Write ``block`` at ``expression[rows, cols]`` (or the matrix named ``matrix``).

        Parameters
        ----------
        rows, cols : slice
            Region of the matrix; ``slice(None)`` means the whole axis.
        block : ndarray of shape (len(rows), len(cols))
            Numeric values; cast to float32 (float64 in a matrix besides the expression).
        matrix : str, default "expression"
            The matrix written: ``"expression"`` or one of ``matrices``.
        """
        if matrix not in self._written:
            raise CohortexError(
                f"The store being written has no matrix {matrix!r}; it has "
                f"{', '.join(self._written)}."
            )
        r0, r1, _ = rows.indices(self.shape[0])
        c0, c1, _ = cols.indices(self.shape[1])
        block = np.asarray(block)
        if block.shape != (r1 - r0, c1 - c0):
            raise CohortexError(
                f"A block of shape {block.shape} cannot be written at rows {r0}:{r1}, "
                f"columns {c0}:{c1}."
            )
        if matrix == "expression":
            block = self._checker(block, r0, c0)
        else:
            block = check_matrix_block(block, matrix, r0, c0, self.gene_ids)
        write_block(self._arrays[matrix], (slice(r0, r1), slice(c0, c1)), block)
        self._written[matrix] += block.size

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self._tmp is not None
        try:
            if exc_type is None:
                expected = self.shape[0] * self.shape[1]
                for name, written in self._written.items():
                    if written != expected:
                        raise CohortexError(
                            f"Only {written} of {expected} values of {name!r} were written; "
                            "the store was not created."
                        )
                if self.path.exists():
                    check_replaceable(self.path)
                    with store_lock(self.path, exclusive=True, what="replace"):
                        replace_dir(self._tmp, self.path)
                else:
                    replace_dir(self._tmp, self.path)
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
                "cohortex_version": __version__,
                **self.attrs,
            },
        )
        for name, values in self.sample_vars.items():
            ds[name] = ("sample", values)
        for name, values in self.gene_vars.items():
            ds[name] = ("gene", values)
        for name in self.matrices:  # never computed either
            ds[name] = (("sample", "gene"), da.full_like(placeholder, np.nan, dtype=np.float64))
        encoding: dict[str, dict[str, Any]] = {
            str(name): {"compressors": METADATA_CODECS} for name in ds.variables
        }
        for name in ("expression", *self.matrices):
            encoding[name] = {"chunks": self.chunks, "compressors": self.codecs}
        with own_files_unremarked():
            ds.to_zarr(
                where,
                mode="a",  # the folder exists (for its lock) and holds nothing else
                zarr_format=3,
                consolidated=False,
                compute=False,
                encoding=encoding,
                write_empty_chunks=True,
            )


def check_matrix_block(
    block: np.ndarray, name: str, row0: int, col0: int, gene_ids: Sequence[str]
) -> np.ndarray:
    """A block of a matrix besides the expression as float64: numeric, finite or NaN."""
    if np.asarray(block).dtype.kind not in "biuf":
        raise CohortexError(
            f"The values of the matrix {name!r} must be numeric; got a block of dtype "
            f"{np.asarray(block).dtype}."
        )
    block = np.ascontiguousarray(block, dtype=np.float64)
    infinite = np.isinf(block)
    if infinite.any():
        r, c = np.argwhere(infinite)[0]
        raise CohortexError(
            f"The values of the matrix {name!r} must be finite or NaN; found {block[r, c]:g} "
            f"at sample {row0 + r}, gene {gene_ids[col0 + c]!r}."
        )
    return block


class BlockChecker:
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
        given = block
        with np.errstate(over="ignore"):  # beyond float32's range: refused below
            block = np.ascontiguousarray(given, dtype=np.float32)
        infinite = np.isinf(block)
        if infinite.any():
            r, c = np.argwhere(infinite)[0]
            raise CohortexError(
                f"Expression values must be finite or NaN, within float32's range (±3.4e38); "
                f"found {int(infinite.sum())} values that are not in this block, the first "
                f"({given[r, c]:g}) at sample {row0 + r}, gene {self.gene_ids[col0 + c]!r}."
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


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
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


def write_block(array: Any, region: tuple[slice, slice], block: np.ndarray) -> None:
    """The one place expression values reach the disk."""
    with interrupts_deferred(), disk_errors("writing expression values"):
        array[region] = block


@contextlib.contextmanager
def disk_errors(doing: str) -> Iterator[None]:
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


def replace_dir(src: Path, dest: Path) -> None:
    """Move a finished folder into place; an existing ``dest`` is removed only afterwards.

    Where the kernel can (Linux's ``renameat2`` with ``RENAME_EXCHANGE``), the two folders
    trade places in one step, so that no moment leaves ``dest`` missing; the old folder, now
    at ``src``, is then removed (if that is cut short, it is a leftover that later writes
    remove). Elsewhere the old folder is first renamed aside to ``.NAME.old-<id>``, which
    :func:`restore_replaced` puts back if the process dies before the new one is in place.
    """
    if not dest.exists():
        os.replace(src, dest)
        return
    if exchange(src, dest):
        shutil.rmtree(src, ignore_errors=True)
        return
    old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex}"
    os.replace(dest, old)
    os.replace(src, dest)
    shutil.rmtree(old, ignore_errors=True)


def check_replaceable(path: Path) -> None:
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


def exchange(a: Path, b: Path) -> bool:
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


def restore_replaced(dest: Path) -> None:
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


def remove_leftovers(folder: Path, pattern: str) -> None:
    """Remove folders of interrupted writes (``pattern`` in ``folder``) that no live writer
    holds: each writer keeps its temporary folder's lock file locked while it works."""
    for leftover in folder.glob(pattern):
        if not leftover.is_dir() or leftover.is_symlink():
            continue
        with try_lock(leftover / LOCK) as free:
            if free:
                shutil.rmtree(leftover, ignore_errors=True)
