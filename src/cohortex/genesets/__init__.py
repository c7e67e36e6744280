"""Gene sets: collections read from GMT (``read_gmt``, ``GeneSets``), over-representation of
sets in gene lists (``ora``) and in DE results (``ora_de``), and limma's competitive ``camera``.
"""

from ._camera import camera
from ._collection import GeneSets, read_gmt
from ._ora import ora, ora_de

__all__ = ["GeneSets", "camera", "ora", "ora_de", "read_gmt"]
