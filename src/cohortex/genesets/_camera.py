"""limma's ``camera``: competitive gene-set tests that allow for inter-gene correlation."""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from scipy import sparse, stats

from .. import fdr as _fdr
from .._backend import as_device_dask, dask_on, namespace, resolve_device, to_host
from .._cohort import CohortLike, as_cohort_matrix, shared_docs
from .._errors import CohortexError
from ..de._least_squares import design_matrix, rows_per_task, sample_weights_of
from ..de._linear_model import fit
from ..stats._ebayes import squeeze_var
from ._collection import GeneSets
from ._design import contrast_last
from ._fry import FRY_EFFECTS, GeneEffects
from ._gsea import ranking_of

__all__ = ["camera", "camera_pr", "rank_sum_tests", "zscore_t_hill"]


@shared_docs
def camera(
    cohort: CohortLike,
    design: Any,
    gene_sets: GeneSets,
    *,
    contrast: str | None = None,
    weights: Any = None,
    inter_gene_cor: float | None = 0.01,
    use_ranks: bool = False,
    allow_neg_cor: bool = False,
    trend: bool = False,
    fdr: str = "bh",
    device: str = "auto",
) -> xr.Dataset:
    """Test every gene set against the other genes, as limma's ``camera``.

    The moderated t of each gene for the ``contrast`` (limma's ``squeezeVar`` of the residual
    variances, Hill's normal approximation to its tail, ``zscoreT``) is compared between the
    set's genes and the rest by a two-sample t-test whose variance is inflated by
    ``1 + (m − 1) ρ`` for a set of m genes with inter-gene correlation ρ (Wu & Smyth 2012).

    Parameters
    ----------
    {cohort}
        Complete values (no NaN): camera's residual effects need every sample.
    design : str, DataFrame or array
        As for :func:`cohortex.de.fit`.
    gene_sets : GeneSets
        Members named by the cohort's gene ids (:meth:`GeneSets.translate` maps symbols).
    contrast : str, optional
        A coefficient of the design (default the last, as limma's ``ncol(design)``), or a
        combination of them such as ``"group[T.c] - group[T.b]"`` (limma's contrast vector:
        the design reparametrised by ``contrastAsCoef``, the contrast's t exact with weights
        per observation too).
    weights : array of shape (n_samples, n_genes) or (n_samples,), optional
        Precision weights, all > 0, as limma's ``camera(weights=)``: per observation (each
        gene's t from its weighted fit) or per sample (the values and the design scaled by
        their square roots). Default: the cohort's ``weights`` variable, as a :func:`voom
        <cohortex.de.voom>` result has (limma takes an EList's weights so).
    inter_gene_cor : float or None, default 0.01
        The correlation ρ used for every set (limma's default), or None to estimate it per
        set from the residuals (limma's ``inter.gene.cor = NA``; one more pass over the
        cohort; tested on ``min(df_residual, n_genes − 2)`` df instead of ``n_genes − 2``).
        With weights per observation each gene's residual effects are in its own weighted
        basis, as limma computes them: held in memory for the sets' genes, as :func:`fry`
        holds them (see Raises).
    use_ranks : bool, default False
        limma's ``use.ranks``: compare the set's moderated t with the other genes' by a
        rank-sum test whose variance allows for the correlation (limma's
        ``rankSumTestWithCorrelation``; a fixed correlation tests on a normal tail) instead
        of the two-sample t of their z-scores.
    allow_neg_cor : bool, default False
        limma's ``allow.neg.cor``: keep an estimated negative correlation (else it counts as
        0).
    trend : bool, default False
        limma's ``trend.var``: the prior variance follows the genes' average expression
        (limma's ``rowMeans(y)``, of the values scaled by the root sample weights when there
        are sample weights, as limma computes it).
    fdr : str, default "bh"
        Correction across the sets.
    {device}

    Returns
    -------
    xarray.Dataset
        On ``gene_set``: ``n_genes`` (of the cohort), ``correlation`` (the ρ used),
        ``direction`` ("Up" or "Down"), ``pvalue`` (two-sided), ``padj``. Sets with no gene in
        the cohort are left out. Attrs include ``weighted``.

    Raises
    ------
    CohortexError
        For missing values or weights ≤ 0 (every gene needs all its samples), and for an
        estimated correlation with weights per observation whose effects would exceed
        2²⁸ values (as :func:`fry`).
    """
    _fdr.check_method(fdr, "camera()")
    data = as_cohort_matrix(cohort)
    x_design, names, _ = design_matrix(design, data.dataset, data.matrix.shape[0])
    chosen = contrast if contrast is not None else names[-1]
    model: Any = design
    if chosen not in names:  # a combination: limma's contrastAsCoef, the contrast last
        columns = [f"Q{i}" for i in range(2, len(names) + 1)] + [chosen]
        model = pd.DataFrame(contrast_last(x_design, names, chosen), columns=columns)
    fitted = fit(
        cohort,
        model,
        contrasts=[chosen],
        weights=weights,
        moderate=False,
        fdr="none",
        device=device,
    )
    n_samples = data.matrix.shape[0]
    df = float(n_samples - len(fitted.attrs["design"]))
    if "df_residual" in fitted.data_vars:  # per gene: weights per observation, or fewer df
        short = int(np.sum(np.asarray(to_host(fitted["df_residual"].data)) != df))
        if short:
            raise CohortexError(
                f"camera() needs every sample of every gene: {short} genes have missing values "
                "or weights <= 0."
            )
    per_sample = sample_weights_of(weights, n_samples)
    per_observation = bool(fitted.attrs["weighted"]) and per_sample is None
    row = fitted.sel(contrast=chosen)
    coefficient = np.asarray(to_host(row["coefficient"].data), dtype=np.float64)
    unscaled = np.asarray(to_host(row["stdev_unscaled"].data), dtype=np.float64)
    sigma2 = np.asarray(to_host(fitted["s2"].data), dtype=np.float64)
    # "average_expression" in results saved before it was named mean_expression
    name = "mean_expression" if "mean_expression" in fitted else "average_expression"
    average = np.asarray(to_host(fitted[name].data), dtype=np.float64)
    root = None if per_sample is None else np.sqrt(per_sample)
    if trend and root is not None:  # limma: rowMeans of the values it scaled by √w
        values = dask_on(
            data.matrix, resolve_device(device), (rows_per_task(data.matrix.shape[1]), -1)
        )
        column = da.from_array(root[:, None], chunks=(values.chunks[0], 1))
        if namespace(values) is not np:
            column = as_device_dask(column)
        average = np.asarray(to_host((values * column).mean(axis=0).compute()), float)
    genes = [str(g) for g in fitted["gene"].values]
    n_genes = len(genes)
    if n_genes < 3:
        raise CohortexError("camera() needs at least 3 genes.")
    prior = squeeze_var(sigma2, df, covariate=average if trend else None)
    moderated = coefficient / unscaled / np.sqrt(prior.s2_post)
    df_total = min(df + float(np.max(prior.df_prior)), n_genes * df)
    statistic = moderated if use_ranks else zscore_t_hill(moderated, df_total)
    sets = gene_sets.restrict(genes, min_size=1)
    if not len(sets):
        raise CohortexError("No gene set has a gene of the cohort (translate the names?).")
    index = {g: i for i, g in enumerate(genes)}
    members = [np.fromiter((index[g] for g in m), dtype=np.int64) for m in sets.members]
    sizes = np.array([m.size for m in members])
    if inter_gene_cor is None and per_observation:  # each gene its own weighted basis
        ordered = contrast_last(x_design, names, chosen)
        vif = _vif_in_gene_bases(data, ordered, weights, members, device)
    if inter_gene_cor is None and not per_observation:
        vif = _estimated_vif(cohort, design, members, sigma2, root, device)
    if inter_gene_cor is None:
        correlation = np.where(sizes > 1, (vif - 1.0) / np.maximum(sizes - 1, 1), np.nan)
        vif = np.where(sizes > 1, vif, 1.0)
        df_camera = min(df, n_genes - 2.0)
    else:
        correlation = np.full(len(sets), float(inter_gene_cor))
        vif = 1.0 + (sizes - 1) * float(inter_gene_cor)
        df_camera = np.inf if use_ranks else n_genes - 2.0
    if use_ranks:
        used = correlation if allow_neg_cor else np.maximum(correlation, 0.0)
        down, up = rank_sum_tests(statistic, members, used, df_camera)
    else:
        if not allow_neg_cor:
            vif = np.maximum(vif, 1.0)
        down, up = _t_tests(statistic, members, vif, df_camera)
    # the rank test's continuity corrections can put both tails above one half: R reports
    # 2·min above 1 then; a p-value is at most 1
    pvalue = np.minimum(2.0 * np.minimum(down, up), 1.0)
    return xr.Dataset(
        {
            "n_genes": ("gene_set", sizes),
            "correlation": ("gene_set", correlation),
            "direction": ("gene_set", np.where(down < up, "Down", "Up").astype(object)),
            "pvalue": ("gene_set", pvalue),
            "padj": ("gene_set", np.asarray(_fdr.adjust(pvalue, fdr))),
        },
        coords={"gene_set": np.asarray(sets.names, dtype=object)},
        attrs={
            "test": "camera",
            "contrast": chosen,
            "inter_gene_cor": "estimated" if inter_gene_cor is None else inter_gene_cor,
            "trend": int(trend),
            "use_ranks": int(use_ranks),
            "allow_neg_cor": int(allow_neg_cor),
            "weighted": int(fitted.attrs["weighted"]),
            "df": float(df_camera),
        },
    )


