"""The installed cohortex version (the store records it; ``--version`` prints it)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("cohortex")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
