"""R's default random streams: ``set.seed(seed)`` (Mersenne-Twister, normals by inversion),
then ``runif``, ``rnorm``, ``rchisq`` and ``sample`` with or without replacement (R ≥ 3.6's
rejection sampling), for the R algorithms whose results depend on their random draws:
impute.knn's random start, DESeq2's simulated dispersion prior variance (three residual degrees of
freedom or fewer), ConsensusClusterPlus's subsamples and kmeans' starting centres, num.sv's
permutations, WGCNA's pre-clustering, IHW's random ranks and folds, and limma's rotations
(roast, romer).

R seeds the generator by scrambling the seed with the congruential ``69069 * seed + 1`` (50
times, then once per word of the state); the words are then the standard MT19937 state. The
draws are R's nmath algorithms, operation for operation: ``norm_rand`` (two uniforms for
2^27 × 2^32 steps, then ``qnorm``, Wichura's AS 241), ``exp_rand`` (Ahrens & Dieter 1972) and
``rgamma`` (Ahrens & Dieter's GS for shapes below 1, GD otherwise), so every draw is R's to the
last bit, rejections included.
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import njit

__all__ = ["RRandom"]

_I2_32M1 = 2.328306437080797e-10  # 1 / (2^32 - 1): R's fixup keeps draws inside (0, 1)
_BIG = 134217728.0  # 2^27: norm_rand's first uniform, in steps
_EXP_Q = np.array(  # exp_rand's q[k - 1] = sum(log(2)^j / j!, j = 1..k)
    [
        0.6931471805599453,
        0.9333736875190459,
        0.9888777961838675,
        0.9984959252914960,
        0.9998292811061389,
        0.9999833164100727,
        0.9999985691438767,
        0.9999998906925558,
        0.9999999924734159,
        0.9999999995283275,
        0.9999999999728814,
        0.9999999999985598,
        0.9999999999999289,
        0.9999999999999968,
        0.9999999999999999,
        1.0000000000000000,
    ]
)

# qnorm's rational approximations (AS 241), highest power first: |p - 0.5| <= 0.425, then
# sqrt(-log(min(p, 1 - p))) up to 5 and beyond
_CENTRAL_NUMERATOR = np.array(
    [
        2509.0809287301226727,
        33430.575583588128105,
        67265.770927008700853,
        45921.953931549871457,
        13731.693765509461125,
        1971.5909503065514427,
        133.14166789178437745,
        3.387132872796366608,
    ]
)
_CENTRAL_DENOMINATOR = np.array(
    [
        5226.495278852854561,
        28729.085735721942674,
        39307.89580009271061,
        21213.794301586595867,
        5394.1960214247511077,
        687.1870074920579083,
        42.313330701600911252,
        1.0,
    ]
)
_NEAR_NUMERATOR = np.array(
    [
        7.7454501427834140764e-4,
        0.0227238449892691845833,
        0.24178072517745061177,
        1.27045825245236838258,
        3.64784832476320460504,
        5.7694972214606914055,
        4.6303378461565452959,
        1.42343711074968357734,
    ]
)
_NEAR_DENOMINATOR = np.array(
    [
        1.05075007164441684324e-9,
        5.475938084995344946e-4,
        0.0151986665636164571966,
        0.14810397642748007459,
        0.68976733498510000455,
        1.6763848301838038494,
        2.05319162663775882187,
        1.0,
    ]
)
_FAR_NUMERATOR = np.array(
    [
        2.01033439929228813265e-7,
        2.71155556874348757815e-5,
        0.0012426609473880784386,
        0.026532189526576123093,
        0.29656057182850489123,
        1.7848265399172913358,
        5.4637849111641143699,
        6.6579046435011037772,
    ]
)
_FAR_DENOMINATOR = np.array(
    [
        2.04426310338993978564e-15,
        1.4215117583164458887e-7,
        1.8463183175100546818e-5,
        7.868691311456132591e-4,
        0.0148753612908506148525,
        0.13692988092273580531,
        0.59983220655588793769,
        1.0,
    ]
)
# rgamma's GD: q0 = sum(q[k] a^-k), and the quotient's sum(a[k] v^k), highest power first
_GD_Q = np.array([2.424e-4, 2.4511e-4, -7.388e-5, 0.00144121, 0.00801191, 0.02083148, 0.04166669])
_GD_A = np.array([0.1233795, -0.1367177, 0.1423657, -0.1662921, 0.2000062, -0.250003, 0.3333333])


class RRandom:
    """The draws R makes after ``set.seed(seed)``: they follow each other across calls and
    kinds of draw, as R's do.

    Parameters
    ----------
    seed : int
    """

    def __init__(self, seed: int) -> None:
        state = seed % 2**32
        for _ in range(50):
            state = (69069 * state + 1) % 2**32
        # R's .Random.seed[-1]: the position, then the 624 words of MT19937
        self._state = np.empty(625, dtype=np.int64)
        for j in range(625):
            state = (69069 * state + 1) % 2**32
            self._state[j] = state
        self._state[0] = 624  # R resets the position: a fresh block comes first

    def uniforms(self, count: int) -> np.ndarray:
        """``runif(count)``: shape (count,), in (0, 1)."""
        return _uniform_draws(self._state, count)

    def normals(self, count: int, mean: float = 0.0, sd: float = 1.0) -> np.ndarray:
        """``rnorm(count, mean, sd)``: shape (count,). With ``sd = 0`` R draws nothing."""
        return _normal_draws(self._state, count, float(mean), float(sd))

    def chisq(self, count: int, df: float) -> np.ndarray:
        """``rchisq(count, df)``, R's ``rgamma(df / 2, scale = 2)``: shape (count,)."""
        return _chisq_draws(self._state, count, float(df))

    def sample(self, n: int, size: int) -> np.ndarray:
        """``sample.int(n, size)`` without replacement (n up to 10^7): 1-based, shape (size,).

        R ≥ 3.6's algorithm: each index by rejection from the bits of 16-bit pieces of
        uniforms (``R_unif_index``), drawn from a pool that the chosen index leaves."""
        return _sample_draws(self._state, n, size)

    def standard_normal(self, size: int | tuple[int, ...]) -> np.ndarray:
        """``rnorm(prod(size))`` in the shape of NumPy's ``Generator.standard_normal(size)``
        (filled in C order), so that code drawing from a Generator draws R's numbers."""
        return self.normals(int(np.prod(size))).reshape(size)

    def chisquare(self, df: float, size: int) -> np.ndarray:
        """``rchisq(size, df)`` as NumPy's ``Generator.chisquare(df, size)``."""
        return self.chisq(int(size), df)

    def sample_replace(self, n: int, size: int) -> np.ndarray:
        """``sample.int(n, size, replace = TRUE)``: 1-based, shape (size,), each index
        ``R_unif_index(n)`` on its own."""
        return _sample_replace_draws(self._state, n, size)

    def permutations(self, count: int, n: int) -> np.ndarray:
        """``count`` successive ``sample.int(n)`` (whole permutations, as ``sample(x)`` of a
        vector of length n draws them): shape (count, n), 0-based."""
        return _permutation_draws(self._state, count, n)


