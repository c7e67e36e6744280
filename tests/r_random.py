"""R's normal stream in Python, for tests that replay R's random draws: ``set.seed(seed)``
with R's defaults (Mersenne-Twister, normals by inversion), then ``rnorm``.

The uniforms are cohortex's :class:`RUniform` (R's seeding and MT19937). Each normal takes two
uniforms for 2^27 × 2^32 steps of precision and R's ``qnorm`` (here SciPy's ``ndtri``, equal
to ~1 ulp).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from cohortex.stats._r_random import RUniform

_BIG = 134217728  # 2^27


class RNormal:
    """``standard_normal(size)`` as R's ``rnorm(size)`` after ``set.seed(seed)``: the draws
    follow each other across calls, as R's do."""

    def __init__(self, seed: int) -> None:
        self._uniform = RUniform(seed)

    def standard_normal(self, size: int | tuple[int, ...]) -> np.ndarray:
        count = int(np.prod(size))
        u = self._uniform.uniforms(2 * count).reshape(count, 2)
        values = special.ndtri((np.floor(_BIG * u[:, 0]) + u[:, 1]) / _BIG)
        return values.reshape(size)
