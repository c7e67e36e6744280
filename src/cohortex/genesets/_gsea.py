"""Preranked gene-set enrichment analysis (GSEA): ``gsea()``."""

from __future__ import annotations

import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import fdr as _fdr
from .._backend import namespace, resolve_device, to_device, to_host
from .._errors import CohortexError, CohortexWarning
from ._collection import GeneSets

__all__ = ["enrichment_scores", "gsea", "ranking_of"]


def gsea(
    ranking: Any,
    gene_sets: GeneSets,
    *,
    by: str = "statistic",
    weight: float = 1.0,
    permutations: int = 1000,
    min_size: int = 15,
    max_size: int = 500,
    seed: int = 0,
    fdr: str = "bh",
    multilevel: bool = True,
    eps: float = 1e-50,
    sample_size: int = 101,
    device: str = "auto",
) -> xr.Dataset:
    """Preranked GSEA of every set: enrichment score, normalised score, p-value as fgsea's.

    Genes are ranked by a statistic, largest first. A set's running sum steps up by
    ``|r|^weight / Σ_set |r|^weight`` at its genes and down by ``1 / (N − k)`` elsewhere; the
    enrichment score (ES) is its largest deviation from 0 (Subramanian et al. 2005). The null
    comes from gene sets of the same size drawn at random from the ranking (fgsea's
    ``fgseaSimple``): ``permutations`` draws for every size at once, each draw's first k
    positions forming the random set of size k. ``p = (1 + #{null ≥ ES}) / (1 + #{null ≥ 0})``
    for a positive ES (the mirror for a negative one), ``NES = ES / mean(null of that sign)``.
    These permutations alone cannot give a p below about ``1 / permutations``; with
    ``multilevel`` (the default, as fgsea's ``fgsea()``), a set whose permutation p is too
    coarse for its precision gets fgseaMultilevel's estimate instead: adaptive multilevel
    splitting (Korotkevich et al. 2021), ``sample_size`` Markov chains of random sets of its size
    pushed level by level into the tail, which reaches p-values down to ``eps``. ``log2err`` is
    the expected standard deviation of ``log2(p)`` of either estimate (fgsea's); a Monte-Carlo
    p-value agrees with the exact one within a few ``log2err``, not to the last digit.

    Parameters
    ----------
    ranking : pandas.Series, xarray.DataArray or xarray.Dataset
        A statistic per gene (indexed by gene id), or a DE result whose ``by`` variable ranks
        the genes (one contrast). NaN values are left out.
    gene_sets : GeneSets
    by : str, default "statistic"
        The variable of a Dataset ``ranking`` (e.g. ``"log2fc"``).
    weight : float, default 1.0
        GSEA's ``p``: 0 for the classic Kolmogorov–Smirnov statistic.
    permutations : int, default 1000
    min_size, max_size : int, default 15 and 500
        Sets with fewer or more ranked genes are left out (fgsea's defaults).
    seed : int, default 0
        The random draws come from NumPy's generator on the host whatever the device, so a
        seed gives the same p-values on the CPU and the GPU.
    fdr : str, default "bh"
    multilevel : bool, default True
        Refine small p-values by multilevel splitting (on the host, sizes in parallel threads);
        False gives fgseaSimple's permutation p-values only.
    eps : float, default 1e-50
        The multilevel estimate stops at this p; smaller p-values are reported as ``eps`` with a
        warning (fgsea's ``eps``; 0 for no bound).
    sample_size : int, default 101
        Markov chains per level of the multilevel estimate (odd; fgsea's ``sampleSize``).
    device : {"auto", "cpu", "gpu"}, default "auto"
        Where the null (a batched sort and cumulative sum per set size) is computed.

    Returns
    -------
    xarray.Dataset
        On ``gene_set``: ``size``, ``es``, ``nes``, ``pvalue``, ``padj``, ``log2err``,
        ``leading_edge`` (the set's genes up to the running sum's peak, comma-separated, in rank
        order). A set whose permutations gave fewer than 10 scores of its sign (a ranking of
        mostly one sign) has no p-value or NES (NaN, with a warning), as in fgsea.

    Warns
    -----
    CohortexWarning
        For sets without a p-value, p-values clipped at ``eps`` and multilevel estimates whose
        error could not be bounded (their ``log2err`` is NaN).
    """
    _fdr.check_method(fdr, "gsea()")
    if permutations < 1 or weight < 0:
        raise CohortexError(
            f"gsea() needs permutations >= 1 and weight >= 0; got {permutations}, {weight}."
        )
    if not 0 <= eps <= 1 or sample_size < 3:
        raise CohortexError(
            f"gsea() needs 0 <= eps <= 1 and sample_size >= 3; got {eps}, {sample_size}."
        )
    sample_size += 1 - sample_size % 2  # odd, so that one chain is the median
    on = resolve_device(device)
    statistic = ranking_of(ranking, by, "gsea()")
    order = np.argsort(-statistic.to_numpy(), kind="stable")
    genes = statistic.index.to_numpy()[order]
    values = np.abs(statistic.to_numpy()[order]) ** weight
    sets = gene_sets.restrict(genes, min_size=min_size, max_size=max_size)
    if not len(sets):
        raise CohortexError(
            f"No gene set has between {min_size} and {max_size} of the {genes.size} ranked genes."
        )
    position = {g: i for i, g in enumerate(genes)}
    members = [np.sort([position[g] for g in m]) for m in sets.members]
    sizes = np.array([m.size for m in members])
    es = np.empty(len(sets))
    peaks = np.empty(len(sets), dtype=np.int64)
    for size in np.unique(sizes):
        chosen = np.flatnonzero(sizes == size)
        hits = np.stack([members[i] for i in chosen])
        es[chosen], peaks[chosen] = enrichment_scores(hits, values, return_peak=True)
    rng = np.random.default_rng(seed)
    largest = int(sizes.max())
    draws = np.empty((permutations, largest), dtype=np.int64)
    for p in range(permutations):  # random sets of every size: the first k of a random draw
        draws[p] = rng.choice(genes.size, size=largest, replace=False)
    nes = np.empty(len(sets))
    more_extreme = np.empty(len(sets), dtype=np.int64)  # null scores at least as extreme
    same_sign = np.empty(len(sets), dtype=np.int64)  # null scores of the score's sign
    # the null on the device: for each size, a batched sort and cumulative sum of the draws
    device_draws, device_values = to_device(draws, on), to_device(values, on)
    for size in np.unique(sizes):
        prefix = device_draws[:, :size]
        null = enrichment_scores(namespace(prefix).sort(prefix, axis=1), device_values)
        chosen = np.flatnonzero(sizes == size)
        more_extreme[chosen], same_sign[chosen], nes[chosen] = _null_tails(null, es[chosen])
    pvalue, log2err = _pvalues(
        es,
        sizes,
        more_extreme,
        same_sign,
        values,
        permutations=permutations,
        multilevel=multilevel,
        eps=eps,
        sample_size=sample_size,
        seed=seed,
    )
    nes[np.isnan(pvalue)] = np.nan
    edges = []
    for s, hits in enumerate(members):
        leading = hits[hits <= peaks[s]] if es[s] >= 0 else hits[hits >= peaks[s]]
        edges.append(",".join(genes[leading]))
    return xr.Dataset(
        {
            "size": ("gene_set", sizes),
            "es": ("gene_set", es),
            "nes": ("gene_set", nes),
            "pvalue": ("gene_set", pvalue),
            "padj": ("gene_set", np.asarray(_fdr.adjust(pvalue, fdr))),
            "log2err": ("gene_set", log2err),
            "leading_edge": ("gene_set", np.asarray(edges, dtype=object)),
        },
        coords={"gene_set": np.asarray(sets.names, dtype=object)},
        attrs={
            "test": "gsea (preranked)",
            "weight": weight,
            "permutations": permutations,
            "multilevel": int(multilevel),
            "eps": eps,
            "sample_size": sample_size,
            "seed": seed,
            "n_ranked": int(genes.size),
        },
    )


