"""Differential expression: per-gene t-tests and ANOVA F with fold changes and FDR.

One pass over the matrix computes, for every group and gene, the count, mean and centred sum of
squares (``stats._moments``), chunk by chunk through Dask on NumPy or CuPy; every contrast and
statistic is then finished per gene on the same device.

Tests
-----
``"welch"``    Welch's t (unequal variances), Welch–Satterthwaite degrees of freedom; equals
               ``scipy.stats.ttest_ind(equal_var=False)``.
``"student"``  Student's t with the pooled variance, ``n1 + n2 - 2`` degrees of freedom; equals
               ``scipy.stats.ttest_ind(equal_var=True)``.
``"anova"``    one-way ANOVA F over all the groups; equals ``scipy.stats.f_oneway`` and
               scikit-learn's ``f_classif``.
``"wilcoxon"`` Wilcoxon rank-sum / Mann–Whitney U with tie and continuity corrections (normal
               approximation), exact p-values for small untied comparisons; equals
               ``scipy.stats.mannwhitneyu`` (see :mod:`cohortex.stats._ranks`). The effect
               size ``auroc = U / (n1 n2)``. The data are read in gene blocks holding every
               sample (a block size that fits :data:`RANK_MEMORY_BUDGET`), and one-vs-rest
               ranks each gene once for all groups.

On the CPU the group moments and the rank sums run in compiled loops (numba). Their machine
code is compiled on the first call after installation and cached on disk: that first call
takes ~2 s (t-tests) and ~17–21 s (Wilcoxon on float32; ~5 s more for float64) longer on the
2-core machine of benchmarks/RESULTS.md; later processes load the cache in well under a second.

Contrasts
---------
With ``reference="rest"`` every group is compared with all other samples of the comparison
(one-vs-rest: one contrast per group, all from the same single pass). With ``reference=<group>``
every other group is compared with that group; with two groups that is one contrast and the
result has no ``contrast`` dimension.

Fold changes
------------
``log2fc`` follows the cohort's ``scale`` (``pc`` is ``pseudocount``, default 1, in the
linear units of the data):

* ``log2``: ``mean_group - mean_reference`` (the difference of the log2 means);
* ``log1p``: ``log2((mean(expm1 x)_group + pc) / (mean(expm1 x)_reference + pc))``;
* ``counts`` and ``linear``: ``log2((mean_group + pc) / (mean_reference + pc))``.

A pseudocount in data units keeps fold changes of barely expressed genes small, instead of the
±30 that a 1e-9 epsilon produces.

Edge cases
----------
A gene that is constant over the compared samples (zero variance in every group) gets NaN
statistic, p-value and adjusted p-value; NaN p-values do not count in the FDR's number of
tests. With ``nan_policy="propagate"`` a NaN value makes its gene's results NaN; with
``"omit"`` NaN values are left out gene by gene (as scipy's ``nan_policy="omit"``). Samples
whose label is missing (``""``, None or NaN) are left out with a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from . import fdr as _fdr
from ._backend import as_device_dask, load_kernel, namespace, resolve_device, to_host
from ._cohort import as_cohort_matrix
from ._errors import CohortexError, CohortexWarning
from ._fit import fit
from ._normalize import normalize
from .stats._moments import GroupMoments, group_moments
from .stats._pvalues import f_sf, normal_two_sided_upper, t_two_sided
from .stats._ranks import EXACT_MAX_SMALLER_GROUP, exact_two_sided_p

__all__ = ["RANK_MEMORY_BUDGET", "TESTS", "fit", "normalize", "select_k_best", "test", "top"]

TESTS = ("welch", "student", "anova", "wilcoxon")
NAN_POLICIES = ("propagate", "omit")
# Bytes a block of genes × all samples may use while it is ranked: on the CPU the block and its
# transposed copy (the sort's scratch is per gene); on a GPU about ten float64 copies, in larger
# blocks (a 50,000-sample cohort: 1,024 genes, not 64), at most two blocks at a time.
RANK_MEMORY_BUDGET = 256 * 2**20
DEVICE_RANK_MEMORY_BUDGET = 4 * 2**30
_DEVICE_BLOCKS_IN_FLIGHT = 2
# Tiles (samples, genes) in which an in-memory matrix is streamed: views, never copied; with the
# compiled moments loop large tiles win (50,000 × 20,000: 2048 × 1024 → 1.0 s, 8192 × 4096 →
# 0.33 s, mostly Dask's per-task cost; benchmarks/RESULTS.md).
_MEMORY_CHUNKS = (8192, 4096)


def test(
    cohort: Any,
    groupby: str | Sequence[Any] | np.ndarray,
    *,
    test: str = "welch",
    groups: Sequence[str] | None = None,
    reference: str = "rest",
    fdr: str = "bh",
    device: str = "auto",
    nan_policy: str = "propagate",
    pseudocount: float = 1.0,
    scale: str | None = None,
) -> xr.Dataset:
    """Test every gene for differential expression between groups of samples.

    Parameters
    ----------
    cohort : path, xarray.Dataset or array of shape (n_samples, n_genes)
        A cohort store, an opened cohort (or any Dataset with ``expression(sample, gene)``), or
        a NumPy, CuPy or Dask array.
    groupby : str or sequence of labels
        The sample variable holding the groups (e.g. ``"condition"``), or the labels themselves
        (length n_samples; required for a plain array).
    test : {"welch", "student", "anova", "wilcoxon"}, default "welch"
    groups : sequence of str, optional
        The groups to compare (default: every label); samples of other groups are left out.
    reference : str, default "rest"
        ``"rest"`` for one-vs-rest, or the name of the reference group. Ignored by ANOVA.
    fdr : {"bh", "by", "bonferroni", "holm", "storey", "none"}, default "bh"
        Multiple-testing correction, per contrast (:mod:`cohortex.fdr`).
    device : {"auto", "cpu", "gpu"}, default "auto"
    nan_policy : {"propagate", "omit"}, default "propagate"
    pseudocount : float, default 1.0
        For fold changes on ``log1p``, ``counts`` and ``linear`` data (see the module notes).
    scale : str, optional
        The data's scale for a plain array (default ``"log2"``); Datasets carry their own.

    Returns
    -------
    xarray.Dataset
        On ``gene`` (and ``contrast`` for several contrasts): ``statistic``, ``pvalue``,
        ``padj``, ``df``, ``log2fc``, ``mean_group``, ``mean_reference``, ``n_group``,
        ``n_reference`` (Wilcoxon: ``auroc`` instead of ``df``; ``statistic`` is U of the
        group). For ANOVA: ``statistic`` (F), ``pvalue``, ``padj``, ``df_between``,
        ``df_within`` on ``gene`` and ``mean``, ``count`` on ``(group, gene)``. Attributes name
        the test, grouping, reference, FDR method and fold-change formula. Arrays are NumPy,
        except for an in-memory CuPy input, whose results stay CuPy.
    """
    if test not in TESTS:
        raise CohortexError(
            f"The 'test' parameter of test() must be one of {', '.join(repr(t) for t in TESTS)}; "
            f"got {test!r}."
        )
    if nan_policy not in NAN_POLICIES:
        raise CohortexError(
            f"The 'nan_policy' parameter of test() must be 'propagate' or 'omit'; "
            f"got {nan_policy!r}."
        )
    if fdr not in _fdr.METHODS:
        raise CohortexError(
            f"The 'fdr' parameter of test() must be one of "
            f"{', '.join(repr(m) for m in _fdr.METHODS)}; got {fdr!r}."
        )
    data = _Input.resolve(cohort, groupby, scale=scale, device=device)
    levels, codes = data.codes(groups)
    omit = nan_policy == "omit"
    attrs: dict[str, Any] = {
        "test": test,
        "groupby": data.groupby_name,
        "fdr": fdr,
        "nan_policy": nan_policy,
        "scale": data.scale,
    }
    if test == "wilcoxon":
        contrasts = _contrasts(levels, reference)
        result = _wilcoxon(data, codes, levels, contrasts, fdr, omit, pseudocount)
    else:
        moments = data.moments(codes, len(levels), omit_nan=omit, linear=data.scale == "log1p")
    if test == "anova":
        result = _anova(moments, levels, fdr)
    elif test != "wilcoxon":
        contrasts = _contrasts(levels, reference)
        result = _t_tests(moments, levels, contrasts, test, fdr, data.scale, pseudocount)
    if test != "anova":
        attrs.update(
            reference=reference,
            pseudocount=pseudocount,
            log2fc=_FOLD_CHANGE_FORMULA[data.scale],
        )
    result = result.assign_coords(gene=data.gene_ids)
    result.attrs.update(attrs)
    return data.finish(result)


def top(result: xr.Dataset, n: int = 10, *, by: str = "padj") -> pd.DataFrame:
    """The ``n`` best genes of a result (per contrast), as a tidy table.

    Parameters
    ----------
    result : xarray.Dataset
        A result of :func:`test`.
    n : int, default 10
    by : str, default "padj"
        Variable to rank by: ascending for p-values, descending absolute value for anything
        else (``statistic``, ``log2fc``). NaN rank last.

    Returns
    -------
    DataFrame
        One row per gene (and contrast), the ranking column first.
    """
    if by not in result:
        raise CohortexError(
            f"The 'by' parameter of top() must name a result variable; got {by!r}. "
            f"Variables: {', '.join(map(str, result.data_vars))}."
        )
    table = to_host_dataset(result[[v for v in result.data_vars if "gene" in result[v].dims]])
    scalars = [name for name, coord in table.coords.items() if coord.ndim == 0]
    frame = table.drop_vars(scalars).to_dataframe().reset_index()
    ascending = by in ("pvalue", "padj")
    key = frame[by] if ascending else -frame[by].abs()
    frame = frame.assign(_key=key).sort_values("_key", kind="stable", na_position="last")
    if "contrast" in frame.columns:  # best first within each contrast, contrasts in result order
        position = {c: i for i, c in enumerate(table["contrast"].values)}
        frame = frame.assign(_contrast=frame["contrast"].map(position))
        frame = frame.sort_values("_contrast", kind="stable").groupby("contrast").head(n)
    else:
        frame = frame.head(n)
    columns = [c for c in ("contrast", "gene") if c in frame.columns]
    rest = [c for c in frame.columns if c not in (*columns, by, "_key", "_contrast")]
    return frame[[*columns, by, *rest]].reset_index(drop=True)


def select_k_best(
    cohort: Any, groupby: str | Sequence[Any] | np.ndarray, k: int = 100, *, device: str = "auto"
) -> xr.Dataset:
    """The ``k`` genes with the largest ANOVA F between groups (``SelectKBest(f_classif)``).

    Parameters
    ----------
    cohort, groupby, device
        As for :func:`test`.
    k : int, default 100

    Returns
    -------
    xarray.Dataset
        On ``gene`` (the selected ids, best first): ``score`` (F) and ``pvalue``. Genes with
        NaN F rank last, as in scikit-learn.
    """
    anova = to_host_dataset(test(cohort, groupby, test="anova", fdr="none", device=device))
    n_genes = anova.sizes["gene"]
    if not 1 <= k <= n_genes:
        raise CohortexError(f"The 'k' parameter must be between 1 and {n_genes}; got {k}.")
    score = anova["statistic"].values
    order = np.argsort(-np.nan_to_num(score, nan=-np.inf), kind="stable")[:k]
    return xr.Dataset(
        {"score": ("gene", score[order]), "pvalue": ("gene", anova["pvalue"].values[order])},
        coords={"gene": anova["gene"].values[order]},
        attrs={"test": "anova", "groupby": anova.attrs["groupby"], "k": k},
    )


def as_dask(x: Any, chunks: tuple[int, int]) -> da.Array:
    """A Dask view of an in-memory (NumPy or CuPy) matrix, without copying it.

    ``da.from_array`` copies array-likes that have a ``copy`` method and hashes the data to
    name the array; at 4 GB that costs more than the statistics. The view below exposes only
    ``shape``, ``dtype`` and slicing, and the array gets a random name.
    """
    return da.from_array(_Sliceable(x), chunks=chunks, name=False, asarray=False, meta=x[:0, :0])


class _Sliceable:
    """Just enough of an array for ``da.from_array``: shape, dtype, ndim and slicing."""

    def __init__(self, array: Any) -> None:
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.ndim = array.ndim

    def __getitem__(self, key: Any) -> Any:
        return self.array[key]


def to_host_dataset(ds: xr.Dataset) -> xr.Dataset:
    """A result with every array on the host (NumPy)."""
    if all(namespace(var.data) is np for var in ds.data_vars.values()):
        return ds
    return ds.copy(data={name: to_host(var.data) for name, var in ds.data_vars.items()})


# --------------------------------------------------------------------------------------------

_FOLD_CHANGE_FORMULA = {
    "log2": "mean_group - mean_reference",
    "log1p": "log2((mean(expm1(x))_group + pseudocount) / (mean(expm1(x))_reference + "
    "pseudocount))",
    "counts": "log2((mean_group + pseudocount) / (mean_reference + pseudocount))",
    "linear": "log2((mean_group + pseudocount) / (mean_reference + pseudocount))",
}


class _Input:
    """The matrix, labels and ids of a test, whatever form the cohort came in."""

    def __init__(
        self,
        matrix: Any,
        labels: np.ndarray,
        gene_ids: np.ndarray,
        scale: str,
        groupby_name: str,
        device: str,
        checked_finite: bool,
    ) -> None:
        self.matrix = matrix
        self.labels = labels
        self.gene_ids = gene_ids
        self.scale = scale
        self.groupby_name = groupby_name
        self.device = device
        self.checked_finite = checked_finite
        self.keep_on_device = namespace(matrix) is not np and not isinstance(matrix, da.Array)

    @classmethod
    def resolve(cls, cohort: Any, groupby: Any, *, scale: str | None, device: str) -> _Input:
        device = resolve_device(device)
        data = as_cohort_matrix(cohort, scale=scale)
        n_samples = data.matrix.shape[0]
        if isinstance(groupby, str):
            if data.dataset is None:
                raise CohortexError(
                    "For a plain array, 'groupby' must be the sample labels (a sequence of "
                    f"length {n_samples}), not a variable name; got {groupby!r}."
                )
            sample_vars = data.sample_variables()
            if groupby not in sample_vars:
                raise CohortexError(
                    f"The 'groupby' parameter of test() must name a sample variable; got "
                    f"{groupby!r}. Sample variables: {', '.join(sample_vars) or '(none)'}."
                )
            labels, name = np.asarray(to_host(data.dataset[groupby].values)), groupby
        else:
            labels, name = np.asarray(groupby), "labels"
        if labels.ndim != 1 or labels.shape[0] != n_samples:
            raise CohortexError(
                f"The 'groupby' labels must have one entry per sample ({n_samples}); got shape "
                f"{labels.shape}."
            )
        return cls(
            data.matrix, labels, data.gene_ids, data.scale, name, device, data.finite_checked
        )

    def codes(self, groups: Sequence[str] | None) -> tuple[list[str], np.ndarray]:
        """Group names and the group index of every sample (-1: left out)."""
        labels = pd.Series(self.labels, dtype=object)
        missing = labels.isna() | (labels.astype(str) == "")
        if missing.any():
            warnings.warn(
                f"{int(missing.sum())} samples have no '{self.groupby_name}' label and are left "
                "out of the test.",
                CohortexWarning,
                stacklevel=3,
            )
        text = labels.where(~missing, None).map(lambda v: None if v is None else str(v))
        present = sorted(set(text.dropna()))
        if groups is None:
            levels = present
        else:
            levels = [str(g) for g in groups]
            unknown = [g for g in levels if g not in present]
            if unknown:
                raise CohortexError(
                    f"The 'groups' parameter names groups with no samples: {', '.join(unknown)}. "
                    f"Groups of '{self.groupby_name}': {', '.join(present)}."
                )
        index = {g: i for i, g in enumerate(levels)}
        codes = np.asarray([index.get(v, -1) if v is not None else -1 for v in text], np.int64)
        sizes = np.bincount(codes[codes >= 0], minlength=len(levels))
        if len(levels) < 2:
            raise CohortexError(
                f"A test needs at least 2 groups; '{self.groupby_name}' has "
                f"{len(levels)}: {', '.join(levels) or '(none)'}."
            )
        small = [
            f"{g!r} ({s} sample{'s' if s != 1 else ''})"
            for g, s in zip(levels, sizes, strict=True)
            if s < 2
        ]
        if small:
            raise CohortexError(
                "Every group needs at least 2 samples; too small: " + ", ".join(small) + "."
            )
        return levels, codes

    def chunked(self, chunks: tuple[int, int]) -> da.Array:
        """The matrix as a Dask array on the chosen device (in-memory input: ``chunks``)."""
        x = self.matrix
        if not isinstance(x, da.Array):
            x = as_dask(x, chunks)
        if self.device == "gpu":
            return as_device_dask(x)
        return to_host(x) if namespace(x) is not np else x

    def refuse_infinite(self, counts: Any) -> None:
        """Raise if any gene holds ±inf (``counts``: per-gene numbers of them)."""
        counts = to_host(counts)
        if counts.any():
            first = int(np.flatnonzero(counts)[0])
            raise CohortexError(
                f"The expression matrix holds {int(counts.sum())} infinite values (first in gene "
                f"{self.gene_ids[first]!r}); statistics need finite values or NaN."
            )

    def moments(
        self, codes: np.ndarray, n_groups: int, *, omit_nan: bool, linear: bool
    ) -> GroupMoments:
        moments = group_moments(
            self.chunked(_MEMORY_CHUNKS),
            codes,
            n_groups,
            omit_nan=omit_nan,
            linear=linear,
            count_infinite=not self.checked_finite,
        )
        (result,) = dask.compute(moments)
        if result.infinite is not None:
            self.refuse_infinite(result.infinite)
        return result

    def finish(self, result: xr.Dataset) -> xr.Dataset:
        return result if self.keep_on_device else to_host_dataset(result)


def _contrasts(levels: list[str], reference: str) -> list[tuple[int, list[int]]]:
    """(group index, reference group indices) per contrast."""
    everyone = list(range(len(levels)))
    if reference == "rest":
        return [(g, [r for r in everyone if r != g]) for g in everyone]
    if reference not in levels:
        raise CohortexError(
            f"The 'reference' parameter must be 'rest' or one of the groups "
            f"({', '.join(levels)}); got {reference!r}."
        )
    ref = levels.index(reference)
    return [(g, [ref]) for g in everyone if g != ref]


def _t_tests(
    moments: GroupMoments,
    levels: list[str],
    contrasts: list[tuple[int, list[int]]],
    test: str,
    fdr: str,
    scale: str,
    pseudocount: float,
) -> xr.Dataset:
    columns: dict[str, list[Any]] = {}
    for group, reference in contrasts:
        a = moments.select(slice(group, group + 1))
        b = (
            moments.select(reference).pooled()
            if len(reference) > 1
            else moments.select(slice(reference[0], reference[0] + 1))
        )
        statistic, df = _t_statistic(a, b, equal_var=test == "student")
        row = {
            "statistic": statistic,
            "pvalue": t_two_sided(statistic, df),
            "log2fc": _log2fc(a, b, scale, pseudocount),
            "df": df,
            "mean_group": a.mean[0],
            "mean_reference": b.mean[0],
            "n_group": a.count[0],
            "n_reference": b.count[0],
        }
        for name, values in row.items():
            columns.setdefault(name, []).append(values)
    return _contrast_dataset(columns, levels, contrasts, fdr)


def _contrast_dataset(
    columns: dict[str, list[Any]],
    levels: list[str],
    contrasts: list[tuple[int, list[int]]],
    fdr: str,
) -> xr.Dataset:
    """Stack per-contrast rows (in the order given, ``padj`` third) into a result Dataset."""
    xp = namespace(columns["pvalue"][0])
    stacked = {k: xp.stack(v) for k, v in columns.items()}
    stacked["padj"] = _fdr.adjust(stacked["pvalue"], fdr)
    order = [
        "statistic",
        "pvalue",
        "padj",
        *(k for k in columns if k not in ("statistic", "pvalue")),
    ]
    ds = xr.Dataset(
        {k: (("contrast", "gene"), stacked[k]) for k in order},
        coords={
            "contrast": [
                f"{levels[g]}_vs_{'rest' if len(r) > 1 else levels[r[0]]}" for g, r in contrasts
            ],
            "group": ("contrast", [levels[g] for g, _ in contrasts]),
            "reference": (
                "contrast",
                ["rest" if len(r) > 1 else levels[r[0]] for _, r in contrasts],
            ),
        },
    )
    if len(contrasts) == 1 and len(contrasts[0][1]) == 1:
        ds = ds.squeeze("contrast")
    return ds


def _wilcoxon(
    data: _Input,
    codes: np.ndarray,
    levels: list[str],
    contrasts: list[tuple[int, list[int]]],
    fdr: str,
    omit_nan: bool,
    pseudocount: float,
) -> xr.Dataset:
    """Rank-sum tests in one pass over gene blocks that hold every sample."""
    n_samples = data.matrix.shape[0]
    genes_per_block = _rank_block_genes(n_samples, np.dtype(data.matrix.dtype), data.device)
    # in-memory input is cut into these blocks directly: splitting 1024-gene chunks further
    # makes Dask copy every piece (4 GB, 1.9 s at 50,000 × 20,000)
    x = data.chunked((n_samples, genes_per_block)).rechunk({0: -1, 1: genes_per_block})
    scratch = None
    if data.device != "gpu":
        from .stats._ranksum import ScratchBuffers  # numba: imported on the CPU path only

        scratch = ScratchBuffers()  # one transposition buffer per thread, for this call only
    block_stats = dask.delayed(_wilcoxon_block, pure=True)
    parts = [
        block_stats(block, codes, contrasts, omit_nan, data.scale == "log1p", scratch)
        for block in x.to_delayed()[0]
    ]
    # the local scheduler would run a task per core; on a GPU that many blocks would not fit
    in_flight = {"num_workers": _DEVICE_BLOCKS_IN_FLIGHT} if data.device == "gpu" else {}
    with dask.config.set(in_flight):
        (parts,) = dask.compute(parts)
    del scratch
    xp = namespace(parts[0]["pvalue"])
    columns = {k: xp.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}
    infinite = columns.pop("infinite")[0]
    if not data.checked_finite:
        data.refuse_infinite(infinite)
    _exact_p_values(columns)
    rows: dict[str, list[Any]] = {
        "statistic": list(columns["u"]),
        "pvalue": list(columns["pvalue"]),
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
        rows["log2fc"].append(_log2fc(a, b, data.scale, pseudocount))
    return _contrast_dataset(rows, levels, contrasts, fdr)


def _rank_block_genes(n_samples: int, dtype: np.dtype, device: str) -> int:
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


def _wilcoxon_block(
    block: Any,
    codes: np.ndarray,
    contrasts: list[tuple[int, list[int]]],
    omit_nan: bool,
    linear: bool,
    scratch: Any = None,
) -> dict[str, Any]:
    """Rank-sum statistics of every contrast for one block of genes (all samples).

    Parameters
    ----------
    block : array of shape (n_samples, n_genes)
        NumPy (ranked by the compiled kernel of :mod:`cohortex.stats._ranksum`) or CuPy (sorted
        by CuPy, ranked by ``kernels/rank_sum_walk.cu``).
    codes : ndarray of shape (n_samples,)
        Group code per sample, -1 outside the comparison.
    scratch : ScratchBuffers, optional
        CPU: the per-thread buffers of :func:`cohortex.stats._ranksum.rank_sum_block`.

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
        from .stats._ranksum import rank_sum_block  # numba: imported on the CPU path only

        stats = rank_sum_block(
            block, codes, group_of, reference_of, n_levels, linear=linear, scratch=scratch
        )
    else:
        stats = _device_rank_sums(block, codes, group_of, reference_of, n_levels, linear)
    count = xp.asarray(stats["count"], dtype=xp.float64)
    nan = xp.asarray(stats["nan"], dtype=xp.float64)
    rows: dict[str, list[Any]] = {}
    for c, (group, reference) in enumerate(contrasts):
        n1 = count[group]
        n2 = xp.sum(count[reference], axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            u1 = stats["rank_sum"][c] - n1 * (n1 + 1.0) / 2.0
            u = xp.maximum(u1, n1 * n2 - u1)
            n = n1 + n2
            tie_term = stats["tie_term"][c]
            sigma = xp.sqrt(n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0))))
            z = (u - n1 * n2 / 2.0 - 0.5) / sigma
            row = {
                "u": u1,
                "pvalue": xp.minimum(normal_two_sided_upper(z), 1.0),
                "u_max": u,
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
        if not omit_nan:  # a NaN anywhere in the comparison makes the gene's result NaN
            untestable = untestable | ((nan[group] + xp.sum(nan[reference], axis=0)) > 0)
        for name in ("u", "pvalue", "u_max", "mean_group", "mean_reference"):
            row[name] = xp.where(untestable, xp.nan, row[name])
        for name, values_ in row.items():
            rows.setdefault(name, []).append(values_)
    out = {k: xp.stack(v) for k, v in rows.items()}
    out["infinite"] = xp.broadcast_to(xp.asarray(stats["infinite"]), out["pvalue"].shape)
    return out


def _device_rank_sums(
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
        "sum": _level_sums(indicator, by_gene),
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
        out["linear_sum"] = _level_sums(indicator, xp.expm1(by_gene))
    return out


def _level_sums(indicator: Any, by_gene: Any) -> Any:
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


def _exact_p_values(columns: dict[str, Any]) -> None:
    """Replace the normal approximation by the exact p where scipy's 'auto' would."""
    n1, n2 = to_host(columns["n_group"]), to_host(columns["n_reference"])
    ties = to_host(columns["tie_term"]) > 0
    smaller = np.minimum(n1, n2)
    exact = (smaller >= 1) & (smaller <= EXACT_MAX_SMALLER_GROUP) & ~ties
    exact &= ~np.isnan(to_host(columns["pvalue"]))
    if not exact.any():
        return
    u = to_host(columns["u_max"])
    pvalue = to_host(columns["pvalue"]).copy()
    for index in zip(*np.nonzero(exact), strict=True):
        pvalue[index] = exact_two_sided_p(u[index], int(n1[index]), int(n2[index]))
    xp = namespace(columns["pvalue"])
    columns["pvalue"] = xp.asarray(pvalue)


def _t_statistic(a: GroupMoments, b: GroupMoments, *, equal_var: bool) -> tuple[Any, Any]:
    """t and degrees of freedom of group a against group b, per gene (shape (n_genes,))."""
    xp = namespace(a.count)
    n1, n2 = a.count[0], b.count[0]
    var1, var2 = a.variance()[0], b.variance()[0]
    difference = a.mean[0] - b.mean[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        if equal_var:
            df = n1 + n2 - 2.0
            pooled = (a.m2[0] + b.m2[0]) / df
            standard_error = xp.sqrt(pooled * (1.0 / n1 + 1.0 / n2))
        else:
            v1, v2 = var1 / n1, var2 / n2
            standard_error = xp.sqrt(v1 + v2)
            df = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1.0) + v2 * v2 / (n2 - 1.0))
        statistic = difference / standard_error
    # fewer than 2 values on a side (possible with nan_policy="omit") leaves the gene untested
    untestable = (n1 < 2) | (n2 < 2)
    statistic = xp.where(untestable, xp.nan, statistic)
    df = xp.where(untestable | xp.isnan(statistic), xp.nan, df)
    return statistic, df


def _log2fc(a: GroupMoments, b: GroupMoments, scale: str, pseudocount: float) -> Any:
    xp = namespace(a.count)
    if scale == "log2":
        return a.mean[0] - b.mean[0]
    if scale == "log1p":
        top, bottom = a.linear_mean[0], b.linear_mean[0]
    else:
        top, bottom = a.mean[0], b.mean[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return xp.log2((top + pseudocount) / (bottom + pseudocount))


def _anova(moments: GroupMoments, levels: list[str], fdr: str) -> xr.Dataset:
    xp = namespace(moments.count)
    everyone = moments.pooled()
    counts = moments.count
    k = xp.sum(counts > 0, axis=0).astype(xp.float64)  # groups with values, per gene
    n = everyone.count[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = xp.sum(counts * (moments.mean - everyone.mean) ** 2, axis=0)
        within = xp.sum(moments.m2, axis=0)
        df_between = k - 1.0
        df_within = n - k
        statistic = (between / df_between) / (within / df_within)
    statistic = xp.where((df_between > 0) & (df_within > 0), statistic, xp.nan)
    pvalue = f_sf(statistic, df_between, df_within)
    ds = xr.Dataset(
        {
            "statistic": ("gene", statistic),
            "pvalue": ("gene", pvalue),
            "padj": ("gene", _fdr.adjust(pvalue, fdr)),
            "df_between": ("gene", df_between),
            "df_within": ("gene", df_within),
            "mean": (("group", "gene"), moments.mean),
            "count": (("group", "gene"), counts),
        },
        coords={"group": levels},
    )
    return ds
