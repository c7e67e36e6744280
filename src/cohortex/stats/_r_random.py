"""R's default uniform stream: ``set.seed(seed)`` (Mersenne-Twister), ``runif`` and
``sample`` without replacement (R ≥ 3.6's rejection sampling), for the few R algorithms whose
results depend on their random draws (impute's ``impute.knn`` splits large matrices from a
random start).

R seeds the generator by scrambling the seed with the congruential ``69069 * seed + 1`` (50
times, then once per word of the state); the words are then the standard MT19937 state, which
NumPy's ``MT19937`` continues.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["RUniform"]

_UNIT = 2.3283064365386963e-10  # 2^-32


class RUniform:
    """The uniforms R draws after ``set.seed(seed)``: the draws follow each other across calls,
    as R's do.

    Parameters
    ----------
    seed : int
    """

    def __init__(self, seed: int) -> None:
        state = seed % 2**32
        for _ in range(50):
            state = (69069 * state + 1) % 2**32
        words = np.empty(625, dtype=np.uint32)
        for j in range(625):
            state = (69069 * state + 1) % 2**32
            words[j] = state
        self._bits = np.random.MT19937()
        # R's first word is the position, reset to 624 (draw a fresh block first)
        self._bits.state = {"bit_generator": "MT19937", "state": {"key": words[1:], "pos": 624}}

    def uniforms(self, count: int) -> np.ndarray:
        """``runif(count)``: shape (count,), in (0, 1)."""
        u = self._bits.random_raw(count).astype(np.float64) * _UNIT
        return np.clip(u, 0.5 * _UNIT, 1.0 - 0.5 * _UNIT)  # R's fixup into (0, 1)

    def index(self, n: int) -> int:
        """``R_unif_index(n)``: an integer in [0, n), by rejection from the bits of 16-bit
        pieces of uniforms."""
        if n <= 0:
            return 0
        bits = math.ceil(math.log2(n))
        while True:
            value = 0
            for _ in range(0, bits + 1, 16):
                value = 65536 * value + math.floor(float(self.uniforms(1)[0]) * 65536)
            value &= (1 << bits) - 1
            if value < n:
                return value

    def sample(self, n: int, size: int) -> np.ndarray:
        """``sample.int(n, size)`` without replacement (n up to 10^7): 1-based, shape (size,)."""
        pool = list(range(n))
        out = np.empty(size, dtype=np.int64)
        for i in range(size):
            j = self.index(n)
            out[i] = pool[j] + 1
            n -= 1
            pool[j] = pool[n]
        return out
