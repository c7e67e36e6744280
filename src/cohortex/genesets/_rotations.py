"""What limma's rotation tests (roast, romer) share: their rotations' count and random
numbers."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import CohortexError
from ..stats._r_random import RRandom

__all__ = ["rotation_numbers"]


def rotation_numbers(n_rotations: Any, random_state: Any, caller: str) -> Any:
    """The generator of the rotations' normals, after checking ``n_rotations`` (a whole
    number ≥ 1): R's stream after ``set.seed(random_state)`` for an int (limma's rotations,
    bit for bit), ``random_state`` itself when it draws (``standard_normal``: a NumPy
    Generator), or NumPy's default generator with fresh entropy for None."""
    if isinstance(n_rotations, bool) or not isinstance(n_rotations, int | np.integer):
        raise CohortexError(f"'n_rotations' must be a whole number; got {n_rotations!r}.")
    if n_rotations < 1:
        raise CohortexError(f"{caller} needs at least one rotation; got {n_rotations}.")
    if hasattr(random_state, "standard_normal"):
        return random_state
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, bool) or not isinstance(random_state, int | np.integer):
        raise CohortexError(
            f"{caller}'s 'random_state' must be an int (R's set.seed), a NumPy Generator or "
            f"None; got {random_state!r}."
        )
    return RRandom(int(random_state))
