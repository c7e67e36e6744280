"""The package's one exception base and one warning class."""

from __future__ import annotations

__all__ = ["CohortexError", "CohortexWarning"]


class CohortexError(ValueError):
    """Raised for every error cohortex detects in its input or its stores.

    It derives from ``ValueError`` so callers that already catch bad-input errors keep working.
    """


class CohortexWarning(UserWarning):
    """Warnings cohortex emits about the data (excluded samples, recovered stores, ...)."""
