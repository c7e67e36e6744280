"""Optional dependencies: imported where they are used, with the extra that installs them named
when they are missing (``pip install 'cohortex[ae]'``)."""

from __future__ import annotations

import importlib
from types import ModuleType

from ._errors import CohortexError

__all__ = ["EXTRAS", "require"]

#: module → the extra of cohortex that installs it
EXTRAS = {"torch": "ae", "matplotlib": "plot", "openTSNE": "tsne"}


def require(module: str, purpose: str) -> ModuleType:
    """Import an optional dependency or say which extra to install.

    Parameters
    ----------
    module : str
        A key of :data:`EXTRAS` (or one of its submodules, ``"matplotlib.figure"``).
    purpose : str
        What needs it, for the message ("the autoencoder").
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = EXTRAS[module.split(".")[0]]
        raise CohortexError(
            f"{purpose} needs {module.split('.')[0]}, which is not installed: "
            f"pip install 'cohortex[{extra}]' (or 'cohortex[all]')."
        ) from None
