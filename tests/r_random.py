"""R's normal stream in Python, for tests that replay R's random draws: ``set.seed(seed)``
with R's defaults (Mersenne-Twister, normals by inversion), then ``rnorm``.

R seeds the generator by scrambling the seed with the congruential ``69069 * seed + 1`` (50
times, then once per word of the state); the words are then the standard MT19937 state, which
NumPy's ``MT19937`` continues. Each normal takes two uniforms for 2^27 × 2^32 steps of
precision and R's ``qnorm`` (here SciPy's ``ndtri``, equal to ~1 ulp).
"""

from __future__ import annotations

import numpy as np
from scipy import special

_BIG = 134217728  # 2^27
_UNIT = 2.3283064365386963e-10  # 2^-32


class RNormal:
    """``standard_normal(size)`` as R's ``rnorm(size)`` after ``set.seed(seed)``: the draws
    follow each other across calls, as R's do."""

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

    def _uniforms(self, count: int) -> np.ndarray:
        u = self._bits.random_raw(count).astype(np.float64) * _UNIT
        return np.clip(u, 0.5 * _UNIT, 1.0 - 0.5 * _UNIT)  # R's fixup into (0, 1)

    def standard_normal(self, size: int | tuple[int, ...]) -> np.ndarray:
        count = int(np.prod(size))
        u = self._uniforms(2 * count).reshape(count, 2)
        values = special.ndtri((np.floor(_BIG * u[:, 0]) + u[:, 1]) / _BIG)
        return values.reshape(size)
