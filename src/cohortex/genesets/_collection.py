"""Gene-set collections: ``GeneSets``, read from and written to GMT (MSigDB's format)."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._errors import CohortexError

__all__ = ["GeneSets", "read_gmt"]


@dataclass(frozen=True)
class GeneSets:
    """Named gene sets with descriptions.

    Attributes
    ----------
    names : tuple of str
        Unique set names, in the collection's order.
    descriptions : tuple of str
    members : tuple of tuple of str
        Each set's genes, unique, in their first order.
    """

    names: tuple[str, ...]
    descriptions: tuple[str, ...]
    members: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        if not len(self.names) == len(self.descriptions) == len(self.members):
            raise CohortexError("GeneSets needs as many descriptions and member lists as names.")
        seen: set[str] = set()
        for name in self.names:
            if name in seen:
                raise CohortexError(f"The gene set name {name!r} appears twice.")
            seen.add(name)

    @classmethod
    def from_dict(
        cls, sets: Mapping[str, Iterable[str]], descriptions: Mapping[str, str] | None = None
    ) -> GeneSets:
        """From ``{name: genes}`` (and optional ``{name: description}``)."""
        names = tuple(str(n) for n in sets)
        return cls(
            names,
            tuple(str((descriptions or {}).get(n, "")) for n in names),
            tuple(_unique(sets[n]) for n in names),
        )

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __getitem__(self, name: str) -> tuple[str, ...]:
        try:
            return self.members[self.names.index(name)]
        except ValueError:
            raise CohortexError(f"No gene set is named {name!r}.") from None

    def sizes(self) -> np.ndarray:
        """Genes per set, shape (n_sets,)."""
        return np.array([len(m) for m in self.members], dtype=np.int64)

    def restrict(
        self, universe: Iterable[str], *, min_size: int = 1, max_size: int | None = None
    ) -> GeneSets:
        """Each set cut to the genes of ``universe``, keeping the sets whose remaining size is
        within ``[min_size, max_size]`` (fgsea's ``minSize``/``maxSize``)."""
        allowed = {str(g) for g in universe}
        names, descriptions, members = [], [], []
        for name, description, genes in zip(
            self.names, self.descriptions, self.members, strict=True
        ):
            kept = tuple(g for g in genes if g in allowed)
            if len(kept) >= min_size and (max_size is None or len(kept) <= max_size):
                names.append(name)
                descriptions.append(description)
                members.append(kept)
        return GeneSets(tuple(names), tuple(descriptions), tuple(members))

    def translate(self, cohort: Any, variable: str) -> GeneSets:
        """Sets of gene symbols (or any other name) as the cohort's gene ids, through the gene
        variable ``variable`` (e.g. ``"symbol"``); a name held by several genes maps to all of
        them. Refused when no member matches anything."""
        from .._cohort import as_cohort_dataset

        ds = as_cohort_dataset(cohort)
        if not isinstance(ds, xr.Dataset) or variable not in ds or ds[variable].dims != ("gene",):
            raise CohortexError(f"{variable!r} is not a gene variable of the cohort.")
        lookup: dict[str, list[str]] = {}
        for gene_id, name in zip(ds["gene"].values, ds[variable].values, strict=True):
            lookup.setdefault(str(name), []).append(str(gene_id))
        members = tuple(
            _unique(g for member in genes for g in lookup.get(member, ())) for genes in self.members
        )
        if not any(members):
            raise CohortexError(
                f"No gene of the {len(self)} sets matches the cohort's {variable!r}: are the "
                "sets in another naming (symbols, Entrez, Ensembl ids)?"
            )
        return GeneSets(self.names, self.descriptions, members)

    def to_gmt(self, path: str | os.PathLike[str]) -> None:
        """Write the collection as GMT: name, description, genes, tab-separated, a set a line;
        gzipped when the path ends in ``.gz``."""
        lines = []
        for name, description, genes in zip(
            self.names, self.descriptions, self.members, strict=True
        ):
            for field in (name, description, *genes):
                if "\t" in field or "\n" in field:
                    raise CohortexError(f"GMT fields cannot hold tabs or newlines: {field!r}.")
            lines.append("\t".join((name, description, *genes)))
        text = ("\n".join(lines) + "\n").encode("utf-8")
        Path(path).write_bytes(gzip.compress(text, mtime=0) if _gzipped(path) else text)


def read_gmt(path: str | os.PathLike[str]) -> GeneSets:
    """Read a GMT file (MSigDB's format): per line a set name, a description (often a URL),
    then its genes, tab-separated. Blank lines and empty gene fields are skipped, repeated
    genes within a set kept once; a repeated set name or a line without genes is an error
    naming the line. A path ending in ``.gz`` is read through gzip."""
    names, descriptions, members = [], [], []
    seen: set[str] = set()
    raw = Path(path).read_bytes()
    try:
        text = (gzip.decompress(raw) if _gzipped(path) else raw).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise CohortexError(f"{str(path)!r} is not a readable GMT file: {error}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r").split("\t")
        genes = _unique(g.strip() for g in fields[2:] if g.strip())
        if len(fields) < 3 or not genes:
            raise CohortexError(
                f"{str(path)!r} line {number}: a GMT line is a name, a description and at "
                "least one gene, tab-separated."
            )
        name = fields[0].strip()
        if not name or name in seen:
            raise CohortexError(
                f"{str(path)!r} line {number}: the set name {name!r} is empty or repeated."
            )
        seen.add(name)
        names.append(name)
        descriptions.append(fields[1].strip())
        members.append(genes)
    if not names:
        raise CohortexError(f"{str(path)!r} holds no gene set.")
    return GeneSets(tuple(names), tuple(descriptions), tuple(members))


def _gzipped(path: str | os.PathLike[str]) -> bool:
    return str(path).lower().endswith(".gz")


def _unique(genes: Iterable[Any]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(g) for g in genes))
