"""limma's ``arrayWeights``: how reliable each sample (or group of samples) is, as a weight
for the linear model (the maths is in ``stats._array_weights``)."""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from .._backend import dask_on, namespace, resolve_device, to_host
from .._cohort import CohortLike, CohortMatrix, as_cohort_matrix, shared_docs
from .._errors import CohortexError, CohortexWarning
from .._progress import progress_bar
from ..stats._array_weights import (
    VarianceSpace,
    gene_by_gene_start,
    gene_by_gene_update,
    leverage_products,
    newton_step,
    shared_pass,
    variance_space,
    weighted_pass,
)
from ._gene_columns import TASK_GENES, gene_columns
from ._least_squares import check_design, design_matrix, sample_codes, weights_for

__all__ = ["DENSE_SAMPLES", "DENSE_WEIGHTED_SAMPLES", "GENE_BY_GENE_SAMPLES", "array_weights"]

# a weight per sample: up to this many samples the scoring step solves the dense bordered
# system (n + 1 unknowns); above it, the diagonal-plus-low-rank form (Woodbury)
DENSE_SAMPLES = 2048

# a weight per sample with precision weights: the information is a dense n × n sum over the
# genes (n² · genes · p(p+1)/2 operations per iteration), limma's exact Fisher scoring up to
# this many samples; above it, scoring with the information's diagonal (see _weighted_scoring)
DENSE_WEIGHTED_SAMPLES = 4096

# the gene-by-gene update solves a k × k system per gene (k sample weights), compiled: ~2 µs
# a gene at k = 12 here, 0.3 ms at 200, 1.6 ms at 500, 8 ms at 1,000 (3 minutes for 20,000
# genes); above, REML only
GENE_BY_GENE_SAMPLES = 1000


