"""Transcript quantifications of Salmon, kallisto, RSEM and StringTie, summarised to genes as
tximport.

Each sample's file is read once and summarised at once (its genes' counts, abundances and
abundance-weighted lengths), so only the genes × samples matrices are held, never the
transcripts × samples ones (except for transcript-level output).
"""

from __future__ import annotations

import csv
import gzip
import os
import warnings
import zlib
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._constants import COUNTS_FROM_ABUNDANCE, QUANTIFIERS
from .._errors import CohortexError, CohortexWarning
from .._memory import physical_memory
from .._progress import progress_bar
from ..store import create_cohort
from ._tab_fields import TabTable, parse_tab_table
from ._text import first_line, read_metadata

__all__ = [
    "COUNTS_FROM_ABUNDANCE",
    "QUANTIFIERS",
    "import_quantifications",
    "read_quantifications",
]


@dataclass(frozen=True)
class _Format:
    """One quantifier's table: its header and the columns tximport reads."""

    name: str
    header: tuple[str, ...]
    id_column: str
    abundance: str
    counts: str
    length: str
    genes: bool = False  # RSEM's genes.results: already one row per gene


_FORMATS = (
    _Format(
        "salmon",
        ("Name", "Length", "EffectiveLength", "TPM", "NumReads"),
        "Name",
        "TPM",
        "NumReads",
        "EffectiveLength",
    ),
    _Format(
        "kallisto",
        ("target_id", "length", "eff_length", "est_counts", "tpm"),
        "target_id",
        "tpm",
        "est_counts",
        "eff_length",
    ),
    _Format(
        "rsem",
        ("transcript_id", "gene_id", "length", "effective_length", "expected_count", "TPM"),
        "transcript_id",
        "TPM",
        "expected_count",
        "effective_length",
    ),
    _Format(
        "rsem",
        ("gene_id", "transcript_id(s)", "length", "effective_length", "expected_count", "TPM"),
        "gene_id",
        "TPM",
        "expected_count",
        "effective_length",
        genes=True,
    ),
    _Format(
        "stringtie",
        ("t_id", "chr", "strand", "start", "end", "t_name", "num_exons", "length", "gene_id"),
        "t_name",
        "FPKM",
        "cov",
        "length",
    ),
)
_KALLISTO_H5 = _Format("kallisto", (), "aux/ids", "", "est_counts", "aux/eff_lengths")
# the names quantifiers give their output inside a sample's folder
_IN_FOLDER = (
    "quant.sf",
    "quant.sf.gz",
    "abundance.h5",
    "abundance.tsv",
    "abundance.tsv.gz",
    "t_data.ctab",
)
_RSEM_SUFFIXES = (".isoforms.results", ".genes.results")


