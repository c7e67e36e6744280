"""The Wilcoxon rank-sum test in one pass over gene blocks holding every sample: the CPU's
compiled block (``stats/_cpu/rank_sums.py``) or the GPU's (``stats/_gpu/rank_sums.py``), then
U, the normal approximation with tie and continuity corrections, exact p for small groups.
The Kruskal–Wallis test of several groups takes the same blocks' one-vs-rest rank sums, which
are each group's rank sum among all the samples."""

from __future__ import annotations

from typing import Any

import dask
import numpy as np
import xarray as xr

from .. import fdr as _fdr
from .._backend import namespace, special, to_host
from .._progress import slow_start_notice
from ..stats._gpu.rank_sums import device_rank_sums
from ..stats._moments import GroupMoments
from ..stats._pvalues import log_normal_two_sided_upper, normal_two_sided_upper, normal_upper
from ..stats._ranks import EXACT_MAX_SMALLER_GROUP, exact_upper_p
from ._comparison import Comparison
from ._result import contrast_dataset
from ._ttest import log2fc

__all__ = [
    "DEVICE_BLOCKS_IN_FLIGHT",
    "DEVICE_RANK_MEMORY_BUDGET",
    "RANK_MEMORY_BUDGET",
    "exact_p_values",
    "kruskal",
    "rank_block_genes",
    "wilcoxon",
    "wilcoxon_block",
]


# Bytes a block of genes × all samples may use while it is ranked: on the CPU the block and its
# transposed copy (the sort's scratch is per gene); on a GPU about ten float64 copies, in larger
# blocks (a 50,000-sample cohort: 1,024 genes, not 64), at most two blocks at a time.
RANK_MEMORY_BUDGET = 256 * 2**20


DEVICE_RANK_MEMORY_BUDGET = 4 * 2**30


DEVICE_BLOCKS_IN_FLIGHT = 2


_COMPILED: set[str] = set()


def _compiled_for(dtype: np.dtype) -> None:
    """Build the compiled rank-sum loops for ``dtype`` once per process, saying so when that
    takes long (the first run after installation compiles them; later ones load a cache)."""
    from ..stats._cpu.rank_sums import warm_up

    kind = "float32" if dtype == np.float32 else "float64"
    if kind in _COMPILED:
        return
    notice = (
        f"cohortex: compiling the Wilcoxon loops for {kind} data (once after installation, "
        "about half a minute; `cohortex warmup` does it ahead)"
    )
    with slow_start_notice(notice):
        warm_up(np.dtype(kind))
    _COMPILED.add(kind)


def wilcoxon(
    data: Comparison,
    codes: np.ndarray,
    levels: list[str],
    contrasts: list[tuple[int, list[int]]],
    fdr: str,
    omit_nan: bool,
    pseudocount: float,
    alternative: str = "two-sided",
    tie_correct: bool = True,
) -> xr.Dataset:
    """Rank-sum tests in one pass over gene blocks that hold every sample."""
    parts = _over_rank_blocks(
        data,
        lambda block, scratch: wilcoxon_block(
            block,
            codes,
            contrasts,
            omit_nan,
            data.scale == "log1p",
            scratch,
            alternative,
            tie_correct,
        ),
    )
    xp = namespace(parts[0]["pvalue"])
    columns = {k: xp.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}
    infinite = columns.pop("infinite")[0]
    if not data.checked_finite:
        data.refuse_infinite(infinite)
    exact_p_values(columns, alternative)
    rows: dict[str, list[Any]] = {
        "statistic": list(columns["u"]),
        "pvalue": list(columns["pvalue"]),
        "log10_pvalue": list(columns["log10_pvalue"]),
        "log2fc": [],
        "auroc": list(columns["u"] / (columns["n_group"] * columns["n_reference"])),
        "mean_group": list(columns["mean_group"]),
        "mean_reference": list(columns["mean_reference"]),
        "n_group": list(columns["n_group"]),
        "n_reference": list(columns["n_reference"]),
    }
    for c in range(len(contrasts)):
        a = GroupMoments(
            columns["n_group"][c : c + 1],
            columns["mean_group"][c : c + 1],
            None,
            columns.get("linear_group", columns["mean_group"])[c : c + 1],
        )
        b = GroupMoments(
            columns["n_reference"][c : c + 1],
            columns["mean_reference"][c : c + 1],
            None,
            columns.get("linear_reference", columns["mean_reference"])[c : c + 1],
        )
        rows["log2fc"].append(log2fc(a, b, data.scale, pseudocount))
    return contrast_dataset(rows, levels, contrasts, fdr)


