"""Gene sets: collections read from GMT (``read_gmt``, ``GeneSets``), over-representation of
sets in gene lists (``ora``) and in DE results (``ora_de``), preranked GSEA (``gsea``) and
limma's competitive ``camera`` (``camera_pr`` on a given statistic, ``gene_set_test``),
self-contained ``fry`` and ``roast``, and ``romer``.
"""

from ._camera import camera, camera_pr
from ._collection import GeneSets, read_gmt
from ._fry import fry
from ._gene_set_test import gene_set_test
from ._gsea import gsea
from ._ora import ora, ora_de
from ._roast import roast
from ._romer import romer

__all__ = [
    "GeneSets",
    "camera",
    "camera_pr",
    "fry",
    "gene_set_test",
    "gsea",
    "ora",
    "ora_de",
    "read_gmt",
    "roast",
    "romer",
]