def read_quantifications(
    files: Mapping[str, str | os.PathLike[str]] | Sequence[str | os.PathLike[str]],
    *,
    tx2gene: pd.DataFrame | str | os.PathLike[str] | None = None,
    counts_from_abundance: str = "no",
    transcripts: bool = False,
    quantifier: str | None = None,
    ignore_tx_version: bool = False,
    ignore_after_bar: bool = False,
    read_length: float = 75.0,
    round_counts: bool = False,
    progress: bool | None = None,
) -> xr.Dataset:
    """Read Salmon, kallisto, RSEM or StringTie quantifications and summarise them to genes, as
    tximport's ``tximport``.

    Each gene's abundance (TPM) and estimated count are its transcripts' sums; its length in a
    sample is its transcripts' effective lengths weighted by their abundances there (where all
    of a gene's transcripts are at 0 in a sample, the geometric mean of its lengths in the
    other samples, and where they are at 0 in every sample, the mean of its transcripts'
    lengths). ``counts_from_abundance`` then makes counts from the abundances, scaled to each
    sample's total count: ``"scaledTPM"`` from the TPM, ``"lengthScaledTPM"`` from the TPM
    times the gene's mean length over the samples (counts without the bias of a change in
    the transcripts a gene expresses, for use without offsets in limma-voom, edgeR or DESeq2).

    Parameters
    ----------
    files : mapping of sample id to path, sequence of paths, or one folder
        One quantification per sample: Salmon's ``quant.sf``, kallisto's ``abundance.tsv`` or
        ``abundance.h5``, RSEM's ``.isoforms.results`` (or ``.genes.results``, already per
        gene), StringTie's ``t_data.ctab`` (its per-base coverage made counts: coverage ×
        length / ``read_length``), optionally gzipped; or the sample's folder that holds it.
        Given a sequence, the sample ids are the files' folders (``salmon/S1/quant.sf`` →
        ``S1``) or names without RSEM's suffix (``S1.isoforms.results`` → ``S1``). One folder
        that is not a sample's: its RSEM isoforms.results files, or its folders that hold a
        quantification (``salmon/``), in sorted order.
    tx2gene : DataFrame or path, optional
        Transcript id → gene id: the first two columns (a file: CSV for ``.csv``, else
        tab-separated; its first line a header unless it names a transcript of the files), or
        a GTF (``.gtf``, ``.gtf.gz``: its lines' ``transcript_id`` and ``gene_id``).
        Needed unless ``transcripts=True`` or the files are RSEM's genes.results. A
        transcript listed twice keeps its first gene (tximport's); transcripts it does not
        list are left out, with a warning.
    counts_from_abundance : {"no", "scaledTPM", "lengthScaledTPM", "dtuScaledTPM"}, default "no"
        tximport's ``countsFromAbundance``: ``"no"`` keeps the quantifier's estimated counts.
        ``"dtuScaledTPM"`` (for transcript-level output and differential transcript usage)
        takes each transcript's length as the median of its gene's transcripts' mean lengths.
    transcripts : bool, default False
        tximport's ``txOut``: keep the transcripts, not summarised (``gene`` then holds
        transcript ids).
    quantifier : {"salmon", "kallisto", "rsem", "stringtie"}, optional
        Checked against each file's header; by default read from it.
    ignore_tx_version : bool, default False
        Match transcripts to ``tx2gene`` without their version (``ENST0001.3`` → ``ENST0001``).
    ignore_after_bar : bool, default False
        Match transcripts by the part before the first ``|`` (GENCODE's transcript names); with
        ``transcripts=True`` the ids are cut there too.
    read_length : float, default 75
        StringTie's reads' length (tximport's ``readLength``).
    round_counts : bool, default False
        The counts rounded to whole numbers (half to even), as ``DESeqDataSetFromTximport``
        rounds them for :func:`cohortex.de.deseq`, which takes whole counts only (limma-voom
        and edgeR take the fractions); the abundances and lengths stay as read.
    progress : bool or None, default None
        Show a progress bar over the files (``None``: only on a terminal).

    Returns
    -------
    xarray.Dataset
        In memory, dims ``sample`` and ``gene`` (genes in sorted order, transcripts in the
        files'):
        ``expression(sample, gene)`` the counts (float64; scale ``counts``, so the Dataset is a
        cohort), ``abundance(sample, gene)`` the TPM (StringTie's FPKM) and
        ``length(sample, gene)`` the lengths (tximport's ``counts``, ``abundance`` and
        ``length``). Attrs ``quantifier``, ``counts_from_abundance``, ``level`` (``"gene"``
        or ``"transcript"``) and ``n_transcripts_dropped`` (transcripts not in ``tx2gene``).

    Raises
    ------
    CohortexError
        For a file that is not one of the quantifiers' tables or that holds negative or
        non-finite values; files that do not list the same transcripts in the same order;
        sample ids that repeat; a ``tx2gene`` that matches none of the transcripts; or a
        setting tximport refuses (``"dtuScaledTPM"`` without ``transcripts=True`` and a
        ``tx2gene`` that lists every transcript, counts from the abundances of RSEM's
        genes.results).

    Notes
    -----
    Held to tximport 1.26 (tests/io/test_quantifications.py, fixtures from
    tests/fixtures/make_tximport_fixtures.R) to 1e-12 for each quantifier and setting. The
    lengths serve the ``countsFromAbundance = "no"`` route: :func:`cohortex.de.deseq`,
    :func:`~cohortex.de.vst` and :func:`~cohortex.de.rlog` of this Dataset (its counts
    rounded) take them as ``DESeqDataSetFromTximport`` does, as normalization factors, and
    :func:`~cohortex.de.glm_ql`, :func:`~cohortex.de.glm_lrt` and
    :func:`~cohortex.de.estimate_dispersion` as tximport's edgeR offsets. limma-voom takes
    no offsets: for it read the counts with ``"lengthScaledTPM"`` (or ``"scaledTPM"``), as
    tximport recommends for tools without offsets.
    """
    who = "read_quantifications"
    if counts_from_abundance not in COUNTS_FROM_ABUNDANCE:
        raise CohortexError(
            f"The 'counts_from_abundance' parameter of {who}() is one of "
            f"{', '.join(map(repr, COUNTS_FROM_ABUNDANCE))}; got {counts_from_abundance!r}."
        )
    if not read_length > 0:
        raise CohortexError(
            f"The 'read_length' parameter of {who}() must be a positive length; got {read_length}."
        )
    if quantifier is not None and quantifier not in QUANTIFIERS:
        raise CohortexError(
            f"The 'quantifier' parameter of {who}() is one of "
            f"{', '.join(map(repr, QUANTIFIERS))}; got {quantifier!r}."
        )
    if counts_from_abundance == "dtuScaledTPM" and (not transcripts or tx2gene is None):
        raise CohortexError(
            f"{who}(counts_from_abundance='dtuScaledTPM') gives transcript-level counts: it "
            "needs transcripts=True and a tx2gene (each transcript's length is the median of "
            "its gene's)."
        )
    sample_ids, paths = _sample_files(files)
    formats = [_format_of(path, quantifier) for path in paths]
    if len({(f.name, f.genes) for f in formats}) > 1:
        kinds = sorted({f"{f.name}{' genes' if f.genes else ''}" for f in formats})
        raise CohortexError(f"{who}(): the files are of several kinds ({', '.join(kinds)}).")
    table = formats[0]
    if table.genes:
        if counts_from_abundance != "no" or transcripts or tx2gene is not None:
            raise CohortexError(
                f"{who}(): RSEM's genes.results are already one row per gene: counts from "
                "abundance, transcripts=True and tx2gene need its isoforms.results."
            )
    elif tx2gene is None and not transcripts:
        raise CohortexError(
            f"{who}() summarises transcripts to genes with a tx2gene table (transcript id, "
            "gene id); pass one, or transcripts=True to keep the transcripts."
        )
    reader = _Reader(paths, formats, read_length)
    ids = reader.transcript_ids
    keys = _keys(ids, ignore_tx_version, ignore_after_bar)
    mapping = None if tx2gene is None else _Tx2Gene.of(tx2gene, who, keys)
    if table.genes or transcripts:
        summary = _Matrices.transcripts(reader, progress, table.name == "rsem" and not table.genes)
        if transcripts:
            if ignore_after_bar:
                ids = np.array([i.split("|", 1)[0] for i in ids], dtype=object)
            if counts_from_abundance != "no":
                per_gene = None
                if counts_from_abundance == "dtuScaledTPM":
                    assert mapping is not None
                    per_gene = _median_over_isoforms(summary.length, mapping.genes_of(keys, who))
                summary.counts_from_abundance(counts_from_abundance, per_gene)
        dropped = 0
    else:
        assert mapping is not None
        gene_ids, index, dropped = mapping.index(keys, who)
        summary = _Matrices.genes(reader, index, gene_ids.shape[0], progress, table.name == "rsem")
        ids = gene_ids
        if counts_from_abundance != "no":
            summary.counts_from_abundance(counts_from_abundance, None)
    return xr.Dataset(
        {
            "expression": (
                ("sample", "gene"),
                np.round(summary.counts.T) if round_counts else summary.counts.T,
            ),
            "abundance": (("sample", "gene"), summary.abundance.T),
            "length": (("sample", "gene"), summary.length.T),
        },
        coords={"sample": sample_ids, "gene": np.asarray(ids, dtype=str)},
        attrs={
            "scale": "counts",
            "quantifier": table.name,
            "counts_from_abundance": counts_from_abundance,
            "level": "transcript" if transcripts else "gene",
            "n_transcripts_dropped": int(dropped),
        },
    )


