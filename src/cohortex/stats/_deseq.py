"""DESeq2's C++ (1.38): ``fitDisp``, ``fitDispGrid`` and ``fitBeta``, gene by gene.

Ports step for step, because DESeq2's numbers depend on where each iterative fit stops:

* ``fitDisp``: the dispersion's log posterior (the negative-binomial log likelihood with the
  Cox-Reid adjustment, and a normal prior on log α for the MAP) maximised over log α by a
  line search along the gradient with Armijo's rule (ε 10⁻⁴, κ₀ 1, the step grown by 1.1
  after an accepted step and halved after every fifth), stopped when the log posterior
  rises by less than ``tol``, when log α falls below its floor, or after ``maxit`` steps;
  log α is kept within [−30, 10].
* ``fitDispGrid``: the same log posterior on 20 points from log 10⁻⁸ to log max(10, n),
  then on 20 points around the best one.
* ``fitBeta``: iteratively reweighted least squares of the GLM with log link and a ridge
  ``λ`` on the coefficients (natural log scale), the means floored at ``minmu``; stopped
  when the deviance changes by less than ``tol`` of itself + 0.1 (after the second step),
  or marked unconverged when a coefficient leaves ±30 or the deviance is not a number.
  The deviance is R's ``dnbinom_mu`` (saddle-point form) as the C++ calls it; R's
  ``lgammafn`` drops Stirling's correction above 4,934,720, which moves the log posterior
  of genes near the Poisson limit by 10⁻⁸ a sample, so it is kept too.

Host only (numba); each kernel walks the genes of a tile (samples × genes, Fortran order).
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import njit

__all__ = [
    "column_product",
    "column_sums",
    "fit_beta",
    "fit_dispersion",
    "fit_dispersion_grid",
    "log_dnbinom",
    "log_likelihood",
]

_LN_SQRT_2PI = 0.9189385332046728
_LN_2PI = 1.8378770664093456
# Stirling's error term at 0, 0.5, …, 15 (R's sferr_halves), from lgamma in 40 digits
_STIRLING_HALVES = np.array(
    [
        0.0,
        0.15342640972002736,
        0.08106146679532726,
        0.05481412105191765,
        0.0413406959554093,
        0.03316287351993629,
        0.02767792568499834,
        0.023746163656297496,
        0.020790672103765093,
        0.018488450532673187,
        0.016644691189821193,
        0.015134973221917378,
        0.013876128823070748,
        0.012810465242920227,
        0.01189670994589177,
        0.011104559758206917,
        0.010411265261972096,
        0.009799416126158804,
        0.009255462182712733,
        0.008768700134139386,
        0.00833056343336287,
        0.00793411456431402,
        0.007573675487951841,
        0.007244554301320383,
        0.00694284010720953,
        0.006665247032707682,
        0.006408994188004207,
        0.006171712263039458,
        0.0059513701127588475,
        0.0057462165130101155,
        0.005554733551962801,
    ]
)
_ARMIJO = 1.0e-4
_LARGE = 30.0  # fitBeta: a coefficient beyond it (natural log scale) stops the fit


# Fullerton's Chebyshev series of Γ on [1, 2] (R's gamcs, the 22 it uses) and of the
# correction term of log Γ above 10 (R's algmcs, the 5 it uses)
_GAMMA_SERIES = np.array(
    [
        +0.8571195590989331421920062399942e-2,
        +0.4415381324841006757191315771652e-2,
        +0.5685043681599363378632664588789e-1,
        -0.4219835396418560501012500186624e-2,
        +0.1326808181212460220584006796352e-2,
        -0.1893024529798880432523947023886e-3,
        +0.3606925327441245256578082217225e-4,
        -0.6056761904460864218485548290365e-5,
        +0.1055829546302283344731823509093e-5,
        -0.1811967365542384048291855891166e-6,
        +0.3117724964715322277790254593169e-7,
        -0.5354219639019687140874081024347e-8,
        +0.9193275519859588946887786825940e-9,
        -0.1577941280288339761767423273953e-9,
        +0.2707980622934954543266540433089e-10,
        -0.4646818653825730144081661058933e-11,
        +0.7973350192007419656460767175359e-12,
        -0.1368078209830916025799499172309e-12,
        +0.2347319486563800657233471771688e-13,
        -0.4027432614949066932766570534699e-14,
        +0.6910051747372100912138336975257e-15,
        -0.1185584500221992907052387126192e-15,
    ]
)
_CORRECTION_SERIES = np.array(
    [
        +0.1666389480451863247205729650822e0,
        -0.1384948176067563840732986059135e-4,
        +0.9810825646924729426157171547487e-8,
        -0.1809129475572494194263306266719e-10,
        +0.6221098041892605227126015543416e-13,
    ]
)


@njit(cache=True)
def _chebyshev(x: float, coefficients: np.ndarray) -> float:
    """R's ``chebyshev_eval``."""
    twice = x * 2.0
    b0 = b1 = b2 = 0.0
    n = coefficients.size
    for i in range(1, n + 1):
        b2 = b1
        b1 = b0
        b0 = twice * b1 - b2 + coefficients[n - i]
    return (b0 - b2) * 0.5


