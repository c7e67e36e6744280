"""Gene sets: collections read from GMT (``read_gmt``, ``GeneSets``), over-representation of
sets in gene lists (``ora``) and in DE results (``ora_de``), preranked GSEA (``gsea``) and
limma's competitive ``camera`` (``camera_pr`` on a given statistic, ``gene_set_test``),
self-contained ``fry`` and ``roast``, ``romer``, and per-sample scores (``gsva``: GSVA,
ssGSEA, combined z-scores, PLAGE).
"""

from ._camera import camera, camera_pr
from ._collection import GeneSets, read_gmt
from ._fry import fry
from ._gene_set_test import gene_set_test
from ._gsea import gsea
from ._gsva import GSVA_KERNELS, GSVA_METHODS, gsva
from ._ora import ora, ora_de
from ._roast import roast
from ._romer import romer

__all__ = [
    "GSVA_KERNELS",
    "GSVA_METHODS",
    "GeneSets",
    "camera",
    "camera_pr",
    "fry",
    "gene_set_test",
    "gsea",
    "gsva",
    "ora",
    "ora_de",
    "read_gmt",
    "roast",
    "romer",
]
