"""The deep autoencoder and the gene modules of its hidden layers (Dwivedi et al. 2020).

Needs PyTorch (``pip install 'cohortex[ae]'``); importing this package without it says so.
"""

from .._optional import require

require("torch", "cohortex.ae (the autoencoder)")

from ._enrichment import enrichment  # noqa: E402 (after the check above)
from ._model import ACTIVATIONS, Autoencoder, baselines  # noqa: E402

__all__ = ["ACTIVATIONS", "Autoencoder", "baselines", "enrichment"]
