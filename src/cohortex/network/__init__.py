"""Weighted gene co-expression networks, as WGCNA: the soft threshold, modules of co-expressed
genes (topological overlap, dynamicTreeCut's hybrid cut, merged by their eigengenes; in blocks
of genes for many genes), the
modules' eigengenes against sample variables, their hub genes and the gene sets over-represented
in them (private implementation; public here)."""

from .._constants import CORRELATION_TYPES, NETWORK_TYPES, TOM_DENOMINATORS, TOM_TYPES
from ._blockwise import blockwise_modules
from ._consensus import CALIBRATIONS, consensus_modules
from ._edges import module_edges
from ._enrichment import module_enrichment
from ._modules import modules
from ._preservation import GOLD, module_preservation
from ._soft_threshold import DEFAULT_POWERS, soft_threshold
from ._traits import hub_genes, module_traits

__all__ = [
    "CALIBRATIONS",
    "CORRELATION_TYPES",
    "DEFAULT_POWERS",
    "GOLD",
    "NETWORK_TYPES",
    "TOM_DENOMINATORS",
    "TOM_TYPES",
    "blockwise_modules",
    "consensus_modules",
    "hub_genes",
    "module_edges",
    "module_enrichment",
    "module_preservation",
    "module_traits",
    "modules",
    "soft_threshold",
]