@njit(cache=True)
def _lgamma(x: float) -> float:
    """R's ``lgammafn`` for x > 0, as R computes it: log Γ on (0, 10] from Fullerton's
    series, above it Stirling's formula with his correction term (dropped above 4,934,720,
    which moves the log posterior of genes near the Poisson limit by 10⁻⁸ a sample). Its
    rounding differs from the C library's by ~10⁻¹³ for counts in the hundreds, enough to
    turn the line search's Armijo test where the gradient is below 10⁻⁶."""
    if x < 1e-306:
        return -math.log(x)
    if x <= 10.0:
        n = int(x)
        y = x - n
        n -= 1
        value = _chebyshev(y * 2.0 - 1.0, _GAMMA_SERIES) + 0.9375
        if n < 0:
            value /= x
        else:
            for i in range(1, n + 1):
                value *= y + i
        return math.log(abs(value))
    if x > 1e17:
        return x * (math.log(x) - 1.0)
    if x > 4934720.0:
        return _LN_SQRT_2PI + (x - 0.5) * math.log(x) - x
    if x < 94906265.62425156:
        t = 10.0 / x
        correction = _chebyshev(t * t * 2.0 - 1.0, _CORRECTION_SERIES) / x
    else:
        correction = 1.0 / (x * 12.0)
    return _LN_SQRT_2PI + (x - 0.5) * math.log(x) - x + correction


# Bernoulli numbers B₀, B₁, B₂, B₄, …, B₄₀ as R's dpsifn holds them
_BERNOULLI = np.array(
    [
        1.00000000000000000e00,
        -5.00000000000000000e-01,
        1.66666666666666667e-01,
        -3.33333333333333333e-02,
        2.38095238095238095e-02,
        -3.33333333333333333e-02,
        7.57575757575757576e-02,
        -2.53113553113553114e-01,
        1.16666666666666667e00,
        -7.09215686274509804e00,
        5.49711779448621554e01,
        -5.29124242424242424e02,
        6.19212318840579710e03,
        -8.65802531135531136e04,
        1.42551716666666667e06,
        -2.72982310678160920e07,
        6.01580873900642368e08,
        -1.51163157670921569e10,
        4.29614643061166667e11,
        -1.37116552050883328e13,
        4.88332318973593167e14,
        -1.92965793419400681e16,
    ]
)
_WDTOL = 1.1102230246251565e-16  # dpsifn's wdtol: DBL_EPSILON / 2
_DIGAMMA_SHIFT = 9.0  # dpsifn's xmin for the digamma: below it, the recurrence


@njit(cache=True)
def _digamma(x: float) -> float:
    """R's ``digamma`` for x > 0, as its ``dpsifn(x, 0, 1, 1)`` computes it: the asymptotic
    series from 9 up, the recurrence below. At the Poisson limit the dispersion's gradient
    is a difference of digammas of ~10⁶ in their last bits, so DESeq2's line search takes
    its first step by R's rounding; this follows it."""
    log_x = math.log(x)
    if x * log_x > 0.5 / 2.220446049250313e-16:
        return log_x
    if x < _WDTOL:
        return -1.0 / x
    shifted = x
    log_shifted = log_x
    shift = 0.0
    if x < _DIGAMMA_SHIFT:
        whole = int(x)
        shift = _DIGAMMA_SHIFT - whole
        shifted = x + shift
        log_shifted = math.log(shifted)
    half = 0.5 / shifted
    tolerance = _WDTOL * half
    inverse_square = 1.0 / (shifted * shifted)
    t = 0.5 * inverse_square
    s = t * _BERNOULLI[2]
    if abs(s) >= tolerance:
        tk = 2.0
        for k in range(4, 23):
            t = t * ((tk + 1.0) / (tk + 1.0)) * (tk / (tk + 2.0)) * inverse_square
            term = t * _BERNOULLI[k - 1]
            if abs(term) < tolerance:
                break
            s += term
            tk += 2.0
    s = (s + half) * 1.0
    if shift != 0.0:
        steps = int(shift)
        for i in range(1, steps + 1):
            s += 1.0 / (x + (steps - i))
    return -(s - log_shifted)