def _null_tails(null: Any, es: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of one size's null against the scores ``es`` (fgseaSimple's tails), by binary
    search in the sorted null of each sign: null scores at least as extreme as each score,
    null scores of its sign, and the NES."""
    xp = namespace(null)
    positive = xp.sort(null[null >= 0])
    negative = xp.sort(null[null <= 0])
    n_positive, n_negative = int(positive.size), int(negative.size)
    scores = xp.asarray(es)
    above = to_host(n_positive - xp.searchsorted(positive, scores, side="left"))  # null >= es
    below = to_host(xp.searchsorted(negative, scores, side="right"))  # null <= es
    mean_positive = float(to_host(positive.mean())) if n_positive else np.nan
    mean_negative = abs(float(to_host(negative.mean()))) if n_negative else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        nes = np.where(es >= 0, es / mean_positive, es / mean_negative)
    more = np.where(es >= 0, np.asarray(above), np.asarray(below))
    return more, np.where(es >= 0, n_positive, n_negative), nes


def _pvalues(
    es: np.ndarray,
    sizes: np.ndarray,
    more_extreme: np.ndarray,
    same_sign: np.ndarray,
    values: np.ndarray,
    *,
    permutations: int,
    multilevel: bool,
    eps: float,
    sample_size: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """fgsea's p-values and log2err: the permutation p where it is precise enough, the
    multilevel estimate where its expected error is smaller (fgseaMultilevel's rule)."""
    from scipy import special, stats

    pvalue = (1.0 + more_extreme) / (1.0 + same_sign)
    log2err = np.sqrt(
        special.polygamma(1, more_extreme + 1) - special.polygamma(1, permutations + 1)
    )
    log2err /= math.log(2)
    unbalanced = same_sign < 10
    pvalue[unbalanced] = np.nan
    log2err[unbalanced] = np.nan
    if unbalanced.any():
        warnings.warn(
            f"{int(unbalanced.sum())} gene sets have no p-value (NaN): fewer than 10 of the "
            f"{permutations} random sets scored with their sign, as happens when the ranking "
            "has mostly one sign; more permutations may help.",
            CohortexWarning,
            stacklevel=3,
        )
    if not multilevel:
        return pvalue, log2err
    crude = np.log2((more_extreme + 1.0) / (permutations + 1.0))
    with np.errstate(divide="ignore"):
        left = np.log2(
            stats.beta.ppf(0.025, np.maximum(more_extreme, 1), permutations - more_extreme + 1)
        )
        right = np.log2(
            stats.beta.ppf(0.975, more_extreme + 1, np.maximum(permutations - more_extreme, 1))
        )
    left[more_extreme == 0] = -np.inf
    right[more_extreme == permutations] = 0.0
    simple_error = 0.5 * np.maximum(crude - left, right - crude)
    refine = ~unbalanced & (_multilevel_error(2.0**crude, sample_size) < simple_error)
    if not refine.any():
        return pvalue, log2err
    from ..stats._cpu.multilevel import es_ruler  # numba: loaded only when a set needs it

    denominator = (same_sign + 1.0) / (permutations + 1.0)  # P(score of that sign), estimated
    tasks = []
    for size in np.unique(sizes[refine]):
        chosen = np.flatnonzero(refine & (sizes == size))
        floor = eps * denominator[chosen].min()
        levels = 1074 if floor == 0 else min(1074, math.floor(-math.log2(0.5 * floor)))
        for positive in (True, False):
            side = chosen[(es[chosen] >= 0) == positive]
            if side.size:
                tasks.append((int(size), positive, side, levels))
    forward, backward = np.ascontiguousarray(values), np.ascontiguousarray(values[::-1])

    def ruler(task: tuple[int, bool, np.ndarray, int]) -> tuple[np.ndarray, np.ndarray]:
        size, positive, side, levels = task
        state = int(np.random.SeedSequence([seed, size, int(positive)]).generate_state(1)[0])
        target = float(np.abs(es[side]).max())
        ranks = forward if positive else backward
        scores, corrector = es_ruler(ranks, size, sample_size, target, state, levels)
        return _ruler_pvalues(np.abs(es[side]), scores, corrector, sample_size)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for (_, _, side, _), (estimate, good) in zip(tasks, pool.map(ruler, tasks), strict=True):
            pvalue[side] = np.minimum(1.0, estimate / denominator[side])
            log2err[side] = np.where(good, _multilevel_error(pvalue[side], sample_size), np.nan)
    clipped = refine & (pvalue < eps)
    if clipped.any():
        pvalue[clipped], log2err[clipped] = eps, np.nan
        warnings.warn(
            f"{int(clipped.sum())} gene sets have p-values below eps={eps:g}, reported as eps; "
            "pass eps=0 to estimate them.",
            CohortexWarning,
            stacklevel=3,
        )
    if not np.all(np.isfinite(log2err[refine & ~clipped])):
        warnings.warn(
            "For some gene sets the multilevel p-value is likely overestimated (the chains did "
            "not reach their score with a bounded error); their log2err is NaN.",
            CohortexWarning,
            stacklevel=3,
        )
    return pvalue, log2err


def _ruler_pvalues(
    targets: np.ndarray, scores: np.ndarray, corrector: np.ndarray, sample_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """P(positive score ≥ target and standard score > 0) from a ruler's recorded scores
    (fgsea's ``EsRuler::getPvalue``), and whether each estimate's error is bounded."""
    from scipy.special import digamma

    def beta_mean_log(a: Any, b: Any) -> Any:
        return digamma(a) - digamma(b + 1)

    half = (sample_size + 1) // 2
    beyond = targets >= scores[-1]
    index = np.where(beyond, scores.size - 1, np.searchsorted(scores, targets, side="left"))
    good = ~(targets > scores[-1] + 1e-10)
    level, remainder = index // half, sample_size - index % half
    log_p = level * beta_mean_log(half, sample_size) + beta_mean_log(remainder + 1, sample_size)
    correction = beta_mean_log(corrector[index] + 1, remainder)  # P(standard score > 0 | …)
    good &= np.exp(correction) >= 0.5
    return np.clip(np.exp(log_p + correction), 0.0, 1.0), good


def _multilevel_error(pvalue: np.ndarray, sample_size: int) -> np.ndarray:
    """fgsea's ``multilevelError``: the expected standard deviation of log2 p."""
    from scipy.special import polygamma

    levels = np.floor(-np.log2(pvalue) + 1)
    per_level = polygamma(1, (sample_size + 1) / 2) - polygamma(1, sample_size + 1)
    return np.sqrt(levels * per_level) / math.log(2)


def enrichment_scores(hits: np.ndarray, values: np.ndarray, *, return_peak: bool = False) -> Any:
    """GSEA's enrichment score of many sets of one size at once.

    Parameters
    ----------
    hits : array of shape (n_sets, k), int
        Each set's positions in the ranking, ascending (NumPy or CuPy).
    values : array of shape (n_genes,)
        ``|statistic|^weight`` in rank order, on the same device.
    return_peak : bool
        Also return the position of each set's extreme.

    Returns
    -------
    es : ndarray of shape (n_sets,)
    peak : ndarray of shape (n_sets,), int (with ``return_peak``)
    """
    xp = namespace(hits)
    n_genes = values.size
    k = hits.shape[1]
    weights = values[hits]
    total = weights.sum(axis=1, keepdims=True)
    # all-zero weights (a set of genes whose statistic is 0): each hit counts the same
    weights = xp.where(total > 0, weights, 1.0)
    total = xp.where(total > 0, total, float(k))
    cumulative = xp.cumsum(weights, axis=1) / total
    misses = (hits - xp.arange(k)) / (n_genes - k)  # misses before each hit, as a fraction
    after = cumulative - misses  # just after each hit
    before = cumulative - weights / total - misses  # just before each hit
    top, bottom = after.max(axis=1), before.min(axis=1)
    es = xp.where(top > -bottom, top, bottom)
    if not return_peak:
        return es
    rows = xp.arange(hits.shape[0])
    peak = xp.where(
        top > -bottom, hits[rows, after.argmax(axis=1)], hits[rows, before.argmin(axis=1)]
    )
    return es, peak


def ranking_of(ranking: Any, by: str, caller: str) -> pd.Series:
    """A statistic per gene (a Series indexed by gene id, NaN left out) from a Series, a
    DataArray on ``gene`` or a DE result of one contrast (its variable ``by``)."""
    if isinstance(ranking, xr.Dataset):
        if by not in ranking:
            raise CohortexError(f"The result has no {by!r} to rank the genes by.")
        values = ranking[by]
        if "contrast" in values.dims and values.sizes["contrast"] > 1:
            names = ", ".join(str(c) for c in values["contrast"].values)
            raise CohortexError(
                f"The result has several contrasts; choose one first with "
                f"result.sel(contrast=...): {names}."
            )
        if "contrast" in values.dims:
            values = values.isel(contrast=0)
        if values.ndim != 1:
            raise CohortexError(f"Choose one contrast first: {by!r} has dims {values.dims}.")
        ranking = values
    if isinstance(ranking, xr.DataArray):
        ranking = pd.Series(
            np.asarray(to_host(ranking.data), dtype=np.float64),
            index=[str(g) for g in ranking["gene"].values],
        )
    if not isinstance(ranking, pd.Series):
        raise CohortexError(f"{caller} ranks a pandas Series, a DataArray or a DE result.")
    ranking = ranking.astype(np.float64).dropna()
    ranking.index = ranking.index.astype(str)
    if ranking.index.has_duplicates:
        raise CohortexError("The ranking names a gene twice.")
    if ranking.size < 2:
        raise CohortexError(f"{caller} needs at least two ranked genes.")
    return ranking