@shared_docs
def array_weights(
    cohort: CohortLike,
    design: str | pd.DataFrame | np.ndarray | None = None,
    *,
    weights: Any = None,
    var_group: str | Any = None,
    var_design: np.ndarray | None = None,
    prior_n: float = 10.0,
    method: str = "reml",
    maxiter: int = 50,
    tol: float = 1e-5,
    device: str = "auto",
) -> xr.DataArray:
    """Sample quality weights, as limma's ``arrayWeights``.

    Each sample's residual variance is modelled as the gene's variance over a sample weight,
    ``log w`` linear in a variance design with ``Σ log w = 0``; the weights are the REML
    estimates across all genes by Fisher scoring (Ritchie et al. 2006, Liu et al. 2015), with
    limma's prior of ``prior_n`` genes at weight 1. Noisy samples get weights below 1 and
    are down-weighted by :func:`fit` (pass the result as its ``weights``).

    Parameters
    ----------
    {cohort}
        Log-expression. Genes with a missing or infinite value are left out by REML, as
        limma's REML leaves them out; the gene-by-gene update fits them on their observed
        samples.
    design : str, DataFrame or array of shape (n_samples, n_coefficients), optional
        The linear model, as for :func:`fit`; default: an intercept only.
    weights : array of shape (n_samples, n_genes) or (n_samples,), optional
        Precision weights of each observation (default: the cohort's ``weights`` variable,
        as a :func:`voom` result has): limma's REML with prior weights. A gene with a weight
        of 0 is left out; NaN, negative or infinite weights are refused.
    var_group : str or array of shape (n_samples,), optional
        One weight per group of samples (a batch, a site) instead of per sample: a sample
        variable or the labels, at least two groups.
    var_design : array of shape (n_samples, m), optional
        A variance design of its own for ``log w`` (centred here, as limma centres it);
        not with ``var_group``.
    prior_n : float, default 10
        limma's prior weight, in genes, of the weights being equal.
    method : {{"reml", "genebygene"}}, default "reml"
        ``"reml"``: limma's ``method = "reml"``, Fisher scoring over all genes at once (each
        iteration reads the matrix once, in parallel). ``"genebygene"``: limma's
        gene-by-gene update, its default with missing values or precision weights and in
        ``voomWithQualityWeights``: one Newton step per gene, in gene order, on the host;
        each step solves a system the size of the variance design (n − 1 for a weight per
        sample), so it is offered up to :data:`GENE_BY_GENE_SAMPLES` parameters. See Notes.
    maxiter : int, default 50
        Fisher-scoring iterations at most (REML).
    tol : float, default 1e-5
        Stop when limma's criterion ``dl' step / (genes + prior_n) / rank`` falls below
        (REML).
    {device}

    Returns
    -------
    xarray.DataArray
        ``sample_weights`` on ``sample`` (their log has mean 0 within the variance design's
        span). Attrs: ``method``, ``prior_n``, ``iterations`` (the gene-by-gene update
        sweeps once), ``converged``, ``n_genes`` (the genes that counted), ``genes_left_out``
        (REML: missing values or weights of 0; gene by gene: too few observations or
        residual df, or constant), ``weighted`` (precision weights were used),
        ``var_group``.

    Warns
    -----
    CohortexWarning
        As limma warns: when the criterion stops falling ("convergence tolerance not
        achievable") or after ``maxiter`` iterations.

    Notes
    -----
    limma's ``voomWithQualityWeights`` and ``arrayWeights`` with missing values or prior
    weights default to the gene-by-gene update, a sequential sweep that cannot run in
    parallel; cohortex defaults to REML, limma's ``method = "reml"``, which scales to
    cohorts. The two estimate the same weights; on limma's fixture for the tests they differ
    by up to 6%. Both reproduce limma to rounding: ask for ``method="genebygene"`` to match
    R's default on a small study.
    """
    _check_options(prior_n, maxiter, tol)
    if method not in ("reml", "genebygene"):
        raise CohortexError(
            f"The 'method' of array_weights() must be 'reml' or 'genebygene'; got {method!r}."
        )
    device = resolve_device(device)
    data = as_cohort_matrix(cohort)
    n_samples, n_genes = data.matrix.shape
    if design is None:
        x_design = np.ones((n_samples, 1))
    else:
        x_design, names, _ = design_matrix(design, data.dataset, n_samples)
        check_design(x_design, names)
    if var_group is not None and var_design is not None:
        raise CohortexError("Give 'var_group' or 'var_design' to array_weights(), not both.")
    space, group_name = _variance_space(var_group, var_design, data, n_samples)
    x = dask_on(data.matrix, device, (2048, TASK_GENES))
    prior = weights_for(weights, data, x)
    weighted = prior is not None
    p = x_design.shape[1]
    attrs: dict[str, Any] = {
        "method": method,
        "prior_n": float(prior_n),
        "weighted": int(weighted),
        "var_group": group_name,
    }
    if n_genes < 2 or n_samples - p < 2:  # limma: weights of 1
        return _result(np.ones(n_samples), data, {**attrs, **_no_fit(n_genes)})
    arrays = [x] if prior is None else [x, prior]
    if method == "genebygene":
        if space.rank > GENE_BY_GENE_SAMPLES:
            raise CohortexError(
                f"The gene-by-gene update solves a system of {space.rank} sample weights per "
                f"gene, one gene after another; it is offered up to {GENE_BY_GENE_SAMPLES}. "
                "Use method='reml' (the same weights, estimated over all genes at once)."
            )
        w, fitted = _gene_by_gene(arrays, x_design, space, prior_n)
        return _result(w, data, {**attrs, **fitted})
    scoring = _weighted_scoring if weighted else _shared_scoring
    w, fitted = scoring(arrays, x_design, space, prior_n, maxiter, tol)
    return _result(w, data, {**attrs, **fitted})


def _gene_by_gene(
    arrays: list[Any], design: np.ndarray, space: VarianceSpace, prior_n: float
) -> tuple[np.ndarray, dict[str, Any]]:
    """limma's ``.arrayWeightsGeneByGene``: the genes in order, a column of tiles at a time
    brought to the host (a weight of 0 is a missing value, as limma sets it)."""
    x = arrays[0]
    n_samples, n_genes = x.shape
    state = gene_by_gene_start(space, n_samples, prior_n)
    edges = np.cumsum((0, *x.chunks[1]))
    columns = [
        slice(start, min(start + TASK_GENES, int(b)))
        for a, b in itertools.pairwise(edges)
        for start in range(int(a), int(b), TASK_GENES)
    ]
    bar = progress_bar(n_genes, "array weights, gene by gene", unit="gene")
    try:
        for genes in columns:
            parts = dask.compute(*[array[:, genes] for array in arrays])
            y = np.array(to_host(parts[0]), dtype=np.float64)
            y[~np.isfinite(y)] = np.nan  # limma: infinite values are missing
            prior = None
            if len(parts) > 1:
                prior = np.array(to_host(parts[1]), dtype=np.float64)
                invalid = int(np.sum(~np.isfinite(prior) | (prior < 0)))
                if invalid:
                    raise CohortexError(
                        f"The precision weights hold {invalid} NaN, negative or infinite values."
                    )
                y[prior == 0] = np.nan
                prior[prior == 0] = 1.0
            try:
                gene_by_gene_update(state, y, prior, design)
            except np.linalg.LinAlgError:
                raise CohortexError(
                    "The gene-by-gene update met a singular information (prior_n = 0 and too "
                    "few genes so far); give prior_n > 0 or use method='reml'."
                ) from None
            bar.update(genes.stop - genes.start)
    finally:
        bar.close()
    return state.weights, {
        "iterations": 1,
        "converged": 1,
        "n_genes": state.genes,
        "genes_left_out": n_genes - state.genes,
    }


