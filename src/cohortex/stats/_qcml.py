"""Classic edgeR: quantile-adjusted pseudo-counts, the conditional likelihood and the exact
test.

edgeR's classic mode compares groups of samples as if every library had the same size:
``equalizeLibSizes`` moves each count to the same quantile of a negative binomial at the
common library size (``q2qnbinom``: the mean of a normal and a gamma approximation's
quantiles), and within each group the sum of the pseudo-counts is then sufficient for the
dispersion (the conditional likelihood, ``condLogLikDerDelta``) and for the comparison of two
groups (``exactTestDoubleTail``: the probabilities of the splits of the total at least as
unlikely, on both sides, and a beta approximation for big counts).

Host code: NumPy, SciPy's distributions and numba loops; counts are samples × genes.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import special, stats

from .._jit import njit
from ._negative_binomial import one_group

__all__ = [
    "conditional_log_likelihood",
    "equalize_lib_sizes",
    "exact_test_double_tail",
    "q2q_nbinom",
]

_BLOCK_VALUES = 1 << 18  # values of one block of q2q_nbinom


def q2q_nbinom(
    x: np.ndarray, input_mean: np.ndarray, output_mean: np.ndarray, dispersion: np.ndarray
) -> np.ndarray:
    """edgeR's ``q2qnbinom``: each value moved from a negative binomial with mean
    ``input_mean`` to the same quantile of one with mean ``output_mean`` (samples × genes;
    the other arguments broadcast to it), the mean of the normal and the gamma
    approximations' quantiles. In blocks of genes: a dozen temporaries of a block each."""
    x, input_mean, output_mean, dispersion = np.broadcast_arrays(
        x, input_mean, output_mean, dispersion
    )
    out = np.empty(x.shape)
    step = max(1, _BLOCK_VALUES // max(x.shape[0], 1))
    for a in range(0, x.shape[1], step):
        b = a + step
        out[:, a:b] = _q2q_block(
            x[:, a:b], input_mean[:, a:b], output_mean[:, a:b], dispersion[:, a:b]
        )
    return out


def _q2q_block(
    x: np.ndarray, input_mean: np.ndarray, output_mean: np.ndarray, dispersion: np.ndarray
) -> np.ndarray:
    eps = 1e-14
    zero = (input_mean < eps) | (output_mean < eps)
    input_mean = np.where(zero, input_mean + 0.25, input_mean)
    output_mean = np.where(zero, output_mean + 0.25, output_mean)
    ri = 1.0 + dispersion * input_mean
    ro = 1.0 + dispersion * output_mean
    upper = x >= input_mean
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z_in = (x - input_mean) / np.sqrt(input_mean * ri)
        normal = special.ndtri_exp(special.log_ndtr(np.where(upper, -z_in, z_in)))
        q1 = output_mean + np.sqrt(output_mean * ro) * np.where(upper, -normal, normal)
        shape_in = input_mean / ri
        scaled = x / ri
        lower = ~upper
        # each tail's probability where it is the tail (the inverses are the costly part);
        # in logs from SciPy's distribution only where it underflows
        p2 = np.empty(x.shape)
        p2[upper] = special.gammaincc(shape_in[upper], scaled[upper])
        p2[lower] = special.gammainc(shape_in[lower], scaled[lower])
        tiny = p2 < 1e-300
        if tiny.any():
            log_tail = np.where(
                upper[tiny],
                stats.gamma.logsf(scaled[tiny], shape_in[tiny]),
                stats.gamma.logcdf(scaled[tiny], shape_in[tiny]),
            )
            p2[tiny] = np.exp(log_tail)
        shape_out = output_mean / ro
        q2 = np.empty(x.shape)
        q2[upper] = special.gammainccinv(shape_out[upper], p2[upper])
        q2[lower] = special.gammaincinv(shape_out[lower], p2[lower])
        q2 *= ro
    return (q1 + q2) / 2.0


def equalize_lib_sizes(
    counts: np.ndarray, codes: np.ndarray, lib_sizes: np.ndarray, dispersion: np.ndarray
) -> np.ndarray:
    """edgeR's ``equalizeLibSizes``: the pseudo-counts at the geometric mean of the library
    sizes (samples × genes), each group's rate from its one-group NB fit.

    Parameters
    ----------
    counts : ndarray of shape (n_samples, n_genes)
    codes : ndarray of shape (n_samples,)
        Each sample's group, 0…k−1.
    lib_sizes : ndarray of shape (n_samples,)
        Effective library sizes (times the normalisation factors).
    dispersion : ndarray of shape (n_genes,)
    """
    counts = np.asfortranarray(counts, dtype=np.float64)
    dispersion = np.ascontiguousarray(np.broadcast_to(dispersion, counts.shape[1:]), np.float64)
    common = float(np.exp(np.mean(np.log(lib_sizes))))
    offsets = np.log(lib_sizes)
    input_mean = np.empty(counts.shape)
    output_mean = np.empty(counts.shape)
    for g in range(int(codes.max()) + 1):
        members = np.flatnonzero(codes == g)
        rate = np.exp(one_group(counts, offsets, dispersion, members))
        input_mean[members] = rate[None, :] * lib_sizes[members, None]
        output_mean[members] = rate[None, :] * common
    pseudo = q2q_nbinom(counts, input_mean, output_mean, dispersion[None, :])
    return np.maximum(pseudo, 0.0)


def conditional_log_likelihood(
    pseudo: np.ndarray, codes: np.ndarray, delta: float | np.ndarray
) -> np.ndarray:
    """edgeR's ``condLogLikDerDelta(der = 0)`` summed over the groups: each gene's
    conditional log-likelihood (n_genes,) at ``delta = φ / (1 + φ)`` (one or one per gene);
    ``pseudo`` samples × genes, best in Fortran order."""
    pseudo = np.asfortranarray(pseudo, dtype=np.float64)
    r = np.broadcast_to(1.0 / np.asarray(delta, dtype=np.float64) - 1.0, pseudo.shape[1:])
    order = np.argsort(codes, kind="stable")  # each group's samples together
    edges = np.searchsorted(codes[order], np.arange(int(codes.max()) + 2))
    out = np.empty(pseudo.shape[1])
    _conditional(pseudo, order, edges, np.ascontiguousarray(r), out)
    return out


@njit(parallel=True, nogil=True, cache=True)
def _conditional(
    pseudo: np.ndarray, order: np.ndarray, edges: np.ndarray, r: np.ndarray, out: np.ndarray
) -> None:
    for g in numba.prange(pseudo.shape[1]):
        size = r[g]
        total = 0.0
        for k in range(edges.size - 1):
            n = edges[k + 1] - edges[k]
            if n == 0:
                continue
            terms = 0.0
            sum_y = 0.0
            for i in range(edges[k], edges[k + 1]):
                y = pseudo[order[i], g]
                terms += math.lgamma(y + size)
                sum_y += y
            mean = sum_y / n
            total += terms + math.lgamma(n * size) - math.lgamma(n * (mean + size))
            total -= n * math.lgamma(size)
        out[g] = total


def exact_test_double_tail(
    first: np.ndarray, second: np.ndarray, dispersion: np.ndarray, big_count: float
) -> np.ndarray:
    """edgeR's ``exactTestDoubleTail``: the log p-value of every gene (n_genes,) from the
    pseudo-counts of two groups (samples × genes each) and positive dispersions."""
    n1, n2 = first.shape[0], second.shape[0]
    y1 = first.sum(axis=0)
    y2 = second.sum(axis=0)
    s1 = np.round(y1)
    s2 = np.round(y2)
    out = np.zeros(y1.size)
    big = (s1 > big_count) & (s2 > big_count)
    if big.any():
        out[big] = _beta_approximation(y1[big], y2[big], n1, n2, dispersion[big])
    small = np.flatnonzero(~big)
    out[small] = _double_tail(s1[small], s2[small], n1, n2, np.ascontiguousarray(dispersion[small]))
    return np.minimum(out, 0.0)


def _beta_approximation(
    y1: np.ndarray, y2: np.ndarray, n1: int, n2: int, dispersion: np.ndarray
) -> np.ndarray:
    """edgeR's ``exactTestBetaApprox`` (log p-values): the share of the first group's sum
    against a beta distribution."""
    y = y1 + y2
    mu = y / (n1 + n2)
    out = np.zeros(y.size)
    alpha1 = n1 * mu / (1.0 + dispersion * mu)
    alpha2 = n2 / n1 * alpha1
    positive = y > 0
    median = np.zeros(y.size)
    median[positive] = special.betaincinv(alpha1[positive], alpha2[positive], 0.5)
    with np.errstate(divide="ignore", invalid="ignore"):
        left = ((y1 + 0.5) / y < median) & positive
        right = ((y1 - 0.5) / y > median) & positive
    out[left] = np.log(2.0) + stats.beta.logcdf(
        (y1[left] + 0.5) / y[left], alpha1[left], alpha2[left]
    )
    out[right] = np.log(2.0) + stats.beta.logsf(
        (y1[right] - 0.5) / y[right], alpha1[right], alpha2[right]
    )
    return out


@njit(nogil=True, cache=True)
def _log_dnbinom(x: float, size: float, mu: float) -> float:
    return (
        math.lgamma(x + size)
        - math.lgamma(size)
        - math.lgamma(x + 1.0)
        + size * math.log(size / (size + mu))
        + x * math.log(mu / (size + mu))
        if x > 0
        else size * math.log(size / (size + mu))
    )


@njit(nogil=True, cache=True)
def _double_tail(
    s1: np.ndarray, s2: np.ndarray, n1: int, n2: int, dispersion: np.ndarray
) -> np.ndarray:
    out = np.zeros(s1.size)
    for g in range(s1.size):
        s = s1[g] + s2[g]
        mu = s / (n1 + n2)
        mu1 = n1 * mu
        mu2 = n2 * mu
        phi = dispersion[g]
        if s1[g] == mu1 or s == 0:
            continue  # p = 1
        size1 = n1 / phi
        size2 = n2 / phi
        if s1[g] < mu1:
            low, high = 0.0, s1[g]
        else:
            low, high = s1[g], s
        # log Σ over the tail, the largest term first out of the sum
        count = int(high - low) + 1
        terms = np.empty(count)
        largest = -np.inf
        for k in range(count):
            x = low + k
            terms[k] = _log_dnbinom(x, size1, mu1) + _log_dnbinom(s - x, size2, mu2)
            largest = max(largest, terms[k])
        total = 0.0
        for k in range(count):
            total += math.exp(terms[k] - largest)
        bottom = _log_dnbinom(s, (n1 + n2) / phi, s)
        out[g] = math.log(2.0) + largest + math.log(total) - bottom
    return out
