"""Delimited text (TSV/CSV, GEO series matrices) and GCT 1.2, read and written in blocks.

Reading takes two passes over the file, neither of which holds the matrix: the first reads the
header, the row ids and checks every row's field count (so a ragged file is refused before
anything is written); the second parses the numbers one block of rows at a time and writes each
block into the new store.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import uuid
import warnings
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import xarray as xr

from .._errors import CohortexError
from .._progress import progress_bar
from ..store import open_cohort
from ..store._schema import align_metadata, check_chunks
from ..store._writer import CohortWriter

__all__ = [
    "FEATURECOUNTS_COLUMNS",
    "ORIENTATIONS",
    "export_gct",
    "export_table",
    "import_featurecounts",
    "import_gct",
    "import_table",
    "is_featurecounts",
    "read_metadata",
]

ORIENTATIONS = ("genes-by-samples", "samples-by-genes")
_GEO_END = "!series_matrix_table_end"


def import_table(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    orientation: str = "genes-by-samples",
    samples: pd.DataFrame | str | os.PathLike[str] | None = None,
    genes: pd.DataFrame | str | os.PathLike[str] | None = None,
    sep: str | None = None,
    annotation_columns: int = 0,
    scale: str = "log2",
    chunks: tuple[int, int] | None = None,
    compressor: Any = "lz4",
    overwrite: bool = False,
    progress: bool | None = None,
) -> xr.Dataset:
    """Import a delimited text matrix (TSV, CSV, a GEO series matrix; optionally gzipped).

    The first row names the columns; the first column holds the row ids. Lines starting with
    ``!`` (GEO series-matrix headers) are skipped and reading stops at
    ``!series_matrix_table_end``. Quoted ids are unquoted. Empty cells and ``NA``/``NaN`` are
    missing values.

    Parameters
    ----------
    src : path
        Text file; ``.gz`` is decompressed on the fly.
    dest : path
        New cohort store.
    orientation : {"genes-by-samples", "samples-by-genes"}, default "genes-by-samples"
        ``"genes-by-samples"``: one row per gene, one column per sample (GEO series matrices,
        most count tables). ``"samples-by-genes"``: one row per sample.
    samples, genes : DataFrame or path, optional
        Sample metadata / gene annotation, or a delimited file of it whose first column (or a
        column named ``sample``/``gene``) holds the ids. The ids must match the matrix's.
    sep : str, optional
        Field separator; default ``","`` for ``.csv`` files and tab otherwise.
    annotation_columns : int, default 0
        Columns after the id column that describe the rows instead of holding values: a gene
        symbol or biotype beside the gene id, a sample's condition in a samples-by-genes
        table. They become gene (sample) variables named by their header, numbers where a
        column holds only numbers, beside those of ``genes`` (``samples``).
    scale, chunks, compressor, overwrite, progress
        As for :func:`cohortex.create_cohort`.

    Returns
    -------
    xarray.Dataset
        The new store, opened.

    Raises
    ------
    CohortexError
        For a ragged row, a non-numeric cell, duplicate ids or metadata that does not match,
        naming the line or the ids. Nothing is written then.
    """
    _check_orientation(orientation)
    if not isinstance(annotation_columns, int | np.integer) or annotation_columns < 0:
        raise CohortexError(
            "The 'annotation_columns' parameter must be a whole number of columns, 0 or more; "
            f"got {annotation_columns!r}."
        )
    layout = _scan(Path(src), sep=sep, annotation_columns=int(annotation_columns))
    return _write_store(
        layout,
        dest,
        genes_by_samples=orientation == "genes-by-samples",
        samples=samples,
        genes=genes,
        annotations=_annotation_table(layout, layout.annotation_names),
        scale=scale,
        chunks=chunks,
        compressor=compressor,
        overwrite=overwrite,
        progress=progress,
    )


def import_gct(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    samples: pd.DataFrame | str | os.PathLike[str] | None = None,
    scale: str = "log2",
    chunks: tuple[int, int] | None = None,
    compressor: Any = "lz4",
    overwrite: bool = False,
    progress: bool | None = None,
) -> xr.Dataset:
    """Import a GCT 1.2 file (genes × samples, with a Description column).

    The descriptions become the gene variable ``description``. The dimensions on the second
    line must match the table. Other parameters are as for :func:`import_table`.
    """
    path = Path(src)
    with _open_text(path) as f:
        version = f.readline().strip()
        dims_line = f.readline().rstrip("\r\n")
    if version != "#1.2":
        raise CohortexError(
            f"{str(path)!r} is not a GCT 1.2 file: its first line is {version[:40]!r}, "
            "expected '#1.2'."
        )
    try:
        n_rows, n_cols = (int(v) for v in dims_line.split("\t")[:2])
    except ValueError:
        raise CohortexError(
            f"Line 2 of {str(path)!r} must give the row and column counts; got {dims_line[:40]!r}."
        ) from None
    layout = _scan(path, sep="\t", annotation_columns=1, skip_lines=2)
    if (len(layout.row_ids), len(layout.column_ids)) != (n_rows, n_cols):
        raise CohortexError(
            f"The GCT header of {str(path)!r} announces {n_rows} genes × {n_cols} samples; the "
            f"table has {len(layout.row_ids)} × {len(layout.column_ids)}."
        )
    return _write_store(
        layout,
        dest,
        genes_by_samples=True,
        samples=samples,
        genes=None,
        annotations=_annotation_table(layout, ["description"]),
        scale=scale,
        chunks=chunks,
        compressor=compressor,
        overwrite=overwrite,
        progress=progress,
    )


FEATURECOUNTS_COLUMNS = ("Geneid", "Chr", "Start", "End", "Strand", "Length")


def import_featurecounts(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    samples: pd.DataFrame | str | os.PathLike[str] | None = None,
    scale: str = "counts",
    chunks: tuple[int, int] | None = None,
    compressor: Any = "lz4",
    overwrite: bool = False,
    progress: bool | None = None,
) -> xr.Dataset:
    """Import the count table of Subread's featureCounts (genes × samples).

    Its ``# Program:featureCounts`` line is skipped; its annotation columns become the gene
    variables ``chr``, ``start``, ``end``, ``strand`` and ``length`` — a gene's first start
    and last end over its exons, its chromosome and strand (``;``-joined where its exons
    differ), its length in bases. featureCounts names the samples by the alignment files it
    read (``/data/run1/S1.bam``); the sample ids are those names without folder and
    ``.bam``/``.sam``/``.cram`` (``S1``) where that leaves them distinct, else the names as
    written. Other parameters are as for :func:`import_table`.
    """
    path = Path(src)
    skip = 1 if first_line(path).startswith("# Program:featureCounts") else 0
    layout = _scan(path, sep="\t", annotation_columns=5, skip_lines=skip)
    header = ["Geneid", *layout.annotation_names]
    if tuple(header) != FEATURECOUNTS_COLUMNS:
        raise CohortexError(
            f"{str(path)!r} is not a featureCounts table: its header begins "
            f"{', '.join(map(repr, header))}; featureCounts writes "
            f"{', '.join(map(repr, FEATURECOUNTS_COLUMNS))}."
        )
    chromosome, start, end, strand, length = layout.annotations
    try:
        genes = pd.DataFrame(
            {
                "chr": [_distinct(v) for v in chromosome],
                "start": [min(map(int, v.split(";"))) for v in start],
                "end": [max(map(int, v.split(";"))) for v in end],
                "strand": [_distinct(v) for v in strand],
                "length": [int(v) for v in length],
            },
            index=layout.row_ids,
        )
    except ValueError:
        raise CohortexError(
            f"The Start, End and Length columns of {str(path)!r} must hold whole numbers "
            "(';'-joined for genes of several exons), as featureCounts writes them."
        ) from None
    layout.column_ids = _sample_names_from_files(layout.column_ids)
    return _write_store(
        layout,
        dest,
        genes_by_samples=True,
        samples=samples,
        genes=None,
        annotations=genes,
        scale=scale,
        chunks=chunks,
        compressor=compressor,
        overwrite=overwrite,
        progress=progress,
    )


def is_featurecounts(path: Path) -> bool:
    """Whether a text file is featureCounts output: its program line, or its header."""
    first = first_line(path)
    return (
        first.startswith("# Program:featureCounts")
        or tuple(first.split("\t")[: len(FEATURECOUNTS_COLUMNS)]) == FEATURECOUNTS_COLUMNS
    )


def first_line(path: Path) -> str:
    try:
        with _open_text(path) as f:
            return f.readline().rstrip("\r\n")
    except _UNREADABLE as error:
        raise _unreadable(path, 0, error) from None


def _distinct(joined: str) -> str:
    """'chr1;chr1;chr1' → 'chr1': the distinct values of a ';'-joined list, in order."""
    return ";".join(dict.fromkeys(joined.split(";")))


def _sample_names_from_files(names: list[str]) -> list[str]:
    short = []
    for name in names:
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        for extension in (".bam", ".sam", ".cram"):
            if base.lower().endswith(extension) and len(base) > len(extension):
                base = base[: -len(extension)]
                break
        short.append(base)
    return short if len(set(short)) == len(short) else names


def export_table(
    cohort: Any,
    dest: str | os.PathLike[str],
    *,
    orientation: str = "genes-by-samples",
    sep: str | None = None,
    float_format: str = "%.9g",
    progress: bool | None = None,
) -> None:
    """Write the expression matrix as delimited text, block by block.

    Parameters
    ----------
    cohort : path or xarray.Dataset
        A cohort store or an opened cohort.
    dest : path
        Output file; ``.gz`` compresses. Written to a temporary name and renamed at the end.
    orientation : {"genes-by-samples", "samples-by-genes"}, default "genes-by-samples"
    sep : str, optional
        Default ``","`` for ``.csv`` and tab otherwise.
    float_format : str, default "%.9g"
        ``"%.9g"`` writes every float32 exactly.
    progress : bool or None, default None
    """
    ds = as_dataset(cohort)
    _check_orientation(orientation)
    dest = Path(dest)
    sep = sep or _default_sep(dest)
    genes_by_samples = orientation == "genes-by-samples"
    corner = "gene" if genes_by_samples else "sample"
    columns = ds["sample"].values if genes_by_samples else ds["gene"].values
    with _atomic_text(dest) as out:
        out.write(sep.join([corner, *map(str, columns)]) + "\n")
        for block, ids in _blocks(ds, genes_by_samples, progress, "exporting"):
            pd.DataFrame(block, index=ids).to_csv(
                out, sep=sep, header=False, float_format=float_format, na_rep="NaN"
            )


def export_gct(
    cohort: Any,
    dest: str | os.PathLike[str],
    *,
    float_format: str = "%.9g",
    progress: bool | None = None,
) -> None:
    """Write the cohort as GCT 1.2 (genes × samples).

    The Description column comes from the gene variable ``description`` when there is one,
    else ``na``. Other parameters are as for :func:`export_table`.
    """
    ds = as_dataset(cohort)
    dest = Path(dest)
    description = (
        ds["description"].values if "description" in ds else np.full(ds.sizes["gene"], "na")
    )
    with _atomic_text(dest) as out:
        out.write(f"#1.2\n{ds.sizes['gene']}\t{ds.sizes['sample']}\n")
        out.write("\t".join(["Name", "Description", *map(str, ds["sample"].values)]) + "\n")
        start = 0
        for block, ids in _blocks(ds, True, progress, "exporting"):
            frame = pd.DataFrame(block, index=ids)
            frame.insert(0, "description", description[start : start + len(ids)])
            frame.to_csv(out, sep="\t", header=False, float_format=float_format, na_rep="NaN")
            start += len(ids)


def read_metadata(source: pd.DataFrame | str | os.PathLike[str], what: str) -> pd.DataFrame:
    """A metadata table from a DataFrame or a delimited file, indexed by id.

    The ids are the column named ``what`` (``"sample"`` or ``"gene"``) when there is one,
    else the first column.
    """
    if isinstance(source, pd.DataFrame):
        _refuse_repeated(list(source.columns), f"The {what} metadata")
        return source
    path = Path(source)
    if not path.is_file():
        raise CohortexError(f"The {what} metadata file {str(path)!r} does not exist.")
    try:
        sep = _default_sep(path)
        # pandas renames a repeated column ('x' → 'x.1'); the header as written is checked
        header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str).iloc[0]
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise CohortexError(f"The {what} metadata file {str(path)!r} is empty.") from None
    except (*_UNREADABLE, ValueError) as error:
        raise CohortexError(
            f"The {what} metadata file {str(path)!r} cannot be read as a table: {error}"
        ) from None
    _refuse_repeated([h for h in header if isinstance(h, str)], f"{str(path)!r}")
    if table.shape[1] < 2:
        raise CohortexError(
            f"The {what} metadata file {str(path)!r} needs an id column and at least one "
            f"variable; it has {table.shape[1]} column(s) (is the separator right?)."
        )
    id_column = what if what in table.columns else table.columns[0]
    table = table.set_index(id_column)
    table.index.name = None
    return _numbers_where_numbers(table)


def _numbers_where_numbers(table: pd.DataFrame) -> pd.DataFrame:
    """Columns of text that are numbers throughout become numbers; the rest stay text."""
    for column in table.columns:
        values = table[column].replace({"": None, "NA": None, "NaN": None})
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.notna().sum() == values.notna().sum() and values.notna().any():
            table[column] = numbers
    return table


def _refuse_repeated(names: list[Any], where: str) -> None:
    repeated = sorted(str(n) for n, times in Counter(names).items() if times > 1)
    if repeated:
        raise CohortexError(
            f"{where} names a column more than once: {', '.join(map(repr, repeated))}; "
            "each variable needs a name of its own."
        )


# --------------------------------------------------------------------------------------------


@dataclass
class _Layout:
    """What the first pass learned about a text table."""

    path: Path
    sep: str
    header_line: int  # 1-based physical line number of the header
    column_ids: list[str]
    row_ids: list[str] = field(default_factory=list)
    line_numbers: list[int] = field(default_factory=list)
    annotations: list[list[str]] = field(default_factory=list)
    skip_lines: int = 0
    annotation_columns: int = 0
    annotation_names: list[str] = field(default_factory=list)


def _check_orientation(orientation: str) -> None:
    if orientation not in ORIENTATIONS:
        raise CohortexError(
            f"The 'orientation' parameter must be one of {', '.join(ORIENTATIONS)}; "
            f"got {orientation!r}."
        )


def _default_sep(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    return "," if ".csv" in suffixes else "\t"


def _open_text(path: Path) -> IO[str]:
    if path.is_dir():
        raise CohortexError(f"The input {str(path)!r} is a folder, not a text file.")
    if not path.is_file():
        raise CohortexError(f"The input file {str(path)!r} does not exist.")
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


# what reading a damaged or foreign text file raises, besides our own errors
_UNREADABLE = (UnicodeDecodeError, gzip.BadGzipFile, EOFError, zlib.error, OSError, csv.Error)


def _unreadable(path: Path, number: int, error: Exception) -> CohortexError:
    if isinstance(error, UnicodeDecodeError):
        why = "it is not UTF-8 text (convert it, e.g. with iconv -f latin1 -t utf-8)"
    elif isinstance(error, gzip.BadGzipFile | EOFError | zlib.error):
        why = f"it is not a complete gzip file ({error})"
    elif isinstance(error, csv.Error):
        why = f"a quoted field is not closed ({error})"
    else:
        why = str(error)
    return CohortexError(f"{str(path)!r} cannot be read after line {number}: {why}.")


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('""', '"')
    return value


def _split(line: str, sep: str) -> list[str]:
    return next(csv.reader([line], delimiter=sep, strict=True))


def _lines(path: Path, skip_lines: int) -> Iterator[tuple[int, str]]:
    """(physical line number, text) of the table's lines: header first, then the rows.

    A file whose first line starts with ``!`` is a GEO series matrix: its ``!`` lines before
    the table are skipped and the table ends at ``!series_matrix_table_end``; a ``!`` line
    inside its table is an error. In any other file every non-blank line is a row, ``!`` or
    not (``!`` can begin a gene id).
    """
    geo: bool | None = None
    in_table = False
    number = 0
    try:
        with _open_text(path) as f:
            for number, line in enumerate(f, start=1):
                if number <= skip_lines:
                    continue
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                if geo is None:
                    geo = line.startswith("!")
                if geo and line.startswith("!"):
                    if line.lower().startswith(_GEO_END):
                        return
                    if in_table:
                        raise CohortexError(
                            f"Line {number} of the GEO series matrix {str(path)!r} starts with "
                            "'!' inside the table (before !series_matrix_table_end)."
                        )
                    continue
                in_table = True
                yield number, line
    except _UNREADABLE as error:
        raise _unreadable(path, number, error) from None


def _scan(path: Path, *, sep: str | None, annotation_columns: int, skip_lines: int = 0) -> _Layout:
    """First pass: header, ids, annotations and a field count for every row."""
    sep = sep or _default_sep(path)
    lines = _lines(path, skip_lines)
    try:
        header_line, header = next(lines)
    except StopIteration:
        raise CohortexError(f"{str(path)!r} has no header line and no data.") from None
    try:
        columns = [_unquote(c) for c in _split(header, sep)]
    except csv.Error as error:
        raise _unreadable(path, header_line - 1, error) from None
    n_fields = len(columns)
    if n_fields < 2 + annotation_columns:
        described = f", {annotation_columns} annotation column(s)" if annotation_columns else ""
        raise CohortexError(
            f"The header (line {header_line}) of {str(path)!r} has {n_fields} field(s); a table "
            f"needs an id column{described} and at least one data column (is the separator "
            f"{sep!r} right?)."
        )
    layout = _Layout(
        path=path,
        sep=sep,
        header_line=header_line,
        column_ids=columns[1 + annotation_columns :],
        skip_lines=skip_lines,
        annotation_columns=annotation_columns,
        annotation_names=columns[1 : 1 + annotation_columns],
        annotations=[[] for _ in range(annotation_columns)],
    )
    expected_separators = n_fields - 1
    for number, line in lines:
        if line.count(sep) != expected_separators or '"' in line:
            try:
                fields = _split(line, sep)  # quoted fields may hold the separator
            except csv.Error as error:
                raise _unreadable(path, number - 1, error) from None
            if len(fields) != n_fields:
                raise CohortexError(
                    f"Line {number} of {str(path)!r} has {len(fields)} fields; the header "
                    f"(line {header_line}) has {n_fields}."
                )
        else:
            fields = line.split(sep, 1 + annotation_columns)
        layout.row_ids.append(_unquote(fields[0]))
        for k in range(annotation_columns):
            layout.annotations[k].append(_unquote(fields[1 + k]))
        layout.line_numbers.append(number)
    if not layout.row_ids:
        raise CohortexError(f"{str(path)!r} has a header but no data rows.")
    return layout


def _numeric_blocks(layout: _Layout, rows_per_block: int) -> Iterator[tuple[int, np.ndarray]]:
    """Second pass: (first row index, float32 block of rows × data columns)."""
    first_data_column = 1 + layout.annotation_columns
    n_fields = first_data_column + len(layout.column_ids)
    lines = _lines(layout.path, layout.skip_lines)
    next(lines)  # the header
    buffer: list[str] = []
    start = 0
    for _, line in lines:
        buffer.append(line)
        if len(buffer) == rows_per_block:
            yield start, _parse(buffer, layout, start, first_data_column, n_fields)
            start += len(buffer)
            buffer = []
    if buffer:
        yield start, _parse(buffer, layout, start, first_data_column, n_fields)


def _parse(
    lines: list[str], layout: _Layout, start: int, first_data_column: int, n_fields: int
) -> np.ndarray:
    text = "\n".join(lines)
    options: dict[str, Any] = {
        "sep": layout.sep,
        "header": None,
        "usecols": range(first_data_column, n_fields),
    }
    try:
        with warnings.catch_warnings():
            # a number beyond float32's range becomes inf, which the writer refuses by name
            warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
            frame = pd.read_csv(io.StringIO(text), dtype=np.float32, **options)
    except ValueError:  # pandas' ParserError is one too
        _raise_non_numeric(text, layout, start, first_data_column, options)
        raise CohortexError(
            f"Lines {layout.line_numbers[start]}–{layout.line_numbers[start + len(lines) - 1]} "
            f"of {str(layout.path)!r} cannot be parsed as a table of numbers."
        ) from None
    if frame.shape != (len(lines), n_fields - first_data_column):
        raise CohortexError(
            f"Lines {layout.line_numbers[start]}–{layout.line_numbers[start + len(lines) - 1]} "
            f"of {str(layout.path)!r} do not parse into {len(lines)} rows of "
            f"{n_fields - first_data_column} values (a quoted field spanning lines?)."
        )
    return frame.to_numpy(dtype=np.float32)


def _raise_non_numeric(
    text: str, layout: _Layout, start: int, first_data_column: int, options: dict[str, Any]
) -> None:
    """Find the first cell that is neither a number nor a missing-value marker; name it."""
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, **options)
    except ValueError:
        return
    for row in range(len(frame)):
        values = frame.iloc[row]
        numbers = pd.to_numeric(values, errors="coerce")
        bad = numbers.isna() & values.notna()
        if bad.any():
            column = int(np.flatnonzero(bad.to_numpy())[0])
            raise CohortexError(
                f"Line {layout.line_numbers[start + row]} of {str(layout.path)!r} has a "
                f"non-numeric value {values.iloc[column]!r} in column "
                f"{layout.column_ids[column]!r}."
            )


def _write_store(
    layout: _Layout,
    dest: Any,
    *,
    genes_by_samples: bool,
    samples: Any,
    genes: Any,
    annotations: pd.DataFrame | None,
    scale: str,
    chunks: tuple[int, int] | None,
    compressor: Any,
    overwrite: bool,
    progress: bool | None,
) -> xr.Dataset:
    """Write the table's values, with the metadata given and the rows' annotation columns
    (indexed by row id, in file order) as variables of the rows' dimension."""
    sample_ids = layout.column_ids if genes_by_samples else layout.row_ids
    gene_ids = layout.row_ids if genes_by_samples else layout.column_ids
    sample_meta = None if samples is None else read_metadata(samples, "sample")
    gene_meta = None if genes is None else read_metadata(genes, "gene")
    sample_meta, sample_ids = align_metadata(sample_meta, sample_ids, len(sample_ids), "sample")
    gene_meta, gene_ids = align_metadata(gene_meta, gene_ids, len(gene_ids), "gene")
    if genes_by_samples:
        gene_meta = _beside(annotations, gene_meta, "gene")
    else:
        sample_meta = _beside(annotations, sample_meta, "sample")
    shape = (len(sample_ids), len(gene_ids))
    tile = check_chunks(chunks, shape)
    rows_per_block = tile[1] if genes_by_samples else tile[0]
    with CohortWriter(
        dest,
        sample_ids=sample_ids,
        gene_ids=gene_ids,
        samples=sample_meta,
        genes=gene_meta,
        scale=scale,
        chunks=tile,
        compressor=compressor,
        overwrite=overwrite,
    ) as writer:
        n_blocks = -(-len(layout.row_ids) // rows_per_block)
        with progress_bar(n_blocks, f"importing {layout.path.name}", progress) as bar:
            for start, block in _numeric_blocks(layout, rows_per_block):
                rows = slice(start, start + block.shape[0])
                if genes_by_samples:
                    writer.write(slice(None), rows, block.T)
                else:
                    writer.write(rows, slice(None), block)
                bar.update()
    return open_cohort(dest)


def _annotation_table(layout: _Layout, names: list[str]) -> pd.DataFrame | None:
    """The rows' annotation columns as a table indexed by row id, in file order."""
    if not layout.annotation_columns:
        return None
    _refuse_repeated(names, f"The header of {str(layout.path)!r}")
    table = pd.DataFrame(dict(zip(names, layout.annotations, strict=True)), index=layout.row_ids)
    return _numbers_where_numbers(table)


def _beside(
    annotations: pd.DataFrame | None, meta: pd.DataFrame | None, what: str
) -> pd.DataFrame | None:
    """The file's annotation columns beside the metadata given (both in matrix order)."""
    if annotations is None:
        return meta
    if meta is None:
        return annotations
    both = sorted(set(map(str, annotations.columns)) & set(map(str, meta.columns)))
    if both:
        raise CohortexError(
            f"The {what} variables {', '.join(map(repr, both))} come both from the file's "
            f"annotation columns and from the {what} metadata; rename one of them."
        )
    return pd.concat([annotations, meta.set_axis(annotations.index)], axis=1)


def as_dataset(cohort: Any) -> xr.Dataset:
    if isinstance(cohort, xr.Dataset):
        if "expression" not in cohort:
            raise CohortexError("The Dataset given as 'cohort' has no 'expression' variable.")
        return cohort
    return open_cohort(cohort)


def _blocks(
    ds: xr.Dataset, genes_by_samples: bool, progress: bool | None, desc: str
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Blocks of the matrix in file-row order: (rows × columns block, row ids)."""
    expression = ds["expression"].transpose("sample", "gene").data
    if genes_by_samples:
        step = _axis_chunk(expression, 1)
        n = expression.shape[1]
        ids = ds["gene"].values
    else:
        step = _axis_chunk(expression, 0)
        n = expression.shape[0]
        ids = ds["sample"].values
    with progress_bar(-(-n // step), desc, progress) as bar:
        for start in range(0, n, step):
            stop = min(start + step, n)
            if genes_by_samples:
                block = np.asarray(expression[:, start:stop]).T
            else:
                block = np.asarray(expression[start:stop])
            yield block, ids[start:stop]
            bar.update()


def _axis_chunk(array: Any, axis: int) -> int:
    chunks = getattr(array, "chunks", None)
    if chunks is None:
        return 1024
    return int(max(chunks[axis]))


class _atomic_text:
    """Open ``dest`` for text writing under a temporary name; rename on success."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex}"
        self.file: IO[str] | None = None

    def __enter__(self) -> IO[str]:
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        if self.dest.suffix.lower() == ".gz":
            self.file = io.TextIOWrapper(gzip.open(self.tmp, "wb"), encoding="utf-8")
        else:
            self.file = open(self.tmp, "w", encoding="utf-8", newline="")
        return self.file

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self.file is not None
        self.file.close()
        if exc_type is None:
            os.replace(self.tmp, self.dest)
        else:
            Path(self.tmp).unlink(missing_ok=True)
