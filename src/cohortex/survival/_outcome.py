"""Survival outcomes of a cohort's samples: times, events and strata, checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._backend import to_host
from .._cohort import as_cohort_matrix
from .._errors import CohortexError

__all__ = [
    "Outcome",
    "cluster_codes",
    "sample_numbers",
    "sample_source",
    "sample_values",
    "strata_of",
]


def sample_source(cohort: Any, given: dict[str, Any]) -> tuple[Any, Any, np.ndarray]:
    """Where a function's sample values come from: the cohort's matrix, its dataset and its
    sample ids; without a cohort (None) the values themselves, every one of ``given``
    (parameter name → what was passed) values and not names, the ids S1, S2, … as many as
    the first one's."""
    if cohort is not None:
        data = as_cohort_matrix(cohort)
        return data, data.dataset, np.asarray(data.sample_ids)
    named = list(given)
    if any(isinstance(v, str) for v in given.values()):
        raise CohortexError(
            f"Without a cohort, {', '.join(named[:-1])} and {named[-1]} must be values."
        )
    n = len(np.asarray(next(iter(given.values()))))
    return None, None, np.char.add("S", np.arange(1, n + 1).astype(str))


def sample_values(dataset: Any, spec: Any, parameter: str, n_samples: int, ids: Any) -> Any:
    """One value per sample: a sample variable by name, or the values themselves."""
    if isinstance(spec, str):
        if dataset is None:
            raise CohortexError(
                f"For a plain array, '{parameter}' must hold the values (length {n_samples}), "
                f"not a variable name; got {spec!r}."
            )
        variables = [str(v) for v in dataset.data_vars if dataset[v].dims == ("sample",)]
        if spec not in variables:
            raise CohortexError(
                f"The '{parameter}' parameter must name a sample variable; got {spec!r}. Sample "
                f"variables: {', '.join(variables) or '(none)'}."
            )
        values = np.asarray(to_host(dataset[spec].values))
    else:
        values = np.asarray(to_host(spec))
    if values.shape != (n_samples,):
        raise CohortexError(
            f"The '{parameter}' values must have one entry per sample ({n_samples}); got shape "
            f"{values.shape}."
        )
    return values


@dataclass(frozen=True)
class Outcome:
    """Checked survival times, event indicators and stratum codes.

    Attributes
    ----------
    time : ndarray of shape (n_samples,), float64
        Non-negative, finite.
    event : ndarray of shape (n_samples,), float64
        1 for an event, 0 for a censored time.
    strata : ndarray of shape (n_samples,), int64, or None
    strata_names : list of str
    """

    time: np.ndarray
    event: np.ndarray
    strata: np.ndarray | None
    strata_names: list[str]

    @classmethod
    def resolve(cls, dataset: Any, time: Any, event: Any, strata: Any, sample_ids: Any) -> Outcome:
        n = len(sample_ids)
        times = sample_values(dataset, time, "time", n, sample_ids)
        try:
            times = np.asarray(times, dtype=np.float64)
        except (TypeError, ValueError):
            raise CohortexError("The survival times must be numbers.") from None
        _refuse(~np.isfinite(times), "time", "is missing or not finite", sample_ids)
        _refuse(times < 0, "time", "is negative", sample_ids)
        events = sample_values(dataset, event, "event", n, sample_ids)
        if events.dtype == bool:
            events = events.astype(np.float64)
        try:
            events = np.asarray(events, dtype=np.float64)
        except (TypeError, ValueError):
            raise CohortexError(
                "The event indicator must be 0/1 or True/False (1: the event happened)."
            ) from None
        _refuse(~np.isfinite(events), "event", "is missing", sample_ids)
        _refuse((events != 0) & (events != 1), "event", "is not 0 or 1", sample_ids)
        codes, names = None, []
        if strata is not None:
            labels = pd.Series(sample_values(dataset, strata, "strata", n, sample_ids))
            _refuse(
                (labels.isna() | (labels.astype(str) == "")).to_numpy(),
                "strata",
                "is missing",
                sample_ids,
            )
            found, uniques = pd.factorize(labels.astype(str), sort=True)
            codes, names = found.astype(np.int64), [str(u) for u in uniques]
        return cls(times, events, codes, names)


def sample_numbers(
    data: Any, spec: Any, parameter: str, n_samples: int, *, positive: bool = False
) -> np.ndarray:
    """Each sample's number for ``parameter`` (a sample variable or the values): finite, and
    > 0 with ``positive`` (an offset is any number; an observation weight is positive)."""
    values = sample_values(data.dataset, spec, parameter, n_samples, data.sample_ids)
    try:
        numbers = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise CohortexError(f"The {parameter} must be numbers.") from None
    bad = ~np.isfinite(numbers) | ((numbers <= 0) if positive else False)
    if bad.any():
        raise CohortexError(
            f"The {parameter} of {int(bad.sum())} samples are missing, not finite"
            + (" or not positive" if positive else "")
            + f" (first: sample {data.sample_ids[int(np.flatnonzero(bad)[0])]!r})."
        )
    return numbers


def cluster_codes(labels: Any, sample_ids: Any) -> np.ndarray:
    """Integer codes of each sample's cluster label (refused where missing): groups of
    correlated samples, e.g. a patient's several samples."""
    series = pd.Series(labels)
    missing = (series.isna() | (series.astype(str) == "")).to_numpy()
    if missing.any():
        raise CohortexError(
            f"The cluster of {int(missing.sum())} samples is missing (first: sample "
            f"{sample_ids[int(np.flatnonzero(missing)[0])]!r})."
        )
    codes, _ = pd.factorize(series.astype(str))
    return codes.astype(np.int64)


def strata_of(
    data: Any, given: Any, fitted: str | None, levels: list[str], n_samples: int
) -> np.ndarray:
    """Each sample's stratum name for a model fitted within the strata ``levels`` ("" for
    all without strata): from ``given`` (a sample variable or values), else from the fit's
    variable ``fitted``; a level the fit never saw is refused (its baseline is unknown)."""
    if levels == [""]:
        if given is not None:
            raise CohortexError("The model was fitted without strata; give no strata.")
        return np.full(n_samples, "", dtype=object)
    spec = fitted if given is None else given
    if spec is None:
        raise CohortexError(
            "The model was fitted within strata given as values: give each sample's stratum "
            "(strata=...)."
        )
    values = sample_values(data.dataset, spec, "strata", n_samples, data.sample_ids)
    names = np.asarray([str(v) for v in values], dtype=object)
    unknown = sorted(set(names) - set(levels))
    if unknown:
        raise CohortexError(
            f"Stratum {unknown[0]!r} was not among the fit's ({', '.join(levels)}): its "
            "baseline hazard is unknown."
        )
    return names


def _refuse(bad: np.ndarray, what: str, problem: str, sample_ids: Any) -> None:
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise CohortexError(
            f"The {what} of {int(bad.sum())} samples {problem} (first: sample "
            f"{sample_ids[first]!r}); survival analysis needs complete, valid outcomes."
        )
