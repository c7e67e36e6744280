"""edgeR's negative-binomial GLM: ``glmFit``, ``adjustedProfileLik``, ``aveLogCPM``.

Ports of edgeR's C++ (3.40), step for step, because the quasi-likelihood pipeline's numbers
depend on where each iterative fit stops: a one-way layout (as many distinct design rows as
columns) is fitted group by group with edgeR's one-group Fisher scoring (``mglmOneWay``; at
most 50 steps, a stop when a step is below 1e-10), any other design with edgeR's
Levenberg-damped scoring (``mglmLevenberg``: the start from the row's weighted overall rate,
damping from 10⁻⁶ of the largest information, a stop when the step's score falls below 1e-6,
at most 250 iterations). The unit deviance keeps edgeR's guards (1e-8 added to counts and
means, a Poisson expansion below a dispersion of 1e-4, a gamma one above μφ of 10⁶) and the
expansion's ``2/3`` as C++ evaluates it (0). The Cox-Reid adjustment takes the diagonal of
LAPACK's Bunch-Kaufman factor (``dsytf2``), as edgeR does.

A dispersion may be given per gene or per count, an offset per sample or per count (sva's
ComBat-seq fits each batch's samples with the batch's dispersion). R's ``pnbinom`` and
``qnbinom`` for ComBat-seq's quantile matching sit here too.

Host only (numba, each gene a loop over its samples); the counts are samples × genes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from .._jit import njit

__all__ = [
    "NegativeBinomialFit",
    "adjusted_profile_likelihood",
    "ave_log_cpm",
    "lgamma_plus_one",
    "nb_cdf",
    "nb_deviance",
    "nb_glm_fit",
    "nb_quantile",
    "one_group",
    "one_way_groups",
    "prior_counts",
]

LEVENBERG_ITERATIONS = 250
LEVENBERG_TOLERANCE = 1e-6
ONE_GROUP_ITERATIONS = 50
ONE_GROUP_TOLERANCE = 1e-10
_LOW = 1e-10  # edgeR's low_value: a count below it is zero
_ONE_WAY_FLOOR = -1e8  # mglmOneWay: a group without counts
_DISCRETE_FUZZ = 8 * np.finfo(np.float64).eps  # R's qnbinom: p · (1 − 8ε), left continuity
_WALK_STEPS = 64  # counts summed or walked one by one before the incomplete beta function


@dataclass(frozen=True)
class NegativeBinomialFit:
    """A fit of every gene: ``coefficients`` (p × genes), ``fitted`` (samples × genes) and
    ``deviance`` (genes,)."""

    coefficients: np.ndarray
    fitted: np.ndarray
    deviance: np.ndarray


def one_way_groups(design: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """edgeR's ``designAsFactor``: for a one-way layout (as many distinct rows as columns)
    each sample's group (n_samples,) and each group's design row (groups × p); else None.

    Rows are told apart as edgeR does: by the 15 significant digits R's ``factor`` keeps of
    ``mean(row · z^(column − 1))``, z = (e + π) / 5 — so rows that differ in rounding alone
    (a design rotated by a contrast) may or may not be one group, as in R.
    """
    z = (np.e + np.pi) / 5.0
    key = (design * z ** np.arange(design.shape[1])[None, :]).sum(axis=1) / design.shape[1]
    values, inverse = np.unique(key, return_inverse=True)
    if values.size < design.shape[1]:
        return None
    _, level = np.unique([f"{v:.15g}" for v in values], return_inverse=True)
    codes = level.ravel()[inverse.ravel()].astype(np.int64)
    if codes.max() + 1 != design.shape[1]:
        return None
    first = np.array([np.flatnonzero(codes == g)[0] for g in range(design.shape[1])])
    return codes, design[first]


def _offset_columns(offsets: float | np.ndarray) -> np.ndarray:
    """Offsets as samples × (1 or genes), Fortran order: one column for all genes or one a
    gene."""
    offsets = np.asarray(offsets, dtype=np.float64)
    return np.asfortranarray(offsets[:, None] if offsets.ndim == 1 else offsets)


def _dispersion_rows(dispersion: float | np.ndarray, n_genes: int) -> np.ndarray:
    """Dispersions as (1 or samples) × genes, Fortran order: one a gene or one a count."""
    dispersion = np.asarray(dispersion, dtype=np.float64)
    if dispersion.ndim < 2:
        return np.asfortranarray(np.broadcast_to(dispersion, (n_genes,))[None, :])
    return np.asfortranarray(dispersion)


def nb_glm_fit(
    counts: np.ndarray,
    design: np.ndarray,
    offsets: np.ndarray,
    dispersion: np.ndarray,
    start: np.ndarray | None = None,
    *,
    with_deviance: bool = True,
) -> NegativeBinomialFit:
    """edgeR's ``glmFit(counts, design, offset, dispersion, prior.count = 0, start)``.

    Parameters
    ----------
    counts : ndarray of shape (n_samples, n_genes)
        Best in Fortran order (each gene's samples together), which the fit works in.
    design : ndarray of shape (n_samples, p)
        Of full rank.
    offsets : ndarray of shape (n_samples,) or (n_samples, n_genes)
        ``log`` of the effective library sizes, or an offset of each count.
    dispersion : ndarray of shape (n_genes,) or (n_samples, n_genes)
        Each gene's dispersion, or each count's.
    start : ndarray of shape (p, n_genes), optional
        Starting coefficients (edgeR's ``start``).
    with_deviance : bool, default True
        False leaves the deviance of a one-way layout NaN (a pass saved where it is not
        needed).

    Returns
    -------
    NegativeBinomialFit
        Its fitted values in Fortran order.
    """
    counts = np.asfortranarray(counts, dtype=np.float64)
    design = np.ascontiguousarray(design, dtype=np.float64)
    offsets = _offset_columns(offsets)
    dispersion = _dispersion_rows(dispersion, counts.shape[1])
    n, p = design.shape
    oneway = one_way_groups(design)
    if oneway is not None:
        codes, unique_rows = oneway
        group_start = None if start is None else unique_rows @ start
        beta = np.empty((p, counts.shape[1]))
        for g in range(p):
            initial = np.full(counts.shape[1], np.nan) if group_start is None else group_start[g]
            beta[g] = _one_group_rows(
                counts,
                np.flatnonzero(codes == g),
                offsets,
                dispersion,
                np.ascontiguousarray(initial, dtype=np.float64),
                ONE_GROUP_ITERATIONS,
                ONE_GROUP_TOLERANCE,
            )
        beta = np.maximum(beta, _ONE_WAY_FLOOR)
        fitted = np.asfortranarray(np.exp(beta[codes] + offsets))
        deviance = (
            nb_deviance(counts, fitted, dispersion)
            if with_deviance
            else np.full(counts.shape[1], np.nan)
        )
        # each group's log mean → the design's coefficients (exact for indicator columns)
        beta = np.linalg.solve(unique_rows, beta)
        return NegativeBinomialFit(beta, fitted, deviance)
    if start is None:
        start = _null_start(counts, design, offsets, dispersion)
    coefficients = np.empty((p, counts.shape[1]))
    fitted = np.empty((n, counts.shape[1]), order="F")
    deviance = np.empty(counts.shape[1])
    _levenberg(
        counts,
        design,
        offsets,
        dispersion,
        np.ascontiguousarray(start, dtype=np.float64),
        LEVENBERG_ITERATIONS,
        LEVENBERG_TOLERANCE,
        coefficients,
        fitted,
        deviance,
    )
    return NegativeBinomialFit(coefficients, fitted, deviance)


def one_group(
    counts: np.ndarray,
    offsets: np.ndarray,
    dispersion: np.ndarray,
    members: np.ndarray | None = None,
) -> np.ndarray:
    """edgeR's ``mglmOneGroup``: each gene's log rate (n_genes,) in the samples ``members``
    (default all) from the one-group NB fit; -inf for a gene without counts there.

    Parameters
    ----------
    counts : ndarray of shape (n_samples, n_genes)
    offsets : ndarray of shape (n_samples,)
    dispersion : ndarray of shape (n_genes,)
    members : ndarray of int, optional
    """
    counts = np.asfortranarray(counts, dtype=np.float64)
    chosen = np.arange(counts.shape[0]) if members is None else np.asarray(members, np.int64)
    return _one_group_rows(
        counts,
        chosen,
        _offset_columns(offsets),
        _dispersion_rows(dispersion, counts.shape[1]),
        np.full(counts.shape[1], np.nan),
        ONE_GROUP_ITERATIONS,
        ONE_GROUP_TOLERANCE,
    )


def nb_deviance(counts: np.ndarray, fitted: np.ndarray, dispersion: np.ndarray) -> np.ndarray:
    """edgeR's ``nbinomDeviance`` of every gene (n_genes,), ``counts`` and ``fitted`` samples
    × genes, ``dispersion`` one a gene (n_genes,) or one a count (samples × genes)."""
    counts = np.asfortranarray(counts, dtype=np.float64)
    fitted = np.asfortranarray(fitted, dtype=np.float64)
    out = np.empty(counts.shape[1])
    _deviances(counts, fitted, _dispersion_rows(dispersion, counts.shape[1]), out)
    return out


def adjusted_profile_likelihood(
    counts: np.ndarray,
    fitted: np.ndarray,
    dispersion: np.ndarray,
    design: np.ndarray,
    lgamma_counts: np.ndarray | None = None,
) -> np.ndarray:
    """edgeR's Cox-Reid adjusted profile log-likelihood (``compute_apl``) of every gene
    (n_genes,) at its fitted means (samples × genes).

    ``lgamma_counts`` (:func:`lgamma_plus_one` of the counts) spares recomputing lgamma(y + 1)
    when the same counts are evaluated at many dispersions (estimateDisp's grid)."""
    counts = np.asfortranarray(counts, dtype=np.float64)
    if lgamma_counts is None:
        lgamma_counts = lgamma_plus_one(counts)
    out = np.empty(counts.shape[1])
    _apl(
        counts,
        np.asfortranarray(fitted, dtype=np.float64),
        np.ascontiguousarray(np.broadcast_to(dispersion, counts.shape[1:]), dtype=np.float64),
        np.ascontiguousarray(design, dtype=np.float64),
        np.asfortranarray(lgamma_counts, dtype=np.float64),
        out,
    )
    return out


def lgamma_plus_one(counts: np.ndarray) -> np.ndarray:
    """lgamma(y + 1) of every count (samples × genes, Fortran order), 0 for a zero; whole
    counts below 2^14 from a table of the same values."""
    counts = np.asfortranarray(counts, dtype=np.float64)
    out = np.zeros(counts.shape, order="F")
    _lgamma_plus_one(counts, _lgamma_table(), out)
    return out


@functools.cache
def _lgamma_table() -> np.ndarray:
    """lgamma(k + 1) of k = 0 … 2^14 − 1, by the compiled code's lgamma (the C library's, as
    edgeR's C++; Python's differs in the last bits)."""
    return _lgamma_values(1 << 14)


@njit(cache=True)
def _lgamma_values(n: int) -> np.ndarray:
    out = np.empty(n)
    for k in range(n):
        out[k] = math.lgamma(k + 1.0)
    return out


@njit(nogil=True, cache=True)
def _lgamma_plus_one(counts: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    for g in range(counts.shape[1]):
        for i in range(counts.shape[0]):
            y = counts[i, g]
            if y > 0:
                whole = int(y)
                if whole == y and whole < table.size:
                    out[i, g] = table[whole]
                else:
                    out[i, g] = math.lgamma(y + 1.0)


def prior_counts(lib_sizes: np.ndarray, prior_count: float) -> tuple[np.ndarray, np.ndarray]:
    """edgeR's ``addPriorCount``: each sample's prior count, scaled by its library size
    relative to the mean (n_samples,), and the offsets with twice it added to the library
    sizes (n_samples,); of library sizes per count (n_samples × n_genes, ``exp`` of an
    offset matrix) each gene's, relative to its mean over the samples."""
    lib_sizes = np.asarray(lib_sizes, dtype=np.float64)
    scaled = prior_count * lib_sizes / (lib_sizes.sum(axis=0) / lib_sizes.shape[0])
    return scaled, np.log(lib_sizes + 2.0 * scaled)


def ave_log_cpm(
    counts: np.ndarray,
    lib_sizes: np.ndarray,
    dispersion: float | np.ndarray,
    prior_count: float = 2.0,
) -> np.ndarray:
    """edgeR's ``aveLogCPM``: each gene's log2 CPM from the one-group NB fit of its counts
    with prior counts (n_genes,)."""
    counts = np.asarray(counts, dtype=np.float64)
    prior, offsets = prior_counts(lib_sizes, prior_count)
    beta = _one_group_rows(
        np.asfortranarray(counts + prior[:, None]),
        np.arange(counts.shape[0]),
        _offset_columns(offsets),
        _dispersion_rows(dispersion, counts.shape[1]),
        np.full(counts.shape[1], np.nan),
        ONE_GROUP_ITERATIONS,
        ONE_GROUP_TOLERANCE,
    )
    return (beta + np.log(1e6)) / np.log(2.0)


def _null_start(
    counts: np.ndarray, design: np.ndarray, offsets: np.ndarray, dispersion: np.ndarray
) -> np.ndarray:
    """edgeR's ``start.method = "null"``: the least-squares coefficients of each row's
    overall log rate, weighted by ``N / (1 + φN)`` (p × genes); ``offsets`` and
    ``dispersion`` as :func:`_offset_columns` and :func:`_dispersion_rows` give them."""
    size = np.exp(offsets)
    weight = size / (1.0 + dispersion * size)
    with np.errstate(divide="ignore"):  # a gene without counts: edgeR's fit stops at once
        rate = np.log((counts * weight / size).sum(axis=0) / weight.sum(axis=0))
    ones = np.linalg.lstsq(design, np.ones(design.shape[0]), rcond=None)[0]
    return ones[:, None] * rate[None, :]


@njit(nogil=True, cache=True)
def _unit_deviance(y: float, mu: float, phi: float) -> float:
    y += 1e-8
    mu += 1e-8
    if phi < 1e-4:
        resid = y - mu
        # edgeR's C++ has 2/3*resid here, integer division: 0
        return 2.0 * (y * np.log(y / mu) - resid - 0.5 * resid * resid * phi * (1.0 - phi * y))
    product = mu * phi
    if product > 1e6:
        return 2.0 * ((y - mu) / mu - np.log(y / mu)) * mu / (1.0 + product)
    inverse = 1.0 / phi
    return 2.0 * (y * np.log(y / mu) + (y + inverse) * np.log((mu + inverse) / (y + inverse)))


@njit(nogil=True, cache=True)
def _deviances(
    counts: np.ndarray, fitted: np.ndarray, dispersion: np.ndarray, out: np.ndarray
) -> None:
    per_count = dispersion.shape[0] > 1
    for g in range(counts.shape[1]):
        total = 0.0
        for i in range(counts.shape[0]):
            phi = dispersion[i if per_count else 0, g]
            total += _unit_deviance(counts[i, g], fitted[i, g], phi)
        out[g] = total


@njit(nogil=True, cache=True)
def _one_group_rows(
    counts: np.ndarray,
    members: np.ndarray,
    offsets: np.ndarray,
    dispersion: np.ndarray,
    start: np.ndarray,
    max_iterations: int,
    tolerance: float,
) -> np.ndarray:
    """edgeR's ``glm_one_group`` for every gene on the samples ``members``: the log rate of
    one group (genes,); -inf for a gene without counts there."""
    n = members.shape[0]
    genes = counts.shape[1]
    out = np.empty(genes)
    per_gene_offsets = offsets.shape[1] > 1
    per_count = dispersion.shape[0] > 1
    # exp(β) · size: one exp a step, not one a sample (1 ulp apart)
    sizes = np.exp(offsets[:, 0])
    for g in range(genes):
        if per_gene_offsets:
            for k in range(n):
                sizes[members[k]] = np.exp(offsets[members[k], g])
        beta = start[g]
        nonzero = False
        if np.isnan(beta):
            beta = 0.0
            for k in range(n):
                j = members[k]
                if counts[j, g] > _LOW:
                    beta += counts[j, g] / sizes[j]
                    nonzero = True
            beta = np.log(beta / n)
        else:
            for k in range(n):
                if counts[members[k], g] > _LOW:
                    nonzero = True
                    break
        if not nonzero:
            out[g] = -np.inf
            continue
        for _ in range(max_iterations):
            score = 0.0
            info = 0.0
            rate = np.exp(beta)
            for k in range(n):
                j = members[k]
                mu = rate * sizes[j]
                denominator = 1.0 + mu * dispersion[j if per_count else 0, g]
                score += (counts[j, g] - mu) / denominator
                info += mu / denominator
            step = score / info
            beta += step
            if abs(step) < tolerance:
                break
        out[g] = beta
    return out


@njit(nogil=True, cache=True)
def _means_and_deviance(
    y: np.ndarray,
    design: np.ndarray,
    offsets: np.ndarray,
    beta: np.ndarray,
    phi: np.ndarray,
    mu: np.ndarray,
) -> float:
    n, p = design.shape
    total = 0.0
    for i in range(n):
        eta = offsets[i]
        for k in range(p):
            eta += design[i, k] * beta[k]
        mu[i] = np.exp(eta)
        total += _unit_deviance(y[i], mu[i], phi[i])
    return total


@njit(nogil=True, cache=True)
def _levenberg(
    counts: np.ndarray,
    design: np.ndarray,
    offsets: np.ndarray,
    dispersion: np.ndarray,
    start: np.ndarray,
    max_iterations: int,
    tolerance: float,
    out: np.ndarray,
    fitted: np.ndarray,
    deviances: np.ndarray,
) -> None:
    n, p = design.shape
    mu = np.empty(n)
    trial_mu = np.empty(n)
    info = np.empty((p, p))
    score = np.empty(p)
    phi = np.empty(n)  # the gene's dispersion and offset of each sample
    offset = np.empty(n)
    per_count = dispersion.shape[0] > 1
    per_gene_offsets = offsets.shape[1] > 1
    for g in range(counts.shape[1]):
        y = counts[:, g]
        for i in range(n):
            phi[i] = dispersion[i if per_count else 0, g]
            offset[i] = offsets[i, g if per_gene_offsets else 0]
        if y.max() < _LOW:  # edgeR: NA coefficients, fitted values 0
            out[:, g] = np.nan
            fitted[:, g] = 0.0
            deviances[g] = 0.0
            continue
        beta = start[:, g].copy()
        deviance = _means_and_deviance(y, design, offset, beta, phi, mu)
        largest_info = -1.0
        damping = 0.0
        for iteration in range(1, max_iterations + 1):
            info[:] = 0.0  # X'WX and the score, one pass over the samples
            score[:] = 0.0
            for i in range(n):
                denominator = 1.0 + mu[i] * phi[i]
                weight = mu[i] / denominator
                residual = (y[i] - mu[i]) / denominator
                for a in range(p):
                    xa = design[i, a]
                    score[a] += xa * residual
                    for b in range(a + 1):
                        info[a, b] += xa * design[i, b] * weight
            for a in range(p):
                for b in range(a):
                    info[b, a] = info[a, b]
                largest_info = max(largest_info, info[a, a])
            if iteration == 1:
                damping = max(largest_info * 1e-6, 1e-13)
            failed = False
            low = False
            attempts = 0
            step = np.linalg.solve(np.eye(p), score)  # typed as the solves below
            while True:
                attempts += 1
                while True:  # raise the damping until the information factorises
                    damped = info.copy()
                    for k in range(p):
                        damped[k, k] += damping
                    if _positive_definite(damped):
                        break
                    damping = damping * 10.0 if damping > 0 else 1e-100
                step = np.linalg.solve(damped, score)
                trial = beta + step
                trial_deviance = _means_and_deviance(y, design, offset, trial, phi, trial_mu)
                low = trial_deviance / y.max() < 1e-13
                if trial_deviance <= deviance or low:
                    beta = trial
                    mu[:] = trial_mu
                    deviance = trial_deviance
                    break
                damping = damping * 2.0 if damping > 0 else 1e-100
                if damping / largest_info > 1e13:
                    failed = True
                    break
            if failed or low or np.dot(score, step) < tolerance:
                break
            if attempts == 1:
                damping /= 10.0
        out[:, g] = beta
        fitted[:, g] = mu
        deviances[g] = deviance


@njit(nogil=True, cache=True)
def _positive_definite(matrix: np.ndarray) -> bool:
    """Whether a Cholesky factorisation succeeds (LAPACK's dpotrf: every pivot > 0)."""
    p = matrix.shape[0]
    lower = np.zeros((p, p))
    for j in range(p):
        s = matrix[j, j]
        for k in range(j):
            s -= lower[j, k] * lower[j, k]
        if not s > 0.0:
            return False
        lower[j, j] = np.sqrt(s)
        for i in range(j + 1, p):
            t = matrix[i, j]
            for k in range(j):
                t -= lower[i, k] * lower[j, k]
            lower[i, j] = t / lower[j, j]
    return True


@njit(nogil=True, cache=True)
def _apl(
    counts: np.ndarray,
    fitted: np.ndarray,
    dispersion: np.ndarray,
    design: np.ndarray,
    lgamma_counts: np.ndarray,
    out: np.ndarray,
) -> None:
    n, p = design.shape
    weights = np.zeros(n)  # edgeR keeps a weight from the previous gene where a mean is 0
    upper = np.empty((p, p))
    for g in range(counts.shape[1]):
        phi = dispersion[g]
        total = 0.0
        r = 1.0 / phi if phi > 0 else 0.0
        log_r = np.log(r) if phi > 0 else 0.0
        lgamma_r = math.lgamma(r) if phi > 0 else 0.0
        for i in range(n):
            mu = fitted[i, g]
            if mu == 0.0:
                continue
            y = counts[i, g]
            # edgeR's sum, term by term; lgamma(y + r), lgamma(y + 1) and y log μ are
            # lgamma(r), 0 and 0 at y = 0 (most counts of a lowly expressed gene), lgamma(r)
            # once a gene, lgamma(y + 1) once for all dispersions
            lgamma_y1 = lgamma_counts[i, g]
            y_log_mu = y * np.log(mu) if y > 0 else 0.0
            if phi > 0:
                log_mur = np.log(mu + r)
                lgamma_yr = math.lgamma(y + r) if y > 0 else lgamma_r
                total += (
                    y_log_mu
                    - y * log_mur
                    + r * log_r
                    - r * log_mur
                    + lgamma_yr
                    - lgamma_y1
                    - lgamma_r
                )
            else:
                total += y_log_mu - mu - lgamma_y1
            weights[i] = mu / (1.0 + phi * mu)
        if p == 1:
            adjustment = np.log(abs(weights.sum())) / 2.0
        else:
            for a in range(p):  # X'WX, upper triangle as edgeR fills it
                for b in range(a + 1):
                    entry = 0.0
                    for i in range(n):
                        entry += design[i, a] * design[i, b] * weights[i]
                    upper[b, a] = entry
            adjustment = _bunch_kaufman_log_diagonal(upper) / 2.0
        out[g] = total - adjustment


@njit(nogil=True, cache=True)
def _bunch_kaufman_log_diagonal(a: np.ndarray) -> float:
    """Σ log of the diagonal of D in LAPACK's ``dsytf2('U')`` factor ``A = U D Uᵀ`` of the
    upper triangle of ``a`` (overwritten), with edgeR's floor of log(1e-10) for a diagonal
    below 1e-10 or not finite."""
    n = a.shape[0]
    alpha = (1.0 + np.sqrt(17.0)) / 8.0
    k = n - 1
    while k >= 0:
        kstep = 1
        absakk = abs(a[k, k])
        imax = 0
        colmax = 0.0
        if k > 0:
            for i in range(k):  # idamax: the first largest
                if abs(a[i, k]) > colmax:
                    colmax = abs(a[i, k])
                    imax = i
        if max(absakk, colmax) == 0.0 or np.isnan(absakk):
            kp = k
        else:
            if absakk >= alpha * colmax:
                kp = k
            else:
                rowmax = 0.0
                for j in range(imax + 1, k + 1):
                    if abs(a[imax, j]) > rowmax:
                        rowmax = abs(a[imax, j])
                if imax > 0:
                    for j in range(imax):
                        rowmax = max(rowmax, abs(a[j, imax]))
                if absakk >= alpha * colmax * (colmax / rowmax):
                    kp = k
                elif abs(a[imax, imax]) >= alpha * rowmax:
                    kp = imax
                else:
                    kp = imax
                    kstep = 2
            kk = k - kstep + 1
            if kp != kk:  # interchange rows and columns kk and kp of the leading block
                for i in range(kp):
                    a[i, kk], a[i, kp] = a[i, kp], a[i, kk]
                for j in range(kp + 1, kk):
                    a[j, kk], a[kp, j] = a[kp, j], a[j, kk]
                a[kk, kk], a[kp, kp] = a[kp, kp], a[kk, kk]
                if kstep == 2:
                    a[k - 1, k], a[kp, k] = a[kp, k], a[k - 1, k]
            if kstep == 1:
                r1 = 1.0 / a[k, k]
                for j in range(k):  # dsyr: A -= r1 · x xᵀ, as LAPACK orders it
                    scaled = -r1 * a[j, k]
                    for i in range(j + 1):
                        a[i, j] += a[i, k] * scaled
                for i in range(k):
                    a[i, k] *= r1
            elif k > 1:
                d12 = a[k - 1, k]
                d22 = a[k - 1, k - 1] / d12
                d11 = a[k, k] / d12
                t = 1.0 / (d11 * d22 - 1.0)
                d12 = t / d12
                for j in range(k - 2, -1, -1):
                    wkm1 = d12 * (d11 * a[j, k - 1] - a[j, k])
                    wk = d12 * (d22 * a[j, k] - a[j, k - 1])
                    for i in range(j, -1, -1):
                        a[i, j] = a[i, j] - a[i, k] * wk - a[i, k - 1] * wkm1
                    a[j, k] = wk
                    a[j, k - 1] = wkm1
        k -= kstep
    total = 0.0
    for i in range(n):
        value = a[i, i]
        if value < _LOW or not np.isfinite(value):
            total += np.log(_LOW)
        else:
            total += np.log(value)
    return total


def nb_cdf(x: np.ndarray, size: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """R's ``pnbinom(x, size = size, mu = mean)`` for whole ``x`` ≥ 0 (arrays of one shape).

    Below ``_WALK_STEPS`` the sum of the probabilities of 0…x (each from the one before);
    above, the regularised incomplete beta function I_p(size, x + 1), p = size / (size +
    mean) (SciPy's; within about 1e-15 of R's, 1e-13 at means of 10^4 and more).
    """
    size = np.asarray(size, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        prob = size / (size + mean)
        tail = mean / (size + mean)
    out = np.empty(np.broadcast(x, size, mean).shape)
    summed = np.zeros(out.shape, dtype=np.bool_)
    x, size, prob, tail = np.broadcast_arrays(x, size, prob, tail)
    _summed_cdf(
        x.ravel(), size.ravel(), prob.ravel(), tail.ravel(), out.reshape(-1), summed.reshape(-1)
    )
    rest = ~summed
    if rest.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            out[rest] = special.betainc(size[rest], x[rest] + 1.0, prob[rest])
    return out


@njit(nogil=True, cache=True)
def _summed_cdf(x, size, prob, tail, out, summed):  # type: ignore[no-untyped-def]
    """The cdf of counts below ``_WALK_STEPS`` as the sum of their probabilities (where the
    probability of 0 does not underflow)."""
    for i in range(x.size):
        if x[i] >= _WALK_STEPS or not (prob[i] > 0.0 and tail[i] > 0.0):
            continue
        s = size[i]
        pmf = np.exp(s * np.log(prob[i]))
        if not pmf > 0.0:
            continue
        cdf = pmf
        k = 1.0
        while k <= x[i]:
            pmf = pmf * (k - 1.0 + s) / k * tail[i]
            cdf += pmf
            k += 1.0
        out[i] = min(cdf, 1.0)
        summed[i] = True


def nb_quantile(p: np.ndarray, size: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """R's ``qnbinom(p, size = size, mu = mean)`` (all arrays of one shape, p in (0, 1)): the
    smallest count whose lower-tail probability reaches ``p · (1 − 8ε)`` (R's fuzz for left
    continuity).

    From the Cornish-Fisher start (R's too) and its cdf, a walk of at most
    ``_WALK_STEPS`` counts adds or takes off the probability of each count (its ratio to
    the next); where that is not enough (or the probabilities underflow), doubling steps and
    bisection on the incomplete beta function.
    """
    p = np.asarray(p, dtype=np.float64) * (1.0 - _DISCRETE_FUZZ)
    size = np.asarray(size, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    prob = size / (size + mean)
    q = 1.0 / prob
    tail = (1.0 - prob) * q
    sigma = np.sqrt(size * tail * q)
    z = special.ndtri(p)
    with np.errstate(invalid="ignore", divide="ignore"):
        start = np.rint(size * tail + sigma * (z + (q + tail) / sigma * (z * z - 1.0) / 6.0))
    start = np.where(np.isfinite(start), np.maximum(start, 0.0), 0.0)
    at_start = nb_cdf(start, size, mean)
    out = np.empty_like(start)
    walked = np.zeros(start.shape, dtype=np.bool_)
    _walk(
        p.ravel(),
        size.ravel(),
        prob.ravel(),
        (mean / (size + mean)).ravel(),
        start.ravel(),
        at_start.ravel(),
        out.reshape(-1),
        walked.reshape(-1),
    )
    rest = ~walked
    if rest.any():
        out[rest] = _bisected(p[rest], size[rest], prob[rest], start[rest], at_start[rest])
    return out


@njit(nogil=True, cache=True)
def _walk(p, size, prob, tail, start, at_start, out, walked):  # type: ignore[no-untyped-def]
    for i in range(p.size):
        y = start[i]
        cdf = at_start[i]
        s = size[i]
        pmf = np.exp(
            math.lgamma(y + s)
            - math.lgamma(s)
            - math.lgamma(y + 1.0)
            + s * np.log(prob[i])
            + y * np.log(tail[i])
        )
        steps = 0
        if cdf >= p[i]:  # down while the count below still reaches p
            while y > 0.0 and steps <= _WALK_STEPS:
                below = cdf - pmf
                if below < p[i]:
                    break
                pmf = pmf * y / ((y - 1.0 + s) * tail[i])
                cdf = below
                y -= 1.0
                steps += 1
        else:  # up until p is reached
            while cdf < p[i] and steps <= _WALK_STEPS and pmf > 0.0:
                pmf = pmf * (y + s) / (y + 1.0) * tail[i]
                cdf += pmf
                y += 1.0
                steps += 1
            if cdf < p[i]:
                steps = _WALK_STEPS + 1
        if steps <= _WALK_STEPS and np.isfinite(pmf):
            out[i] = y
            walked[i] = True


def _bisected(
    p: np.ndarray, size: np.ndarray, prob: np.ndarray, start: np.ndarray, at_start: np.ndarray
) -> np.ndarray:
    """The smallest count with cdf ≥ ``p`` (p already fuzzed), from ``start`` whose cdf is
    ``at_start``: a bracket widened by doubling steps, then bisection."""

    def cdf(x: np.ndarray, where: np.ndarray) -> np.ndarray:  # pnbinom(x) at ``where``
        return special.betainc(size[where], x + 1.0, prob[where])

    reached = at_start >= p
    # a bracket (low, high]: the cdf below p at low (−1: nothing below 0), at or above at high
    low = np.where(reached, start - 1.0, start)
    high = np.where(reached, start, start + 1.0)
    check_low = reached & (low >= 0)  # where the cdf at low is not known yet
    check_high = ~reached  # where the cdf at high is not known yet
    step = np.ones_like(start)
    while check_low.any() or check_high.any():  # widen by doubling steps
        if check_low.any():
            where = np.flatnonzero(check_low)
            too_high = where[cdf(low[where], where) >= p[where]]
            check_low[where] = False
            high[too_high] = low[too_high]
            step[too_high] *= 2.0
            low[too_high] = np.maximum(low[too_high] - step[too_high], -1.0)
            check_low[too_high] = low[too_high] >= 0
        if check_high.any():
            where = np.flatnonzero(check_high)
            too_low = where[cdf(high[where], where) < p[where]]
            check_high[where] = False
            low[too_low] = high[too_low]
            step[too_low] *= 2.0
            high[too_low] += step[too_low]
            check_high[too_low] = True
    while True:  # bisection: the smallest count with cdf ≥ p
        wide = high - low > 1.0
        if not wide.any():
            return high
        where = np.flatnonzero(wide)
        middle = np.floor((low[where] + high[where]) / 2.0)
        at_or_above = cdf(middle, where) >= p[where]
        high[where[at_or_above]] = middle[at_or_above]
        low[where[~at_or_above]] = middle[~at_or_above]