def import_quantifications(
    files: Mapping[str, str | os.PathLike[str]] | Sequence[str | os.PathLike[str]],
    dest: str | os.PathLike[str],
    *,
    tx2gene: pd.DataFrame | str | os.PathLike[str] | None = None,
    counts_from_abundance: str = "lengthScaledTPM",
    transcripts: bool = False,
    quantifier: str | None = None,
    ignore_tx_version: bool = False,
    ignore_after_bar: bool = False,
    read_length: float = 75.0,
    round_counts: bool = False,
    samples: pd.DataFrame | str | os.PathLike[str] | None = None,
    chunks: tuple[int, int] | None = None,
    compressor: Any = "lz4",
    overwrite: bool = False,
    progress: bool | None = None,
) -> xr.Dataset:
    """Import Salmon, kallisto, RSEM or StringTie quantifications as a cohort of counts,
    summarised to genes as tximport (:func:`read_quantifications`).

    The store holds the counts (scale ``counts``) and the attrs ``quantifier``,
    ``counts_from_abundance`` and ``level``. With counts made from abundances (the default,
    ``"lengthScaledTPM"``: counts for every model, the rank and t tests and limma-voom too,
    free of the bias of a change in which transcripts a gene expresses) it holds each gene's
    mean length over the samples as the gene variable ``length``. With tximport's
    ``"no"`` it holds the per-sample average transcript lengths those counts need as
    ``length(sample, gene)``, which :func:`cohortex.de.deseq`, ``vst``, ``rlog`` and the
    edgeR models take by default, as ``DESeqDataSetFromTximport`` and edgeR's offsets do.
    :func:`cohortex.normalize`'s ``"tpm"`` and ``"rpkm"`` read either.

    Parameters
    ----------
    files, tx2gene, transcripts, quantifier, ignore_tx_version, ignore_after_bar, read_length
        As for :func:`read_quantifications`.
    dest : path
        The new store.
    counts_from_abundance : str, default "lengthScaledTPM"
        As for :func:`read_quantifications`.
    round_counts : bool, default False
        Store the counts rounded to whole numbers, as ``DESeqDataSetFromTximport`` rounds
        them: :func:`cohortex.de.deseq` takes whole counts only (limma-voom and edgeR take
        the fractions).
    samples : DataFrame or path, optional
        Sample metadata, matched by sample id.
    chunks, compressor, overwrite, progress
        As for :func:`cohortex.create_cohort`.

    Returns
    -------
    xarray.Dataset
        The new store, opened.
    """
    ds = read_quantifications(
        files,
        tx2gene=tx2gene,
        counts_from_abundance=counts_from_abundance,
        transcripts=transcripts,
        quantifier=quantifier,
        ignore_tx_version=ignore_tx_version,
        ignore_after_bar=ignore_after_bar,
        read_length=read_length,
        round_counts=round_counts,
        progress=progress,
    )
    if counts_from_abundance == "no":  # the counts need their lengths
        stored = ds.drop_vars("abundance")
    else:
        stored = ds.drop_vars(["abundance", "length"])
        stored["length"] = ds["length"].mean("sample")
    return create_cohort(
        dest,
        stored,
        samples=None if samples is None else read_metadata(samples, "sample"),
        scale="counts",
        chunks=chunks,
        compressor=compressor,
        overwrite=overwrite,
        progress=progress,
    )