@njit(nogil=True, cache=True)
def _twist(state: np.ndarray) -> None:
    """MT19937's next block of 624 words, in place (``state[1:]``)."""
    words = state[1:]
    for k in range(624):
        y = (words[k] & 0x80000000) | (words[k + 1 if k < 623 else 0] & 0x7FFFFFFF)
        value = words[k + 397 if k < 227 else k - 227] ^ (y >> 1)
        if y & 1:
            value ^= 0x9908B0DF
        words[k] = value


@njit(nogil=True, cache=True)
def _unif_rand(state: np.ndarray) -> float:
    """R's ``unif_rand()`` for Mersenne-Twister: the tempered word times 2^-32, kept in
    (0, 1) by R's fixup."""
    if state[0] >= 624:
        _twist(state)
        state[0] = 0
    y = state[1 + state[0]]
    state[0] += 1
    y ^= y >> 11
    y ^= (y << 7) & 0x9D2C5680
    y ^= (y << 15) & 0xEFC60000
    y ^= y >> 18
    u = y * 2.3283064365386963e-10
    if u <= 0.0:
        return 0.5 * _I2_32M1
    if 1.0 - u <= 0.0:
        return 1.0 - 0.5 * _I2_32M1
    return u


@njit(nogil=True, cache=True)
def _horner(coefficients: np.ndarray, r: float) -> float:
    """The polynomial with ``coefficients`` (highest power first) at r, in R's order of
    operations: ``((c[0] * r + c[1]) * r + ...) + c[-1]``."""
    value = coefficients[0]
    for i in range(1, coefficients.size):
        value = value * r + coefficients[i]
    return value


@njit(nogil=True, cache=True)
def _qnorm(p: float) -> float:
    """R's ``qnorm(p)`` (Wichura's AS 241) for p in (0, 1), lower tail, not logged."""
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return q * _horner(_CENTRAL_NUMERATOR, r) / _horner(_CENTRAL_DENOMINATOR, r)
    r = (0.5 - p + 0.5) if q > 0 else p  # min(p, 1 - p), 1 - p as R writes it
    r = math.sqrt(-math.log(r))
    if r <= 5.0:
        r += -1.6
        value = _horner(_NEAR_NUMERATOR, r) / _horner(_NEAR_DENOMINATOR, r)
    else:
        r += -5.0
        value = _horner(_FAR_NUMERATOR, r) / _horner(_FAR_DENOMINATOR, r)
    return -value if q < 0.0 else value


@njit(nogil=True, cache=True)
def _norm_rand(state: np.ndarray) -> float:
    """R's ``norm_rand()`` by inversion."""
    u = _unif_rand(state)
    u = float(int(_BIG * u)) + _unif_rand(state)
    return _qnorm(u / _BIG)


