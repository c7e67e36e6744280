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
``"kruskal"``  Kruskal–Wallis H over all the groups (ties corrected, χ² with k − 1 df); equals
               ``scipy.stats.kruskal`` (a gene whose values all tie is NaN, where SciPy
               divides its rounding error by 0); from the same rank blocks as Wilcoxon.
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
A gene that is constant over the compared samples gets NaN statistic, p-value and adjusted
p-value; NaN p-values do not count in the FDR's number of tests. A gene with no variance in
either group but different means gets t = ±inf and p = 0 (Welch: ``df`` 1, as SciPy reports).
Groups of one sample are allowed for Student's t (given a variance from the other side),
ANOVA and the Wilcoxon test, not for Welch's t, as in SciPy. With ``nan_policy="propagate"``
a NaN value makes its gene's results NaN; with ``"omit"`` NaN values are left out gene by gene
(as scipy's ``nan_policy="omit"``; a gene left with too few values gets NaN where SciPy's is
NaN). Samples whose label is missing (``""``, None or NaN) are left out with a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import fdr as _fdr
from .._cohort import CohortLike, shared_docs, to_host_dataset
from .._errors import CohortexError
from .._normalize import normalize
from ._array_weights import array_weights
from ._batch import remove_batch_effect
from ._block_model import duplicate_correlation
from ._combat import combat
from ._combat_seq import combat_seq
from ._comparison import MEMORY_CHUNKS, Comparison, contrasts_of
from ._decide import decide
from ._deseq import deseq
from ._exact_test import exact_test
from ._glm_ql import estimate_dispersion, glm_lrt, glm_ql
from ._ihw import ihw
from ._linear_model import fit
from ._result import contrast_dataset
from ._rlog import rlog
from ._signed_rank import signed_rank
from ._sva import SVA_METHODS, fsva, num_sv, sva, wsva
from ._ttest import FOLD_CHANGE_FORMULA, anova, paired_t, t_tests
from ._voom import voom
from ._voom_lm_fit import voom_lm_fit
from ._vooma import vooma
from ._vst import vst
from ._wilcoxon import RANK_MEMORY_BUDGET, kruskal, wilcoxon

__all__ = [
    "RANK_MEMORY_BUDGET",
    "SVA_METHODS",
    "TESTS",
    "array_weights",
    "combat",
    "combat_seq",
    "decide",
    "deseq",
    "duplicate_correlation",
    "estimate_dispersion",
    "exact_test",
    "fit",
    "fsva",
    "glm_lrt",
    "glm_ql",
    "ihw",
    "normalize",
    "num_sv",
    "remove_batch_effect",
    "rlog",
    "select_k_best",
    "sva",
    "test",
    "top",
    "voom",
    "voom_lm_fit",
    "vooma",
    "vst",
    "wsva",
]

TESTS = ("welch", "student", "anova", "wilcoxon", "kruskal")


NAN_POLICIES = ("propagate", "omit")
ALTERNATIVES = ("two-sided", "greater", "less")