def _sample_files(
    files: Mapping[str, str | os.PathLike[str]] | Sequence[str | os.PathLike[str]],
) -> tuple[list[str], list[Path]]:
    """The sample ids and each sample's file (a folder resolved to the file in it)."""
    if isinstance(files, str | os.PathLike):
        files = _in_one_folder(Path(files))
    if isinstance(files, Mapping):
        names = [str(k) for k in files]
        paths = [_resolve(Path(p)) for p in files.values()]
    else:
        paths = [_resolve(Path(p)) for p in files]
        names = [_sample_name(p) for p in paths]
    if not paths:
        raise CohortexError("read_quantifications() needs at least one file.")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise CohortexError(
            f"The quantification files give the sample ids {', '.join(map(repr, repeated))} more "
            "than once; pass a mapping of sample id to file."
        )
    return names, paths


def _in_one_folder(path: Path) -> list[Path]:
    """One path given: a sample's file or folder, else a folder of samples — its RSEM
    isoforms.results (or genes.results) files, or its folders that hold a quantification."""
    if not path.is_dir() or any((path / name).is_file() for name in _IN_FOLDER):
        return [path]
    for suffix in _RSEM_SUFFIXES:
        found = sorted(p for p in path.iterdir() if p.name.endswith(suffix) and p.is_file())
        if found:
            return found
    folders = sorted(
        p for p in path.iterdir() if p.is_dir() and any((p / n).is_file() for n in _IN_FOLDER)
    )
    return folders or [path]  # none: refused as a folder without a quantification


