"""The samples and groups of a test, from whatever form the cohort came in: labels, group
codes, contrasts, the matrix on the chosen device, and the one pass of group moments."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from .._backend import Device, dask_on, namespace, resolve_device, to_host
from .._cohort import as_cohort_matrix, measurement_levels, to_host_dataset
from .._errors import CohortexError, CohortexWarning
from ..stats._moments import GroupMoments, group_moments

__all__ = ["MEMORY_CHUNKS", "Comparison", "contrasts_of"]


# Tiles (samples, genes) in which an in-memory matrix is streamed: views, never copied. With the
# compiled moments loop, Dask's cost per task dominates small tiles (50,000 × 20,000: 1.0 s in
# 2048 × 1024 tiles, 0.33 s in these; benchmarks/RESULTS.md).
MEMORY_CHUNKS = (8192, 4096)


class Comparison:
    """The matrix, labels and ids of a test, whatever form the cohort came in."""

    def __init__(
        self,
        matrix: Any,
        labels: np.ndarray,
        gene_ids: np.ndarray,
        scale: str,
        groupby_name: str,
        device: Device,
        checked_finite: bool,
    ) -> None:
        self.matrix = matrix
        self.labels = labels
        self.gene_ids = gene_ids
        self.scale = scale
        self.groupby_name = groupby_name
        self.device = device
        self.checked_finite = checked_finite
        self.keep_on_device = namespace(matrix) is not np and not isinstance(matrix, da.Array)
        self.pairs: np.ndarray | None = None
        self.paired_by = ""

    @classmethod
    def resolve(
        cls,
        cohort: Any,
        groupby: Any,
        *,
        scale: str | None,
        device: str,
        paired_by: Any = None,
    ) -> Comparison:
        on = resolve_device(device)
        data = as_cohort_matrix(cohort, scale=scale)
        labels, name = _sample_labels(data, groupby, "groupby")
        comparison = cls(
            data.matrix, labels, data.gene_ids, data.scale, name, on, data.finite_checked
        )
        if paired_by is not None:
            comparison.pairs, comparison.paired_by = _sample_labels(data, paired_by, "paired_by")
        return comparison

    def paired_rows(self, codes: np.ndarray, group: int, reference: int) -> tuple[Any, Any]:
        """The rows of the samples of ``group`` and ``reference`` paired by ``paired_by``.

        Pairs with a sample on one side only are left out (with a warning); a pair with two
        samples on one side is an error.
        """
        if self.pairs is None:
            raise CohortexError("No 'paired_by' was given for this comparison.")
        sides = []
        for code in (group, reference):
            rows = np.flatnonzero(codes == code)
            ids = pd.Series(self.pairs[rows]).astype(str)
            duplicated = ids[ids.duplicated()]
            if len(duplicated):
                raise CohortexError(
                    f"A pair must have one sample in each group; '{self.paired_by}' "
                    f"{duplicated.iloc[0]!r} has several in one group."
                )
            sides.append(dict(zip(ids, rows, strict=True)))
        # pairs in the order of the group's rows (the statistics do not depend on it): where
        # the reference rows follow the same order, as in stores sorted by patient, both
        # gathers are runs of rows (sorted by pair id they were scattered: 17.2 → 8.8 s for
        # a paired t of 25,000 pairs × 20,000 genes from the store)
        common = sorted(set(sides[0]) & set(sides[1]), key=sides[0].__getitem__)
        unpaired = len(sides[0]) + len(sides[1]) - 2 * len(common)
        if unpaired:
            warnings.warn(
                f"{unpaired} samples have no partner in the other group by "
                f"'{self.paired_by}' and are left out of the paired test.",
                CohortexWarning,
                stacklevel=4,
            )
        if len(common) < 2:
            raise CohortexError(
                f"A paired test needs at least 2 pairs by '{self.paired_by}'; found {len(common)}."
            )
        return (
            np.array([sides[0][k] for k in common], dtype=np.int64),
            np.array([sides[1][k] for k in common], dtype=np.int64),
        )

    def codes(self, groups: Sequence[str] | None, test: str) -> tuple[list[str], np.ndarray]:
        """Group names and the group index of every sample (-1: left out).

        Welch's t needs two samples in a group (its variance); Student's t, ANOVA and the
        Wilcoxon test are defined for groups of one, as in SciPy, given residual degrees of
        freedom for the first two.
        """
        labels = pd.Series(self.labels, dtype=object)
        missing = labels.isna() | (labels.astype(str) == "")
        if missing.any():
            warnings.warn(
                f"{int(missing.sum())} samples have no '{self.groupby_name}' label and are left "
                "out of the test.",
                CohortexWarning,
                stacklevel=3,
            )
        text = labels.where(~missing, None).map(lambda v: None if v is None else str(v))
        present = sorted(set(text.dropna()))
        if groups is None:
            levels = present
        else:
            levels = [str(g) for g in groups]
            unknown = [g for g in levels if g not in present]
            if unknown:
                raise CohortexError(
                    f"The 'groups' parameter names groups with no samples: {', '.join(unknown)}. "
                    f"Groups of '{self.groupby_name}': {', '.join(present)}."
                )
        index = {g: i for i, g in enumerate(levels)}
        codes = np.asarray([index.get(v, -1) if v is not None else -1 for v in text], np.int64)
        sizes = np.bincount(codes[codes >= 0], minlength=len(levels))
        if len(levels) < 2:
            raise CohortexError(
                f"A test needs at least 2 groups; '{self.groupby_name}' has "
                f"{len(levels)}: {', '.join(levels) or '(none)'}."
            )
        smallest = 2 if test == "welch" else 1
        small = [
            f"{g!r} ({s} sample{'s' if s != 1 else ''})"
            for g, s in zip(levels, sizes, strict=True)
            if s < smallest
        ]
        if small:
            more = f" and {len(small) - 10} more" if len(small) > 10 else ""
            raise CohortexError(
                "Welch's t needs at least 2 samples in every group (Student's t, ANOVA and "
                "the Wilcoxon test accept groups of one); too small: "
                + ", ".join(small[:10])
                + more
                + "."
            )
        if test in ("student", "anova") and sizes.sum() <= len(levels):
            name = "Student's t" if test == "student" else "ANOVA"
            raise CohortexError(
                f"{name} needs more samples ({int(sizes.sum())}) than groups ({len(levels)}) "
                "to estimate a variance."
            )
        return levels, codes

    def chunked(self, chunks: tuple[int, int]) -> da.Array:
        """The matrix as a Dask array on the chosen device (in-memory input: ``chunks``)."""
        return dask_on(self.matrix, self.device, chunks)

    def refuse_infinite(self, counts: Any) -> None:
        """Raise if any gene holds ±inf (``counts``: per-gene numbers of them)."""
        counts = to_host(counts)
        if counts.any():
            first = int(np.flatnonzero(counts)[0])
            raise CohortexError(
                f"The expression matrix holds {int(counts.sum())} infinite values (first in gene "
                f"{self.gene_ids[first]!r}); statistics need finite values or NaN."
            )

    def moments(
        self, codes: np.ndarray, n_groups: int, *, omit_nan: bool, linear: bool
    ) -> GroupMoments:
        moments = group_moments(
            self.chunked(MEMORY_CHUNKS),
            codes,
            n_groups,
            omit_nan=omit_nan,
            linear=linear,
            count_infinite=not self.checked_finite,
        )
        (result,) = dask.compute(moments)
        if result.infinite is not None:
            self.refuse_infinite(result.infinite)
        return result

    def finish(self, result: xr.Dataset) -> xr.Dataset:
        return result if self.keep_on_device else to_host_dataset(result)


def _sample_labels(data: Any, spec: Any, parameter: str) -> tuple[np.ndarray, str]:
    """One label per sample: a sample variable by name, or the labels themselves."""
    n_samples = data.matrix.shape[0]
    if isinstance(spec, str):
        if data.dataset is None:
            raise CohortexError(
                f"For a plain array, '{parameter}' must be the sample labels (a sequence of "
                f"length {n_samples}), not a variable name; got {spec!r}."
            )
        sample_vars = data.sample_variables()
        if spec not in sample_vars:
            raise CohortexError(
                f"The '{parameter}' parameter of test() must name a sample variable; got "
                f"{spec!r}. Sample variables: {', '.join(sample_vars) or '(none)'}."
            )
        labels, name = np.asarray(to_host(data.dataset[spec].values)), spec
    else:
        labels, name = np.asarray(spec), "labels" if parameter == "groupby" else parameter
    if labels.ndim != 1 or labels.shape[0] != n_samples:
        raise CohortexError(
            f"The '{parameter}' labels must have one entry per sample ({n_samples}); got shape "
            f"{labels.shape}."
        )
    distinct = measurement_levels(labels) if parameter == "groupby" else 0
    if distinct:
        raise CohortexError(
            f"The 'groupby' variable {name!r} holds {distinct} distinct fractional numbers "
            f"among {int(np.isfinite(labels).sum())} samples; a test compares groups of "
            f"samples. Cut it into groups first, or fit it in a linear model (design='~ {name}')."
        )
    return labels, name


def contrasts_of(levels: list[str], reference: str) -> list[tuple[int, list[int]]]:
    """(group index, reference group indices) per contrast."""
    everyone = list(range(len(levels)))
    if reference == "rest":
        return [(g, [r for r in everyone if r != g]) for g in everyone]
    if reference not in levels:
        raise CohortexError(
            f"The 'reference' parameter must be 'rest' or one of the groups "
            f"({', '.join(levels)}); got {reference!r}."
        )
    ref = levels.index(reference)
    return [(g, [ref]) for g in everyone if g != ref]
