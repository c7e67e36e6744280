"""ComBat-seq: batch correction of counts by negative-binomial models (Zhang, Parmigiani &
Johnson 2020), as sva's ``ComBat_seq``.

Each batch's dispersions are edgeR's: a common dispersion maximising the Cox-Reid adjusted
profile likelihood summed over the genes (``estimateGLMCommonDisp``: R's ``optimize`` on the
dispersion's fourth root), then each gene's own (``estimateGLMTagwiseDisp(prior.df = 0)``: its
likelihood on 11 dispersions around the common one, maximised through a spline). A GLM of
the batches and the effects to keep, each count with its batch's dispersion, gives each
gene's batch effects (with edgeR's prior count of 1e-4) and fitted means; a count is then
mapped to the same quantile of the distribution without its batch effect and with the
dispersion averaged over the batches. Genes without counts in some batch are left as they
are, as are counts of 0 and 1.

Host only (numba fits, SciPy's incomplete beta function), gene tile by gene tile.
"""

from __future__ import annotations

import math
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from .._backend import to_host
from .._cohort import CohortLike, as_cohort_dataset, as_cohort_matrix, shared_docs
from .._errors import CohortexError
from .._progress import dask_progress
from ..stats._brent import brent_minimize
from ..stats._negative_binomial import (
    adjusted_profile_likelihood,
    nb_cdf,
    nb_glm_fit,
    nb_quantile,
)
from ..stats._spline_maximum import maximize_interpolant
from ._gene_columns import per_gene
from ._glm_ql import group_design
from ._least_squares import design_matrix, sample_codes

__all__ = ["COMBAT_SEQ_PRIOR_COUNT", "combat_seq"]

COMBAT_SEQ_PRIOR_COUNT = 1e-4  # sva's glmFit(prior.count = 1e-4) of the batch effects
_COMMON_UPPER = 4.0  # edgeR's dispCoxReid: the dispersion searched in [0, 4] ...
_COMMON_TOLERANCE = 1e-5  # ... on its fourth root, to this tolerance
_MIN_ROW_SUM = 5.0  # a gene with fewer counts in a batch keeps the batch's common dispersion
_TAGWISE_GRID = np.linspace(-6.0, 6.0, 11)  # log2 of the tagwise grid's ratios to the common
_KEEP_NEAR_ONE = 1e-4  # sva: a count this close to the top of its distribution is kept
_TILE_VALUES = 500_000  # counts of one gene tile (all samples): 4 MB of float64
# a batch's counts held in memory for the ~25 steps of its common dispersion's search, up to
# this size (in the store's dtype); above it each step reads them again
_HELD_BYTES = 2 << 30


