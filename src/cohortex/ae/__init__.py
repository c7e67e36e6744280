"""The deep autoencoder and the gene modules of its hidden layers (Dwivedi et al. 2020)."""

from ._enrichment import enrichment
from ._model import ACTIVATIONS, Autoencoder, baselines

__all__ = ["ACTIVATIONS", "Autoencoder", "baselines", "enrichment"]
