"""Classic edgeR's exact test: ``exactTest(estimateDisp(DGEList(counts, group)), pair)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from .. import fdr as _fdr
from .._cohort import CohortLike, as_cohort_dataset, as_cohort_matrix, shared_docs
from .._errors import CohortexError
from ..stats._negative_binomial import one_group, prior_counts
from ..stats._qcml import exact_test_double_tail, q2q_nbinom
from ._gene_columns import per_gene
from ._glm_ql import classic_dispersions, group_codes, mean_log_cpm
from ._voom import warn_lengths_left_out

__all__ = ["exact_test"]


@shared_docs
def exact_test(
    cohort: CohortLike,
    groupby: str | Sequence[Any] | np.ndarray,
    pair: Sequence[str] | None = None,
    *,
    dispersion: str | float | np.ndarray = "tagwise",
    norm_factors: str | Any | None = "tmm",
    prior_count: float = 0.125,
    big_count: float = 900.0,
    fdr: str = "bh",
) -> xr.Dataset:
    """edgeR's exact test between two groups of samples (classic edgeR).

    The dispersions are estimated from every group as ``estimateDisp`` of a DGEList with
    groups does (classic mode: conditional likelihoods of pseudo-counts equalised to the
    libraries' geometric mean); the two groups' pseudo-counts are then compared by the
    probabilities of every split of their total at least as unlikely as the one seen, on
    both sides (``rejection.region = "doubletail"``), with edgeR's beta approximation where
    both sums exceed ``big_count``. edgeR recommends its GLM tests (:func:`glm_ql`) for
    anything but a comparison of two groups.

    Parameters
    ----------
    {cohort}
        Raw counts (scale ``counts``), no NaN or negative values.
    groupby : str or array of shape (n_samples,)
        Each sample's group (a sample variable or the labels).
    pair : (reference, group), optional
        The two groups compared, the fold change ``group`` over ``reference`` (edgeR's
        ``pair``); default the first two groups in sorted order.
    dispersion : {{"tagwise", "trended", "common"}}, float or array of shape (n_genes,)
        edgeR's estimates (tagwise is ``exactTest``'s "auto"), or given (> 0).
    norm_factors : {{"tmm", "upperquartile", "rle", "none"}} or array, default "tmm"
    prior_count : float, default 0.125
        The prior count of the fold changes.
    big_count : float, default 900
        Above it in both groups, the beta approximation.
    {fdr}

    Returns
    -------
    xarray.Dataset
        On ``gene``: ``log2fc`` (logFC), ``mean_expression`` (logCPM over all samples),
        ``pvalue``, ``padj``, ``log10_pvalue``, ``dispersion``; scalar coordinates
        ``contrast``, ``group`` and ``reference``.
    """
    if not np.isfinite(prior_count) or prior_count < 0:
        raise CohortexError(f"exact_test's 'prior_count' must be >= 0; got {prior_count!r}.")
    ds = as_cohort_dataset(cohort)
    warn_lengths_left_out(ds, "exact_test()")
    codes = group_codes(ds, groupby, "groupby")
    labels = _labels(ds, groupby)
    levels = list(np.unique(labels))
    if pair is None:
        if len(levels) < 2:
            raise CohortexError("exact_test() needs two groups; the samples hold one.")
        pair = levels[:2]
    pair = [str(p) for p in pair]
    if len(pair) != 2 or pair[0] == pair[1] or any(p not in levels for p in pair):
        raise CohortexError(
            f"exact_test's 'pair' must name two different groups of {', '.join(levels)}; "
            f"got {pair!r}."
        )
    given = not isinstance(dispersion, str)
    if not given and dispersion not in ("tagwise", "trended", "common"):
        raise CohortexError(
            "exact_test's 'dispersion' must be 'tagwise', 'trended', 'common', a number or one "
            f"per gene; got {dispersion!r}."
        )
    data, estimate = classic_dispersions(
        ds, codes, norm_factors, tagwise=dispersion == "tagwise", estimate=not given
    )
    n_genes = data.counts.shape[1]
    if estimate is None:  # as exactTest on a DGEList without estimates: logCPM at 0.05
        phi = np.asarray(dispersion, dtype=np.float64)
        if phi.shape not in ((), (n_genes,)) or not np.all(np.isfinite(phi)) or np.any(phi <= 0):
            raise CohortexError(
                "exact_test's 'dispersion' must be finite and > 0, one number or one per gene "
                "(edgeR's binomial test for a dispersion of 0 is not offered)."
            )
        phi = np.broadcast_to(phi, (n_genes,))
        average = mean_log_cpm(data, None)
        common = None
    else:
        estimates = {
            "tagwise": estimate.tagwise,
            "trended": estimate.trended,
            "common": estimate.common,
        }
        phi = np.broadcast_to(np.asarray(estimates[str(dispersion)], dtype=np.float64), (n_genes,))
        average = estimate.ave_log_cpm
        common = estimate.common
    phi = np.ascontiguousarray(phi, dtype=np.float64)
    first = np.flatnonzero(labels == pair[0])
    samples = np.concatenate([first, np.flatnonzero(labels == pair[1])])
    library = data.library[samples]
    rows = per_gene(
        data.counts[samples, :],
        lambda tile, d: _pair_tile(tile, d[0], library, first.size, prior_count, big_count),
        2,
        phi,
    )
    logfc, log_p = rows[0], rows[1]
    pvalues = np.exp(log_p)
    result = xr.Dataset(
        {
            "log2fc": ("gene", logfc),
            "mean_expression": ("gene", average),
            "pvalue": ("gene", pvalues),
            "padj": ("gene", _fdr.adjust(pvalues, fdr)),
            "log10_pvalue": ("gene", log_p / np.log(10.0)),
            "dispersion": ("gene", phi),
        },
        coords={
            "gene": data.genes,
            "contrast": f"{pair[1]}_vs_{pair[0]}",
            "group": pair[1],
            "reference": pair[0],
        },
        attrs={
            "test": "exact (edgeR exactTest, double tail)",
            "groupby": groupby if isinstance(groupby, str) else "labels",
            "reference": pair[0],
            "prior_count": prior_count,
            "big_count": big_count,
            "fdr": fdr,
        },
    )
    if common is not None:
        result.attrs["common_dispersion"] = common
    return result


def _labels(ds: xr.Dataset, groupby: Any) -> np.ndarray:
    if isinstance(groupby, str):
        return np.asarray(as_cohort_matrix(ds).sample_variable(groupby, "groupby")).astype(str)
    return np.asarray(groupby).astype(str)


def _pair_tile(
    counts: np.ndarray,
    dispersion: np.ndarray,
    library: np.ndarray,
    n_first: int,
    prior_count: float,
    big_count: float,
) -> np.ndarray:
    """exactTest on a tile of genes: the log2 fold change and the log p-value (2 × genes).

    ``counts`` holds the pair's samples, the reference group's ``n_first`` first; ``library``
    their effective library sizes."""
    first = np.arange(n_first)
    second = np.arange(n_first, counts.shape[0])
    prior, augmented = prior_counts(library, prior_count)
    with_prior = counts + prior[:, None]
    abundance1 = one_group(with_prior, augmented, dispersion, first)
    abundance2 = one_group(with_prior, augmented, dispersion, second)
    logfc = (abundance2 - abundance1) / np.log(2.0)
    offsets = np.log(library)
    rate = np.exp(one_group(counts, offsets, dispersion))
    average_library = np.exp(np.mean(offsets))
    input_mean = rate[None, :] * library[:, None]
    output_mean = np.broadcast_to(rate[None, :] * average_library, counts.shape)
    pseudo = q2q_nbinom(counts, input_mean, output_mean, dispersion[None, :])
    log_p = exact_test_double_tail(pseudo[first], pseudo[second], dispersion, big_count)
    return np.vstack([logfc, log_p])