@shared_docs
def camera_pr(
    statistics: Any,
    gene_sets: GeneSets,
    *,
    by: str = "statistic",
    inter_gene_cor: float | Any = 0.01,
    use_ranks: bool = False,
    fdr: str = "bh",
) -> xr.Dataset:
    """limma's ``cameraPR``: camera's competitive test on a statistic per gene given.

    Each set's statistics against the other genes' by a two-sample t-test whose variance is
    inflated by ``1 + (m − 1) ρ`` for a set of m genes (or, with ``use_ranks``, a rank-sum
    test allowing for ρ): for a ranking made elsewhere (another tool's statistic, a
    published signature's scores) where camera's residuals are not at hand.

    Parameters
    ----------
    statistics : pandas.Series, xarray.DataArray or xarray.Dataset
        A statistic per gene (indexed by gene id; e.g. a moderated t), or a DE result of one
        contrast whose ``by`` variable is taken. NaN values are left out.
    gene_sets : GeneSets
    by : str, default "statistic"
    inter_gene_cor : float or array of shape (n_sets,), default 0.01
        ρ, one for every set (limma's default) or one per set of ``gene_sets`` (then reported);
        in (−1, 1).
    use_ranks : bool, default False
    {fdr}

    Returns
    -------
    xarray.Dataset
        On ``gene_set`` (the sets with a ranked gene, in their order): ``n_genes``,
        ``direction``, ``pvalue`` (two-sided), ``padj``; ``correlation`` with one per set.
        A negative ρ that makes a large set's variance factor negative leaves its p NaN, as
        in limma.
    """
    ranking = ranking_of(statistics, by, "camera_pr()")
    _fdr.check_method(fdr, "camera_pr()")
    n_genes = ranking.size
    if n_genes < 3:
        raise CohortexError("camera_pr() needs at least 3 genes.")
    per_set = np.ndim(inter_gene_cor) > 0
    given = np.atleast_1d(np.asarray(inter_gene_cor, dtype=np.float64))
    if per_set and given.shape != (len(gene_sets),):
        raise CohortexError(
            f"camera_pr() takes one inter-gene correlation or one per set ({len(gene_sets)}); "
            f"got {given.size}."
        )
    if not np.all(np.abs(given) < 1):
        raise CohortexError("camera_pr()'s 'inter_gene_cor' must lie in (−1, 1).")
    genes = list(ranking.index)
    sets = gene_sets.restrict(genes, min_size=1)
    if not len(sets):
        raise CohortexError("No gene set has a ranked gene (translate the names?).")
    order = {name: i for i, name in enumerate(gene_sets.names)}
    correlation = given[[order[n] for n in sets.names]] if per_set else np.full(len(sets), given[0])
    index = {g: i for i, g in enumerate(genes)}
    members = [np.fromiter((index[g] for g in m), dtype=np.int64) for m in sets.members]
    sizes = np.array([m.size for m in members])
    statistic = ranking.to_numpy()
    if use_ranks:
        down, up = rank_sum_tests(statistic, members, correlation, np.inf)
    else:
        down, up = _t_tests(statistic, members, 1.0 + (sizes - 1) * correlation, n_genes - 2.0)
    pvalue = np.minimum(2.0 * np.minimum(down, up), 1.0)
    variables: dict[str, Any] = {
        "n_genes": ("gene_set", sizes),
        "direction": ("gene_set", np.where(down < up, "Down", "Up").astype(object)),
        "pvalue": ("gene_set", pvalue),
        "padj": ("gene_set", np.asarray(_fdr.adjust(pvalue, fdr))),
    }
    if per_set:
        variables["correlation"] = ("gene_set", correlation)
    return xr.Dataset(
        variables,
        coords={"gene_set": np.asarray(sets.names, dtype=object)},
        attrs={
            "test": "camera_pr",
            "inter_gene_cor": "per set" if per_set else float(given[0]),
            "use_ranks": int(use_ranks),
        },
    )