def kruskal(
    data: Comparison, codes: np.ndarray, levels: list[str], fdr: str, omit_nan: bool
) -> xr.Dataset:
    """The Kruskal–Wallis H test of every gene across the groups, in one pass over gene blocks
    (``scipy.stats.kruskal``: ties corrected, χ² with k − 1 degrees of freedom)."""
    parts = _over_rank_blocks(
        data, lambda block, scratch: kruskal_block(block, codes, omit_nan, scratch)
    )
    xp = namespace(parts[0]["pvalue"])
    columns = {k: xp.concatenate([p[k] for p in parts], axis=-1) for k in parts[0]}
    infinite = columns.pop("infinite")
    if not data.checked_finite:
        data.refuse_infinite(infinite)
    return xr.Dataset(
        {
            "statistic": ("gene", columns["statistic"]),
            "pvalue": ("gene", columns["pvalue"]),
            "padj": ("gene", _fdr.adjust(columns["pvalue"], fdr)),
            "log10_pvalue": ("gene", columns["log10_pvalue"]),
            "df": ("gene", columns["df"]),
            "mean": (("group", "gene"), columns["mean"]),
            "mean_rank": (("group", "gene"), columns["mean_rank"]),
            "count": (("group", "gene"), columns["count"].astype(xp.int64)),
        },
        coords={"group": levels},
    )


