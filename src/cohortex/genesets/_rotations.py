"""What limma's rotation tests (roast, romer) share: their rotations' count and random
numbers."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import CohortexError

__all__ = ["rotation_numbers"]


def rotation_numbers(n_rotations: Any, random_state: Any, caller: str) -> Any:
    """The generator of the rotations' normals, after checking ``n_rotations`` (a whole
    number ≥ 1): ``random_state`` itself when it draws (``standard_normal``; a NumPy
    Generator, or a test's replay of R's stream), else NumPy's default generator seeded by it
    (an int, or None for fresh entropy)."""
    if isinstance(n_rotations, bool) or not isinstance(n_rotations, int | np.integer):
        raise CohortexError(f"'n_rotations' must be a whole number; got {n_rotations!r}.")
    if n_rotations < 1:
        raise CohortexError(f"{caller} needs at least one rotation; got {n_rotations}.")
    if hasattr(random_state, "standard_normal"):
        return random_state
    return np.random.default_rng(random_state)
