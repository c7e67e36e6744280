"""Independent hypothesis weighting (Ignatiadis, Klaus, Zaugg & Huber 2016), as the
Bioconductor package IHW 1.26 computes it.

Each test has a covariate that is independent of its p-value under the null hypothesis but
tells of its power (for RNA-seq, the gene's mean count). The tests are put into bins by the
covariate's rank and, at random, into folds. Each fold's weights are learnt from the other
folds: in each bin the distribution of the p-values is estimated by Grenander's estimator (the
least concave majorant of their ECDF), and a linear programme chooses the bins' thresholds that
maximise the expected discoveries under the plug-in FDR (or FWER) bound, with the thresholds'
total variation across bins at most λ times their mean. λ is chosen for each fold from a grid,
by the discoveries that the same procedure, nested in the other folds, makes. A fold's weights
are its thresholds scaled to a mean of 1; the p-values over their weights are then adjusted
together (Benjamini–Hochberg or Bonferroni).

Every step follows IHW's R code and R's random draws (``set.seed``, ``runif``, ``sample``), so
the bins, folds, weights and adjusted p-values are IHW's. The linear programmes are solved by
HiGHS's dual simplex (SciPy) where IHW uses SYMPHONY: both return the optimal vertex.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse

from .._errors import CohortexError
from .._jit import njit
from ._r_random import RRandom

__all__ = ["IHWOptions", "IHWResult", "bins_by_rank", "ihw_weights"]

_ZERO_BELOW = 1e-20  # ihw_convex sets p-values at or below this to 0
_STEEPEST = 1e12  # the largest slope the linear programme is given unscaled


@dataclass(frozen=True)
class IHWResult:
    """The result of :func:`cohortex.fdr.ihw` (IHW's ``ihwResult``).

    Attributes
    ----------
    adjusted : ndarray of shape (m,)
        The weighted adjusted p-values (``adj_pvalues``); NaN where the p-value is NaN.
    weights : ndarray of shape (m,)
        Each test's weight (``weights(levels_only = FALSE)``).
    weighted_pvalues : ndarray of shape (m,)
        ``min(p / weight, 1)`` (0 where p is 0, 1 where the weight is 0).
    bins : ndarray of int, shape (m,)
        Each test's bin (stratum), 0-based; -1 where the p-value is NaN.
    folds : ndarray of int, shape (m,)
        Each test's fold, 0-based; -1 where the p-value is NaN.
    fold_weights : ndarray of shape (n_bins, n_folds)
        The weights learnt for each fold (``weights(levels_only = TRUE)``).
    fold_lambdas : ndarray of shape (n_folds,)
        The regularisation chosen for each fold (``regularization_term``).
    bin_sizes : ndarray of int, shape (n_bins,)
        The tests in each bin (``m_groups``).
    alpha : float
        The nominal level the weights were learnt for.
    rejections : int
        The tests with ``adjusted <= alpha``.
    """

    adjusted: np.ndarray
    weights: np.ndarray
    weighted_pvalues: np.ndarray
    bins: np.ndarray
    folds: np.ndarray
    fold_weights: np.ndarray
    fold_lambdas: np.ndarray
    bin_sizes: np.ndarray
    alpha: float
    rejections: int

    @property
    def n_bins(self) -> int:
        return int(self.bin_sizes.size)

    @property
    def n_folds(self) -> int:
        return int(self.fold_lambdas.size)


@dataclass(frozen=True)
class _Fit:
    """ihw_internal's result, on the tests sorted by p-value."""

    weights: np.ndarray
    weighted: np.ndarray
    adjusted: np.ndarray
    folds: np.ndarray
    fold_weights: np.ndarray
    fold_lambdas: np.ndarray
    rejections: int


def bins_by_rank(covariate: np.ndarray, n_bins: int, seed: int) -> np.ndarray:
    """groups_by_filter: ``ceiling(rank(covariate, ties.method = "random") / m * n_bins)``
    after ``set.seed(seed)``, as 0-based codes of the values that occur, shape (m,)."""
    m = covariate.size
    draws = RRandom(seed).uniforms(m)
    order = np.lexsort((draws, covariate))  # R's order(x, runif(m)): stable, ties by draw
    rank = np.empty(m)
    rank[order] = np.arange(1, m + 1, dtype=np.float64)
    codes = np.ceil(rank / m * n_bins)
    return np.unique(codes, return_inverse=True)[1].astype(np.int64)


@dataclass(frozen=True)
class IHWOptions:
    """ihw()'s settings (see :func:`cohortex.fdr.ihw`).

    Attributes
    ----------
    penalty : {"total variation", "uniform deviation"}
        For ordered and for unordered bins.
    lambdas : tuple of float
        The grid of λ (one value: no nested choice).
    n_folds, n_folds_internal, n_splits_internal : int
    adjustment : {"BH", "bonferroni"}
    null_proportion : bool
        Divide each fold's weights by its weighted Storey estimate of π0, at
        ``null_proportion_level``.
    null_proportion_level : float
    seed : int
        R's ``set.seed`` before the folds are drawn.
    """

    penalty: str
    lambdas: tuple[float, ...]
    n_folds: int
    n_folds_internal: int
    n_splits_internal: int
    adjustment: str
    null_proportion: bool
    null_proportion_level: float
    seed: int


def ihw_weights(
    pvalues: np.ndarray, bins: np.ndarray, n_bins: int, alpha: float, options: IHWOptions
) -> IHWResult:
    """ihw.default on tests with p-values (no NaN) and their bins.

    Parameters
    ----------
    pvalues : ndarray of shape (m,)
    bins : ndarray of int, shape (m,)
        Codes 0 .. n_bins - 1, each used.
    n_bins : int
        ``nbins`` as IHW knows it (the grid of λ is in its units; one bin is plain BH).
    alpha : float
    options : IHWOptions
    """
    levels = int(bins.max()) + 1
    order = np.argsort(pvalues, kind="stable")  # R's order(): a stable radix sort
    sorted_p = pvalues[order]
    sorted_bins = bins[order]
    bin_sizes = np.bincount(sorted_bins, minlength=levels)
    m = pvalues.size
    if n_bins == 1:  # IHW reduces to the unweighted adjustment
        fit = _Fit(
            np.ones(m),
            sorted_p,
            _r_adjust(sorted_p, options.adjustment, float(m)),
            np.zeros(m, dtype=np.int64),
            np.ones((1, 1)),
            np.zeros(1),
            0,
        )
    else:
        rng = RRandom(options.seed)
        folds = rng.sample_replace(options.n_folds, m) - 1
        setup = _Setup(
            sorted_bins,
            sorted_p,
            alpha,
            bin_sizes.astype(np.float64),
            options.adjustment,
            levels,
            folds,
            options.n_folds,
        )
        fit = _internal(setup, options, rng)
    back = np.empty(m, dtype=np.int64)
    back[order] = np.arange(m)
    adjusted = fit.adjusted[back]
    return IHWResult(
        adjusted=adjusted,
        weights=fit.weights[back],
        weighted_pvalues=fit.weighted[back],
        bins=bins.astype(np.int64),
        folds=fit.folds[back],
        fold_weights=fit.fold_weights,
        fold_lambdas=fit.fold_lambdas,
        bin_sizes=bin_sizes,
        alpha=alpha,
        rejections=int(np.sum(adjusted <= alpha)),
    )


def _internal(setup: _Setup, options: IHWOptions, rng: RRandom) -> _Fit:
    """ihw_internal after its folds are drawn: each fold's λ (by the nested procedure's
    discoveries where there are several) and weights, then the weighted adjustment.

    The programmes draw nothing, so every fold of the nested procedures is drawn from
    ``rng`` first, in IHW's order (outer fold, λ, split); the nested fits then run on
    threads (HiGHS leaves the GIL)."""
    lambdas = options.lambdas
    nested: list[tuple[int, int, np.ndarray]] = []
    if len(lambdas) > 1:
        for i in range(setup.n_folds):
            size = setup.p.size if setup.n_folds == 1 else int(np.sum(setup.folds != i))
            for k in range(len(lambdas)):
                for _ in range(options.n_splits_internal):
                    drawn = rng.sample_replace(options.n_folds_internal, size) - 1
                    nested.append((i, k, drawn))

    def discoveries(task: tuple[int, int, np.ndarray]) -> int:
        i, k, inner_folds = task
        kept_bins, kept_p, _, other = setup.split(i)
        inner = _Setup(
            kept_bins,
            kept_p,
            setup.alpha,
            other,
            setup.adjustment,
            setup.levels,
            inner_folds,
            options.n_folds_internal,
        )
        # IHW's nested call passes neither the penalty nor the null proportion
        return inner.fit([lambdas[k]] * options.n_folds_internal, "total variation").rejections

    chosen = [lambdas[0]] * setup.n_folds
    if nested:
        with ThreadPoolExecutor(max_workers=min(len(nested), os.cpu_count() or 1)) as pool:
            found = list(pool.map(discoveries, nested))
        table = np.array(found, dtype=np.float64).reshape(setup.n_folds, len(lambdas), -1)
        chosen = [lambdas[int(np.argmax(table[i].mean(axis=1)))] for i in range(setup.n_folds)]
    return setup.fit(
        chosen, options.penalty, options.null_proportion, options.null_proportion_level
    )


@dataclass(frozen=True)
class _Setup:
    """Tests sorted by p-value, their bins and folds (0-based): what one ihw_internal call
    fits."""

    bins: np.ndarray
    p: np.ndarray
    alpha: float
    bin_sizes: np.ndarray
    adjustment: str
    levels: int
    folds: np.ndarray
    n_folds: int

    def split(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Fold ``i``'s training tests (the other folds): bins, p-values, and the bin sizes
        of the held-out fold and of the others (IHW's m_groups_holdout_fold, _other_folds)."""
        if self.n_folds == 1:
            return self.bins, self.p, self.bin_sizes, self.bin_sizes
        available = np.bincount(self.bins, minlength=self.levels).astype(np.float64)
        kept = self.folds != i
        kept_bins = self.bins[kept]
        holdout = (
            (self.bin_sizes - available) / self.n_folds
            + available
            - np.bincount(kept_bins, minlength=self.levels)
        )
        return kept_bins, self.p[kept], holdout, self.bin_sizes - holdout

    def fit(
        self,
        lambdas: Sequence[float],
        penalty: str,
        null_proportion: bool = False,
        null_proportion_level: float = 0.5,
    ) -> _Fit:
        """Each fold's weights at its λ (``lambdas``, one per fold), then the weighted
        adjustment of all the tests."""
        m = self.p.size
        weights = np.full(m, np.nan)
        fold_weights = np.full((self.levels, self.n_folds), np.nan)
        for i in range(self.n_folds):
            kept_bins, kept_p, holdout, other = self.split(i)
            split_p = [kept_p[kept_bins == b] for b in range(self.levels)]
            fold = _fold_weights(
                split_p, self.alpha, holdout, other, penalty, lambdas[i], self.adjustment
            )
            in_fold = self.folds == i
            weights[in_fold] = fold[self.bins[in_fold]]
            fold_weights[:, i] = fold
            if null_proportion:
                pi0 = _weighted_storey_pi0(
                    self.p[in_fold], weights[in_fold], null_proportion_level, _r_sum(holdout)
                )
                weights[in_fold] /= pi0
                fold_weights[:, i] /= pi0
        weighted = _divide(self.p, weights)
        adjusted = _r_adjust(weighted, self.adjustment, _r_sum(self.bin_sizes))
        rejections = int(np.sum(adjusted <= self.alpha))
        return _Fit(
            weights,
            weighted,
            adjusted,
            self.folds,
            fold_weights,
            np.asarray(lambdas, dtype=np.float64),
            rejections,
        )


def _fold_weights(
    split_p: list[np.ndarray],
    alpha: float,
    bin_sizes: np.ndarray,
    grenander_sizes: np.ndarray,
    penalty: str,
    lam: float,
    adjustment: str,
) -> np.ndarray:
    """ihw_convex: the bins' weights (n_bins,) from the linear programme over the Grenander
    estimates of each bin's p-value distribution (``split_p``, each sorted)."""
    n_bins = len(split_p)
    if lam == 0:
        return np.ones(n_bins)
    m = _r_sum(bin_sizes)
    # the thresholds (and their differences) in units of their scale at the optimum: about
    # α F(t) under the FDR bound, α / m under the FWER bound. The programme is the same, but
    # HiGHS's tolerances (1e-7) then leave the optimal vertex no room to move
    unit = alpha if adjustment == "BH" else alpha / m
    rows: list[np.ndarray] = []
    columns: list[np.ndarray] = []
    values: list[np.ndarray] = []
    rhs: list[np.ndarray] = []
    row = 0
    for b, (p, total) in enumerate(zip(split_p, grenander_sizes, strict=True)):
        x_knots, y_knots, slopes = _grenander(np.where(p > _ZERO_BELOW, p, 0.0), total)
        count = slopes.size
        index = np.arange(row, row + count)
        # y_b - slope t_b <= y_knot - slope x_knot; the rows of slopes above 1e12 (up to 1e20
        # next to p-values of 1e-20) divided down to it: HiGHS refuses coefficients of 1e15
        scale = np.maximum(1.0, slopes * unit / _STEEPEST)
        rows += [index, index]
        columns += [np.full(count, b), np.full(count, n_bins + b)]
        values += [1.0 / scale, -slopes * unit / scale]
        rhs.append((y_knots - slopes * x_knots) / scale)
        row += count
    objective = [bin_sizes / m * n_bins, np.zeros(n_bins)]
    n_extra = 0
    if math.isfinite(lam):
        t = np.arange(n_bins, 2 * n_bins)
        if penalty == "total variation":  # f_b >= |t_{b+1} - t_b|, Σ f <= λ Σ (m_b / m) t_b
            n_extra = n_bins - 1
            f = 2 * n_bins + np.arange(n_extra)
            for sign in (1.0, -1.0):
                index = row + np.arange(n_extra)
                rows += [index, index, index]
                columns += [t[1:], t[:-1], f]
                values += [np.full(n_extra, sign), np.full(n_extra, -sign), -np.ones(n_extra)]
                rhs.append(np.zeros(n_extra))
                row += n_extra
            budget = -lam * bin_sizes / m
        else:  # f_b >= |m t_b - Σ m_c t_c|, Σ f <= λ Σ m_b t_b
            n_extra = n_bins
            f = 2 * n_bins + np.arange(n_extra)
            for sign in (1.0, -1.0):
                block = np.tile(sign * -bin_sizes, (n_bins, 1))
                block[np.diag_indices(n_bins)] = sign * (-bin_sizes + m)
                index = row + np.repeat(np.arange(n_bins), n_bins)
                rows += [index, row + np.arange(n_bins)]
                columns += [np.tile(t, n_bins), f]
                values += [block.ravel(), -np.ones(n_bins)]
                rhs.append(np.zeros(n_bins))
                row += n_bins
            budget = -lam * bin_sizes
        rows += [np.full(n_bins, row), np.full(n_extra, row)]
        columns += [t, f]
        values += [budget, np.ones(n_extra)]
        rhs.append(np.zeros(1))
        row += 1
        objective.append(np.zeros(n_extra))
    y = np.arange(n_bins)
    t = np.arange(n_bins, 2 * n_bins)
    if adjustment == "BH":  # Σ m_b (t_b - α F_b(t_b)) <= 0, over α
        rows += [np.full(n_bins, row), np.full(n_bins, row)]
        columns += [y, t]
        values += [-bin_sizes, bin_sizes]
        rhs.append(np.zeros(1))
    else:  # Σ m_b t_b <= α, over α
        rows.append(np.full(n_bins, row))
        columns.append(t)
        values.append(bin_sizes / m)
        rhs.append(np.ones(1))
    row += 1
    n_variables = 2 * n_bins + n_extra
    constraints = sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))),
        shape=(row, n_variables),
    )
    for method in ("highs-ds", "highs-ipm"):  # the interior point (and crossover) where the
        solution = optimize.linprog(  # dual simplex meets numerical trouble (slopes of 1e12)
            -np.concatenate(objective),
            A_ub=constraints,
            b_ub=np.concatenate(rhs),
            bounds=(0, None),
            method=method,
        )
        if solution.status != 4:
            break
    if solution.status != 0:
        raise CohortexError(f"IHW's linear programme was not solved: {solution.message}")
    thresholds = np.maximum(solution.x[n_bins : 2 * n_bins] * unit, 0.0)
    return _thresholds_to_weights(thresholds, bin_sizes)


