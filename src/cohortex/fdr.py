"""Multiple-testing corrections, on the p-values' device (NumPy or CuPy).

Every method works along the last axis (one family of tests per row, e.g. per contrast) and is
NaN-aware: a NaN p-value stays NaN and is not counted in the number of tests ``m`` of its row.
The arithmetic follows statsmodels' ``multipletests`` operation for operation, so the results
are identical to it on the non-NaN values.

Methods
-------
``"bh"``          Benjamini–Hochberg (1995) step-up FDR: ``min_{j≥i} p_(j) / (j / m)``.
``"by"``          Benjamini–Yekutieli (2001): BH with ``m`` scaled by ``Σ_{k≤m} 1/k``.
``"bonferroni"``  ``min(1, p · m)``.
``"holm"``        Holm (1979) step-down: ``max_{j≤i} p_(j) (m - j + 1)``.
``"storey"``      Storey's q-values (Storey & Tibshirani 2003): BH scaled by the estimated
                  proportion of true nulls ``π0`` (see :func:`pi0`); equal to the R package
                  qvalue's ``qvalue(p)$qvalues`` with its defaults.
``"none"``        the p-values unchanged.

:func:`lfdr` gives each test's local false discovery rate (qvalue's ``lfdr``); :func:`ihw`
weights the tests by an informative covariate before adjusting them (the package IHW).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._backend import namespace, to_host
from ._errors import CohortexError, CohortexWarning
from .stats._ihw import IHWOptions, IHWResult, bins_by_rank, ihw_weights
from .stats._lfdr import local_fdr
from .stats._scan import running_max, running_min
from .stats._spline import smooth_spline

__all__ = ["METHODS", "IHWResult", "adjust", "check_method", "ihw", "lfdr", "pi0"]

METHODS = ("bh", "by", "bonferroni", "holm", "storey", "none")


def check_method(method: Any, caller: str, parameter: str = "fdr") -> None:
    """Raise :class:`~cohortex.CohortexError` unless ``method`` is one of :data:`METHODS`,
    naming the ``parameter`` of ``caller`` (e.g. ``"fit()"``) that holds it."""
    if method not in METHODS:
        raise CohortexError(
            f"The '{parameter}' parameter of {caller} must be one of "
            f"{', '.join(map(repr, METHODS))}; got {method!r}."
        )


def adjust(pvalues: Any, method: str = "bh", *, lambda_: float | str = "smoother") -> Any:
    """Adjust p-values for multiple testing.

    Parameters
    ----------
    pvalues : array of shape (..., m)
        NumPy or CuPy; the last axis holds one family of tests. NaN marks a missing test.
    method : {"bh", "by", "bonferroni", "holm", "storey", "none"}, default "bh"
        See the module documentation.
    lambda_ : float, "smoother" or "bootstrap", default "smoother"
        For ``"storey"`` only: how π0 is estimated (:func:`pi0`).

    Returns
    -------
    array of the same shape, float64, on the same device
        Adjusted p-values, at most 1; NaN where the input is NaN.
    """
    check_method(method, "fdr.adjust()", "method")
    xp = namespace(pvalues)
    p = xp.asarray(pvalues, dtype=xp.float64)
    if p.ndim == 0:
        raise CohortexError("fdr.adjust() needs an array of p-values, not a scalar.")
    finite = ~xp.isnan(p)
    bad = finite & ((p < 0) | (p > 1))
    if bool(xp.any(bad)):  # a check on the input, before any work: a host sync is fine here
        raise CohortexError(f"p-values must lie in [0, 1] (or be NaN); {int(xp.sum(bad))} do not.")
    if method == "none":
        return p.copy()
    shape = p.shape
    p = p.reshape(-1, shape[-1])
    m = xp.sum(~xp.isnan(p), axis=1, keepdims=True).astype(xp.float64)  # tests per row
    if method == "bonferroni":
        return xp.minimum(p * m, 1.0).reshape(shape)

    with np.errstate(divide="ignore", invalid="ignore"):  # rows of only NaN have m = 0
        return _step(p, m, method, lambda_).reshape(shape)


def _step(p: Any, m: Any, method: str, lambda_: float | str) -> Any:
    """The sorted step-up/step-down procedures, per row of ``p`` (shape (rows, n))."""
    xp = namespace(p)
    order = xp.argsort(p, axis=1)  # NaN sort last
    p_sorted = xp.take_along_axis(p, order, axis=1)
    rank = xp.arange(1, p.shape[1] + 1, dtype=xp.float64)[None, :]
    in_family = rank <= m
    if method == "holm":
        raw = p_sorted * (m - rank + 1.0)
        raw = xp.where(in_family, raw, -xp.inf)
        adjusted = running_max(raw)
    else:
        ecdf = rank / m  # statsmodels' _ecdf: arange(1, m + 1) / m
        if method == "by":
            # Σ_{k≤m} 1/k, summed as statsmodels does (np.sum) so the results agree to the bit
            harmonic = xp.sum(xp.where(in_family, 1.0 / rank, 0.0), axis=1, keepdims=True)
            ecdf = ecdf / harmonic
        raw = xp.where(in_family, p_sorted / ecdf, xp.inf)
        adjusted = running_min(raw, reverse=True)
        if method == "storey":
            adjusted = adjusted * pi0(p, lambda_=lambda_)[:, None]
    adjusted = xp.where(in_family, xp.minimum(adjusted, 1.0), xp.nan)
    out = xp.empty_like(adjusted)
    out[xp.arange(p.shape[0])[:, None], order] = adjusted  # back to the input's order
    return out


PI0_LAMBDAS = np.minimum(0.05 + np.arange(19) * 0.05, 0.95)  # R's seq(0.05, 0.95, 0.05)


def lfdr(
    pvalues: Any,
    *,
    pi0: float | None = None,
    lambda_: float | str = "smoother",
    adjust: float = 1.5,
    truncate: bool = True,
    monotone: bool = True,
) -> Any:
    """Local false discovery rates, as the R package qvalue's ``lfdr(p)`` (``qvalue(p)$lfdr``).

    The posterior probability that a test is null given its p-value, ``π0 f0(p) / f(p)``,
    estimated on the probit scale ``x = Φ⁻¹(p)`` (p clipped to [1e-8, 1 − 1e-8]): R's Gaussian
    kernel density of the x with ``adjust`` times its default bandwidth, smoothed by R's
    smoothing spline (generalised cross-validation), gives ``f``; ``π0 φ(x) / f(x)`` is cut at
    1 and made non-decreasing in p. Where q-values bound the FDR of a list, the local FDR is
    the chance that this one test is a false discovery.

    Parameters
    ----------
    pvalues : array of shape (m,)
        One family of tests (NumPy or CuPy; NaN values stay NaN and are left out).
    pi0 : float, optional
        The proportion of true nulls; by default :func:`pi0` with ``lambda_``.
    lambda_ : "smoother", "bootstrap" or float, default "smoother"
        As for :func:`pi0` (qvalue's ``pi0est``).
    adjust : float, default 1.5
        The density's bandwidth multiplier (qvalue's ``adj``).
    truncate, monotone : bool, default True
        qvalue's ``trunc`` and ``monotone``.

    Returns
    -------
    array of shape (m,)
        On the p-values' device.

    Raises
    ------
    CohortexError
        For p-values outside [0, 1], fewer than four of them, or a ``pi0`` outside (0, 1].

    Notes
    -----
    Equal to qvalue 2.30's to 1e-10 (tests/test_fdr.py). The density and the spline are
    computed on the host: they are sequential and small (512 points).
    """
    xp = namespace(pvalues)
    p = np.asarray(to_host(xp.asarray(pvalues, dtype=xp.float64)), dtype=np.float64)
    if p.ndim != 1:
        raise CohortexError(f"lfdr() takes one family of p-values (1-D); got shape {p.shape}.")
    present = ~np.isnan(p)
    kept = p[present]
    if kept.size < 4 or not np.isfinite(kept).all() or kept.min() < 0 or kept.max() > 1:
        raise CohortexError("lfdr() needs at least four p-values, each in [0, 1].")
    if pi0 is None:
        pi0 = _estimated_pi0(kept, lambda_)
    if not 0.0 < pi0 <= 1.0:
        raise CohortexError(f"The 'pi0' parameter of lfdr() must be in (0, 1]; got {pi0}.")
    out = np.full(p.shape, np.nan)
    out[present] = local_fdr(kept, pi0, adjust=adjust, truncate=truncate, monotone=monotone)
    return xp.asarray(out)


def _estimated_pi0(p: np.ndarray, lambda_: float | str) -> float:
    """:func:`pi0` for :func:`lfdr`, whose parameter of that name hides the function."""
    return float(to_host(pi0(p, lambda_=lambda_)))


def pi0(pvalues: Any, *, lambda_: float | str = "smoother") -> Any:
    """Storey's estimate of the proportion of true null hypotheses, per row.

    ``π0(λ) = #{p ≥ λ} / (m (1 − λ))``. As the R package qvalue's ``pi0est``:

    * ``lambda_="smoother"`` (qvalue's default): a cubic smoothing spline with 3 degrees of
      freedom through π0(λ) at λ = 0.05, 0.10, …, 0.95 (R's ``smooth.spline``, see
      :mod:`cohortex.stats._spline`), evaluated at λ = 0.95;
    * ``lambda_="bootstrap"``: the π0(λ) minimising the bootstrap estimate of its mean squared
      error, in the closed form of Storey, Taylor and Siegmund (2004)::

        mse(λ) = W(λ) / (m² (1 − λ)²) · (1 − W(λ) / m) + (π0(λ) − q10)²

      where ``W(λ) = #{p ≥ λ}`` and ``q10`` is the 10% quantile of the π0(λ) values;
    * a number: π0 at that single λ.

    The estimate is capped at 1.

    Parameters
    ----------
    pvalues : array of shape (..., m)
        NaN values are ignored.
    lambda_ : "smoother", "bootstrap" or float in [0, 1), default "smoother"

    Returns
    -------
    array of shape (...,)
        π0 per row, in (0, 1]; NaN for a row without p-values.

    Raises
    ------
    CohortexError
        If the smoother's estimate is not positive (qvalue stops there too): the p-values are
        not what a family of tests gives, or another λ is needed.
    """
    xp = namespace(pvalues)
    p = xp.asarray(pvalues, dtype=xp.float64)
    shape = p.shape[:-1]
    p = p.reshape(-1, p.shape[-1])
    m = xp.sum(~xp.isnan(p), axis=1).astype(xp.float64)
    message = (
        "The 'lambda_' parameter must be 'smoother', 'bootstrap' or a number in [0, 1); "
        f"got {lambda_!r}."
    )
    if isinstance(lambda_, str):
        if lambda_ not in ("smoother", "bootstrap"):
            raise CohortexError(message)
        lambdas = xp.asarray(PI0_LAMBDAS)
    else:
        if not 0 <= float(lambda_) < 1:
            raise CohortexError(message)
        lambdas = xp.asarray([float(lambda_)])
    # W[r, l] = #{p >= lambda_l} in row r (NaN compare False, so they are left out)
    above = xp.sum(p[:, :, None] >= lambdas[None, None, :], axis=1).astype(xp.float64)
    estimates = above / (m[:, None] * (1.0 - lambdas[None, :]))
    if lambda_ == "smoother":
        chosen = xp.asarray(_smoothed(to_host(estimates)))
    elif lambdas.shape[0] == 1:
        chosen = estimates[:, 0]
    else:
        q10 = xp.quantile(estimates, 0.1, axis=1)  # R's default quantile type 7, as numpy's
        mse = (
            above / (m[:, None] ** 2 * (1.0 - lambdas[None, :]) ** 2) * (1.0 - above / m[:, None])
            + (estimates - q10[:, None]) ** 2
        )
        best = mse == xp.min(mse, axis=1, keepdims=True)
        chosen = xp.min(xp.where(best, estimates, xp.inf), axis=1)
    return xp.minimum(chosen, 1.0).reshape(shape)


def _smoothed(estimates: np.ndarray) -> np.ndarray:
    """qvalue's smoother: per row, the df-3 spline through π0(λ), at the largest λ."""
    chosen = np.full(estimates.shape[0], np.nan)
    for row, values in enumerate(estimates):
        if np.isnan(values).any():  # a row without p-values
            continue
        chosen[row] = smooth_spline(PI0_LAMBDAS, values, 3.0).fitted[-1]
        if chosen[row] <= 0:
            raise CohortexError(
                f"Storey's π0 smoother gives {chosen[row]:.3g} (not positive), as qvalue would "
                "stop there too: most p-values are near 0 or the distribution is unusual. Use "
                "lambda_='bootstrap', a fixed lambda_, or method 'bh'."
            )
    return chosen


def ihw(
    pvalues: Any,
    covariate: Any,
    alpha: float = 0.1,
    *,
    covariate_type: str = "ordinal",
    n_bins: int | str = "auto",
    n_folds: int = 5,
    n_folds_internal: int = 5,
    n_splits_internal: int = 1,
    lambdas: Sequence[float] | str = "auto",
    seed: int = 1,
    method: str = "bh",
    null_proportion: bool = False,
    null_proportion_level: float = 0.5,
) -> IHWResult:
    """Independent hypothesis weighting: the Bioconductor package IHW's ``ihw()``.

    Tests whose covariate (for RNA-seq, the mean count; for a screen, the sample size) tells
    of their power get more weight, learnt from the data without looking at a test's own
    p-value: the tests are binned by the covariate and split at random into folds, and each
    fold's bins get the weights that maximise the discoveries of the other folds, through
    Grenander estimates of each bin's p-value distribution and a linear programme whose
    weights' total variation across bins is regularised (λ chosen by nested
    cross-validation). The p-values over their weights are then adjusted together, which
    controls the FDR (Ignatiadis et al. 2016, Nature Methods 13:577; Ignatiadis & Huber
    2021, JRSS B 83:720). The covariate must be independent of the p-values under the null.

    Parameters
    ----------
    pvalues : array of shape (m,)
        NaN marks a test without a p-value: it gets no weight and stays NaN.
    covariate : array of shape (m,)
        Numbers (binned by rank, ties broken at random as IHW breaks them) or categories
        (strings, booleans or a pandas Categorical: one bin per category used, in the
        categories' order, or sorted). No NaN where the p-value is not NaN.
    alpha : float, default 0.1
        The nominal FDR (or FWER) the weights are learnt for (DESeq2's default).
    covariate_type : {"ordinal", "nominal"}, default "ordinal"
        Ordered bins have the total variation of neighbouring bins' weights regularised;
        unordered ones (categories only) their deviation from the mean.
    n_bins : int or "auto", default "auto"
        Bins of a numeric covariate; "auto" is ``max(1, min(40, m // 1500))`` (m the tests
        with a p-value). With one bin IHW is the plain adjustment.
    n_folds, n_folds_internal : int, default 5
        The folds, and the folds of the nested choice of λ.
    n_splits_internal : int, default 1
        Repeats of the nested cross-validation per λ (averaged).
    lambdas : sequence of float or "auto", default "auto"
        The regularisation grid: ``0, 1, n_bins/8, n_bins/4, n_bins/2, n_bins, inf``; 0 gives
        equal weights, inf no regularisation. One value is used as it is.
    seed : int, default 1
        R's ``set.seed`` for the random tie-breaking and the folds (IHW's ``seed = 1L``): the
        same seed gives IHW's result.
    method : {"bh", "bonferroni"}, default "bh"
        The weighted adjustment (IHW's ``adjustment_type``).
    null_proportion : bool, default False
        Divide each fold's weights by its weighted Storey estimate of the null proportion at
        ``null_proportion_level`` (more power where many tests are non-null).
    null_proportion_level : float, default 0.5

    Returns
    -------
    IHWResult
        ``adjusted`` (IHW's ``adj_pvalues``), ``weights``, ``weighted_pvalues``, ``bins``,
        ``folds``, ``fold_weights`` (n_bins, n_folds), ``fold_lambdas``, ``bin_sizes``,
        ``rejections``.

    Raises
    ------
    CohortexError
        For p-values outside [0, 1], a covariate of another length or NaN where the p-value
        is not, a nominal numeric covariate, or a parameter outside its range.

    Warns
    -----
    CohortexWarning
        Where a bin holds fewer than 1,000 tests (IHW's advice: weights learnt from fewer
        are noisy), or where fewer than 3,000 tests make one bin (IHW is then the plain
        adjustment).

    Notes
    -----
    The bins, folds, each fold's λ, the rejections and the decisions are IHW 1.26's (R 4.2;
    tests/test_ihw.py). The linear programmes are IHW's, solved by SciPy's HiGHS where IHW
    uses SYMPHONY: the weights are IHW's to 1e-10 where SYMPHONY's vertex is exact; where it
    stops within its feasibility tolerance (4e-7) the exact optimum differs from it by up to
    ~1e-6, and more under Bonferroni, whose thresholds are tiny. The nested fits run on
    threads. IHW's ECDF estimator (a mixed-integer programme), given folds and ``m_groups``
    are not offered.
    """
    p = np.asarray(to_host(namespace(pvalues).asarray(pvalues)), dtype=np.float64)
    if p.ndim != 1:
        raise CohortexError(f"ihw() takes one family of p-values (1-D); got shape {p.shape}.")
    present = ~np.isnan(p)
    kept = p[present]
    if kept.size == 0:
        raise CohortexError("ihw() needs at least one p-value that is not NaN.")
    if kept.min() < 0 or kept.max() > 1:
        raise CohortexError(
            f"p-values must lie in [0, 1] (or be NaN); {int(np.sum((kept < 0) | (kept > 1)))} "
            "do not."
        )
    if not 0 < alpha < 1:
        raise CohortexError(f"The 'alpha' parameter of ihw() must be in (0, 1); got {alpha}.")
    if covariate_type not in ("ordinal", "nominal"):
        raise CohortexError(
            "The 'covariate_type' parameter of ihw() must be 'ordinal' or 'nominal'; got "
            f"{covariate_type!r}."
        )
    if method not in ("bh", "bonferroni"):
        raise CohortexError(
            f"The 'method' parameter of ihw() must be 'bh' or 'bonferroni'; got {method!r}."
        )
    for name, value in (
        ("n_folds", n_folds),
        ("n_folds_internal", n_folds_internal),
        ("n_splits_internal", n_splits_internal),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise CohortexError(
                f"The '{name}' parameter of ihw() must be a whole number of at least 1; got "
                f"{value!r}."
            )
    if not 0 < null_proportion_level < 1:
        raise CohortexError(
            "The 'null_proportion_level' parameter of ihw() must be in (0, 1); got "
            f"{null_proportion_level}."
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise CohortexError(f"The 'seed' parameter of ihw() must be an int; got {seed!r}.")
    bins, n = _ihw_bins(covariate, present, covariate_type, n_bins, int(seed))
    if lambdas == "auto":
        grid = [0.0, 1.0, n / 8, n / 4, n / 2, float(n), math.inf]
    else:
        grid = [float(v) for v in np.atleast_1d(np.asarray(lambdas, dtype=np.float64))]
        if not grid or any(not v >= 0 for v in grid):
            raise CohortexError(
                f"The 'lambdas' parameter of ihw() must be 'auto' or numbers >= 0; got {lambdas!r}."
            )
    sizes = np.bincount(bins)
    if n == 1 and n_bins == "auto":
        warnings.warn(
            f"ihw(): {bins.size} tests make one bin (IHW bins by 1,500 tests), so IHW is the "
            "plain adjustment here, with every weight 1.",
            CohortexWarning,
            stacklevel=2,
        )
    elif n > 1 and sizes.min() < 1000:
        warnings.warn(
            f"ihw(): the smallest of the {sizes.size} bins holds {int(sizes.min())} tests; IHW "
            "advises many more than 1,000 per bin for weights worth learning (fewer bins, "
            "'n_bins', or more tests).",
            CohortexWarning,
            stacklevel=2,
        )
    options = IHWOptions(
        penalty="total variation" if covariate_type == "ordinal" else "uniform deviation",
        lambdas=tuple(grid),
        n_folds=1 if n == 1 else int(n_folds),
        n_folds_internal=int(n_folds_internal),
        n_splits_internal=int(n_splits_internal),
        adjustment="BH" if method == "bh" else "bonferroni",
        null_proportion=bool(null_proportion),
        null_proportion_level=float(null_proportion_level),
        seed=int(seed),
    )
    fitted = ihw_weights(kept, bins, n, float(alpha), options)
    return _ihw_in_place(fitted, present)


def _ihw_bins(
    covariate: Any, present: np.ndarray, covariate_type: str, n_bins: int | str, seed: int
) -> tuple[np.ndarray, int]:
    """The bins (0-based codes, one per test with a p-value) and IHW's ``nbins``."""
    values = covariate.to_numpy() if isinstance(covariate, pd.Series) else covariate
    if not isinstance(values, pd.Categorical):
        values = np.asarray(to_host(values))
    if len(values) != present.size:
        raise CohortexError(
            f"ihw()'s covariate has {len(values)} values for {present.size} p-values."
        )
    numeric = not isinstance(values, pd.Categorical) and values.dtype.kind in "iuf"
    if numeric:
        if covariate_type == "nominal":
            raise CohortexError(
                "ihw(covariate_type='nominal') needs categories (strings or a pandas "
                "Categorical), not numbers: numbers are binned in order."
            )
        kept = np.asarray(values, dtype=np.float64)[present]
        if np.isnan(kept).any():
            raise CohortexError(
                "ihw()'s covariate is NaN for tests that have a p-value; IHW needs it for each."
            )
        if n_bins == "auto":
            n = max(1, min(40, kept.size // 1500))
        elif isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
            raise CohortexError(
                f"The 'n_bins' parameter of ihw() must be 'auto' or a whole number of at least "
                f"1; got {n_bins!r}."
            )
        else:
            n = int(n_bins)
        return bins_by_rank(kept, n, seed), n
    categories = pd.Categorical(values)[present]
    if pd.isna(categories).any():
        raise CohortexError(
            "ihw()'s covariate is missing for tests that have a p-value; IHW needs it for each."
        )
    codes = categories.remove_unused_categories().codes.astype(np.int64)
    return codes, int(codes.max()) + 1


def _ihw_in_place(fitted: IHWResult, present: np.ndarray) -> IHWResult:
    """The result on all tests: NaN (or -1) where the p-value is NaN."""

    def spread(values: np.ndarray, fill: float) -> np.ndarray:
        out = np.full(present.size, fill, dtype=values.dtype)
        out[present] = values
        return out

    return IHWResult(
        adjusted=spread(fitted.adjusted, np.nan),
        weights=spread(fitted.weights, np.nan),
        weighted_pvalues=spread(fitted.weighted_pvalues, np.nan),
        bins=spread(fitted.bins, -1),
        folds=spread(fitted.folds, -1),
        fold_weights=fitted.fold_weights,
        fold_lambdas=fitted.fold_lambdas,
        bin_sizes=fitted.bin_sizes,
        alpha=fitted.alpha,
        rejections=fitted.rejections,
    )