def _resolve(path: Path) -> Path:
    if path.is_file():
        return path
    if not path.is_dir():
        raise CohortexError(f"The quantification file {str(path)!r} does not exist.")
    found = [path / name for name in _IN_FOLDER if (path / name).is_file()]
    found += sorted(p for p in path.iterdir() if p.name.endswith(_RSEM_SUFFIXES) and p.is_file())
    if len(found) == 0 or (len(found) > 1 and found[0].name not in _IN_FOLDER):
        raise CohortexError(
            f"The folder {str(path)!r} holds no single quantification ({', '.join(_IN_FOLDER)} "
            "or an RSEM .isoforms.results); pass the file itself."
        )
    return found[0]  # kallisto's abundance.h5 before its abundance.tsv: exact values


def _sample_name(path: Path) -> str:
    name = path.name
    for suffix in _RSEM_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    if name in _IN_FOLDER:
        return path.absolute().parent.name  # the folder named, not a link's target
    return name


def _format_of(path: Path, quantifier: str | None) -> _Format:
    if path.name.endswith(".h5"):
        table = _KALLISTO_H5
    else:
        header = tuple(first_line(path).split("\t"))
        matches = [f for f in _FORMATS if header[: len(f.header)] == f.header]
        if not matches:
            raise CohortexError(
                f"{str(path)!r} is not a quantification of Salmon (quant.sf), kallisto "
                f"(abundance.tsv), RSEM (.isoforms.results, .genes.results) or StringTie "
                f"(t_data.ctab): its header is "
                f"{', '.join(map(repr, header[:6]))}."
            )
        table = matches[0]
    if quantifier is not None and table.name != quantifier:
        raise CohortexError(f"{str(path)!r} is {table.name}'s output, not {quantifier}'s.")
    return table


class _Reader:
    """The files, read one at a time: each one's abundance, counts and length columns, in the
    order of the first file's transcripts (every file must list the same)."""

    def __init__(self, paths: list[Path], formats: list[_Format], read_length: float) -> None:
        self.paths, self.formats, self.read_length = paths, formats, read_length
        self.first = self._read(0)
        try:
            self.transcript_ids = self.first[0].ids()
        except UnicodeDecodeError:
            raise CohortexError(f"{str(paths[0])!r}: its transcript ids are not UTF-8.") from None
        index = pd.Index(self.transcript_ids)
        if index.has_duplicates:
            repeated = index[index.duplicated()][:3]
            raise CohortexError(
                f"{str(paths[0])!r} lists {', '.join(map(repr, repeated))} more than once."
            )

    def __len__(self) -> int:
        return len(self.paths)

    def each(self, progress: bool | None) -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:
        """Each file's index and its abundance, counts and length (each (n_transcripts,)), in
        order; the next files are read ahead on other threads (the parser lets go of the GIL)."""
        workers = max(1, min(4, os.cpu_count() or 1))
        bar = progress_bar(len(self), "read_quantifications", progress, unit="file", delay=2.0)
        pending: deque[Future[tuple[TabTable, np.ndarray, np.ndarray, np.ndarray]]] = deque()
        with ThreadPoolExecutor(workers) as pool:
            try:
                following = 1
                for j in range(len(self)):
                    while following < len(self) and len(pending) < workers:
                        pending.append(pool.submit(self._read, following))
                        following += 1
                    yield j, (self.first if j == 0 else pending.popleft().result())[1:]
                    bar.update(1)
            finally:
                for future in pending:
                    future.cancel()
                bar.close()

    def _read(self, j: int) -> tuple[TabTable, np.ndarray, np.ndarray, np.ndarray]:
        path, table = self.paths[j], self.formats[j]
        ids = _read_h5(path) if table is _KALLISTO_H5 else _read_table(path, table)
        if ids.n_rows == 0:
            raise CohortexError(f"{str(path)!r} lists no transcripts.")
        if j > 0 and not self.first[0].same_ids(ids):
            raise CohortexError(
                f"{str(path)!r} does not list the transcripts of {str(self.paths[0])!r} in the "
                "same order: quantify every sample against the same index."
            )
        abundance, counts, length = (np.ascontiguousarray(c) for c in ids.numbers.T)
        if table.name == "stringtie":  # tximport's counts of StringTie's per-base coverage
            counts = counts * length / self.read_length
        for values, what in ((abundance, "abundances"), (counts, "counts"), (length, "lengths")):
            bad = ~np.isfinite(values) | (values < 0)
            if bad.any():
                at = int(np.flatnonzero(bad)[0])
                raise CohortexError(
                    f"{str(path)!r} holds {what} that are negative or not numbers (first: "
                    f"{ids.id_at(at)!r}, {values[at]})."
                )
        return ids, abundance, counts, length


