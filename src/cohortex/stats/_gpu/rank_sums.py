"""The Wilcoxon rank sums of one gene block on a GPU: CuPy sorts each gene, ``rank_sum_walk.cu``
walks the sorted runs (one thread per gene); its CPU twin is
:func:`cohortex.stats._cpu.rank_sums.walk_sorted_runs`."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._backend import load_kernel, namespace

__all__ = ["device_rank_sums", "level_sums"]


def device_rank_sums(
    block: Any,
    codes: np.ndarray,
    group_of: np.ndarray,
    reference_of: np.ndarray,
    n_levels: int,
    linear: bool,
) -> dict[str, Any]:
    """``rank_sum_block`` on a GPU: CuPy sorts each gene, ``rank_sum_walk.cu`` ranks the runs.

    The values a contrast ranks are all compared samples when every contrast is one-vs-rest
    or only two groups are compared (one sort serves every contrast), else each contrast's
    own two groups (one sort per contrast).
    """
    xp = namespace(block)
    walk = load_kernel("rank_sum_walk.cu", "rank_sum_walk")  # one thread per gene
    n_genes = block.shape[1]
    compared = codes >= 0
    codes_on_device = xp.asarray(codes, dtype=xp.int32)
    by_gene = xp.ascontiguousarray(block.astype(xp.float64).T)  # (n_genes, n_samples)
    valid = ~xp.isnan(by_gene)
    indicator = xp.asarray(
        (codes[None, :] == np.arange(n_levels)[:, None]).astype(np.float64)
    )  # (n_levels, n_samples)
    out = {
        "count": indicator @ valid.T.astype(xp.float64),
        "sum": level_sums(indicator, by_gene),
        "nan": indicator @ (~valid).T.astype(xp.float64),
        "infinite": xp.sum(xp.isinf(by_gene) & xp.asarray(compared)[None, :], axis=1),
        "rank_sum": xp.zeros((len(group_of), n_genes)),
        "tie_term": xp.zeros((len(group_of), n_genes)),
        "linear_sum": xp.zeros((n_levels, n_genes)),
    }
    shared = bool(np.all(reference_of < 0)) or len(np.unique(codes[compared])) <= 2
    ranking_sets = (
        [(compared, list(range(len(group_of))))]
        if shared
        else [
            ((codes == g) | (codes == r) if r >= 0 else compared, [c])
            for c, (g, r) in enumerate(zip(group_of, reference_of, strict=True))
        ]
    )
    for members, contrast_ids in ranking_sets:
        columns = xp.asarray(np.flatnonzero(members))
        values = by_gene[:, columns]
        order = xp.argsort(values, axis=1)  # NaN last
        sorted_values = xp.ascontiguousarray(xp.take_along_axis(values, order, axis=1))
        sorted_codes = xp.ascontiguousarray(codes_on_device[columns][order])
        rank_level = xp.zeros((n_levels, n_genes))
        linear_sum = xp.zeros((n_levels, n_genes))
        tie_term = xp.zeros(n_genes)
        threads = 128
        walk(
            ((n_genes + threads - 1) // threads,),
            (threads,),
            (
                sorted_values,
                sorted_codes,
                np.int64(n_genes),
                np.int64(sorted_values.shape[1]),
                np.int32(linear),
                rank_level,
                linear_sum,
                tie_term,
            ),
        )
        if shared:
            out["linear_sum"] = linear_sum
        for c in contrast_ids:
            out["rank_sum"][c] = rank_level[group_of[c]]
            out["tie_term"][c] = tie_term
    if linear and not shared:  # expm1 sums over every compared sample, not per ranking set
        out["linear_sum"] = level_sums(indicator, xp.expm1(by_gene))
    return out


def level_sums(indicator: Any, by_gene: Any) -> Any:
    """Each group's sum of each gene's values (NaN left out) by matrix products.

    Parameters
    ----------
    indicator : array of shape (n_levels, n_samples)
        1.0 where a sample belongs to a group, else 0.0.
    by_gene : array of shape (n_genes, n_samples)

    Returns
    -------
    array of shape (n_levels, n_genes)
        ±inf where a group holds an infinite value (NaN where it holds both), as a plain sum.
        Infinite values are counted apart: in one product they would meet the 0.0 of every
        other group, and 0 × inf is NaN.
    """
    xp = namespace(by_gene)
    total = indicator @ xp.where(xp.isfinite(by_gene), by_gene, 0.0).T
    above = indicator @ (by_gene == xp.inf).T.astype(xp.float64)
    below = indicator @ (by_gene == -xp.inf).T.astype(xp.float64)
    return total + xp.where(above > 0, xp.inf, 0.0) + xp.where(below > 0, -xp.inf, 0.0)