@shared_docs
def combat_seq(
    cohort: CohortLike,
    batch: str | Any,
    *,
    group: str | Any | None = None,
    covariates: str | pd.DataFrame | np.ndarray | None = None,
    full_model: bool = True,
) -> xr.Dataset:
    """Correct batch effects in counts by negative-binomial models, as sva's ``ComBat_seq``.

    The corrected values are counts still (whole numbers, for edgeR, DESeq2 or
    :func:`glm_ql`), each moved to the same quantile of its gene's distribution without the
    batch's effect on the mean and with the dispersion averaged over the batches. The
    effects of ``group`` and ``covariates`` are kept.

    Parameters
    ----------
    {cohort}
        Raw counts (scale ``counts``): whole numbers, no NaN or negative values.
    batch : str or array of shape (n_samples,)
        A sample variable (or labels) of the batches, each with two samples or more.
    group : str or array of shape (n_samples,), optional
        The biological condition to keep (sva's ``group``).
    covariates : str, DataFrame or array of shape (n_samples, q), optional
        Further effects to keep (sva's ``covar_mod``): a formula such as ``"~ sex + age"``
        or a matrix; an intercept column is left out.
    full_model : bool, default True
        Keep ``group``'s effects in the model (sva's ``full_mod``); False fits the batches
        and covariates only.

    Returns
    -------
    xarray.Dataset
        The cohort with ``expression`` replaced by the corrected counts (lazy, the counts'
        dtype); attrs ``batch_removed`` (the batch variable) and ``combat_seq_dispersion``
        (each batch's common dispersion). Genes without counts in some batch are left as
        they are, as sva does.

    Raises
    ------
    CohortexError
        For counts that are not whole non-negative numbers, fewer than two batches, a batch
        of one sample, and effects to keep that are confounded with the batches.

    Notes
    -----
    sva's optional empirical-Bayes shrinkage of the batch effects (``shrink = TRUE``, a
    Monte-Carlo integration over all genes for each gene) is not offered; sva's default,
    and its authors' recommendation, is without it.
    """
    ds = as_cohort_dataset(cohort)
    if not isinstance(ds, xr.Dataset) or "expression" not in ds:
        raise CohortexError("combat_seq() needs a cohort store or Dataset with an 'expression'.")
    if ds.attrs.get("scale") != "counts":
        raise CohortexError(
            "combat_seq() needs raw counts (scale 'counts'); this cohort's scale is "
            f"{ds.attrs.get('scale')!r} (for log-expression use combat())."
        )
    matrix = as_cohort_matrix(ds)
    n = ds.sizes["sample"]
    codes, batch_name = sample_codes(batch, matrix, n, "batch")
    k = int(codes.max()) + 1
    sizes = np.bincount(codes, minlength=k)
    if k < 2:
        raise CohortexError("combat_seq() needs at least two batches.")
    if np.any(sizes < 2):
        raise CohortexError(
            "combat_seq() needs at least two samples in every batch; "
            f"{int(np.sum(sizes < 2))} batch(es) have one (sva's ComBat_seq refuses them too)."
        )
    setup = _Setup.build(ds, matrix, codes, sizes, group, covariates, full_model)
    counts = ds["expression"].transpose("sample", "gene").data
    if not isinstance(counts, da.Array):
        counts = da.from_array(np.asarray(counts))
    tile = max(1, min(counts.shape[1], _TILE_VALUES // max(n, 1)))
    counts = counts.rechunk((-1, tile))
    with dask_progress("combat_seq"):
        kept, library = _kept_and_library(counts, codes, k)
        if not kept.any():
            raise CohortexError("No gene has counts in every batch; ComBat-seq has nothing to fit.")
        setup = setup.with_library(library)
        y = counts[:, np.flatnonzero(kept)]
        common = np.array([_common_dispersion(y, setup, b) for b in range(k)])
        dispersions = np.full((k, counts.shape[1]), np.nan)
        dispersions[:, kept] = per_gene(y, lambda block, _: _tagwise_tile(block, setup, common), k)
    kept_blocks = da.from_array(kept.astype(np.float64)[None, :], chunks=(1, counts.chunks[1]))
    dispersion_blocks = da.from_array(dispersions, chunks=(k, counts.chunks[1]))
    dtype = counts.dtype if counts.dtype.kind in "iuf" else np.dtype(np.float64)
    adjusted = da.map_blocks(
        _adjust_tile,
        counts,
        kept_blocks,
        dispersion_blocks,
        setup=setup,
        dtype=dtype,
        meta=np.empty((0, 0), dtype=dtype),
        out_dtype=dtype,
    )
    out = ds.copy()
    out["expression"] = xr.DataArray(adjusted, dims=("sample", "gene")).transpose(
        *ds["expression"].dims
    )
    out.attrs = {
        **ds.attrs,
        "batch_removed": batch_name,
        "combat_seq_dispersion": [float(c) for c in common],
    }
    return out


class _Setup:
    """The batches, the model of the effects to keep and the library sizes."""

    def __init__(
        self,
        codes: np.ndarray,
        sizes: np.ndarray,
        mod: np.ndarray,
        design: np.ndarray,
        library: np.ndarray | None = None,
    ) -> None:
        self.codes = codes  # (n_samples,) each sample's batch
        self.sizes = sizes  # (k,) samples of each batch
        self.mod = mod  # (n_samples, q + 1) sva's mod: an intercept and the kept effects
        self.design = design  # (n_samples, k + q) the batches' indicators, then the effects
        self.library = library  # (n_samples,) column sums of the genes fitted
        k = sizes.size
        # sva fits a batch's dispersions without the kept effects when it has too few
        # samples for them or they are not estimable within it
        self.alone = np.array(
            [
                sizes[b] <= design.shape[1] - k + 1
                or np.linalg.matrix_rank(mod[codes == b]) < mod.shape[1]
                for b in range(k)
            ]
        )

    @classmethod
    def build(
        cls,
        ds: xr.Dataset,
        matrix: Any,
        codes: np.ndarray,
        sizes: np.ndarray,
        group: Any,
        covariates: Any,
        full_model: bool,
    ) -> _Setup:
        n = codes.size
        mod = np.ones((n, 1))
        if group is not None:
            group_codes, _ = sample_codes(group, matrix, n, "group")
            if full_model and group_codes.max() > 0:
                mod = group_design(group_codes)
        if covariates is not None:
            values, _, _ = design_matrix(covariates, ds, n)
            mod = np.column_stack([mod, values[:, ~np.all(values == 1.0, axis=0)]])
        k = sizes.size
        design = np.column_stack([np.eye(k)[codes], mod])
        design = design[:, ~np.all(design == 1.0, axis=0)]
        if np.linalg.matrix_rank(design) < design.shape[1]:
            kept = design[:, k:]
            if kept.shape[1] == 1:
                message = "The kept effect is confounded with the batches"
            elif np.linalg.matrix_rank(kept) < kept.shape[1]:
                message = "The effects to keep are confounded with each other"
            else:
                message = "At least one effect to keep is confounded with the batches"
            raise CohortexError(
                f"{message}: ComBat-seq cannot tell them apart (remove the confounded "
                "variable and rerun)."
            )
        return cls(codes, sizes, mod, design)

    def with_library(self, library: np.ndarray) -> _Setup:
        return _Setup(self.codes, self.sizes, self.mod, self.design, library)

    def batch_model(self, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Batch ``b``'s samples, its design for the dispersions and its log library sizes."""
        members = np.flatnonzero(self.codes == b)
        design = np.ones((members.size, 1)) if self.alone[b] else self.mod[members]
        assert self.library is not None
        return members, design, np.log(self.library[members])


def _kept_and_library(counts: da.Array, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The genes with counts in every batch (n_genes,) and each sample's sum of their counts
    (n_samples,); refuses counts that are not whole non-negative numbers."""

    def kept_in(x: np.ndarray) -> np.ndarray:
        return np.all([(x[codes == b] > 0).any(axis=0) for b in range(k)], axis=0)

    def summary(tile: Any) -> np.ndarray:  # whether each gene is kept; its invalid values
        x = np.asarray(to_host(tile), dtype=np.float64)
        invalid = (~np.isfinite(x) | (x < 0) | (x != np.floor(x))).sum(axis=0)
        return np.vstack([kept_in(x), invalid])

    def library_part(tile: Any) -> np.ndarray:  # each sample's sum over the tile's kept genes
        x = np.asarray(to_host(tile), dtype=np.float64)
        return x[:, kept_in(x)].sum(axis=1, keepdims=True)

    rows = da.map_blocks(
        summary, counts, chunks=((2,), counts.chunks[1]), dtype=np.float64, meta=np.empty((0, 0))
    )
    parts = da.map_blocks(
        library_part,
        counts,
        chunks=(counts.chunks[0], (1,) * counts.numblocks[1]),
        dtype=np.float64,
        meta=np.empty((0, 0)),
    )
    # one read of the counts for both; sums of whole numbers, exact in any order
    rows_np, library_np = dask.compute(rows, parts.sum(axis=1))
    invalid = int(rows_np[1].sum())
    if invalid:
        raise CohortexError(
            f"combat_seq() needs whole non-negative counts; {invalid} values are negative, "
            "fractional or missing."
        )
    kept_np = rows_np[0] > 0
    if kept_np.any() and np.any(library_np <= 0):
        raise CohortexError(
            "combat_seq() needs every sample to have counts in the genes it corrects."
        )
    return kept_np, np.asarray(library_np, dtype=np.float64)


def _common_dispersion(y: da.Array, setup: _Setup, b: int) -> float:
    """edgeR's ``estimateGLMCommonDisp`` of batch ``b`` (Cox-Reid, all genes with
    ``_MIN_ROW_SUM`` counts in the batch)."""
    members, design, offsets = setup.batch_model(b)
    batch = y[members]
    if batch.size * batch.dtype.itemsize <= _HELD_BYTES:  # read once, not once a step
        batch = batch.persist()

    def negative_total(root: float) -> float:
        phi = root**4
        values = per_gene(batch, lambda tile, _: _batch_likelihood(tile, design, offsets, phi), 2)
        chosen = values[0] > 0
        if not chosen.any():
            raise CohortexError(
                f"No gene has {_MIN_ROW_SUM:g} counts or more in batch {b + 1}; its "
                "dispersion cannot be estimated."
            )
        return -math.fsum(values[1, chosen])  # R sums in long double

    return brent_minimize(negative_total, 0.0, _COMMON_UPPER**0.25, _COMMON_TOLERANCE) ** 4


def _batch_likelihood(
    y: np.ndarray, design: np.ndarray, offsets: np.ndarray, phi: float
) -> np.ndarray:
    """Row 0: whether each gene has ``_MIN_ROW_SUM`` counts; row 1: its adjusted profile
    likelihood at ``phi`` (edgeR's ``adjustedProfileLik``; 0 where left out)."""
    out = np.zeros((2, y.shape[1]))
    chosen = np.flatnonzero(y.sum(axis=0) >= _MIN_ROW_SUM)
    out[0, chosen] = 1.0
    if chosen.size:
        counts = np.asfortranarray(y[:, chosen])
        dispersion = np.full(chosen.size, phi)
        fit = nb_glm_fit(counts, design, offsets, dispersion, with_deviance=False)
        out[1, chosen] = adjusted_profile_likelihood(counts, fit.fitted, dispersion, design)
    return out


def _tagwise_tile(tile: np.ndarray, setup: _Setup, common: np.ndarray) -> np.ndarray:
    """Each batch's dispersion of every gene of the tile (k × genes): edgeR's
    ``estimateGLMTagwiseDisp(prior.df = 0)`` (the common one where the batch is fitted
    alone or the gene has fewer than ``_MIN_ROW_SUM`` counts in it)."""
    out = np.repeat(common[:, None], tile.shape[1], axis=1)
    for b in range(common.size):
        if setup.alone[b]:
            continue
        members, design, offsets = setup.batch_model(b)
        y = tile[members]
        chosen = np.flatnonzero(y.sum(axis=0) >= _MIN_ROW_SUM)
        if chosen.size == 0:
            continue
        counts = np.asfortranarray(y[:, chosen])
        likelihoods = np.empty((chosen.size, _TAGWISE_GRID.size))
        for i, step in enumerate(_TAGWISE_GRID):
            dispersion = np.full(chosen.size, common[b] * 2.0**step)
            fit = nb_glm_fit(counts, design, offsets, dispersion, with_deviance=False)
            likelihoods[:, i] = adjusted_profile_likelihood(counts, fit.fitted, dispersion, design)
        out[b, chosen] = common[b] * 2.0 ** maximize_interpolant(_TAGWISE_GRID, likelihoods)
    return out


def _adjust_tile(
    tile: Any, kept_block: Any, dispersion_block: Any, *, setup: _Setup, out_dtype: np.dtype
) -> np.ndarray:
    """The corrected counts of a tile (samples × genes); genes not kept as they are."""
    x = np.asarray(to_host(tile), dtype=np.float64)
    out = x.copy()
    kept = np.flatnonzero(np.asarray(kept_block)[0] > 0)
    if kept.size:
        y = np.asfortranarray(x[:, kept])
        by_batch = np.asarray(dispersion_block)[:, kept]  # (k, genes)
        out[:, kept] = _corrected(y, by_batch, setup)
    return out.astype(out_dtype, copy=False)


def _corrected(y: np.ndarray, by_batch: np.ndarray, setup: _Setup) -> np.ndarray:
    """sva's steps after the dispersions: the batch effects and means of the GLM, and each
    count's quantile (``match_quantiles``)."""
    assert setup.library is not None
    k = setup.sizes.size
    n = y.shape[0]
    phi = by_batch[setup.codes]  # (n, genes): each count with its batch's dispersion
    log2 = math.log(2.0)
    # glmFit(prior.count = 1e-4): the coefficients of the counts with edgeR's prior count
    # (predFC, in log2 and back)
    offsets = np.log(setup.library)
    prior, shifted = _prior_counts(offsets[:, None])
    first = nb_glm_fit(y + prior, setup.design, shifted, phi)
    coefficients = first.coefficients / log2 * log2
    weights = setup.sizes / n
    alpha = coefficients[0] * weights[0]
    for b in range(1, k):  # R's %*%: the batches in order
        alpha = alpha + coefficients[b] * weights[b]
    # the same model with the batches' average effect in the offsets: its fitted means, and
    # its batch effects (gamma) with the prior count
    moved = offsets[:, None] + alpha[None, :]
    means = nb_glm_fit(y, setup.design, moved, phi, with_deviance=False).fitted
    prior, shifted = _prior_counts(moved)
    gamma = nb_glm_fit(y + prior, setup.design, shifted, phi).coefficients[:k] / log2 * log2
    pooled = by_batch[0].copy()
    for b in range(1, k):
        pooled = pooled + by_batch[b]
    pooled = pooled / k
    new_means = np.exp(np.log(means) - gamma[setup.codes])
    return _match_quantiles(y, means, phi, new_means, np.broadcast_to(pooled, y.shape))


def _prior_counts(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """edgeR's ``addPriorCount`` of ``COMBAT_SEQ_PRIOR_COUNT`` for each gene's offsets
    (samples × 1 or genes): the prior counts and the offsets with twice them added to the
    library sizes (both samples × 1 or genes), the library sizes' mean summed in order as
    edgeR's C++."""
    library = np.exp(offsets)
    average = np.cumsum(library, axis=0)[-1] / library.shape[0]
    prior = COMBAT_SEQ_PRIOR_COUNT * library / average
    return prior, np.log(library + 2.0 * prior)


def _match_quantiles(
    y: np.ndarray, means: np.ndarray, phi: np.ndarray, new_means: np.ndarray, new_phi: np.ndarray
) -> np.ndarray:
    """sva's ``match_quantiles``: each count above 1 moved to ``1 + qnbinom(pnbinom(y − 1))``
    of the new means and dispersions (all samples × genes), unless within ``_KEEP_NEAR_ONE``
    of the top of its distribution."""
    out = y.copy()
    moved = y > 1
    p = nb_cdf(y[moved] - 1.0, 1.0 / phi[moved], means[moved])
    change = np.abs(p - 1.0) >= _KEEP_NEAR_ONE
    values = y[moved]
    values[change] = 1.0 + nb_quantile(
        p[change], 1.0 / new_phi[moved][change], new_means[moved][change]
    )
    out[moved] = values
    return out