def _check_options(prior_n: float, maxiter: int, tol: float) -> None:
    if not (isinstance(prior_n, int | float) and np.isfinite(prior_n) and prior_n >= 0):
        raise CohortexError(f"The 'prior_n' parameter must be a number >= 0; got {prior_n!r}.")
    if not (isinstance(maxiter, int | np.integer) and maxiter >= 1):
        raise CohortexError(f"The 'maxiter' parameter must be an integer >= 1; got {maxiter!r}.")
    if not (isinstance(tol, int | float) and tol > 0):
        raise CohortexError(f"The 'tol' parameter must be a number > 0; got {tol!r}.")


def _variance_space(
    var_group: Any, var_design: Any, data: CohortMatrix, n_samples: int
) -> tuple[VarianceSpace, str]:
    if var_design is not None:
        values = np.asarray(var_design, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        if values.shape[0] != n_samples or not np.isfinite(values).all():
            raise CohortexError(
                f"The 'var_design' must have {n_samples} rows of finite numbers; got shape "
                f"{values.shape}."
            )
        space = variance_space(values, n_samples)
        if space.rank == 0:
            raise CohortexError("The 'var_design' is constant: it gives no variance groups.")
        return space, ""
    if var_group is None:
        return variance_space(None, n_samples), ""
    codes, name = sample_codes(var_group, data, n_samples, "var_group", "variance group")
    levels = int(codes.max()) + 1
    if levels < 2:
        raise CohortexError(f"The 'var_group' needs at least two variance groups; got {levels}.")
    return variance_space(np.eye(levels)[codes], n_samples), name


def _no_fit(n_genes: int) -> dict[str, Any]:
    return {"iterations": 0, "converged": 1, "n_genes": n_genes, "genes_left_out": 0}


def _shared_scoring(
    arrays: list[Any],
    design: np.ndarray,
    space: VarianceSpace,
    prior_n: float,
    maxiter: int,
    tol: float,
) -> tuple[np.ndarray, dict[str, Any]]:
    """limma's ``.arrayWeightsREML``: every gene's fit shares the sample weights."""
    n = design.shape[0]
    xp = namespace(arrays[0])
    plain = xp.asarray(np.linalg.qr(design)[0])
    log_w, last = np.zeros(n), np.inf
    for iteration in range(1, maxiter + 1):
        w = np.exp(log_w)
        q, _ = np.linalg.qr(np.sqrt(w)[:, None] * design)
        bases = (plain, xp.asarray(q), xp.asarray(np.sqrt(w)))  # on the data's device, once

        def per_block(y: Any, bases: tuple[Any, Any, Any] = bases) -> dict[str, Any]:
            return shared_pass(y, *bases)

        sums = gene_columns(arrays, per_block, add=True, values_per_gene=4)
        genes, fitted = _counted(sums, iteration)
        if genes < 2:  # limma: weights of 1 when fewer than two genes vary
            return np.ones(n), {**fitted, "converged": 1}
        h = np.sum(q * q, axis=1)
        q2 = leverage_products(q)
        a = (1.0 - 2.0 * h) + q2 @ q2.sum(axis=0)
        z = np.asarray(to_host(sums["z"])) - genes * (1.0 - h) + prior_n * (w - 1.0)
        diagonal = prior_n + genes * (1.0 - 2.0 * h)
        u = np.column_stack([q2, a])
        s = np.concatenate([np.full(q2.shape[1], genes), [-genes / a.sum()]])
        if space.basis is None and n <= DENSE_SAMPLES:
            step, quad = newton_step(space, z, diagonal, information=(u * s) @ u.T)
        else:
            step, quad = newton_step(space, z, diagonal, low_rank=(u, s))
        criterion = quad / space.rank / (genes + prior_n)
        if not np.isfinite(criterion) or criterion >= last:
            _warn("convergence tolerance not achievable, stopping prematurely")
            return w, fitted
        last = criterion
        log_w -= step
        fitted["iterations"] = iteration
        if criterion < tol:
            return np.exp(log_w), {**fitted, "converged": 1}
    _warn("iteration limit reached")
    return np.exp(log_w), fitted


def _weighted_scoring(
    arrays: list[Any],
    design: np.ndarray,
    space: VarianceSpace,
    prior_n: float,
    maxiter: int,
    tol: float,
) -> tuple[np.ndarray, dict[str, Any]]:
    """limma's ``.arrayWeightsPrWtsREML``: each gene's fit has its own precision weights.

    With a weight per sample and more than :data:`DENSE_WEIGHTED_SAMPLES` samples the step
    takes the information's diagonal ``Σ (1 − h)²`` (+ the prior) for the whole: off it, a
    gene's ``H∘H`` has rows summing to ``h − h²`` (H is a projection), a fraction ~p/n of the
    diagonal, and its ``a a'/s`` lies along the constant vector, which the sum-zero constraint
    removes, up to terms of the same order. The iteration has the same fixed point (the score
    is exact) and converges linearly at a rate of that order: a few iterations more than
    limma's exact scoring, whose n × n information is out of reach there (20 GB and
    n² · genes operations per iteration at 50,000 samples). Samples of high leverage slow it
    (a design of groups of three: 14 iterations against 11 at tol 1e-12); from a leverage of
    one half (groups of two) the information is not diagonally dominant and the weights within
    such a group are barely identified, by either method.
    """
    n, p = design.shape
    dense = space.basis is not None or n <= DENSE_WEIGHTED_SAMPLES
    held = 8 + p + p * (p + 1) // 2  # float64 values per gene and sample in a block
    xp = namespace(arrays[0])  # the design and the space on the data's device, once
    on_device = xp.asarray(design)
    basis = None if space.basis is None else xp.asarray(space.basis)
    space = VarianceSpace(basis, space.rank)
    log_w = np.zeros(n)
    for iteration in range(1, maxiter + 1):
        w = np.exp(log_w)
        w_on_device = xp.asarray(w)

        def per_block(y: Any, prior: Any, w: Any = w_on_device) -> dict[str, Any]:
            return weighted_pass(y, prior, on_device, w, space, dense=dense)

        sums = gene_columns(arrays, per_block, add=True, values_per_gene=held)
        invalid = int(to_host(sums["invalid"]))
        if invalid:
            raise CohortexError(
                f"The precision weights hold {invalid} NaN, negative or infinite values."
            )
        genes, fitted = _counted(sums, iteration)
        if genes < 2:
            return np.ones(n), {**fitted, "converged": 1}
        z = sums["z"] + xp.asarray(prior_n * (w - 1.0))
        diagonal = sums["diagonal"] + prior_n
        if dense:
            step, quad = newton_step(space, z, diagonal, information=sums["information"])
        else:
            step, quad = newton_step(space, z, diagonal + sums["leverage_squares"])
        criterion = quad / (genes + prior_n) ** 2 / space.rank
        if not np.isfinite(criterion):
            _warn("convergence tolerance not achievable, stopping prematurely")
            return w, fitted
        log_w -= np.asarray(to_host(step))
        fitted["iterations"] = iteration
        if criterion < tol:
            return np.exp(log_w), {**fitted, "converged": 1}
    _warn("iteration limit reached")
    return np.exp(log_w), fitted


def _counted(sums: dict[str, Any], iteration: int) -> tuple[float, dict[str, Any]]:
    """The genes that count, and the attrs of a result that stops before this iteration's
    step."""
    genes = float(to_host(sums["genes"]))
    return genes, {
        "iterations": iteration - 1,
        "converged": 0,
        "n_genes": int(genes),
        "genes_left_out": int(to_host(sums["incomplete"])),
    }


def _warn(message: str) -> None:
    warnings.warn(f"array_weights(): {message}.", CohortexWarning, stacklevel=4)


def _result(w: np.ndarray, data: CohortMatrix, attrs: dict[str, Any]) -> xr.DataArray:
    return xr.DataArray(
        w, dims="sample", coords={"sample": data.sample_ids}, name="sample_weights", attrs=attrs
    )