def _t_tests(
    statistic: np.ndarray, members: list[np.ndarray], vif: np.ndarray, df: float
) -> tuple[np.ndarray, np.ndarray]:
    """camera's two-sample t of every set against the other genes, its variance inflated by
    ``vif``: the p-values that the set's statistics are lower ("Down") and higher ("Up")."""
    n_genes = statistic.size
    mean_all, var_all = float(statistic.mean()), float(statistic.var(ddof=1))
    sizes = np.array([m.size for m in members])
    rest = n_genes - sizes
    mean_set = np.array([statistic[m].mean() for m in members])
    delta = n_genes / rest * (mean_set - mean_all)
    pooled = ((n_genes - 1) * var_all - delta**2 * sizes * rest / n_genes) / (n_genes - 2)
    with np.errstate(invalid="ignore"):  # a negative factor (ρ < 0, a large set): NaN, as R
        t = delta / np.sqrt(pooled * (vif / sizes + 1.0 / rest))
    return stats.t.cdf(t, df), stats.t.sf(t, df)


def rank_sum_tests(
    statistic: np.ndarray, members: list[np.ndarray], correlation: np.ndarray, df: float
) -> tuple[np.ndarray, np.ndarray]:
    """limma's ``rankSumTestWithCorrelation`` of every set: the p-values that the set's
    statistics rank low ("Down") and high ("Up"), on a t with ``df`` (normal when
    infinite)."""
    ranks = stats.rankdata(statistic)
    n = ranks.size
    _, ties = np.unique(ranks, return_counts=True)
    adjustment = 1.0
    if ties.size < n:  # limma: the tie correction of the rank-sum variance
        adjustment = 1.0 - np.sum(ties * (ties + 1.0) * (ties - 1.0)) / (n * (n + 1.0) * (n - 1.0))
    down = np.empty(len(members))
    up = np.empty(len(members))
    for i, (m, rho) in enumerate(zip(members, correlation, strict=True)):
        n1 = m.size
        n2 = n - n1
        u = n1 * n2 + n1 * (n1 + 1) / 2.0 - ranks[m].sum()
        mu = n1 * n2 / 2.0
        if n1 == 1 or rho == 0:  # a set of one: its estimated correlation is NaN
            sigma2 = n1 * n2 * (n + 1) / 12.0
        else:
            sigma2 = (
                (
                    np.arcsin(1.0) * n1 * n2
                    + np.arcsin(0.5) * n1 * n2 * (n2 - 1)
                    + np.arcsin(rho / 2.0) * n1 * (n1 - 1) * n2 * (n2 - 1)
                    + np.arcsin((rho + 1.0) / 2.0) * n1 * (n1 - 1) * n2
                )
                / 2.0
                / np.pi
            )
        sigma2 *= adjustment
        down[i] = stats.t.sf((u - 0.5 - mu) / np.sqrt(sigma2), df)
        up[i] = stats.t.cdf((u + 0.5 - mu) / np.sqrt(sigma2), df)
    return down, up


