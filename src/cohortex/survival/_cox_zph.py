"""Tests of the proportional-hazards assumption of per-gene Cox models: ``cox_zph()``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from .. import fdr as _fdr
from .._backend import resolve_device, to_host
from .._cohort import CohortLike, as_cohort_matrix, shared_docs
from .._errors import CohortexError
from ..stats._cox import RiskSets
from ._blocks import map_gene_blocks
from ._cox import CoxSetup, check_options, fit_gene_block

__all__ = ["TRANSFORMS", "check_transform", "cox_zph", "model_zph"]

TRANSFORMS = ("km", "rank", "identity", "log")


@shared_docs
def cox_zph(
    cohort: CohortLike,
    time: str | Any,
    event: str | Any,
    *,
    covariates: str | None = None,
    strata: str | Any | None = None,
    ties: str = "efron",
    transform: str = "km",
    fdr: str = "bh",
    max_iterations: int = 20,
    tolerance: float = 1e-12,
    device: str = "auto",
) -> xr.Dataset:
    """Test each gene's Cox model for proportional hazards, as R's ``cox.zph``.

    Each gene's model is fitted as :func:`cox` fits it; then the score test of adding
    ``gene · g(t)`` (and ``covariate · g(t)``) at the fitted coefficients: does the gene's
    log hazard ratio drift with time? A small p-value says the hazard ratio is not constant,
    so the Cox model's single ratio averages effects that change over follow-up (a gene that
    matters early and not late, say). ``g`` is the Kaplan–Meier transform of time by default
    (R's), robust to the long tail of follow-up times.

    Parameters
    ----------
    {cohort}
        Select genes first (``cohort.sel(gene=...)``) to test a signature's genes only.
    time, event, covariates, strata, ties
        As for :func:`cox`.
    transform : {{"km", "rank", "identity", "log"}}, default "km"
        g(t): one minus the Kaplan–Meier curve of all the model's samples just before t
        (R's default), the rank of t, t, or log t.
    fdr : str, default "bh"
        Correction of the genes' p-values.
    max_iterations, tolerance
        Of each gene's Cox fit, as for :func:`cox`.
    {device}

    Returns
    -------
    xarray.Dataset
        On ``gene``: ``statistic`` (the gene term's chi-square, 1 df), ``pvalue``, ``padj``;
        ``global_statistic`` and ``global_pvalue`` (every term of the model together, R's
        GLOBAL, on ``attrs["global_df"]`` df); ``coefficient`` (the gene's log hazard ratio
        of the fit tested) and ``converged`` (its fit's flag, as :func:`cox`'s). With
        covariates, on ``gene`` × ``term`` also each covariate's own test in each gene's
        model (R's row of that term): ``term_statistic`` and ``term_pvalue``, on ``term_df``
        df (a factor's indicators together).

    Notes
    -----
    The fits run as :func:`cox`'s (on the GPU where asked); the test's risk-set sums are
    host code, one gene per thread, the genes' values brought to the host a block at a time.
    """
    check_options("cox_zph()", ties)
    _fdr.check_method(fdr, "cox_zph()")
    data = as_cohort_matrix(cohort)
    setup = CoxSetup(data, time, event, covariates, strata, ties == "efron", tolerance)
    check_transform(transform, setup.outcome.time, "cox_zph()")
    terms = 1 + setup.z.shape[1]
    columns = map_gene_blocks(
        data.matrix,
        resolve_device(device),
        8 + 4 * terms * terms,
        _test_block,
        setup,
        transform,
        max_iterations,
    )
    columns["padj"] = _fdr.adjust(columns["pvalue"], fdr)
    groups = covariate_groups(setup.terms)
    per_term: dict[str, Any] = {}
    if groups:  # each covariate's own test, on as many df as it has columns
        for name in ("statistic", "pvalue"):
            found = [
                np.asarray(to_host(columns.pop(f"term_{name}_{i}"))) for i in range(len(groups))
            ]
            per_term[f"term_{name}"] = (("gene", "term"), np.column_stack(found))
        per_term["term_df"] = ("term", np.array([len(c) for c in groups.values()]))
    return xr.Dataset(
        {**{name: ("gene", np.asarray(to_host(v))) for name, v in columns.items()}, **per_term},
        coords={"gene": data.gene_ids, **({"term": list(groups)} if groups else {})},
        attrs={
            "test": "proportional hazards (R's cox.zph)",
            "transform": transform,
            "ties": ties,
            "covariates": ", ".join(setup.names),
            "global_df": terms,
            "fdr": fdr,
        },
    )


def _test_block(block: Any, setup: CoxSetup, transform: str, max_iterations: int) -> dict[str, Any]:
    """The test of every gene of one block (all samples)."""
    from ..stats._cpu.cox_zph import zph_terms  # numba: host code, on either device

    fit, x, valid = fit_gene_block(block, setup, max_iterations)
    risk = setup.risk
    x = np.asarray(to_host(x), dtype=np.float64)
    valid = np.asarray(to_host(valid), dtype=bool)
    beta = np.asarray(to_host(fit.beta), dtype=np.float64)
    time = setup.outcome.time[risk.order]
    stratum = (
        np.zeros(time.size, dtype=np.int64)
        if setup.outcome.strata is None
        else np.asarray(setup.outcome.strata, dtype=np.int64)[risk.order]
    )
    event = risk.event
    weights = _time_weights(time, event, valid, transform)
    z = np.ascontiguousarray(setup.z[risk.order])
    u, imat = zph_terms(
        np.ascontiguousarray(x), z, valid, beta, time, stratum, event, weights, setup.efron
    )
    p = beta.shape[1]
    gene = np.r_[np.arange(p), p]  # the model's terms, then the gene's time term
    statistic = _quadratic(u[:, gene], imat[:, gene][:, :, gene], fixed=p)
    overall = _quadratic(u, imat, fixed=p)
    usable = np.isfinite(beta[:, 0])
    statistic = np.where(usable, statistic, np.nan)
    overall = np.where(usable, overall, np.nan)
    per_term = {}
    for i, columns in enumerate(covariate_groups(setup.terms).values()):
        chosen = np.r_[np.arange(p), p + np.asarray(columns)]  # the terms, its time terms
        found = _quadratic(u[:, chosen], imat[:, chosen][:, :, chosen], fixed=p)
        found = np.where(usable, found, np.nan)
        per_term[f"term_statistic_{i}"] = found
        per_term[f"term_pvalue_{i}"] = stats.chi2.sf(found, len(columns))
    return {
        **per_term,
        "statistic": statistic,
        "pvalue": stats.chi2.sf(statistic, 1),
        "global_statistic": overall,
        "global_pvalue": stats.chi2.sf(overall, p),
        "coefficient": beta[:, 0],
        "converged": np.asarray(to_host(fit.converged), dtype=bool),
    }


def check_transform(transform: str, time: np.ndarray, caller: str) -> None:
    """Refuses a transform of time that is not R's, or log of a time 0."""
    if transform not in TRANSFORMS:
        raise CohortexError(
            f"The 'transform' parameter of {caller} must be one of "
            f"{', '.join(map(repr, TRANSFORMS))}; got {transform!r}."
        )
    if transform == "log" and np.any(time <= 0):
        raise CohortexError("transform='log' needs follow-up times above 0.")


def model_zph(
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    strata: np.ndarray | None,
    beta: np.ndarray,
    efron: bool,
    terms: list[str],
    transform: str,
) -> pd.DataFrame:
    """R's ``cox.zph(fit)$table`` of one fitted model of several terms: each term's test
    (a factor's columns together) and the GLOBAL one.

    Parameters
    ----------
    x : ndarray of shape (n_samples, p)
        The model's columns over the samples fitted.
    time, event : ndarray of shape (n_samples,)
    strata : ndarray of shape (n_samples,) of int, or None
    beta : ndarray of shape (p,)
        The fitted coefficients.
    efron : bool
    terms : list of str
        Each column's term.
    transform : str
        As :func:`cox_zph`'s.

    Returns
    -------
    pandas.DataFrame
        Indexed by term, then "GLOBAL": ``statistic`` (χ²), ``df``, ``pvalue``.
    """
    from ..stats._cpu.cox_zph import zph_terms  # numba: host code

    risk = RiskSets.build(time, event, strata)
    ordered = np.ascontiguousarray(x[risk.order], dtype=np.float64)
    time_ordered = time[risk.order]
    codes = np.zeros(time.size, np.int64) if strata is None else strata.astype(np.int64)
    valid = np.ones((time.size, 1), dtype=bool)
    weights = _time_weights(time_ordered, risk.event, valid, transform)
    u, imat = zph_terms(
        np.ascontiguousarray(ordered[:, :1]),
        np.ascontiguousarray(ordered[:, 1:]),
        valid,
        np.asarray(beta, np.float64)[None, :],
        time_ordered,
        codes[risk.order],
        risk.event,
        weights,
        efron,
    )
    p = beta.size
    rows = {}
    for term, columns in covariate_groups(terms).items():
        chosen = np.r_[np.arange(p), p + np.asarray(columns) - 1]  # covariate_groups: from 1
        found = float(_quadratic(u[:, chosen], imat[:, chosen][:, :, chosen], fixed=p)[0])
        rows[term] = (found, len(columns))
    rows["GLOBAL"] = (float(_quadratic(u, imat, fixed=p)[0]), p)
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["statistic", "df"])
    table["pvalue"] = stats.chi2.sf(table["statistic"], table["df"])
    table.index.name = "term"
    return table


def covariate_groups(terms: list[str]) -> dict[str, list[int]]:
    """Each covariate term's columns in a gene's model (the gene is column 0), in order."""
    groups: dict[str, list[int]] = {}
    for j, term in enumerate(terms):
        groups.setdefault(term, []).append(1 + j)
    return groups


def _quadratic(u: np.ndarray, imat: np.ndarray, fixed: int) -> np.ndarray:
    """``u' I⁻¹ u`` per gene with the first ``fixed`` entries of u set to 0 (the model's own
    score, 0 at its fit, as R takes it); NaN where I is singular."""
    score = u.copy()
    score[:, :fixed] = 0.0
    out = np.full(u.shape[0], np.nan)
    for g in range(u.shape[0]):
        try:
            out[g] = float(score[g] @ np.linalg.solve(imat[g], score[g]))
        except np.linalg.LinAlgError:
            continue
    return out


def _time_weights(
    time: np.ndarray, event: np.ndarray, valid: np.ndarray, transform: str
) -> np.ndarray:
    """g(t) at each sample's time, centred on its mean over the events, per gene (each gene's
    own samples: a gene with missing values has its own Kaplan–Meier curve and ranks):
    (n_samples, n_genes)."""
    out = np.zeros(valid.shape)
    shared = None
    for g in range(valid.shape[1]):
        keep = valid[:, g]
        if keep.all() and shared is not None:
            out[:, g] = shared
            continue
        values = np.zeros(time.size)
        values[keep] = _transform(time[keep], event[keep], transform)
        dead = keep & (event > 0)
        if dead.any():
            values[keep] -= values[dead].mean()
        out[:, g] = values
        if keep.all():
            shared = values
    return out


def _transform(time: np.ndarray, event: np.ndarray, transform: str) -> np.ndarray:
    """R's cox.zph transforms of the times of one model's samples."""
    if transform == "identity":
        return time.astype(np.float64)
    if transform == "log":
        return np.log(time)
    if transform == "rank":
        return stats.rankdata(time)
    # km: 1 − S(t−), the Kaplan–Meier curve of all the samples (no strata) just before t
    distinct, inverse = np.unique(time, return_inverse=True)
    deaths = np.bincount(inverse, weights=event, minlength=distinct.size)
    at_risk = np.cumsum(np.bincount(inverse, minlength=distinct.size)[::-1])[::-1]
    survival = np.cumprod(1.0 - deaths / at_risk)
    before = np.concatenate([[1.0], survival[:-1]])
    return 1.0 - before[inverse.ravel()]