def _thresholds_to_weights(thresholds: np.ndarray, bin_sizes: np.ndarray) -> np.ndarray:
    """``ts * m / sum(m_groups * ts)``: weights with a (size-weighted) mean of 1; all 1 where
    every threshold is 0."""
    if np.all(thresholds == 0):
        return np.ones(thresholds.size)
    return thresholds * _r_sum(bin_sizes) / _r_sum(bin_sizes * thresholds)


def _grenander(sorted_p: np.ndarray, total: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """presorted_grenander: the least concave majorant of the ECDF of ``sorted_p`` (divided
    by ``total``), through (0, 0) and (1, 1); its knots and slopes as IHW keeps them: the
    knot before the last dropped, so the last slope pairs with the end point (1, 1)."""
    unique, counts = np.unique(sorted_p, return_counts=True)
    ecdf = np.cumsum(counts) / total
    if unique.size == 0 or unique[0] > 0:
        unique, ecdf = np.concatenate([[0.0], unique]), np.concatenate([[0.0], ecdf])
    if unique[-1] < 1:
        unique, ecdf = np.concatenate([unique, [1.0]]), np.concatenate([ecdf, [1.0]])
    x_knots, y_knots, slopes = _least_concave_majorant(unique, ecdf)
    last = slopes.size - 1
    return np.delete(x_knots, last), np.delete(y_knots, last), slopes


def _least_concave_majorant(
    x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """fdrtool's ``gcmlcm(x, y, type = "lcm")``: the knots (k + 1,), their heights (k + 1,)
    and the k slopes between them."""
    dx = np.diff(x)
    with np.errstate(divide="ignore"):
        raw = np.diff(y) / dx
    big = np.finfo(np.float64).max
    raw = np.where(raw == np.inf, big, np.where(raw == -np.inf, -big, raw))
    slope = raw if raw.size == 1 else -_isotonic_mean(-raw, dx)
    keep = np.ones(slope.size, dtype=bool)
    keep[1:] = slope[1:] != slope[:-1]  # !duplicated(slope): equal slopes are adjacent
    x_knots = x[np.append(keep, True)]
    slopes = slope[keep]
    steps = np.cumsum((np.diff(x_knots) * slopes).astype(np.longdouble)).astype(np.float64)
    y_knots = y[0] + np.concatenate([[0.0], steps])  # R's cumsum: a long-double sum
    return x_knots, y_knots, slopes


@njit(cache=True)
def _isotonic_mean(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """fdrtool's C_isomean: the weighted isotonic (non-decreasing) regression of ``y`` by
    pooling adjacent violators, operation for operation."""
    n = y.size
    blocks = np.empty(n, dtype=np.int64)
    weight = np.empty(n)
    fitted = np.empty(n)
    c = 0
    blocks[0] = 0
    weight[0] = w[0]
    fitted[0] = y[0]
    for j in range(1, n):
        c += 1
        blocks[c] = j
        weight[c] = w[j]
        fitted[c] = y[j]
        while fitted[c - 1] >= fitted[c]:
            pooled = weight[c] + weight[c - 1]
            fitted[c - 1] = fitted[c - 1] + (weight[c] / pooled) * (fitted[c] - fitted[c - 1])
            weight[c - 1] = pooled
            c -= 1
            if c == 0:
                break
    end = n
    while end >= 1:
        for j in range(blocks[c], end):
            fitted[j] = fitted[c]
        end = blocks[c]
        c -= 1
    return fitted


def _weighted_storey_pi0(p: np.ndarray, weights: np.ndarray, tau: float, m: float) -> float:
    """weighted_storey_pi0: ``(max w + Σ w [p > tau]) / m / (1 - tau)``."""
    return (float(np.max(weights)) + _r_sum(weights * (p > tau))) / m / (1.0 - tau)


def _divide(p: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """IHW's mydiv: ``min(p / w, 1)``, 0 where p is 0 and 1 where w is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.minimum(p / weights, 1.0)
    return np.where(p == 0, 0.0, np.where(weights == 0, 1.0, ratio))


def _r_adjust(p: np.ndarray, method: str, n: float) -> np.ndarray:
    """R's ``p.adjust(p, method, n)`` for "BH" (``cummin(n / i * p[o])`` from the largest
    p) and "bonferroni", with R's arithmetic."""
    if n <= 1:
        return p.copy()
    if method == "bonferroni":
        return np.minimum(n * p, 1.0)
    m = p.size
    order = np.argsort(-p, kind="stable")
    ranks = np.arange(m, 0, -1, dtype=np.float64)
    stepped = np.minimum.accumulate(n / ranks * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def _r_sum(values: np.ndarray) -> float:
    """R's ``sum`` of doubles: one long-double accumulator, in order."""
    return float(np.cumsum(np.asarray(values, dtype=np.longdouble))[-1]) if values.size else 0.0