@njit(nogil=True, cache=True)
def _exp_rand(state: np.ndarray) -> float:
    """R's ``exp_rand()``: Ahrens & Dieter (1972)'s algorithm SA."""
    a = 0.0
    u = _unif_rand(state)
    while True:
        u += u
        if u > 1.0:
            break
        a += _EXP_Q[0]
    u -= 1.0
    if u <= _EXP_Q[0]:
        return a + u
    i = 0
    ustar = _unif_rand(state)
    umin = ustar
    while True:
        ustar = _unif_rand(state)
        if ustar < umin:
            umin = ustar
        i += 1
        if u <= _EXP_Q[i]:
            break
    return a + umin * _EXP_Q[0]


@njit(nogil=True, cache=True)
def _rgamma(state: np.ndarray, a: float, scale: float) -> float:
    """R's ``rgamma(a, scale)`` for a > 0: Ahrens & Dieter's GS (1974) below 1, GD (1982)
    from 1, with R's constants."""
    if a < 1.0:
        e = 1.0 + 0.36787944117144232159 * a
        while True:
            p = e * _unif_rand(state)
            if p >= 1.0:
                x = -math.log((e - p) / a)
                if _exp_rand(state) >= (1.0 - a) * math.log(x):
                    break
            else:
                x = math.exp(math.log(p) / a)
                if _exp_rand(state) >= x:
                    break
        return scale * x
    s2 = a - 0.5
    s = math.sqrt(s2)
    d = 5.656854 - s * 12.0
    t = _norm_rand(state)
    x = s + 0.5 * t
    ret_val = x * x
    if t >= 0.0:
        return scale * ret_val
    u = _unif_rand(state)
    if d * u <= t * t * t:
        return scale * ret_val
    r = 1.0 / a
    q0 = _horner(_GD_Q, r) * r
    if a <= 3.686:
        b = 0.463 + s + 0.178 * s2
        si = 1.235
        c = 0.195 / s - 0.079 + 0.16 * s
    elif a <= 13.022:
        b = 1.654 + 0.0076 * s2
        si = 1.68 / s + 0.275
        c = 0.062 / s + 0.024
    else:
        b = 1.77
        si = 0.75
        c = 0.1515 / s
    if x > 0.0:
        q = _gd_quotient(t, s, s2, q0)
        if math.log(1.0 - u) <= q:
            return scale * ret_val
    while True:
        e = _exp_rand(state)
        u = _unif_rand(state)
        u = u + u - 1.0
        t = b - si * e if u < 0.0 else b + si * e
        if t >= -0.71874483771719:
            q = _gd_quotient(t, s, s2, q0)
            if q > 0.0:
                w = math.expm1(q)
                if c * abs(u) <= w * math.exp(e - 0.5 * t * t):
                    break
    x = s + 0.5 * t
    return scale * x * x


@njit(nogil=True, cache=True)
def _gd_quotient(t: float, s: float, s2: float, q0: float) -> float:
    """GD's quotient q (steps 6 and 10)."""
    v = t / (s + s)
    if abs(v) <= 0.25:
        return q0 + 0.5 * t * t * _horner(_GD_A, v) * v
    return q0 - s * t + 0.25 * t * t + (s2 + s2) * math.log(1.0 + v)


@njit(nogil=True, cache=True)
def _uniform_draws(state: np.ndarray, count: int) -> np.ndarray:
    out = np.empty(count)
    for i in range(count):
        out[i] = _unif_rand(state)
    return out


@njit(nogil=True, cache=True)
def _normal_draws(state: np.ndarray, count: int, mean: float, sd: float) -> np.ndarray:
    out = np.empty(count)
    for i in range(count):
        out[i] = mean if sd == 0.0 else mean + sd * _norm_rand(state)
    return out


@njit(nogil=True, cache=True)
def _chisq_draws(state: np.ndarray, count: int, df: float) -> np.ndarray:
    out = np.empty(count)
    for i in range(count):
        out[i] = _rgamma(state, df / 2.0, 2.0)
    return out


@njit(nogil=True, cache=True)
def _unif_index(state: np.ndarray, n: int) -> int:
    """R's ``R_unif_index(n)``: an integer in [0, n) by rejection sampling."""
    if n <= 0:
        return 0
    bits = math.ceil(math.log2(n))
    while True:
        value = 0
        for _ in range(0, bits + 1, 16):
            value = 65536 * value + math.floor(_unif_rand(state) * 65536)
        value &= (1 << bits) - 1
        if value < n:
            return value


@njit(nogil=True, cache=True)
def _sample_draws(state: np.ndarray, n: int, size: int) -> np.ndarray:
    pool = np.arange(n)
    out = np.empty(size, dtype=np.int64)
    for i in range(size):
        j = _unif_index(state, n)
        out[i] = pool[j] + 1
        n -= 1
        pool[j] = pool[n]
    return out


@njit(nogil=True, cache=True)
def _sample_replace_draws(state: np.ndarray, n: int, size: int) -> np.ndarray:
    out = np.empty(size, dtype=np.int64)
    for i in range(size):
        out[i] = _unif_index(state, n) + 1
    return out


@njit(nogil=True, cache=True)
def _permutation_draws(state: np.ndarray, count: int, n: int) -> np.ndarray:
    out = np.empty((count, n), dtype=np.int64)
    for c in range(count):
        out[c] = _sample_draws(state, n, n) - 1
    return out