def kruskal_block(
    block: Any, codes: np.ndarray, omit_nan: bool, scratch: Any = None
) -> dict[str, Any]:
    """Kruskal–Wallis statistics for one block of genes (all samples).

    Returns
    -------
    dict of arrays of shape (n_genes,), and ``mean``, ``mean_rank``, ``count`` of shape
    (n_groups, n_genes)
    """
    xp = namespace(block)
    n_levels = int(codes.max()) + 1
    group_of = np.arange(n_levels, dtype=np.int64)
    rest = np.full(n_levels, -1, dtype=np.int64)  # one-vs-rest: each group among all samples
    if xp is np:
        from ..stats._cpu.rank_sums import rank_sum_block  # numba: imported on the CPU path only

        stats = rank_sum_block(
            block, codes, group_of, rest, n_levels, linear=False, scratch=scratch
        )
    else:
        stats = device_rank_sums(block, codes, group_of, rest, n_levels, False)
    count = xp.asarray(stats["count"], dtype=xp.float64)  # (groups, genes)
    rank_sum = xp.asarray(stats["rank_sum"], dtype=xp.float64)  # (groups, genes)
    n = xp.sum(count, axis=0)
    present = count > 0
    k = xp.sum(present, axis=0).astype(xp.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        squares = xp.sum(xp.where(present, rank_sum * rank_sum / count, 0.0), axis=0)
        h = 12.0 / (n * (n + 1.0)) * squares - 3.0 * (n + 1.0)
        correction = 1.0 - stats["tie_term"][0] / (n * n * n - n)
        h = h / correction
        df = k - 1.0
        mean = xp.asarray(stats["sum"], dtype=xp.float64) / count
        mean_rank = rank_sum / count
    # every value tied: no ranks to compare (SciPy divides its rounding error by 0: ±inf)
    untestable = (df < 1.0) | (n < 2.0) | ~(correction > 0.0)
    if not omit_nan:  # as the other tests: a NaN makes the gene's test NaN
        untestable = untestable | (xp.sum(xp.asarray(stats["nan"]), axis=0) > 0)
    h = xp.where(untestable, xp.nan, h)
    pvalue = special(xp).gammaincc(df / 2.0, h / 2.0)  # χ² upper tail, SciPy's chdtrc
    return {
        "statistic": h,
        "pvalue": pvalue,
        "log10_pvalue": _log10_chi2_upper(h, df, pvalue),
        "df": xp.where(untestable, xp.nan, df),
        "mean": mean,
        "mean_rank": mean_rank,
        "count": count,
        "infinite": xp.asarray(stats["infinite"]),
    }


def _log10_chi2_upper(h: Any, df: Any, pvalue: Any) -> Any:
    """log10 of the χ² upper tail: of the p-value, or where it underflows to 0 the leading
    terms of the incomplete gamma function's asymptotic series (a = df / 2, x = h / 2)."""
    xp = namespace(h)
    a, x = df / 2.0, h / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        series = 1.0 + (a - 1.0) / x + (a - 1.0) * (a - 2.0) / (x * x)
        asymptotic = (a - 1.0) * xp.log(x) - x - special(xp).gammaln(a) + xp.log(series)
        direct = xp.log(pvalue)
    return xp.where(pvalue > 0, direct, asymptotic) / np.log(10.0)


def _over_rank_blocks(data: Comparison, statistics: Any) -> list[dict[str, Any]]:
    """``statistics(block, scratch)`` of every gene block holding every sample, in parallel."""
    n_samples = data.matrix.shape[0]
    genes_per_block = rank_block_genes(n_samples, np.dtype(data.matrix.dtype), data.device)
    # in-memory input is cut into these blocks directly: splitting 1024-gene chunks further
    # makes Dask copy every piece (4 GB, 1.9 s at 50,000 × 20,000)
    x = data.chunked((n_samples, genes_per_block)).rechunk({0: -1, 1: genes_per_block})
    scratch = None
    if data.device != "gpu":
        from ..stats._cpu.rank_sums import ScratchBuffers  # numba: imported on the CPU path only

        _compiled_for(np.dtype(data.matrix.dtype))
        scratch = ScratchBuffers()  # one transposition buffer per thread, for this call only
    block_stats = dask.delayed(statistics, pure=True)
    parts = [block_stats(block, scratch) for block in x.to_delayed()[0]]
    # the local scheduler would run a task per core; on a GPU that many blocks would not fit
    in_flight = {"num_workers": DEVICE_BLOCKS_IN_FLIGHT} if data.device == "gpu" else {}
    with dask.config.set(in_flight):
        (found,) = dask.compute(parts)
    return list(found)


def rank_block_genes(n_samples: int, dtype: np.dtype, device: str) -> int:
    """Genes per rank block: a power of two within the memory budget, up to the 1024-gene
    tiles on the CPU, up to 8 tiles on a GPU (never straddling two tiles)."""
    # CPU: the block and its transposed copy (each gene's sort buffers are small), other dtypes
    # than float32/64 also a float64 copy; GPU: CuPy's argsort, the sorted copies and the codes
    budget, widest = RANK_MEMORY_BUDGET, 1024
    if device == "gpu":
        bytes_per_value = 8 * 10
        budget, widest = DEVICE_RANK_MEMORY_BUDGET, 8192
    elif dtype in (np.float32, np.float64):
        bytes_per_value = 2 * dtype.itemsize
    else:
        bytes_per_value = dtype.itemsize + 2 * 8
    fitting = budget // (max(n_samples, 1) * bytes_per_value)
    genes_per_block = widest
    while genes_per_block > 8 and genes_per_block > fitting:
        genes_per_block //= 2
    return genes_per_block


def wilcoxon_block(
    block: Any,
    codes: np.ndarray,
    contrasts: list[tuple[int, list[int]]],
    omit_nan: bool,
    linear: bool,
    scratch: Any = None,
    alternative: str = "two-sided",
    tie_correct: bool = True,
) -> dict[str, Any]:
    """Rank-sum statistics of every contrast for one block of genes (all samples).

    Parameters
    ----------
    block : array of shape (n_samples, n_genes)
        NumPy (ranked by the compiled block of :mod:`cohortex.stats._cpu.rank_sums`) or CuPy
        (sorted by CuPy, ranked by ``kernels/rank_sum_walk.cu``).
    codes : ndarray of shape (n_samples,)
        Group code per sample, -1 outside the comparison.
    scratch : ScratchBuffers, optional
        CPU: the per-thread buffers of :func:`cohortex.stats._cpu.rank_sums.rank_sum_block`.

    Returns
    -------
    dict of arrays of shape (n_contrasts, n_genes)
    """
    xp = namespace(block)
    n_levels = int(codes.max()) + 1
    every_other = [sorted(set(range(n_levels)) - {g}) for g, _ in contrasts]
    group_of = np.array([g for g, _ in contrasts], dtype=np.int64)
    reference_of = np.array(
        [
            -1 if ref == others else ref[0]
            for (_, ref), others in zip(contrasts, every_other, strict=True)
        ],
        dtype=np.int64,
    )
    if xp is np:
        from ..stats._cpu.rank_sums import rank_sum_block  # numba: imported on the CPU path only

        stats = rank_sum_block(
            block, codes, group_of, reference_of, n_levels, linear=linear, scratch=scratch
        )
    else:
        stats = device_rank_sums(block, codes, group_of, reference_of, n_levels, linear)
    count = xp.asarray(stats["count"], dtype=xp.float64)
    nan = xp.asarray(stats["nan"], dtype=xp.float64)
    rows: dict[str, list[Any]] = {}
    for c, (group, reference) in enumerate(contrasts):
        n1 = count[group]
        n2 = xp.sum(count[reference], axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            u1 = stats["rank_sum"][c] - n1 * (n1 + 1.0) / 2.0
            # scipy's U for the alternative: the group's, the reference's, or the larger
            if alternative == "greater":
                u = u1
            elif alternative == "less":
                u = n1 * n2 - u1
            else:
                u = xp.maximum(u1, n1 * n2 - u1)
            n = n1 + n2
            tie_term = stats["tie_term"][c]
            # without the tie correction (scanpy's default) the variance ignores ties
            used_ties = tie_term if tie_correct else 0.0 * tie_term
            sigma = xp.sqrt(n1 * n2 / 12.0 * ((n + 1.0) - used_ties / (n * (n - 1.0))))
            z = (u - n1 * n2 / 2.0 - 0.5) / sigma
            tail = normal_two_sided_upper(z) if alternative == "two-sided" else normal_upper(z)
            log_tail = log_normal_two_sided_upper(z)
            if alternative != "two-sided":
                log_tail = log_tail - np.log(2.0)
            row = {
                "u": u1,
                "pvalue": xp.minimum(tail, 1.0),
                "log10_pvalue": xp.minimum(log_tail / np.log(10.0), 0.0),
                "u_test": u,
                "tie_term": tie_term,
                "mean_group": stats["sum"][group] / n1,
                "mean_reference": xp.sum(stats["sum"][reference], axis=0) / n2,
                "n_group": n1,
                "n_reference": n2,
            }
            if linear:
                linear_sum = stats["linear_sum"]
                row["linear_group"] = linear_sum[group] / n1
                row["linear_reference"] = xp.sum(linear_sum[reference], axis=0) / n2
        untestable = (n1 < 1) | (n2 < 1)
        if not omit_nan:
            # as the t-tests: a NaN makes its side's mean and the gene's test NaN, and the
            # counts are the samples compared, NaN or not
            nan_group, nan_reference = nan[group], xp.sum(nan[reference], axis=0)
            untestable = untestable | ((nan_group + nan_reference) > 0)
            for side, nan_side in (("group", nan_group), ("reference", nan_reference)):
                for name in (f"mean_{side}", f"linear_{side}"):
                    if name in row:
                        row[name] = xp.where(nan_side > 0, xp.nan, row[name])
            row["n_group"], row["n_reference"] = n1 + nan_group, n2 + nan_reference
        for name in ("u", "pvalue", "log10_pvalue", "u_test"):
            row[name] = xp.where(untestable, xp.nan, row[name])
        for name, values_ in row.items():
            rows.setdefault(name, []).append(values_)
    out = {k: xp.stack(v) for k, v in rows.items()}
    out["infinite"] = xp.broadcast_to(xp.asarray(stats["infinite"]), out["pvalue"].shape)
    return out


def exact_p_values(columns: dict[str, Any], alternative: str = "two-sided") -> None:
    """Replace the normal approximation by the exact p where scipy's 'auto' would."""
    n1, n2 = to_host(columns["n_group"]), to_host(columns["n_reference"])
    ties = to_host(columns["tie_term"]) > 0
    smaller = np.minimum(n1, n2)
    exact = (smaller >= 1) & (smaller <= EXACT_MAX_SMALLER_GROUP) & ~ties
    exact &= ~np.isnan(to_host(columns["pvalue"]))
    if not exact.any():
        return
    u = to_host(columns["u_test"])
    pvalue = to_host(columns["pvalue"]).copy()
    sides = 2.0 if alternative == "two-sided" else 1.0
    for index in zip(*np.nonzero(exact), strict=True):
        upper = exact_upper_p(u[index], int(n1[index]), int(n2[index]))
        pvalue[index] = min(1.0, sides * upper)
    xp = namespace(columns["pvalue"])
    columns["pvalue"] = xp.asarray(pvalue)
    log10_pvalue = to_host(columns["log10_pvalue"]).copy()
    log10_pvalue[exact] = np.log10(pvalue[exact])  # exact p-values are far from underflow
    columns["log10_pvalue"] = xp.asarray(log10_pvalue)