def zscore_t_hill(t: np.ndarray, df: float) -> np.ndarray:
    """limma's ``zscoreT(approx = TRUE, method = "hill")``: the normal deviate with the tail
    of t on ``df`` degrees of freedom (Hill 1970)."""
    df = min(df, 1e100)
    a = df - 0.5
    b = 48.0 * a * a
    z = a * np.log1p(t / df * t)
    z = (
        ((((-0.4 * z - 3.3) * z - 24.0) * z - 85.5) / (0.8 * z * z + 100.0 + b) + z + 3.0) / b + 1.0
    ) * np.sqrt(z)
    return z * np.sign(t)


def _vif_in_gene_bases(
    data: Any, x_design: np.ndarray, weights: Any, members: list[np.ndarray], device: str
) -> np.ndarray:
    """limma's ``m · mean(colMeans(U_set)²)`` with weights per observation: each gene's
    residual effects in its own weighted Householder basis (R's per-gene ``qr.qty``),
    standardised, held in memory for the sets' genes as fry holds them."""
    in_sets = np.zeros(data.matrix.shape[1], dtype=bool)
    in_sets[np.concatenate(members)] = True
    n, p = x_design.shape
    if (n - p + 1) * int(in_sets.sum()) > FRY_EFFECTS:
        raise CohortexError(
            f"With weights per observation camera() estimates the inter-gene correlation from "
            f"every residual effect of the sets' {int(in_sets.sum())} genes, more than "
            f"{FRY_EFFECTS:,} values; pass inter_gene_cor (limma's default is 0.01)."
        )
    residual = GeneEffects(data, x_design, weights, None, None, device).of_genes(in_sets)[1:]
    sigma2 = np.mean(residual * residual, axis=0)
    standardised = residual / np.sqrt(np.maximum(sigma2, 1e-8))[None, :]
    position = np.cumsum(in_sets) - 1
    return np.array(
        [m.size * np.mean(np.mean(standardised[:, position[m]], axis=1) ** 2) for m in members]
    )