def _read_table(path: Path, table: _Format) -> TabTable:
    """A quantifier's table: its ids and its abundance, counts and length columns."""
    try:
        raw = path.read_bytes()
        if path.name.lower().endswith(".gz"):
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise CohortexError(f"{str(path)!r} cannot be read: {error}") from None
    data = np.frombuffer(raw, dtype=np.uint8)
    header = raw[: raw.find(b"\n")].decode("utf-8", "replace").rstrip("\r").split("\t")
    wanted = (table.id_column, table.abundance, table.counts, table.length)
    at = [header.index(name) for name in wanted]
    return parse_tab_table(data, len(header), at[0], at[1:], repr(str(path)))


def _read_h5(path: Path) -> TabTable:
    """kallisto's abundance.h5: its counts and effective lengths, TPM from them (tximport's
    read_kallisto_h5)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            counts = np.asarray(_h5_values(f, "est_counts", path), dtype=np.float64)
            ids = np.array(
                [
                    i.decode() if isinstance(i, bytes) else str(i)
                    for i in _h5_values(f, "aux/ids", path)
                ],
                dtype=object,
            )
            length = np.asarray(_h5_values(f, "aux/eff_lengths", path), dtype=np.float64)
    except (OSError, KeyError, ValueError) as error:
        raise CohortexError(f"{str(path)!r} is not kallisto's abundance.h5: {error}") from None
    if not counts.shape == ids.shape == length.shape:
        raise CohortexError(f"{str(path)!r}: its counts, ids and lengths differ in number.")
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = counts / length
        abundance = rate * (1e6 / rate.sum())
    return TabTable.of_strings(ids, np.column_stack([abundance, counts, length]))


def _h5_values(f: Any, name: str, path: Path) -> np.ndarray:
    """A dataset's values, read only from the file itself: a link to another file, or data
    stored outside it (external or virtual), would read paths the file names."""
    import h5py

    group = f
    for part in name.split("/"):
        link = group.get(part, getlink=True)
        if link is None:
            raise KeyError(name)
        if not isinstance(link, h5py.HardLink):
            raise CohortexError(f"{str(path)!r}: {name!r} links outside the file; refused.")
        group = group[part]
    if not isinstance(group, h5py.Dataset):
        raise KeyError(name)
    if group.external or group.is_virtual:
        raise CohortexError(f"{str(path)!r}: {name!r} is stored outside the file; refused.")
    return np.asarray(group[()])


def _keys(ids: np.ndarray, ignore_tx_version: bool, ignore_after_bar: bool) -> np.ndarray:
    """The transcript ids as tx2gene is matched: without version, or before the first bar."""
    if ignore_tx_version:
        return np.array([i.split(".", 1)[0] for i in ids], dtype=object)
    if ignore_after_bar:
        return np.array([i.split("|", 1)[0] for i in ids], dtype=object)
    return ids


class _Tx2Gene:
    """Transcript id → gene id, the first row of a transcript listed twice."""

    def __init__(self, gene_of: dict[str, str]) -> None:
        self.gene_of = gene_of

    @classmethod
    def of(
        cls, source: pd.DataFrame | str | os.PathLike[str], who: str, keys: np.ndarray
    ) -> _Tx2Gene:
        """From a DataFrame, a GTF's attributes, or a table whose first line is a header unless
        it names one of the transcripts ``keys`` (tables made from a GTF often have none)."""
        if isinstance(source, pd.DataFrame):
            frame = source
        elif Path(source).name.lower().endswith((".gtf", ".gtf.gz")):
            frame = _gtf_pairs(Path(source))
        else:
            path = Path(source)
            if not path.is_file():
                raise CohortexError(f"The tx2gene file {str(path)!r} does not exist.")
            sep = "," if ".csv" in [s.lower() for s in path.suffixes] else "\t"
            try:
                frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, header=None)
            except (ValueError, OSError, UnicodeDecodeError, EOFError) as error:
                raise CohortexError(
                    f"The tx2gene file {str(path)!r} cannot be read: {error}"
                ) from None
            if frame.shape[0] and frame.iat[0, 0] not in set(keys):
                frame = frame.iloc[1:]  # a header
        if frame.shape[1] < 2:
            raise CohortexError(
                f"{who}(): tx2gene needs two columns, transcript id and gene id; it has "
                f"{frame.shape[1]}."
            )
        tx, gene = (frame.iloc[:, k] for k in (0, 1))
        if tx.isna().any() or gene.isna().any() or ((tx == "") | (gene == "")).any():
            raise CohortexError(f"{who}(): tx2gene has empty transcript or gene ids.")
        tx, gene = tx.astype(str).to_numpy(), gene.astype(str).to_numpy()
        first = ~pd.Index(tx).duplicated()
        gene_of = dict(zip(tx[first], gene[first], strict=True))
        disagree = sorted(
            {t for t, g in zip(tx[~first], gene[~first], strict=True) if gene_of[t] != g}
        )
        if disagree:
            warnings.warn(
                f"{who}(): tx2gene gives {len(disagree)} transcripts several genes (e.g. "
                f"{disagree[0]!r}); each keeps its first, as tximport.",
                CohortexWarning,
                stacklevel=3,
            )
        return cls(gene_of)

    def genes_of(self, keys: np.ndarray, who: str) -> np.ndarray:
        """Each transcript's gene; every transcript must be listed."""
        missing = [k for k in keys if k not in self.gene_of]
        if missing:
            raise CohortexError(
                f"{who}(counts_from_abundance='dtuScaledTPM') needs every transcript in "
                f"tx2gene; {len(missing)} are not (e.g. {missing[0]!r})."
            )
        return np.array([self.gene_of[k] for k in keys], dtype=object)

    def index(self, keys: np.ndarray, who: str) -> tuple[np.ndarray, np.ndarray, int]:
        """The genes (sorted), each transcript's gene's position in them (-1: not listed) and
        how many transcripts are not listed."""
        genes = np.array([self.gene_of.get(k, "") for k in keys], dtype=object)
        listed = genes != ""
        if not listed.any():
            examples = ", ".join(map(repr, list(keys[:3])))
            table = ", ".join(map(repr, list(self.gene_of)[:3]))
            raise CohortexError(
                f"{who}(): none of the transcripts is in tx2gene (files: {examples}; tx2gene: "
                f"{table}). Use the same annotation for both; ignore_tx_version=True or "
                "ignore_after_bar=True match ids that differ in their version or GENCODE's "
                "'|' names."
            )
        gene_ids, position = np.unique(genes[listed].astype(str), return_inverse=True)
        index = np.full(keys.shape[0], -1, dtype=np.int64)
        index[listed] = position
        dropped = int((~listed).sum())
        if dropped:
            warnings.warn(
                f"{who}(): {dropped} transcripts are not in tx2gene and are left out (e.g. "
                f"{keys[~listed][0]!r}).",
                CohortexWarning,
                stacklevel=3,
            )
        return gene_ids, index, dropped