@shared_docs
def test(
    cohort: CohortLike,
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
    alternative: str = "two-sided",
    paired_by: str | Sequence[Any] | np.ndarray | None = None,
    tie_correct: bool = True,
) -> xr.Dataset:
    """Test every gene for differential expression between groups of samples.

    Parameters
    ----------
    {cohort}
    {groupby}
    test : {"welch", "student", "anova", "wilcoxon", "kruskal"}, default "welch"
    groups : sequence of str, optional
        The groups to compare (default: every label); samples of other groups are left out.
    reference : str, default "rest"
        ``"rest"`` for one-vs-rest, or the name of the reference group. Ignored by ANOVA and
        Kruskal–Wallis.
    fdr : {"bh", "by", "bonferroni", "holm", "storey", "none"}, default "bh"
        Multiple-testing correction, per contrast (:mod:`cohortex.fdr`).
    {device}
    nan_policy : {"propagate", "omit"}, default "propagate"
    pseudocount : float, default 1.0
        For fold changes on ``log1p``, ``counts`` and ``linear`` data (see the module notes).
    scale : str, optional
        The data's scale for a plain array (default ``"log2"``); Datasets carry their own.
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
        As SciPy's: ``"greater"`` tests whether the group lies above its reference,
        ``"less"`` below. Not for ANOVA.
    paired_by : str or sequence, optional
        A sample variable (or one label per sample) naming the pair of each sample, e.g. the
        patient of a tumour and its normal tissue. Student's or Welch's t becomes the paired
        t-test (``scipy.stats.ttest_rel``), Wilcoxon's rank-sum test the signed-rank test
        (``scipy.stats.wilcoxon``: zero differences left out, exact p for small samples as
        its ``method="auto"``; the statistic is W+, the rank sum of the positive differences).
        Two groups only; samples without a partner are left out with a warning.
    tie_correct : bool, default True
        Wilcoxon's normal approximation with the tie correction of the variance (SciPy's,
        R's); False leaves it out, as scanpy's ``rank_genes_groups`` does by default. The
        ``log2fc`` differs from scanpy's ``logfoldchanges`` on ``log1p`` data: cohortex takes
        ``log2`` of the ratio of the groups' mean ``expm1`` values plus ``pseudocount``;
        scanpy ``expm1`` of the mean ``log1p`` values plus 1e-9. On ``log2`` data both are
        the difference of the means.

    Returns
    -------
    xarray.Dataset
        On ``gene`` (and ``contrast`` for several contrasts): ``statistic``, ``pvalue``,
        ``padj``, ``df``, ``log2fc``, ``mean_group``, ``mean_reference``, ``n_group``,
        ``n_reference`` (the samples compared; with ``nan_policy="omit"`` those with a value)
        (Wilcoxon: ``auroc`` instead of ``df``; ``statistic`` is U of the group). For ANOVA:
        ``statistic`` (F), ``pvalue``, ``padj``, ``df_between``, ``df_within`` on ``gene``
        and ``mean``, ``count`` on ``(group, gene)``; for Kruskal–Wallis ``statistic`` (H),
        ``pvalue``, ``padj``, ``df`` on ``gene`` and ``mean``, ``mean_rank``, ``count`` on
        ``(group, gene)``. Attributes name the test, grouping,
        reference, FDR method and fold-change formula. Arrays are NumPy, except for an
        in-memory CuPy input, whose results stay CuPy.
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
    _fdr.check_method(fdr, "test()")
    if alternative not in ALTERNATIVES:
        raise CohortexError(
            f"The 'alternative' parameter of test() must be one of "
            f"{', '.join(repr(a) for a in ALTERNATIVES)}; got {alternative!r}."
        )
    if test in ("anova", "kruskal") and alternative != "two-sided":
        name = "ANOVA's F" if test == "anova" else "Kruskal–Wallis's H"
        raise CohortexError(f"{name} has no direction: use alternative='two-sided'.")
    if paired_by is not None and test in ("anova", "kruskal"):
        raise CohortexError(
            "A paired test is the paired t-test (test='student' or 'welch') or the Wilcoxon "
            "signed-rank test (test='wilcoxon'), not ANOVA or Kruskal–Wallis."
        )
    data = Comparison.resolve(cohort, groupby, scale=scale, device=device, paired_by=paired_by)
    levels, codes = data.codes(groups, test)
    omit = nan_policy == "omit"
    attrs: dict[str, Any] = {
        "test": test,
        "groupby": data.groupby_name,
        "fdr": fdr,
        "nan_policy": nan_policy,
        "scale": data.scale,
        "alternative": alternative,
    }
    if paired_by is not None:
        if len(levels) != 2:
            raise CohortexError(
                f"A paired test compares two groups; '{data.groupby_name}' has {len(levels)}: "
                f"{', '.join(levels)} (choose two with 'groups')."
            )
        result = _paired(data, codes, levels, reference, fdr, omit, pseudocount, alternative, test)
        paired_test = "wilcoxon signed-rank" if test == "wilcoxon" else "paired t"
        attrs.update(test=paired_test, paired_by=data.paired_by)
    elif test == "kruskal":
        result = kruskal(data, codes, levels, fdr, omit)
    elif test == "wilcoxon":
        contrasts = contrasts_of(levels, reference)
        result = wilcoxon(
            data, codes, levels, contrasts, fdr, omit, pseudocount, alternative, tie_correct
        )
    else:
        moments = data.moments(codes, len(levels), omit_nan=omit, linear=data.scale == "log1p")
        if test == "anova":
            result = anova(moments, levels, fdr)
        else:
            contrasts = contrasts_of(levels, reference)
            result = t_tests(
                moments, levels, contrasts, test, fdr, data.scale, pseudocount, alternative
            )
    if test not in ("anova", "kruskal"):
        attrs.update(
            reference=reference,
            pseudocount=pseudocount,
            log2fc=FOLD_CHANGE_FORMULA[data.scale],
        )
    result = result.assign_coords(gene=data.gene_ids)
    result.attrs.update(attrs)
    return data.finish(result)


def _paired(
    data: Comparison,
    codes: np.ndarray,
    levels: list[str],
    reference: str,
    fdr: str,
    omit_nan: bool,
    pseudocount: float,
    alternative: str,
    test: str,
) -> xr.Dataset:
    """Paired t-tests or signed-rank tests of each contrast of two groups."""
    contrasts = contrasts_of(levels, reference)
    columns: dict[str, list[Any]] = {}
    x = data.chunked(MEMORY_CHUNKS)
    for group, (ref,) in contrasts:
        first, second = data.paired_rows(codes, group, ref)
        row, infinite = (signed_rank if test == "wilcoxon" else paired_t)(
            x,
            first,
            second,
            omit_nan=omit_nan,
            alternative=alternative,
            scale=data.scale,
            pseudocount=pseudocount,
            count_infinite=not data.checked_finite,
        )
        if infinite is not None:
            data.refuse_infinite(infinite)
        for name, values in row.items():
            columns.setdefault(name, []).append(values)
    return contrast_dataset(columns, levels, contrasts, fdr)


def top(result: xr.Dataset, n: int = 10, *, by: str = "padj") -> pd.DataFrame:
    """The ``n`` best genes of a result (per contrast), as a tidy table.

    Parameters
    ----------
    result : xarray.Dataset
        A result of :func:`test`.
    n : int, default 10
    by : str, default "padj"
        Variable to rank by: ascending for p-values (``pvalue``, ``padj``,
        ``log10_pvalue``), descending absolute value for anything else (``statistic``,
        ``log2fc``). NaN rank last. Equal p-values (in large cohorts they underflow to 0
        together) are ordered by ``log10_pvalue`` (computed from the statistic, finite where p
        underflows), then by the larger absolute ``statistic``.

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
    # per gene (and contrast) only: an ANOVA's per-group means would repeat every gene
    per_gene = [
        v
        for v in result.data_vars
        if "gene" in result[v].dims and set(result[v].dims) <= {"gene", "contrast"}
    ]
    table = to_host_dataset(result[per_gene])
    scalars = [name for name, coord in table.coords.items() if coord.ndim == 0]
    frame = table.drop_vars(scalars).to_dataframe().reset_index()
    ascending = by in ("pvalue", "padj", "log10_pvalue")
    key = frame[by] if ascending else -frame[by].abs()
    frame = frame.assign(_key=key)
    keys = ["_key"]
    if ascending:  # ties of p, e.g. all underflowed to 0
        if "log10_pvalue" in frame.columns:
            keys.append("log10_pvalue")
        if "statistic" in frame.columns:
            frame = frame.assign(_strength=-frame["statistic"].abs())
            keys.append("_strength")
    frame = frame.sort_values(keys, kind="stable", na_position="last")
    if "contrast" in frame.columns:  # best first within each contrast, contrasts in result order
        position = {c: i for i, c in enumerate(table["contrast"].values)}
        frame = frame.assign(_contrast=frame["contrast"].map(position))
        frame = frame.sort_values("_contrast", kind="stable").groupby("contrast").head(n)
    else:
        frame = frame.head(n)
    columns = [c for c in ("contrast", "gene") if c in frame.columns]
    rest = [c for c in frame.columns if c not in (*columns, by, "_key", "_strength", "_contrast")]
    frame = frame[[*columns, by, *rest]].reset_index(drop=True)
    # a single comparison keeps what it compared, as the last columns
    for name in ("contrast", "group", "reference"):
        if name in scalars and name not in frame.columns:
            frame[name] = str(table[name].values)
    return frame


def select_k_best(
    cohort: CohortLike,
    groupby: str | Sequence[Any] | np.ndarray,
    k: int = 100,
    *,
    device: str = "auto",
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