@njit(cache=True)
def _stirling_error(n: float) -> float:
    if n <= 15.0:
        nn = n + n
        if nn == int(nn):
            return _STIRLING_HALVES[int(nn)]
        return _lgamma(n + 1.0) - (n + 0.5) * math.log(n) + n - _LN_SQRT_2PI
    nn = n * n
    s0, s1, s2, s3, s4 = 1.0 / 12.0, 1.0 / 360.0, 1.0 / 1260.0, 1.0 / 1680.0, 1.0 / 1188.0
    if n > 500.0:
        return (s0 - s1 / nn) / n
    if n > 80.0:
        return (s0 - (s1 - s2 / nn) / nn) / n
    if n > 35.0:
        return (s0 - (s1 - (s2 - s3 / nn) / nn) / nn) / n
    return (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / n


@njit(cache=True)
def _deviance_part(x: float, np_: float) -> float:
    """R's ``bd0``: x log(x / np) + np − x, by its series where x is near np."""
    if abs(x - np_) < 0.1 * (x + np_):
        v = (x - np_) / (x + np_)
        s = (x - np_) * v
        if abs(s) < 2.2250738585072014e-308:
            return s
        ej = 2.0 * x * v
        v = v * v
        for j in range(1, 1000):
            ej *= v
            s1 = s + ej / (2 * j + 1)
            if s1 == s:
                return s1
            s = s1
    return x * math.log(x / np_) + np_ - x


@njit(cache=True)
def _log_dbinom_raw(x: float, n: float, p: float, q: float) -> float:
    if p == 0.0:
        return 0.0 if x == 0.0 else -math.inf
    if q == 0.0:
        return 0.0 if x == n else -math.inf
    if x == 0.0:
        if n == 0.0:
            return 0.0
        return -_deviance_part(n, n * q) - n * p if p < 0.1 else n * math.log(q)
    if x == n:
        return -_deviance_part(n, n * p) - n * q if q < 0.1 else n * math.log(p)
    if x < 0.0 or x > n:
        return -math.inf
    lc = (
        _stirling_error(n)
        - _stirling_error(x)
        - _stirling_error(n - x)
        - _deviance_part(x, n * p)
        - _deviance_part(n - x, n * q)
    )
    lf = _LN_2PI + math.log(x) + math.log1p(-x / n)
    return lc - 0.5 * lf


@njit(cache=True)
def log_dnbinom(x: float, size: float, mu: float) -> float:
    """R's ``dnbinom(x, size = size, mu = mu, log = TRUE)`` (``dnbinom_mu``), x a count."""
    if x == 0.0:
        if size < mu:
            return size * math.log(size / (size + mu))
        return size * math.log1p(-mu / (size + mu))
    if x < 1e-10 * size:
        p = math.log(size / (1.0 + size / mu)) if size < mu else math.log(mu / (1.0 + mu / size))
        return x * p - mu - _lgamma(x + 1.0) + math.log1p(x * (x - 1.0) / (2.0 * size))
    p = size / (size + x)
    return math.log(p) + _log_dbinom_raw(size, x + size, size / (size + mu), mu / (size + mu))


@njit(cache=True, nogil=True)
def log_likelihood(counts: np.ndarray, size: float, mu: np.ndarray) -> float:
    """Σ log dnbinom(counts, size, mu) of one gene (counts and mu of shape (n,))."""
    total = 0.0
    for i in range(counts.size):
        total += log_dnbinom(counts[i], size, mu[i])
    return total


@njit(cache=True)
def _cholesky(a: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a small symmetric positive-definite matrix (NaN if not)."""
    p = a.shape[0]
    low = np.zeros((p, p))
    for j in range(p):
        s = a[j, j]
        for k in range(j):
            s -= low[j, k] * low[j, k]
        if not s > 0.0:
            low[:, :] = np.nan
            return low
        low[j, j] = math.sqrt(s)
        for i in range(j + 1, p):
            t = a[i, j]
            for k in range(j):
                t -= low[i, k] * low[j, k]
            low[i, j] = t / low[j, j]
    return low


@njit(cache=True)
def _inverse(a: np.ndarray) -> np.ndarray:
    """Inverse of a small symmetric positive-definite matrix, by its Cholesky factor."""
    p = a.shape[0]
    low = _cholesky(a)
    inv_low = np.zeros((p, p))
    for j in range(p):
        inv_low[j, j] = 1.0 / low[j, j]
        for i in range(j + 1, p):
            t = 0.0
            for k in range(j, i):
                t -= low[i, k] * inv_low[k, j]
            inv_low[i, j] = t / low[i, i]
    out = np.zeros((p, p))
    for i in range(p):
        for j in range(p):
            t = 0.0
            for k in range(max(i, j), p):
                t += inv_low[k, i] * inv_low[k, j]
            out[i, j] = t
    return out


@njit(cache=True)
def _weighted_cross(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Xᵀ diag(w) X, (p × p)."""
    n, p = x.shape
    out = np.zeros((p, p))
    for i in range(n):
        wi = w[i]
        for a in range(p):
            xa = x[i, a] * wi
            for b in range(a + 1):
                out[a, b] += xa * x[i, b]
    for a in range(p):
        for b in range(a):
            out[b, a] = out[a, b]
    return out


@njit(cache=True)
def _distinct(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A gene's distinct counts and each sample's place among them: the log-gamma and
    digamma terms are evaluated once per distinct count and summed sample by sample, in
    DESeq2's order."""
    values = np.unique(y)
    return values, np.searchsorted(values, y)


@njit(cache=True)
def _log_posterior(log_alpha, y, distinct, place, mu, x, prior_mean, prior_var, use_prior):  # type: ignore[no-untyped-def]
    """DESeq2's ``log_posterior`` with the Cox-Reid term (``useCR``), no weights."""
    alpha = math.exp(log_alpha)
    n = y.size
    w = np.empty(n)
    for i in range(n):
        w[i] = 1.0 / (1.0 / mu[i] + alpha)
    low = _cholesky(_weighted_cross(x, w))
    log_det = 0.0
    for j in range(low.shape[0]):
        log_det += 2.0 * math.log(low[j, j])
    inverse_alpha = 1.0 / alpha
    lgamma_inverse = _lgamma(inverse_alpha)
    shifted = np.empty(distinct.size)
    for k in range(distinct.size):
        shifted[k] = _lgamma(distinct[k] + inverse_alpha)
    ll = 0.0
    for i in range(n):
        ll += (
            shifted[place[i]]
            - lgamma_inverse
            - y[i] * math.log(mu[i] + inverse_alpha)
            - inverse_alpha * math.log(1.0 + mu[i] * alpha)
        )
    prior = 0.0
    if use_prior:
        prior = -0.5 * (log_alpha - prior_mean) ** 2 / prior_var
    return ll + prior - 0.5 * log_det


@njit(cache=True)
def _dlog_posterior(log_alpha, y, distinct, place, mu, x, prior_mean, prior_var, use_prior):  # type: ignore[no-untyped-def]
    """The derivative of :func:`_log_posterior` with respect to log α."""
    alpha = math.exp(log_alpha)
    n = y.size
    w = np.empty(n)
    dw = np.empty(n)
    for i in range(n):
        inverse_w = 1.0 / mu[i] + alpha
        w[i] = 1.0 / inverse_w
        dw[i] = -1.0 / (inverse_w * inverse_w)
    b_inverse = _inverse(_weighted_cross(x, w))
    db = _weighted_cross(x, dw)
    trace = 0.0
    p = db.shape[0]
    for a in range(p):
        for c in range(p):
            trace += b_inverse[a, c] * db[c, a]
    cr = -0.5 * trace
    inverse_alpha = 1.0 / alpha
    digamma_inverse = _digamma(inverse_alpha)
    shifted = np.empty(distinct.size)
    for k in range(distinct.size):
        shifted[k] = _digamma(distinct[k] + inverse_alpha)
    s = 0.0
    for i in range(n):
        ma = mu[i] * alpha
        s += (
            digamma_inverse
            + math.log(1.0 + ma)
            - ma / (1.0 + ma)
            - shifted[place[i]]
            + y[i] / (mu[i] + inverse_alpha)
        )
    ll = s * inverse_alpha * inverse_alpha
    prior = 0.0
    if use_prior:
        prior = -(log_alpha - prior_mean) / prior_var
    return (ll + cr) * alpha + prior


@njit(cache=True, nogil=True)
def fit_dispersion(  # type: ignore[no-untyped-def]
    counts,
    mu,
    x,
    log_alpha,
    prior_mean,
    prior_var,
    min_log_alpha,
    kappa_0,
    tol,
    maxit,
    use_prior,
    iterations,
    initial_lp,
    last_lp,
):
    """DESeq2's ``fitDisp`` over the genes (columns) of ``counts`` and ``mu`` (n × g).

    ``log_alpha`` (g,) holds the starts and receives the estimates; ``prior_mean`` (g,);
    ``iterations``, ``initial_lp`` and ``last_lp`` (g,) receive the steps taken and the log
    posterior before and after.
    """
    for g in range(counts.shape[1]):
        y = counts[:, g]
        distinct, place = _distinct(y)
        m = mu[:, g]
        pm = prior_mean[g]
        a = log_alpha[g]
        lp = _log_posterior(a, y, distinct, place, m, x, pm, prior_var, use_prior)
        dlp = _dlog_posterior(a, y, distinct, place, m, x, pm, prior_var, use_prior)
        kappa = kappa_0
        initial_lp[g] = lp
        steps = 0
        accepted = 0
        for _ in range(maxit):
            steps += 1
            a_propose = a + kappa * dlp
            if a_propose < -30.0:
                kappa = (-30.0 - a) / dlp
            if a_propose > 10.0:
                kappa = (10.0 - a) / dlp
            theta_kappa = -_log_posterior(
                a + kappa * dlp, y, distinct, place, m, x, pm, prior_var, use_prior
            )
            theta_hat_kappa = -lp - kappa * _ARMIJO * dlp * dlp
            if theta_kappa <= theta_hat_kappa:
                accepted += 1
                a = a + kappa * dlp
                lp_new = _log_posterior(a, y, distinct, place, m, x, pm, prior_var, use_prior)
                change = lp_new - lp
                if change < tol:
                    lp = lp_new
                    break
                if a < min_log_alpha:
                    break
                lp = lp_new
                dlp = _dlog_posterior(a, y, distinct, place, m, x, pm, prior_var, use_prior)
                kappa = min(kappa * 1.1, kappa_0)
                if accepted % 5 == 0:
                    kappa = kappa / 2.0
            else:
                kappa = kappa / 2.0
        iterations[g] = steps
        last_lp[g] = lp
        log_alpha[g] = a


@njit(cache=True, nogil=True)
def fit_dispersion_grid(counts, mu, x, grid, prior_mean, prior_var, use_prior, out):  # type: ignore[no-untyped-def]
    """DESeq2's ``fitDispGrid``: the log posterior on ``grid`` (log α), then on as many
    points within one grid step of the best; ``out`` (g,) receives the best log α."""
    k = grid.size
    delta = grid[1] - grid[0]
    values = np.empty(k)
    for g in range(counts.shape[1]):
        y = counts[:, g]
        distinct, place = _distinct(y)
        m = mu[:, g]
        pg = prior_mean[g]
        for t in range(k):
            values[t] = _log_posterior(grid[t], y, distinct, place, m, x, pg, prior_var, use_prior)
        best = grid[np.argmax(values)]
        fine = np.linspace(best - delta, best + delta, k)
        for t in range(k):
            values[t] = _log_posterior(fine[t], y, distinct, place, m, x, pg, prior_var, use_prior)
        out[g] = fine[np.argmax(values)]


@njit(cache=True, nogil=True)
def fit_beta(  # type: ignore[no-untyped-def]
    counts,
    factors,
    x,
    alpha,
    beta,
    ridge,
    tol,
    maxit,
    minmu,
    iterations,
    deviance,
    covariance,
    hat,
):
    """DESeq2's ``fitBeta`` over the genes (columns) of ``counts`` (n × g).

    ``factors`` (n × g) are the counts' normalization factors (a sample's size factor down
    each row without gene-wise ones); ``beta`` (p × g, natural log scale) holds the starts
    and receives the fits; ``ridge``
    (p,) the penalty; ``iterations`` and ``deviance`` (g,); ``covariance`` (p·p × g) the
    sandwich ``(XᵀWX + Λ)⁻¹ XᵀWX (XᵀWX + Λ)⁻¹`` flattened by rows; ``hat`` (n × g) the hat
    matrix's diagonal.
    """
    n, p = x.shape
    mu = np.empty(n)
    w = np.empty(n)
    z = np.empty(n)
    b = np.empty(p)
    for g in range(counts.shape[1]):
        y = counts[:, g]
        size = 1.0 / alpha[g]
        for c in range(p):
            b[c] = beta[c, g]
        for i in range(n):
            eta = 0.0
            for c in range(p):
                eta += x[i, c] * b[c]
            mu[i] = max(factors[i, g] * math.exp(eta), minmu)
        dev = 0.0
        dev_old = 0.0
        steps = 0
        for t in range(maxit):
            steps += 1
            for i in range(n):
                w[i] = mu[i] / (1.0 + alpha[g] * mu[i])
                z[i] = math.log(mu[i] / factors[i, g]) + (y[i] - mu[i]) / mu[i]
            a = _weighted_cross(x, w)
            for c in range(p):
                a[c, c] += ridge[c]
            rhs = np.zeros(p)
            for i in range(n):
                for c in range(p):
                    rhs[c] += x[i, c] * w[i] * z[i]
            low = _cholesky(a)
            # forward and back substitution
            for c in range(p):
                s = rhs[c]
                for k in range(c):
                    s -= low[c, k] * b[k]
                b[c] = s / low[c, c]
            for c in range(p - 1, -1, -1):
                s = b[c]
                for k in range(c + 1, p):
                    s -= low[k, c] * b[k]
                b[c] = s / low[c, c]
            wild = False
            for c in range(p):
                if abs(b[c]) > _LARGE:
                    wild = True
            if wild:
                steps = maxit
                break
            for i in range(n):
                eta = 0.0
                for c in range(p):
                    eta += x[i, c] * b[c]
                mu[i] = max(factors[i, g] * math.exp(eta), minmu)
            dev = 0.0
            for i in range(n):
                dev += -2.0 * log_dnbinom(y[i], size, mu[i])
            conv_test = abs(dev - dev_old) / (abs(dev) + 0.1)
            if math.isnan(conv_test):
                steps = maxit
                break
            if t > 0 and conv_test < tol:
                break
            dev_old = dev
        iterations[g] = steps
        deviance[g] = dev
        for c in range(p):
            beta[c, g] = b[c]
        for i in range(n):
            w[i] = mu[i] / (1.0 + alpha[g] * mu[i])
        information = _weighted_cross(x, w)
        a = information.copy()
        for c in range(p):
            a[c, c] += ridge[c]
        a_inverse = _inverse(a)
        for i in range(n):
            h = 0.0
            for c in range(p):
                for d in range(p):
                    h += x[i, c] * a_inverse[c, d] * x[i, d]
            hat[i, g] = w[i] * h
        sandwich = a_inverse @ information @ a_inverse
        for c in range(p):
            for d in range(p):
                covariance[c * p + d, g] = sandwich[c, d]


@njit(cache=True, nogil=True)
def column_product(a, b):  # type: ignore[no-untyped-def]
    """``a @ b`` (r × k by k × g), each element summed over k in order: a gene's value does
    not depend on how many genes share its tile (BLAS rounds a product of one to three
    columns differently from a wider one), so neither do the line searches that start from
    it."""
    r, k = a.shape
    g = b.shape[1]
    out = np.zeros((r, g))
    for j in range(g):
        for i in range(r):
            total = 0.0
            for t in range(k):
                total += a[i, t] * b[t, j]
            out[i, j] = total
    return out


@njit(cache=True, nogil=True)
def column_sums(a):  # type: ignore[no-untyped-def]
    """Each column's sum (n × g → g), in row order: as :func:`column_product`, the same
    whatever the array's width and layout (NumPy's reductions sum a lone contiguous
    column pairwise and a wide array row by row)."""
    n, g = a.shape
    out = np.zeros(g)
    for j in range(g):
        total = 0.0
        for i in range(n):
            total += a[i, j]
        out[j] = total
    return out
