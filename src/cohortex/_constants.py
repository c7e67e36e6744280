"""Names the store and the command line share, in a module light enough for ``--help``."""

from __future__ import annotations

__all__ = [
    "COMPRESSORS",
    "COUNTS_FROM_ABUNDANCE",
    "GSVA_KERNELS",
    "GSVA_METHODS",
    "NORMALIZATIONS",
    "QUANTIFIERS",
    "SCALES",
    "SVA_METHODS",
]

SCALES = ("log2", "log1p", "counts", "linear")

COMPRESSORS = ("lz4", "zstd", "none")

# normalize()'s methods (cohortex._normalize.METHODS), for the command line's choices
NORMALIZATIONS = (
    "log_cpm",
    "log_cpm_offset",
    "log1p",
    "log2",
    "quantile",
    "median_ratio",
    "rpkm",
    "log_rpkm",
    "tpm",
)

# genesets.gsva()'s methods and kernels, for the command line's choices
GSVA_METHODS = ("gsva", "ssgsea", "zscore", "plage")
GSVA_KERNELS = ("auto", "gaussian", "poisson", "none")

# io.read_quantifications()'s quantifiers and tximport's countsFromAbundance
QUANTIFIERS = ("salmon", "kallisto", "rsem", "stringtie")
COUNTS_FROM_ABUNDANCE = ("no", "scaledTPM", "lengthScaledTPM", "dtuScaledTPM")

# de.sva()'s methods, for the command line's choices
SVA_METHODS = ("irw", "two-step", "supervised")

# WGCNA's network types (adjacency) and topological overlap types
NETWORK_TYPES = ("unsigned", "signed", "signed hybrid")
TOM_TYPES = ("unsigned", "signed")
TOM_DENOMINATORS = ("min", "mean")  # WGCNA's TOMDenom: min(k_i, k_j) or their mean
CORRELATION_TYPES = ("pearson", "bicor", "spearman")  # Pearson's, biweight midcorrelation, ranks'