class _Matrices:
    """The genes' (or transcripts') abundance, counts and length: each (n_rows, n_samples)."""

    def __init__(self, abundance: np.ndarray, counts: np.ndarray, length: np.ndarray) -> None:
        self.abundance, self.counts, self.length = abundance, counts, length

    @classmethod
    def transcripts(cls, reader: _Reader, progress: bool | None, rsem: bool) -> _Matrices:
        n_rows = reader.transcript_ids.shape[0]
        _check_memory(3 * n_rows * len(reader), "transcripts")
        out = cls(*(np.empty((n_rows, len(reader))) for _ in range(3)))
        for j, (abundance, counts, length) in reader.each(progress):
            out.abundance[:, j], out.counts[:, j], out.length[:, j] = abundance, counts, length
        if rsem:  # tximport: RSEM's effective lengths below 1 (shorter than a fragment) are 1
            np.maximum(out.length, 1.0, out=out.length)
        return out

    @classmethod
    def genes(
        cls, reader: _Reader, index: np.ndarray, n_genes: int, progress: bool | None, rsem: bool
    ) -> _Matrices:
        """tximport's summarizeToGene, one sample at a time."""
        _check_memory(3 * n_genes * len(reader), "genes")
        listed = index >= 0
        gene = index[listed]
        out = cls(*(np.empty((n_genes, len(reader))) for _ in range(3)))
        length_sums = np.zeros(int(listed.sum()))
        for j, values in reader.each(progress):
            abundance, counts, length = (v[listed] for v in values)
            if rsem:
                length = np.maximum(length, 1.0)
            out.abundance[:, j] = np.bincount(gene, abundance, n_genes)
            out.counts[:, j] = np.bincount(gene, counts, n_genes)
            weighted = np.bincount(gene, abundance * length, n_genes)
            with np.errstate(invalid="ignore", divide="ignore"):
                out.length[:, j] = weighted / out.abundance[:, j]  # NaN where all are at 0
            length_sums += length
        # a gene at 0 in every sample: its transcripts' mean lengths, averaged
        mean_length = np.bincount(gene, length_sums / len(reader), n_genes) / np.bincount(
            gene, minlength=n_genes
        )
        _replace_missing_length(out.length, mean_length)
        return out

    def counts_from_abundance(self, how: str, lengths: np.ndarray | None) -> None:
        """tximport's makeCountsFromAbundance: counts from the abundances, scaled to each
        sample's total count; ``lengths`` (per row) replace the rows' mean lengths."""
        totals = self.counts.sum(axis=0)
        if how == "scaledTPM":
            made = self.abundance.copy()
        else:
            mean = self.length.mean(axis=1) if lengths is None else lengths
            made = self.abundance * mean[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            self.counts = made * (totals / made.sum(axis=0))


def _gtf_pairs(path: Path) -> pd.DataFrame:
    """A GTF's transcript → gene pairs (GENCODE's, Ensembl's annotation): the
    ``transcript_id`` and ``gene_id`` attributes of its transcript lines (of every line where
    it has none), each transcript once."""
    if not path.is_file():
        raise CohortexError(f"The tx2gene GTF {str(path)!r} does not exist.")
    try:
        table = pd.read_csv(
            path,
            sep="\t",
            header=None,
            usecols=[2, 8],
            names=list(range(9)),
            dtype=str,
            quoting=csv.QUOTE_NONE,
            keep_default_na=False,
        )
    except (ValueError, OSError, UnicodeDecodeError, EOFError, pd.errors.ParserError) as error:
        raise CohortexError(f"The tx2gene GTF {str(path)!r} cannot be read: {error}") from None
    transcript_lines = table[2] == "transcript"
    attributes = table[8][transcript_lines] if transcript_lines.any() else table[8]
    pairs = pd.DataFrame(
        {
            "tx": attributes.str.extract(r'(?:^|;)\s*transcript_id "([^"]+)"', expand=False),
            "gene": attributes.str.extract(r'(?:^|;)\s*gene_id "([^"]+)"', expand=False),
        }
    ).dropna()
    if pairs.empty:
        raise CohortexError(
            f"{str(path)!r} has no lines with transcript_id and gene_id attributes: not a GTF "
            "of transcripts (a GFF3 is not read; pass a transcript → gene table)."
        )
    return pairs.drop_duplicates("tx")


def _replace_missing_length(length: np.ndarray, mean_length: np.ndarray) -> None:
    """tximport's replaceMissingLength: a gene's NaN lengths become the geometric mean of its
    other samples' lengths, or its transcripts' mean length where every sample's is NaN."""
    missing = np.isnan(length)
    for i in np.flatnonzero(missing.any(axis=1)):
        row = missing[i]
        if row.all():
            length[i] = mean_length[i]
        else:
            length[i, row] = np.exp(np.mean(np.log(length[i, ~row])))


def _median_over_isoforms(length: np.ndarray, genes: np.ndarray) -> np.ndarray:
    """tximport's medianLengthOverIsoform: each transcript's length the median over its gene's
    transcripts of their mean lengths over the samples; shape (n_transcripts,)."""
    mean = length.mean(axis=1)
    per_gene = pd.Series(mean).groupby(genes).median()
    return per_gene.loc[genes].to_numpy(np.float64)


def _check_memory(n_values: int, what: str) -> None:
    needed, total = 8.0 * n_values, physical_memory()
    if total and needed > total / 2:
        raise CohortexError(
            f"read_quantifications() holds three {what} × samples matrices: about "
            f"{needed / 2**30:.0f} GB, more than half of this machine's {total / 2**30:.0f} GB. "
            "Read the samples in groups and join the cohorts."
        )
