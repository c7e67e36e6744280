"""Gene sets: collections read from GMT (``read_gmt``, ``GeneSets``) and over-representation
of sets in gene lists (``ora``) and in DE results (``ora_de``)."""

from ._collection import GeneSets, read_gmt
from ._ora import ora, ora_de

__all__ = ["GeneSets", "ora", "ora_de", "read_gmt"]