def _estimated_vif(
    cohort: Any,
    design: Any,
    members: list[np.ndarray],
    sigma2: np.ndarray,
    root: np.ndarray | None,
    device: str,
) -> np.ndarray:
    """limma's ``m · mean(colMeans(U_set)²)`` for every set: the residual sum of squares of the
    sum of the set's standardised genes, ``Σ_g y_g / σ_g``, over ``m (n − p)`` — one pass
    (a sparse genes × sets product per block of samples). ``root``: the square roots of the
    sample weights, which scale the values and the design (limma's transformation)."""
    data = as_cohort_matrix(cohort)
    x_design, _, _ = design_matrix(design, data.dataset, data.matrix.shape[0])
    if root is not None:
        x_design = x_design * root[:, None]
    n, p = x_design.shape
    scale = 1.0 / np.sqrt(np.maximum(sigma2, 1e-8))
    rows = np.concatenate(members)
    columns = np.repeat(np.arange(len(members)), [m.size for m in members])
    weights = sparse.csr_matrix((scale[rows], (rows, columns)), shape=(sigma2.size, len(members)))
    x = dask_on(data.matrix, resolve_device(device), (rows_per_task(sigma2.size), -1))
    x = x.rechunk({0: rows_per_task(sigma2.size), 1: -1})
    edges = np.cumsum((0, *x.chunks[0]))

    def block_sums(block: Any, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        values = np.asarray(to_host(block), dtype=np.float64)
        if root is not None:
            values = values * root[start:stop, None]
        z = np.asarray(weights.T @ values.T).T
        return (z * z).sum(axis=0), x_design[start:stop].T @ z

    parts = dask.compute(
        *[
            dask.delayed(block_sums)(block, edges[i], edges[i + 1])
            for i, block in enumerate(x.to_delayed()[:, 0])
        ]
    )
    squares = sum(part[0] for part in parts)
    cross = sum(part[1] for part in parts)
    explained = np.einsum("ps,pq,qs->s", cross, np.linalg.inv(x_design.T @ x_design), cross)
    sizes = np.array([m.size for m in members], dtype=np.float64)
    return (squares - explained) / (sizes * (n - p))
