"""The design as limma's gene-set tests take it: the tested contrast as its last coefficient."""

from __future__ import annotations

import numpy as np

from .._errors import CohortexError
from ..de._linear_model import contrast_matrix
from ..stats._householder import contrast_as_coefficient

__all__ = ["contrast_last"]


def contrast_last(x_design: np.ndarray, names: list[str], contrast: str) -> np.ndarray:
    """The design with ``contrast`` its last coefficient, as limma's gene-set tests take it: a
    coefficient's column moved last, or for a combination (``"B - A"``) limma's
    ``contrastAsCoef(design, contrast, first = FALSE)``."""
    if contrast in names:
        j = names.index(contrast)
        return np.column_stack([np.delete(x_design, j, axis=1), x_design[:, j]])
    vector = contrast_matrix({contrast: contrast}, names).to_numpy()[:, 0]
    if not vector.any():
        raise CohortexError(f"The contrast {contrast!r} is all zero.")
    return contrast_as_coefficient(x_design, vector)
