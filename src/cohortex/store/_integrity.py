"""Reading a store without trusting it: chunk presence, named decode errors, links, and
:func:`verify`, which reads every chunk."""

from __future__ import annotations

import itertools
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from .._errors import CohortexError
from .._progress import progress_bar
from ._journal import read_manifest
from ._schema import (
    CHECKSUMMED_FROM,
    JOURNAL,
    RESULTS,
    PathLike,
    check_format,
    check_is_group,
    check_stored_ids,
    chunk_keys,
    list_results,
    own_files_unremarked,
    preview,
    strings_as_object,
)

__all__ = [
    "StoreReport",
    "StoredArray",
    "check_chunks_of",
    "damaged_chunk",
    "missing_chunks",
    "missing_error",
    "refuse_links",
    "stored_arrays",
    "verify",
]


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
        check_is_group(root)
        group = zarr.open_group(root, mode="r", zarr_format=3)
        report.format = check_format(dict(group.attrs), root)
    except CohortexError as error:
        report.problems.append(str(error))
        return report
    except Exception as error:
        report.problems.append(f"the store's group cannot be opened: {error}")
        return report
    checked = report.format >= CHECKSUMMED_FROM
    if not checked:
        report.notes.append(
            f"format {report.format}: chunks carry no checksums (an altered value cannot be "
            "detected) and all-NaN tiles were not written (a lost chunk cannot be told from "
            "one); re-import the store with this cohortex to get both"
        )
    journal = root / JOURNAL
    if journal.is_symlink() or (journal / "manifest.json").is_file():
        try:
            read_manifest(root, journal / "manifest.json")
            report.problems.append(
                "an append did not finish; opening the store (with write access) rolls it back"
            )
        except CohortexError as error:
            report.problems.append(str(error))
    for leftover in sorted(root.parent.glob(f".{root.name}.*-*")) + sorted(
        (root / RESULTS).glob(".*.tmp-*")
    ):
        report.notes.append(f"{str(leftover)!r} is left over from an interrupted write")
    try:
        refuse_links(root)
    except CohortexError as error:
        report.problems.append(str(error))
        return report  # nothing is read through a link
    arrays = stored_arrays(root)
    check_chunks_of(root, arrays, checked, report, progress)
    try:
        with own_files_unremarked():
            ds = xr.open_zarr(root, consolidated=False, chunks=None)
    except Exception as error:
        report.problems.append(f"the arrays do not form a cohort: {error}")
        return report
    if "expression" not in ds.data_vars or ds["expression"].dims != ("sample", "gene"):
        report.problems.append("there is no expression(sample, gene) array")
    for what in ("sample", "gene"):
        if what in ds.coords and not any(what in p for p in report.problems):
            try:
                check_stored_ids(root, what, strings_as_object(ds[what].values))
            except CohortexError as error:
                report.problems.append(str(error))
    for name in list_results(root):
        try:
            xr.open_zarr(root / RESULTS / name, consolidated=False, chunks=None)
        except Exception as error:
            report.problems.append(f"the result {name!r} cannot be opened: {error}")
    return report


def stored_arrays(root: Path) -> list[str]:
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


def check_chunks_of(
    root: Path, arrays: list[str], checked: bool, report: StoreReport, progress: bool | None
) -> None:
    """Every chunk there (format ≥ 2) and decoding; problems and notes into ``report``."""
    work = []
    for name in arrays:
        try:
            array = zarr.open_array(root / name, mode="r", zarr_format=3)
            missing = missing_chunks(root, name)
        except Exception as error:
            report.problems.append(f"the array {name!r} cannot be opened: {error}")
            continue
        codecs = [type(c).__name__ for c in getattr(array.metadata, "codecs", ())]
        if checked and "Crc32cCodec" not in codecs:
            report.problems.append(f"the array {name!r} carries no checksums")
        if missing and checked:
            report.problems.append(
                f"{len(missing)} chunk(s) of {name!r} are missing ({preview(missing)})"
            )
        elif missing:
            report.notes.append(
                f"{len(missing)} chunk(s) of {name!r} are absent and read as missing values "
                f"({preview(missing)}): in format 1 that is also how an all-NaN tile is kept"
            )
        absent = set(missing)
        for key in chunk_keys(array.shape, array.chunks):
            if "c/" + "/".join(map(str, key)) not in absent:
                work.append((name, array, key))

    def decode(item: tuple[str, Any, tuple[int, ...]]) -> str | None:
        name, array, key = item
        try:
            array.get_block_selection(key)
        except Exception as error:
            return f"chunk c/{'/'.join(map(str, key))} of {name!r} cannot be read: {error}"
        return None

    with (
        progress_bar(len(work), "verifying chunks", progress) as bar,
        ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool,
    ):
        for failure in pool.map(decode, work):
            report.chunks_read += 1
            if failure:
                report.problems.append(failure)
            bar.update()


def refuse_links(root: Path) -> None:
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


def missing_chunks(root: Path, name: str) -> list[str]:
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
        for key in chunk_keys(shape, chunks)
        if "/".join(map(str, key)) not in present
    ]


def damaged_chunk(root: Path, name: str) -> str | None:
    """The first chunk of an array that fails to decode (None: every one decodes)."""
    try:
        array = zarr.open_array(root / name, mode="r", zarr_format=3)
    except Exception:
        return "zarr.json"
    for key in chunk_keys(array.shape, array.chunks):
        try:
            array.get_block_selection(key)
        except Exception:
            return "c/" + "/".join(map(str, key))
    return None


def missing_error(root: Path, name: str, missing: list[str]) -> CohortexError:
    return CohortexError(
        f"The store at {str(root)!r} has lost {len(missing)} chunk"
        f"{'s' if len(missing) != 1 else ''} of {name!r} ({preview(missing)}): their values "
        "would read as missing (NaN or empty). Restore the store from a copy; "
        f"`cohortex verify {root}` lists every problem."
    )


class StoredArray:
    """The expression array for Dask: each read checks that its chunks exist (format ≥ 2)
    and names the chunk that fails to decode (a checksum mismatch, a truncated file)."""

    def __init__(self, root: Path, name: str, check_chunks: bool) -> None:
        self.root, self.name, self.check_chunks = root, name, check_chunks
        self.array = zarr.open_array(root / name, mode="r", zarr_format=3)
        self.shape = self.array.shape
        self.dtype = self.array.dtype
        self.ndim = self.array.ndim
        self.chunks = self.array.chunks

    def __getitem__(self, key: tuple[slice | int, ...]) -> np.ndarray:
        keys = self._chunks_of(key)
        if self.check_chunks:
            missing = [k for k in keys if not (self.root / self.name / k).is_file()]
            if missing:
                raise missing_error(self.root, self.name, missing)
        try:
            return np.asarray(self.array[key])
        except Exception as error:
            raise CohortexError(
                f"The store at {str(self.root)!r} holds a damaged chunk of {self.name!r} "
                f"({self._first_damaged(keys) or preview(keys)}): {error}. "
                f"`cohortex verify {self.root}` lists every damaged chunk."
            ) from None

    def _chunks_of(self, key: tuple[slice | int, ...]) -> list[str]:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (len(self.shape) - len(key))
        ranges = []
        for part, size, extent in zip(key, self.chunks, self.shape, strict=True):
            if isinstance(part, slice):
                start, stop, _ = part.indices(extent)
            elif isinstance(part, int | np.integer):  # Dask passes an integer for x[:, 5]
                start = int(part) % extent
                stop = start + 1
            else:  # anything else: check every chunk of this axis
                start, stop = 0, extent
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
