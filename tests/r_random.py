"""R's normal stream in Python, for tests that replay R's random draws: ``set.seed(seed)``
with R's defaults (Mersenne-Twister, normals by inversion), then ``rnorm``.

The draws are cohortex's :class:`RRandom`, R's bit for bit; this gives them NumPy's
``standard_normal(size)``, which roast and romer draw from.
"""

from __future__ import annotations

import numpy as np

from cohortex.stats._r_random import RRandom


class RNormal:
    """``standard_normal(size)`` as R's ``rnorm(size)`` after ``set.seed(seed)``: the draws
    follow each other across calls, as R's do."""

    def __init__(self, seed: int) -> None:
        self._stream = RRandom(seed)

    def standard_normal(self, size: int | tuple[int, ...]) -> np.ndarray:
        return self._stream.normals(int(np.prod(size))).reshape(size)
