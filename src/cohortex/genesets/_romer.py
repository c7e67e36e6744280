"""limma's ``romer``: rotation gene-set tests of the genes' ranks, GSEA-like."""

from __future__ import annotations

import os
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.sparse as sparse
import xarray as xr
from scipy import special, stats

from .. import fdr as _fdr
from .._cohort import CohortLike, shared_docs
from .._errors import CohortexError
from .._progress import DASK_DELAY, progress_bar
from ..stats._ebayes import squeeze_var, tmixture
from ..stats._householder import householder_effects
from ._collection import GeneSets
from ._fry import FRY_EFFECTS, SetFit
from ._rotations import rotation_numbers

__all__ = ["ROMER_STATISTICS", "prop_true_null", "romer"]

ROMER_STATISTICS = ("mean", "floormean", "mean50")
_RANKED_VALUES = 4_000_000  # rotations × genes ranked at a time (32 MB of float64)


@shared_docs
def romer(
    cohort: CohortLike,
    design: Any,
    gene_sets: GeneSets,
    *,
    contrast: str | None = None,
    set_statistic: str = "mean",
    n_rotations: int = 9999,
    weights: Any = None,
    block: str | Any = None,
    correlation: float | None = None,
    shrink_resid: bool = True,
    fdr: str = "bh",
    random_state: int | np.random.Generator | None = 0,
    device: str = "auto",
) -> xr.Dataset:
    """Test each gene set by the ranks of its genes among all genes, as limma's ``romer``.

    A competitive test in the spirit of GSEA (are the set's genes ranked higher than the
    others?) whose null comes from random rotations of the residual space rather than
    permutations of the samples, so it holds for small studies and for correlated genes
    (Majewski et al. 2010). Each gene's moderated t for the ``contrast`` is ranked among all
    genes; a set's statistic is its genes' mean rank (``set_statistic``); its p-values count
    the rotations whose set statistic is at least as extreme, ``(b + 1) / (n_rotations + 1)``.
    With ``shrink_resid`` (limma's default) the contrast's effects of genes likely changed
    are first shrunk (by their posterior probability of change, limma's B-statistic), so that
    strongly changed genes do not inflate the residual variance of the rotations.

    Parameters
    ----------
    {cohort}
        Complete values (no NaN).
    design : str, DataFrame or array
        As for :func:`cohortex.de.fit`.
    gene_sets : GeneSets
        Members named by the cohort's gene ids; sets with no gene of the cohort are left out.
    contrast : str, optional
        A coefficient of the design (default the last, as limma's ``ncol(design)``), or a
        combination of them such as ``"group[T.c] - group[T.b]"``.
    set_statistic : {{"mean", "floormean", "mean50"}}
        limma's statistics: the mean rank of the set's genes (default); the mean rank after
        flooring the t at 0 (up, down) or |t| at 1 (mixed), so that unchanged genes tie; the
        mean of the upper (up, mixed) or lower (down) half of the set's ranks.
    n_rotations : int, default 9999
        Random rotations; the smallest p-value is ``1 / (n_rotations + 1)``.
    weights : array of shape (n_samples,), optional
        Precision weights > 0 per sample (limma's ``array.weights``). Weights per observation
        are refused: romer ranks every gene's rotated t, and limma's romer has none (use
        :func:`roast` or :func:`fry` with voom's weights).
    block : str or array of shape (n_samples,), optional
        Samples correlated within blocks, with ``correlation`` (required, as in limma).
    correlation : float, optional
    shrink_resid : bool, default True
        limma's ``shrink.resid``.
    fdr : str, default "bh"
        Correction of each of the three p-values across the sets (limma's romer reports
        none).
    random_state : int, numpy Generator or None, default 0
        The rotations' random numbers. An int is R's ``set.seed``: the rotations, and so the
        p-values, are those of ``set.seed(random_state); romer(...)``. A NumPy Generator
        draws them instead; None draws from fresh entropy.
    {device}

    Returns
    -------
    xarray.Dataset
        On ``gene_set``, in the order of ``gene_sets``: ``n_genes``, ``pvalue_up``,
        ``pvalue_down``, ``pvalue_mixed`` (limma's Up, Down, Mixed) and their ``padj_up``,
        ``padj_down``, ``padj_mixed``. Attrs: ``contrast``, ``df``, ``set_statistic``,
        ``n_rotations``, ``shrink_resid``.

    Raises
    ------
    CohortexError
        For missing values, weights ≤ 0 or per observation, a block without its correlation,
        fewer than one rotation, and when every gene's effects would exceed
        :data:`~cohortex.genesets._fry.FRY_EFFECTS` values (use :func:`camera`).

    Notes
    -----
    Every rotation ranks every gene: ~0.1 µs a gene and rotation on 2 cores, so the default
    9,999 rotations of 20,000 genes (2,000 samples) take ~20 s, limma's ~4 minutes.
    """
    if set_statistic not in ROMER_STATISTICS:
        raise CohortexError(
            f"romer's 'set_statistic' must be one of "
            f"{', '.join(map(repr, ROMER_STATISTICS))}; got {set_statistic!r}."
        )
    _fdr.check_method(fdr, "romer()")
    if weights is not None and np.ndim(weights) > 1:
        raise CohortexError(
            "romer() takes weights per sample only (limma's array.weights): it ranks every "
            "gene's rotated t; for weights per observation use roast() or fry()."
        )
    rng = rotation_numbers(n_rotations, random_state, "romer()")
    fitted = SetFit(
        cohort, design, gene_sets, contrast, weights, block, correlation, device, "romer"
    )
    n_genes, df = fitted.in_sets.size, fitted.df
    if (df + 1) * n_genes > FRY_EFFECTS:
        raise CohortexError(
            f"romer() holds the {df + 1} effects of each of the cohort's {n_genes} genes, more "
            f"than {FRY_EFFECTS:,} values; for a cohort this large use camera()."
        )
    try:
        shared = fitted.effects.shared_design()
    except CohortexError:
        raise CohortexError(
            "romer() takes weights per sample only (limma's array.weights); the cohort's "
            "'weights' are per observation: pass weights= per sample, or use roast() or fry()."
        ) from None
    _, sign = householder_effects(shared, np.zeros((shared.shape[0], 1)))
    stdev_unscaled = 1.0 / abs(float(np.asarray(np.linalg.qr(shared, mode="r"))[-1, -1]))

    effects = fitted.effects.of_genes(np.ones(n_genes, dtype=bool))  # (df + 1) × genes
    effects[0] *= sign  # limma rotates the contrast's effect as qr.qty gives it, unsigned
    squares = np.sum(effects * effects, axis=0)
    s2 = (squares - effects[0] ** 2) / df
    prior = squeeze_var(s2, float(df))
    moderated = sign * effects[0] / np.sqrt(prior.s2_post)
    if shrink_resid:
        effects[0] *= _shrinkage(moderated, stdev_unscaled, df, prior)

    ranks = _SetRanks(fitted.positions, fitted.in_sets, set_statistic)
    observed = ranks.of(moderated[None, :])[:, :, 0]  # (n_sets, 3)
    count = np.zeros((len(fitted.positions), 3), dtype=np.int64)

    def extreme(normals: np.ndarray) -> np.ndarray:
        """How many of these rotations are as extreme as the observed sets: (n_sets, 3)."""
        normals /= np.sqrt(np.sum(normals * normals, axis=1))[:, None]
        rotated = normals @ effects
        s2_rotated = (squares[None, :] - rotated * rotated) / df
        if np.isfinite(prior.df_prior):
            sd_rotated = np.sqrt(
                (prior.df_prior * prior.s2_prior + df * s2_rotated) / (prior.df_prior + df)
            )
        else:
            sd_rotated = np.sqrt(float(prior.s2_prior))
        return ranks.as_extreme(ranks.of(sign * rotated / sd_rotated), observed)

    per_chunk = max(1, _RANKED_VALUES // n_genes)
    workers = os.cpu_count() or 1
    # the normals drawn in order (limma's stream), their chunks ranked side by side (NumPy's
    # sorts leave the GIL), a few chunks ahead at most
    with (
        progress_bar(n_rotations, "romer", unit="rotation", delay=DASK_DELAY) as bar,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        pending: deque[Any] = deque()
        for start in range(0, n_rotations, per_chunk):
            rotations = min(per_chunk, n_rotations - start)
            normals = rng.standard_normal((rotations, df + 1))  # limma: rnorm(d + 1) each
            pending.append((pool.submit(extreme, normals), rotations))
            while len(pending) > 2 * workers or (pending and pending[0][0].done()):
                future, done = pending.popleft()
                count += future.result()
                bar.update(done)
        for future, done in pending:
            count += future.result()
            bar.update(done)

    p = (count + 1) / (n_rotations + 1)
    sizes = np.array([c.size for c in fitted.positions])
    data = {"n_genes": ("gene_set", sizes)}
    for j, side in enumerate(("up", "down", "mixed")):
        data[f"pvalue_{side}"] = ("gene_set", p[:, j])
    for j, side in enumerate(("up", "down", "mixed")):
        data[f"padj_{side}"] = ("gene_set", np.asarray(_fdr.adjust(p[:, j], fdr)))
    return xr.Dataset(
        data,
        coords={"gene_set": np.asarray(fitted.sets.names, dtype=object)},
        attrs={
            "test": "romer",
            "contrast": fitted.contrast,
            "df": float(df),
            "set_statistic": set_statistic,
            "n_rotations": int(n_rotations),
            "shrink_resid": int(shrink_resid),
            "weighted": int(fitted.effects.weighted),
        },
    )


def prop_true_null(pvalues: np.ndarray) -> float:
    """limma's ``propTrueNull(p)`` (its default ``"lfdr"``): the share of true nulls by the
    average local false discovery rate of the p-values."""
    p = np.sort(np.asarray(pvalues, dtype=np.float64))[::-1]
    n = p.size
    i = np.arange(n, 0, -1)
    q = np.minimum(n / i * p, 1.0)
    return float(np.sum(i * q) / n / (n + 1) * 2)


def _shrinkage(moderated: np.ndarray, stdev_unscaled: float, df: int, prior: Any) -> np.ndarray:
    """limma romer's ``shrink.resid``: each gene's factor on the contrast's effect,
    ``√(v / (v + v₀ · P(changed)))`` with limma's B-statistic for the probability."""
    df_prior = float(prior.df_prior)
    df_total = np.full(moderated.size, df + df_prior)
    proportion = 1.0 - prop_true_null(2.0 * stats.t.sf(np.abs(moderated), df + df_prior))
    var_unscaled = stdev_unscaled**2
    limits = np.array([0.1, 4.0]) ** 2 / float(prior.s2_prior)
    var_prior = tmixture(
        moderated, np.full(moderated.size, stdev_unscaled), df_total, proportion, limits
    )
    if np.isnan(var_prior):
        warnings.warn(
            "romer: estimation of the coefficients' prior variance failed; set to its default.",
            RuntimeWarning,
            stacklevel=3,
        )
        var_prior = 1.0 / float(prior.s2_prior)
    r = (var_unscaled + var_prior) / var_unscaled
    t2 = moderated * moderated
    if df_prior > 1e6:
        kernel = t2 * (1.0 - 1.0 / r) / 2.0
    else:
        kernel = (1.0 + df_total) / 2.0 * np.log((t2 + df_total) / (t2 / r + df_total))
    with np.errstate(divide="ignore"):
        lods = np.log(proportion / (1.0 - proportion)) - np.log(r) / 2.0 + kernel
    # expit, not exp(B) / (1 + exp(B)): limma's is NaN for B > 709 (|t| in the hundreds on
    # hundreds of df)
    changed = special.expit(lods)
    return np.sqrt(var_unscaled / (var_unscaled + var_prior * changed))


class _SetRanks:
    """The sets' statistics of their genes' ranks among all genes (R's ``rank``: ties share
    their mean rank), for many t vectors at once.

    Parameters
    ----------
    positions : list of ndarray
        Each set's genes as positions among the genes of any set.
    in_sets : ndarray of shape (n_genes,)
        True for the genes of any set.
    statistic : str
        One of :data:`ROMER_STATISTICS`.
    """

    def __init__(self, positions: list[np.ndarray], in_sets: np.ndarray, statistic: str) -> None:
        self.positions = positions
        self.genes = np.flatnonzero(in_sets)
        self.statistic = statistic
        sizes = np.array([p.size for p in positions])
        rows = np.concatenate(positions)
        columns = np.repeat(np.arange(len(positions)), sizes)
        self.membership = sparse.csr_matrix(
            (np.ones(rows.size), (rows, columns)), shape=(self.genes.size, len(positions))
        )
        self.sizes = sizes
        self.n_genes = in_sets.size

    def of(self, t: np.ndarray) -> np.ndarray:
        """The sets' (up, down, mixed) statistics of t vectors (rotations, n_genes):
        (n_sets, 3, rotations)."""
        if self.statistic == "mean":
            up = self._rank(t)
            down = self.n_genes + 1.0 - up
            mixed = self._rank(np.abs(t))
            return np.stack([self._mean(up), self._mean(down), self._mean(mixed)], axis=1)
        if self.statistic == "floormean":
            up = self._rank(np.maximum(t, 0.0))
            down = self._rank(np.maximum(-t, 0.0))
            mixed = self._rank(np.maximum(np.abs(t), 1.0))
            return np.stack([self._mean(up), self._mean(down), self._mean(mixed)], axis=1)
        ranked, ranked_abs = self._rank(t), self._rank(np.abs(t))
        out = np.empty((len(self.positions), 3, t.shape[0]))
        for i, p in enumerate(self.positions):
            size = p.size
            half = (size + 1) // 2  # limma's .meanHalf: the lower m and the upper half
            upper = half if size % 2 == 0 else half - 1
            ordered = np.sort(ranked[:, p], axis=1)
            out[i, 0] = ordered[:, upper:].mean(axis=1)
            out[i, 1] = ordered[:, :half].mean(axis=1)
            out[i, 2] = np.sort(ranked_abs[:, p], axis=1)[:, upper:].mean(axis=1)
        return out

    def as_extreme(self, rotated: np.ndarray, observed: np.ndarray) -> np.ndarray:
        """How many rotations' statistics are at least as extreme as the observed ones:
        (n_sets, 3); mean50's down is extreme when low."""
        if self.statistic == "mean50":
            higher = rotated >= observed[:, :, None]
            higher[:, 1] = rotated[:, 1] <= observed[:, 1, None]
            return higher.sum(axis=2)
        return (rotated >= observed[:, :, None]).sum(axis=2)

    def _rank(self, values: np.ndarray) -> np.ndarray:
        """Each row's ranks of the genes of the sets among all its values: (rows, genes of the
        sets)."""
        order = np.argsort(values, axis=1)
        ordered = np.take_along_axis(values, order, axis=1)
        width = values.shape[1]
        place = np.broadcast_to(np.arange(width), values.shape)
        # each tie's first and last place in the order, so that ties share their mean rank
        starts = np.ones(values.shape, dtype=bool)
        starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        first = np.maximum.accumulate(np.where(starts, place, 0), axis=1)
        ends = np.ones(values.shape, dtype=bool)
        ends[:, :-1] = starts[:, 1:]
        last = np.minimum.accumulate(np.where(ends, place, width)[:, ::-1], axis=1)[:, ::-1]
        ranks = np.empty(values.shape)
        np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=1)
        return ranks[:, self.genes]

    def _mean(self, ranks: np.ndarray) -> np.ndarray:
        """Each set's mean rank, as R's ``rowsum`` over the set then ÷ its size:
        (n_sets, rows)."""
        return np.asarray(self.membership.T @ ranks.T) / self.sizes[:, None]
