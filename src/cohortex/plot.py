"""Plots: volcano, MA and top-gene bars of DE results; a heatmap of genes (or GSVA's set
scores) across the samples; PCA/t-SNE scatter and scree plot;
Kaplan–Meier curves and a forest plot of hazard ratios; ROC curves of cross-validated
predictions; GSEA running scores, limma's barcode plot of a set and a dot plot of enriched
gene sets; WGCNA's scale-free fit, gene tree with its modules and module-trait heatmap.

Every function draws on a Matplotlib ``Axes`` (a new figure when ``ax`` is None) without
touching pyplot's global state, so it works headless, and returns the ``Axes``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from ._errors import CohortexError
from ._optional import require

require("matplotlib", "cohortex.plot")

from matplotlib.axes import Axes  # noqa: E402 (after the check above)
from matplotlib.figure import Figure  # noqa: E402

__all__ = [
    "barcode",
    "calibration",
    "consensus",
    "cumulative_incidence",
    "dendrogram",
    "embedding",
    "enrichment",
    "forest",
    "gsea",
    "heatmap",
    "km",
    "loss",
    "ma",
    "module_traits",
    "roc",
    "scree",
    "soft_threshold",
    "top_genes",
    "volcano",
]

_UP, _DOWN, _NEUTRAL = "#c0392b", "#2471a3", "#b3b6b7"


def volcano(
    result: xr.Dataset,
    *,
    contrast: str | None = None,
    alpha: float = 0.05,
    lfc: float = 1.0,
    label: int = 10,
    ax: Axes | None = None,
) -> Axes:
    """Volcano plot: log2 fold change against -log10 p-value.

    Genes with ``padj < alpha`` and ``|log2fc| >= lfc`` are coloured (up red, down blue) and
    the ``label`` most significant of them named. The height is the result's ``log10_pvalue``
    (from the statistic, so genes whose p underflows to 0 keep their order instead of sitting
    on a line at the smallest double).

    Parameters
    ----------
    result : xarray.Dataset
        A two-group result of :func:`cohortex.de.test` or :func:`cohortex.de.exact_test`, or
        a result of :func:`cohortex.de.fit`, :func:`cohortex.de.glm_ql` or
        :func:`cohortex.de.glm_lrt` (its ``coefficient`` is the fold change).
    contrast : str, optional
        Which contrast, when the result has several.
    alpha, lfc : float
        Significance and fold-change thresholds (drawn as dashed lines).
    label : int, default 10
    ax : matplotlib Axes, optional
    """
    table = _contrast(result, contrast)
    x = table["log2fc"].values
    y = _minus_log10_p(table)
    up, down = _calls(table, alpha, lfc)
    ax = ax or _new_axes()
    neutral = ~(up | down)
    ax.scatter(x[neutral], y[neutral], s=4, c=_NEUTRAL, linewidths=0, label="not significant")
    ax.scatter(x[up], y[up], s=6, c=_UP, linewidths=0, label=f"up ({int(up.sum())})")
    ax.scatter(x[down], y[down], s=6, c=_DOWN, linewidths=0, label=f"down ({int(down.sum())})")
    for threshold in (-lfc, lfc):
        ax.axvline(threshold, color="k", lw=0.6, ls="--")
    significant = (up | down) & np.isfinite(y)
    for index in np.flatnonzero(significant)[np.argsort(-y[significant])][:label]:
        ax.annotate(str(table["gene"].values[index]), (x[index], y[index]), fontsize=7)
    ax.set_xlabel("log2 fold change")
    ax.set_ylabel("-log10 p-value")
    ax.set_title(_title(table, "Volcano"))
    # the strongest genes sit in the upper corners, with their labels
    ax.legend(loc="upper center", fontsize=7, frameon=False)
    return ax


def ma(
    result: xr.Dataset,
    *,
    contrast: str | None = None,
    alpha: float = 0.05,
    lfc: float = 1.0,
    ax: Axes | None = None,
) -> Axes:
    """MA plot: log2 fold change against mean expression (the mean of the two group means,
    limma's AveExpr for a :func:`cohortex.de.fit` result, or DESeq2's baseMean on a log axis
    for :func:`cohortex.de.deseq`'s).

    Parameters are as for :func:`volcano`.
    """
    table = _contrast(result, contrast)
    if "mean_expression" in table:  # limma's AveExpr (de.fit, and de.test's two groups)
        average = table["mean_expression"].values
    else:
        average = (table["mean_group"].values + table["mean_reference"].values) / 2.0
    x = table["log2fc"].values
    up, down = _calls(table, alpha, lfc)
    ax = ax or _new_axes()
    neutral = ~(up | down)
    ax.scatter(average[neutral], x[neutral], s=4, c=_NEUTRAL, linewidths=0)
    ax.scatter(average[up], x[up], s=6, c=_UP, linewidths=0, label=f"up ({int(up.sum())})")
    ax.scatter(
        average[down], x[down], s=6, c=_DOWN, linewidths=0, label=f"down ({int(down.sum())})"
    )
    ax.axhline(0.0, color="k", lw=0.6)
    if result.attrs.get("mean_expression_scale") == "linear":  # DESeq2's baseMean
        ax.set_xscale("log")
        ax.set_xlabel("mean of normalised counts (log scale)")
    else:
        ax.set_xlabel(f"mean expression ({result.attrs.get('scale', 'data')} scale)")
    ax.set_ylabel("log2 fold change")
    ax.set_title(_title(table, "MA"))
    ax.legend(loc="upper right", fontsize=7, frameon=False)
    return ax


def top_genes(
    result: xr.Dataset,
    n: int = 20,
    *,
    contrast: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Horizontal bars of -log10 p-value for the ``n`` most significant genes, best on top.

    The bars are the result's ``log10_pvalue`` where it has one (ordered and sized right where
    p underflows to 0). Bars are coloured by the sign of the fold change (red: higher in the
    group), or of the statistic for a result without one; an ANOVA's F has no direction, so
    its bars are grey (edgeR's F and likelihood ratio take the fold change's sign).
    """
    table = _contrast(result, contrast, needs=("pvalue",))
    strength = _minus_log10_p(table)
    finite = np.flatnonzero(~np.isnan(strength))
    best = finite[np.argsort(-strength[finite], kind="stable")][:n]
    heights = strength[best]
    sign = next((np.asarray(table[v].values) for v in ("log2fc", "statistic") if v in table), None)
    if sign is None or table.attrs.get("test") == "anova":
        colours = [_NEUTRAL] * len(best)
    else:
        colours = [_UP if sign[i] > 0 else _DOWN for i in best]
    ax = ax or _new_axes(height=max(3.0, 0.22 * len(best) + 1))
    positions = np.arange(len(best))[::-1]
    ax.barh(positions, heights, color=colours)
    ax.set_yticks(positions, [str(g) for g in table["gene"].values[best]], fontsize=7)
    ax.set_xlabel("-log10 p-value")
    ax.set_title(_title(table, f"Top {len(best)} genes"))
    return ax


def heatmap(
    cohort: Any,
    genes: Any = None,
    *,
    groupby: str | None = None,
    n: int = 30,
    standardize: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Values of some genes in every sample: a row per gene, a column per sample, the samples
    side by side by group. Also draws :func:`cohortex.genesets.gsva` scores (a row per set).

    Parameters
    ----------
    cohort : path, xarray.Dataset or array of shape (n_samples, n_genes)
        A cohort, or a cohort-shaped result such as GSVA's scores.
    genes : sequence of str, optional
        The rows, in this order. Default: the ``n`` genes whose values vary most across the
        samples (their variance; genes with missing values count their observed ones).
    groupby : str, optional
        A sample variable: the samples in its levels' order (sorted), each group labelled
        below the map and parted from the next by a line.
    n : int, default 30
    standardize : bool, default True
        Each row as z-scores across the samples (a diverging scale centred on 0, clipped at
        the 99th percentile of |z|); False draws the values themselves.
    """
    from ._backend import to_host
    from ._cohort import as_cohort_matrix

    data = as_cohort_matrix(cohort)
    ids = [str(g) for g in data.gene_ids]
    if genes is None:
        if n < 1:
            raise CohortexError(f"'n' must be at least 1; got {n}.")
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing gene's variance
            spread = np.asarray(to_host(_nanvar(data.matrix)), dtype=np.float64)
        ranked = np.argsort(-np.nan_to_num(spread, nan=-np.inf), kind="stable")
        columns = ranked[: min(n, len(ids))]
    else:
        where = {g: i for i, g in enumerate(ids)}
        wanted = [str(g) for g in ([genes] if isinstance(genes, str) else genes)]
        missing = [g for g in wanted if g not in where]
        if missing or not wanted:
            raise CohortexError(
                f"{len(missing)} of the genes are not in the cohort (first {missing[0]!r})."
                if missing
                else "'genes' is empty."
            )
        columns = np.array([where[g] for g in wanted])
    values = _host_columns(data.matrix, columns)
    order = np.arange(values.shape[0])
    labels = None
    if groupby is not None:
        labels = data.sample_variable(groupby, "groupby").astype(str)
        order = np.argsort(labels, kind="stable")
        labels = labels[order]
    values = values[order]
    if standardize:
        with np.errstate(invalid="ignore", divide="ignore"):
            values = (values - np.nanmean(values, axis=0)) / np.nanstd(values, axis=0, ddof=1)
        finite = np.abs(values[np.isfinite(values)])
        limit: float | None = float(np.percentile(finite, 99)) if finite.size else 1.0
        cmap = "RdBu_r"
    else:
        limit, cmap = None, "viridis"
    rows = values.shape[1]
    ax = ax or _new_axes(height=max(3.0, 0.18 * rows + 1.5))
    image = ax.imshow(
        values.T,
        aspect="auto",
        interpolation="nearest",
        cmap=cmap,
        vmin=None if limit is None else -limit,
        vmax=limit,
    )
    ax.figure.colorbar(image, ax=ax, label="z-score" if standardize else "value", shrink=0.8)
    ax.set_yticks(np.arange(rows), [ids[c] for c in columns], fontsize=7 if rows <= 60 else 4)
    if labels is not None:
        starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
        ends = np.r_[starts[1:], labels.size]
        ax.set_xticks((starts + ends - 1) / 2, labels[starts], fontsize=8)
        for start in starts[1:]:
            ax.axvline(start - 0.5, color="black", linewidth=0.8)
        ax.set_xlabel(str(groupby))
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"{values.shape[0]} samples")
    method = data.dataset.attrs.get("method") if data.dataset is not None else None
    kind = "gene sets" if "set_size" in (data.dataset or {}) else "genes"
    what = f"{method} scores" if method and kind == "gene sets" else "Values"
    ax.set_title(f"{what}: {rows} {kind}" + (" (z-scores)" if standardize else ""))
    return ax


def _nanvar(matrix: Any) -> Any:
    import dask.array as da

    if isinstance(matrix, da.Array):
        return da.nanvar(matrix.astype(np.float64), axis=0).compute()
    from ._backend import namespace

    xp = namespace(matrix)
    return xp.nanvar(matrix.astype(xp.float64), axis=0)


def _host_columns(matrix: Any, columns: np.ndarray) -> np.ndarray:
    """The chosen columns of a NumPy, CuPy or Dask matrix, as float64 on the host."""
    import dask.array as da

    from ._backend import to_host

    if isinstance(matrix, da.Array):
        return np.asarray(to_host(matrix[:, columns].compute()), dtype=np.float64)
    return np.asarray(to_host(matrix[:, columns]), dtype=np.float64)


def _new_axes(height: float = 4.0) -> Axes:
    figure = Figure(figsize=(5.5, height), layout="constrained")
    return figure.add_subplot()


def _contrast(
    result: xr.Dataset,
    contrast: str | None,
    needs: tuple[str, ...] = ("log2fc", "pvalue", "padj"),
) -> xr.Dataset:
    if "coefficient" in result and "log2fc" not in result:  # de.fit's name for the effect
        result = result.rename({"coefficient": "log2fc"})
    missing = [v for v in needs if v not in result]
    if missing:
        raise CohortexError(
            "These plots need a two-group result of de.test() or de.exact_test(), or a result "
            "of de.fit(), de.glm_ql(), de.glm_lrt() or de.deseq(); the result lacks "
            + ", ".join(missing)
            + "."
        )
    from ._cohort import to_host_dataset

    result = to_host_dataset(result)
    if "contrast" in result.dims:
        names = [str(c) for c in result["contrast"].values]
        if contrast is None:
            if len(names) == 1:
                return result.isel(contrast=0)
            raise CohortexError(
                f"The result has {len(names)} contrasts; pass 'contrast', one of: "
                + ", ".join(names)
                + "."
            )
        if contrast not in names:
            raise CohortexError(
                f"The 'contrast' parameter must be one of {', '.join(names)}; got {contrast!r}."
            )
        return result.sel(contrast=contrast)
    return result


def _minus_log10_p(table: xr.Dataset) -> np.ndarray:
    """-log10 p per gene: the result's ``log10_pvalue`` (finite where p underflows), or
    ``pvalue`` clipped at the smallest normal double for results without it."""
    if "log10_pvalue" in table:
        return -np.asarray(table["log10_pvalue"].values, dtype=np.float64)
    p = np.asarray(table["pvalue"].values, dtype=np.float64)
    return -np.log10(np.clip(p, np.finfo(float).tiny, None))


def _calls(table: xr.Dataset, alpha: float, lfc: float) -> tuple[Any, Any]:
    padj = np.nan_to_num(table["padj"].values, nan=1.0)
    fold = np.nan_to_num(table["log2fc"].values, nan=0.0)
    significant = (padj < alpha) & (np.abs(fold) >= lfc)
    return significant & (fold > 0), significant & (fold < 0)


def _title(table: xr.Dataset, kind: str) -> str:
    name = str(table["contrast"].values) if "contrast" in table.coords else ""
    return f"{kind}: {name.replace('_vs_', ' vs ')}" if name else kind


def embedding(
    result: xr.Dataset,
    color: str | None = "condition",
    *,
    dims: tuple[int, int] = (0, 1),
    ax: Axes | None = None,
) -> Axes:
    """Scatter of samples in an embedding (a :func:`cohortex.pca`, :func:`cohortex.tsne` or
    :func:`cohortex.mds` result), coloured by a sample variable.

    Parameters
    ----------
    result : xarray.Dataset
        With ``scores(sample, pc)`` or ``embedding(sample, dim)``.
    color : str or None, default "condition"
        A sample variable of the result; text gives one colour per level (with a legend),
        numbers a colour scale. Ignored when the result has no such variable and ``None``.
    dims : (int, int), default (0, 1)
        Which components to plot.
    """
    name = "scores" if "scores" in result else "embedding" if "embedding" in result else None
    if name is None:
        raise CohortexError("embedding() needs a pca() or tsne() result (scores or embedding).")
    values = np.asarray(result[name].values)
    axis_names = [str(v) for v in result[name][result[name].dims[1]].values]
    x, y = values[:, dims[0]], values[:, dims[1]]
    ax = ax or _new_axes(height=4.5)
    if color is not None and color not in result:
        variables = [str(v) for v in result.data_vars if result[v].dims == ("sample",)]
        raise CohortexError(
            f"The 'color' parameter must name a sample variable of the result; got {color!r}. "
            f"Sample variables: {', '.join(variables) or '(none)'}."
        )
    if color is None:
        ax.scatter(x, y, s=4, linewidths=0)
    else:
        labels = np.asarray(result[color].values)
        if labels.dtype.kind in "iuf" and len(np.unique(labels)) > 12:
            points = ax.scatter(x, y, c=labels, s=4, linewidths=0, cmap="viridis")
            ax.figure.colorbar(points, ax=ax, label=color)
        else:
            for level in sorted(set(labels.astype(str))):
                inside = labels.astype(str) == level
                ax.scatter(x[inside], y[inside], s=4, linewidths=0, label=level or "(missing)")
            ax.legend(title=color, fontsize=7, markerscale=3, frameon=False)
    shares = "explained_variance_ratio" if name == "scores" else "var_explained"
    if shares in result:  # PCA, and limma's MDS: each axis's share of the variance
        ratio = np.asarray(result[shares].values)
        ax.set_xlabel(f"{axis_names[dims[0]]} ({100 * ratio[dims[0]]:.1f}%)")
        ax.set_ylabel(f"{axis_names[dims[1]]} ({100 * ratio[dims[1]]:.1f}%)")
    else:
        ax.set_xlabel(axis_names[dims[0]])
        ax.set_ylabel(axis_names[dims[1]])
    if name == "scores":
        ax.set_title("PCA")
    elif "gene_selection" in result.attrs:
        ax.set_title(f"MDS (leading log-fold-changes, {result.attrs['gene_selection']})")
    else:
        ax.set_title("t-SNE")
    return ax


def scree(result: xr.Dataset, *, ax: Axes | None = None) -> Axes:
    """Explained variance ratio per component (bars) and its cumulative sum (line)."""
    if "explained_variance_ratio" not in result:
        raise CohortexError("scree() needs a pca() result (explained_variance_ratio).")
    ratio = np.asarray(result["explained_variance_ratio"].values)
    positions = np.arange(1, len(ratio) + 1)
    ax = ax or _new_axes()
    ax.bar(positions, ratio, color="#5d6d7e")
    ax.plot(positions, np.cumsum(ratio), color="k", marker=".", lw=1)
    ax.set_xlabel("principal component")
    ax.set_ylabel("explained variance ratio (bars), cumulative (line)")
    ax.set_title("Scree")
    return ax


def consensus(result: xr.Dataset, k: int | None = None, *, ax: Axes | None = None) -> Axes:
    """A :func:`cohortex.consensus_clusters` result: the consensus CDF of every k (the legend
    gives each k's relative change in area), or with ``k`` its consensus matrix, the samples
    grouped by cluster (ConsensusClusterPlus's two figures)."""
    if "consensus" not in result or "delta_area" not in result:
        raise CohortexError("consensus() needs a consensus_clusters() result.")
    ks = [int(v) for v in result["k"].values]
    if k is None:
        ax = ax or _new_axes()
        edges = np.asarray(result["consensus_index"].values)
        for value, delta in zip(ks, result["delta_area"].values, strict=True):
            cdf = np.asarray(result["cdf"].sel(k=value).values)
            ax.step(edges, cdf, where="post", label=f"k = {value} (Δ area {delta:.2f})")
        ax.set_xlabel("consensus index")
        ax.set_ylabel("CDF")
        ax.set_title("Consensus CDF")
        ax.legend(frameon=False, fontsize="small")
        return ax
    if k not in ks:
        raise CohortexError(f"'k' must be one of the result's k: {ks}; got {k}.")
    classes = np.asarray(result["consensus_class"].sel(k=k).values)
    matrix = np.asarray(result["consensus"].sel(k=k).values)
    # by cluster, and within one by the mean consensus with it (the cores first)
    strength = np.array([matrix[i, classes == classes[i]].mean() for i in range(classes.size)])
    order = np.lexsort((-strength, classes))
    ax = ax or _new_axes(height=5.0)
    image = ax.imshow(matrix[np.ix_(order, order)], cmap="Blues", vmin=0, vmax=1)
    edges = np.flatnonzero(np.diff(classes[order])) + 0.5
    for edge in edges:
        ax.axhline(edge, color="k", lw=0.6)
        ax.axvline(edge, color="k", lw=0.6)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"Consensus matrix, k = {k}")
    ax.figure.colorbar(image, ax=ax, shrink=0.8, label="consensus")
    return ax


def soft_threshold(table: xr.Dataset, *, ax: Axes | None = None) -> Axes:
    """A :func:`cohortex.network.soft_threshold` table: the scale-free fit (signed R², as
    WGCNA's tutorial) of each power, with the cut and, on the right axis, the mean
    connectivity."""
    if "signed_r2" not in table or "mean_k" not in table:
        raise CohortexError("soft_threshold() needs a network.soft_threshold() result.")
    ax = ax or _new_axes()
    powers = np.asarray(table["power"].values)
    fit = np.asarray(table["signed_r2"].values)
    ax.plot(powers, fit, color=_DOWN, marker="o", ms=3)
    for power, value in zip(powers, fit, strict=True):
        ax.annotate(
            f"{power:g}",
            (power, value),
            textcoords="offset points",
            xytext=(0, 4),
            ha="center",
            fontsize="x-small",
            color=_DOWN,
        )
    ax.axhline(table.attrs.get("r2_cut", 0.85), color=_UP, lw=0.8, ls="--")
    ax.set_xlabel("soft threshold (power)")
    ax.set_ylabel("scale-free fit (signed R²)", color=_DOWN)
    other = ax.twinx()
    other.plot(powers, np.asarray(table["mean_k"].values), color=_NEUTRAL, marker="s", ms=3)
    other.set_yscale("log")
    other.set_ylabel("mean connectivity", color="#7b7d7d")
    estimate = table.attrs.get("power_estimate", 0)
    chosen = f": power {estimate:g}" if estimate else ": no power reaches the cut"
    ax.set_title(f"Scale-free fit ({table.attrs.get('network', '')} network){chosen}")
    return ax


def _module_colours(labels: np.ndarray) -> np.ndarray:
    """RGBA per gene: WGCNA's grey for module 0, a qualitative colour per module."""
    from matplotlib import colormaps

    palette = [colormaps["tab20"](i / 20)[:3] for i in range(20)]
    out = np.empty((labels.shape[0], 4))
    for level in np.unique(labels):
        colour = (0.8, 0.8, 0.8) if level == 0 else palette[(int(level) - 1) % len(palette)]
        out[labels == level] = (*colour, 1.0)
    return out


def _draw_tree(ax: Axes, linkage: np.ndarray) -> np.ndarray:
    """Draw a tree's links (without recursion: gene trees are tens of thousands deep, beyond
    SciPy's ``dendrogram``) and return its leaves from left to right."""
    from matplotlib.collections import LineCollection
    from scipy.cluster import hierarchy

    n = linkage.shape[0] + 1
    order = hierarchy.leaves_list(linkage)
    x = np.empty(2 * n - 1)
    x[order] = np.arange(n) + 0.5
    y = np.zeros(2 * n - 1)
    segments = np.empty((n - 1, 3, 2, 2))
    for step, (a, b, height, _) in enumerate(linkage):
        a, b = int(a), int(b)
        x[n + step], y[n + step] = (x[a] + x[b]) / 2, height
        segments[step] = (
            ((x[a], y[a]), (x[a], height)),
            ((x[a], height), (x[b], height)),
            ((x[b], height), (x[b], y[b])),
        )
    ax.add_collection(LineCollection(list(segments.reshape(-1, 2, 2)), colors="#424949", lw=0.4))
    ax.set_xlim(0, n)
    ax.set_ylim(0, float(linkage[:, 2].max()) * 1.02)
    ax.set_xticks([])
    return order


def dendrogram(result: xr.Dataset, *, block: int = 1, ax: Axes | None = None) -> Axes:
    """A :func:`cohortex.network.modules` result: the genes' tree of 1 - TOM with a band of
    their modules beneath (WGCNA's ``plotDendroAndColors``); grey is no module. Of a
    :func:`cohortex.network.blockwise_modules` or :func:`cohortex.network.consensus_modules`
    result, the tree of one ``block`` (1: the largest)."""
    if "tree_merge" not in result or "label" not in result:
        raise CohortexError("dendrogram() needs a network.modules() result.")
    from .stats._tree_cut import scipy_linkage

    merge = np.asarray(result["tree_merge"].values)
    height = np.asarray(result["tree_height"].values)
    labels = np.asarray(result["label"].values)
    title = "Gene tree"
    if "tree_block" in result:
        n_blocks = int(result.attrs.get("n_blocks", 1))
        if not 1 <= block <= n_blocks:
            raise CohortexError(f"dendrogram(): block must be 1 … {n_blocks}; got {block}.")
        mine = np.asarray(result["tree_block"].values) == block
        merge, height = merge[mine], height[mine]
        labels = labels[np.asarray(result["block"].values) == block]
        title = f"Gene tree of block {block} of {n_blocks} ({labels.size} genes)"
    ax = ax or _new_axes(height=4.5)
    order = _draw_tree(ax, scipy_linkage(merge, height))
    band = ax.inset_axes((0.0, -0.14, 1.0, 0.08))
    colours = _module_colours(labels[order])
    band.imshow(colours[None, :, :], aspect="auto", interpolation="nearest")
    band.set_xticks([])
    band.set_yticks([0])
    band.set_yticklabels(["module"], fontsize="small")
    consensus = "sets" in result.attrs
    power = np.atleast_1d(result.attrs.get("power", 0))
    powers = ", ".join(f"{float(p):g}" for p in power)
    ax.set_ylabel("1 - consensus TOM" if consensus else "1 - TOM")
    ax.set_title(
        f"{title} and {result.attrs.get('n_modules', '')} {'consensus ' if consensus else ''}"
        f"modules (power{'s' if power.size > 1 else ''} {powers}, "
        f"{result.attrs.get('network', '')})"
    )
    return ax


def module_traits(traits: xr.Dataset, *, ax: Axes | None = None) -> Axes:
    """A :func:`cohortex.network.module_traits` table: each module's eigengene correlation with
    each trait, coloured from -1 to 1, with its p-value in the cell (WGCNA's
    ``labeledHeatmap``); of consensus modules, the consensus correlations (blank where the
    sets' signs differ)."""
    if "cor" not in traits or "pvalue" not in traits:
        raise CohortexError("module_traits() needs a network.module_traits() result.")
    consensus = "consensus_cor" in traits
    cor = np.asarray(traits["consensus_cor" if consensus else "cor"].values)
    pvalue = np.asarray(traits["consensus_pvalue" if consensus else "pvalue"].values)
    modules = [f"module {m}" if m else "no module" for m in traits["module"].values]
    names = [str(t) for t in traits["trait"].values]
    ax = ax or _new_axes(height=max(3.0, 0.35 * len(modules) + 1.5))
    image = ax.imshow(cor, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    if cor.size <= 400:  # readable only in small tables
        for (i, j), value in np.ndenumerate(cor):
            if np.isnan(value):
                continue
            ax.text(
                j,
                i,
                f"{value:.2f}\n({pvalue[i, j]:.1g})",
                ha="center",
                va="center",
                fontsize="xx-small",
                color="white" if abs(value) > 0.6 else "black",
            )
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize="small")
    ax.set_yticks(range(len(modules)))
    ax.set_yticklabels(modules, fontsize="small")
    ax.set_title(
        "Consensus module eigengenes and traits" if consensus else "Module eigengenes and traits"
    )
    ax.figure.colorbar(image, ax=ax, shrink=0.8, label="correlation")
    return ax


def loss(model: Any, *, ax: Axes | None = None) -> Axes:
    """Training and validation loss per epoch of a fitted :class:`cohortex.ae.Autoencoder`
    (or its ``history_`` list)."""
    history = getattr(model, "history_", model)
    if not history:
        raise CohortexError("loss() needs a fitted autoencoder (its history is empty).")
    epochs = [h["epoch"] for h in history]
    ax = ax or _new_axes()
    ax.plot(epochs, [h["train_loss"] for h in history], label="training")
    ax.plot(epochs, [h["validation_loss"] for h in history], label="validation")
    ax.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (genes scaled to [0, 1])")
    ax.set_title("Autoencoder loss")
    ax.legend(frameon=False)
    return ax


_GROUP_COLOURS = ("#c0392b", "#2471a3", "#229954", "#7d3c98", "#d68910", "#5d6d7e")


def km(curves: Any, *, at_risk: int = 5, ax: Axes | None = None) -> Axes:
    """Kaplan–Meier curves with their intervals, censoring ticks and numbers at risk.

    Parameters
    ----------
    curves : pandas.DataFrame
        A :func:`cohortex.survival.kaplan_meier` table (one or more groups).
    at_risk : int, default 5
        Times (evenly spaced from 0) at which the numbers at risk are printed under the
        axis; 0 for none.
    ax : matplotlib Axes, optional
    """
    needed = {"group", "time", "n_risk", "n_censor", "survival", "lower", "upper"}
    if not needed <= set(getattr(curves, "columns", ())):
        raise CohortexError("km() needs a table of cohortex.survival.kaplan_meier().")
    ax = ax or _new_axes(4.5)
    groups = list(dict.fromkeys(curves["group"]))
    end = float(curves["time"].max())
    ticks = np.zeros(0)
    if at_risk > 0:  # round times (0, 5, 10, ...) within the follow-up, about at_risk of them
        from matplotlib.ticker import MaxNLocator

        ticks = np.asarray(MaxNLocator(nbins=max(at_risk - 1, 1)).tick_values(0.0, end), float)
        ticks = ticks[(ticks >= 0) & (ticks <= end)]
    rows = []
    for i, group in enumerate(groups):
        table = curves[curves["group"] == group]
        colour = _GROUP_COLOURS[i % len(_GROUP_COLOURS)]
        time = np.concatenate([[0.0], table["time"].to_numpy(float)])
        survival = np.concatenate([[1.0], table["survival"].to_numpy(float)])
        ax.step(time, survival, where="post", color=colour, lw=1.5, label=f"{group}")
        lower = np.concatenate([[1.0], table["lower"].to_numpy(float)])
        upper = np.concatenate([[1.0], table["upper"].to_numpy(float)])
        ax.fill_between(time, lower, upper, step="post", color=colour, alpha=0.15, lw=0)
        censored = table["n_censor"].to_numpy() > 0
        ax.plot(
            table["time"].to_numpy(float)[censored],
            table["survival"].to_numpy(float)[censored],
            "|",
            color=colour,
            ms=6,
        )
        # numbers at risk at each tick: the samples whose time is at or after it
        last = table["time"].to_numpy(float)
        n_risk = table["n_risk"].to_numpy()
        counts = [int(n_risk[np.searchsorted(last, t)]) if t <= last[-1] else 0 for t in ticks]
        rows.append((group, colour, counts))
    ax.set_ylim(0.0, 1.02)
    ax.set_xlim(0.0, end * 1.02)
    ax.set_xlabel("time")
    ax.set_ylabel("survival probability")
    level = curves.attrs.get("confidence", 0.95)
    ax.set_title(f"Kaplan–Meier ({level:.0%} intervals)")
    if len(groups) > 1:
        ax.legend(frameon=False, loc="lower left")
    if len(ticks):
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        # placed in points below the axis, so that the layout can make room for any number
        # of groups (offsets in axes fractions shrink with the axes the layout shrinks)
        below = ax.get_xaxis_transform()

        def note(text: str, x: float, dx: float, dy: float, ha: str, colour: str) -> None:
            ax.annotate(
                text,
                (x, 0.0),
                xycoords=below,
                xytext=(dx, dy),
                textcoords="offset points",
                ha=ha,
                va="center",
                color=colour,
                fontsize=7,
            )

        note("at risk", 0.0, -30, -38, "right", "black")
        for j, (group, colour, counts) in enumerate(rows):
            y = -52 - 11 * j
            note(group, 0.0, -30, y, "right", colour)
            for t, count in zip(ticks, counts, strict=True):
                note(str(count), t, 0, y, "center", colour)
    return ax


def cumulative_incidence(result: Any, *, ax: Axes | None = None) -> Axes:
    """Each cause's cumulative incidence per group, as steps from 0: a colour a group, a line
    style a cause, each curve held to its group's last follow-up.

    Parameters
    ----------
    result : CumulativeIncidence
        Of :func:`cohortex.survival.cumulative_incidence`.
    ax : matplotlib Axes, optional
    """
    curves = getattr(result, "curves", None)
    if curves is None or not {"group", "cause", "time", "estimate"} <= set(curves.columns):
        raise CohortexError(
            "cumulative_incidence() needs a result of cohortex.survival.cumulative_incidence()."
        )
    ax = ax or _new_axes(4.5)
    groups = list(dict.fromkeys(curves["group"]))
    causes = list(dict.fromkeys(curves["cause"]))
    styles = ("-", "--", ":", "-.")
    for i, group in enumerate(groups):
        for j, cause in enumerate(causes):
            curve = curves[(curves["group"] == group) & (curves["cause"] == cause)]
            end = result.follow_up[group]
            time = np.concatenate([[0.0], curve["time"].to_numpy(float), [end]])
            values = curve["estimate"].to_numpy(float)
            estimate = np.concatenate([[0.0], values, values[-1:] if values.size else [0.0]])
            label = f"cause {cause}" if len(groups) == 1 else f"{group}, cause {cause}"
            ax.step(
                time,
                estimate,
                where="post",
                color=_GROUP_COLOURS[i % len(_GROUP_COLOURS)],
                linestyle=styles[j % len(styles)],
                lw=1.5,
                label=label,
            )
    ax.set_ylim(0.0, 1.02)
    ax.set_xlim(left=0.0)
    ax.set_xlabel("time")
    ax.set_ylabel("cumulative incidence")
    ax.set_title("Cumulative incidence (competing causes)")
    ax.legend(frameon=False, loc="upper left", fontsize=8)
    return ax


def forest(result: xr.Dataset, n: int = 20, *, ax: Axes | None = None) -> Axes:
    """Forest plot of the ``n`` genes with the smallest p-values of a per-gene Cox result:
    hazard ratios with their confidence intervals on a log axis, 1 marked.

    Parameters
    ----------
    result : xarray.Dataset
        A :func:`cohortex.survival.cox` result.
    n : int, default 20
    ax : matplotlib Axes, optional
    """
    needed = ("hazard_ratio", "ci_low", "ci_high", "pvalue", "statistic")
    if any(name not in result for name in needed):
        raise CohortexError("forest() needs a cohortex.survival.cox() result.")
    p = np.asarray(result["pvalue"].values, dtype=float)
    strength = np.abs(np.asarray(result["statistic"].values, dtype=float))
    usable = np.flatnonzero(np.isfinite(p))
    # smallest p first; where p underflows to 0, the larger |z|
    order = usable[np.lexsort((-strength[usable], p[usable]))][:n]
    ax = ax or _new_axes(max(2.5, 0.25 * len(order) + 1.2))
    rows = np.arange(len(order))[::-1]
    ratio = np.asarray(result["hazard_ratio"].values, dtype=float)[order]
    low = np.asarray(result["ci_low"].values, dtype=float)[order]
    high = np.asarray(result["ci_high"].values, dtype=float)[order]
    colours = [_UP if r >= 1 else _DOWN for r in ratio]
    ax.hlines(rows, low, high, colors=colours, lw=1.5)
    ax.scatter(ratio, rows, c=colours, s=18, zorder=3)
    ax.axvline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yticks(rows, [str(g) for g in result["gene"].values[order]], fontsize=7)
    level = result.attrs.get("confidence", 0.95)
    ax.set_xlabel(f"hazard ratio per unit of expression ({level:.0%} interval)")
    ax.set_title(f"Top {len(order)} genes by Cox p-value")
    return ax


def roc(result: Any, *, ax: Axes | None = None) -> Axes:
    """The pooled out-of-fold ROC curve of a two-class :func:`cohortex.predict.cross_validate`
    result, with its AUROC and DeLong interval, and the permutation runs' median when there
    are any."""
    if not hasattr(result, "roc"):
        raise CohortexError("roc() needs a cohortex.predict.cross_validate() result.")
    curve = result.roc()
    ax = ax or _new_axes(4.5)
    low, high = result.auroc_ci
    label = f"AUROC {result.auroc:.3f} ({low:.3f}–{high:.3f})"
    ax.plot(curve["false_positive_rate"], curve["true_positive_rate"], color=_UP, label=label)
    ax.plot([0, 1], [0, 1], color=_NEUTRAL, ls="--", lw=1, label="chance")
    if len(result.permutation_auroc):
        median = float(np.median(result.permutation_auroc))
        ax.plot([], [], " ", label=f"shuffled labels: median {median:.3f}")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_aspect("equal")
    ax.set_title(f"Cross-validated ROC ({result.classes[1]} vs {result.classes[0]})")
    ax.legend(frameon=False, loc="lower right", fontsize=8)
    return ax


def calibration(table: Any, *, ax: Axes | None = None) -> Axes:
    """Predicted against observed survival by group (a
    :func:`cohortex.survival.calibration` table): each group's Kaplan–Meier estimate and its
    interval over its mean prediction, and the diagonal a calibrated model lies on."""
    needed = {"predicted", "observed", "lower", "upper", "n"}
    if not needed <= set(getattr(table, "columns", ())):
        raise CohortexError("calibration() needs a table of cohortex.survival.calibration().")
    ax = ax or _new_axes(4.5)
    predicted = table["predicted"].to_numpy(float)
    observed = table["observed"].to_numpy(float)
    below = np.clip(observed - table["lower"].to_numpy(float), 0, None)
    above = np.clip(table["upper"].to_numpy(float) - observed, 0, None)
    ax.plot([0, 1], [0, 1], color=_NEUTRAL, ls="--", lw=1, label="calibrated")
    ax.errorbar(
        predicted,
        observed,
        yerr=np.vstack([below, above]),
        fmt="o",
        color=_UP,
        ms=4,
        capsize=2,
        label=f"{len(table)} groups of predicted survival (Kaplan–Meier, 95%)",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("predicted survival (group mean)")
    ax.set_ylabel("observed survival (Kaplan–Meier)")
    ax.legend(frameon=False, loc="upper left", fontsize=8)
    return ax


def gsea(
    ranking: Any, gene_sets: Any, name: str, *, weight: float = 1.0, ax: Axes | None = None
) -> Axes:
    """GSEA's running score of one set along the ranking, with a tick per member gene.

    Parameters
    ----------
    ranking : pandas.Series
        The statistic per gene (as given to :func:`cohortex.genesets.gsea`).
    gene_sets : GeneSets
    name : str
        The set to draw.
    weight : float, default 1.0
    ax : matplotlib Axes, optional
    """
    ordered = ranking.dropna().sort_values(ascending=False, kind="stable")
    members = set(gene_sets[name])
    hits = np.asarray([str(g) in members for g in ordered.index])
    if not hits.any():
        raise CohortexError(f"No gene of {name!r} is in the ranking.")
    values = np.abs(ordered.to_numpy(dtype=float)) ** weight
    total = values[hits].sum() or float(hits.sum())
    steps = np.where(hits, (values if values[hits].sum() else 1.0) / total, 0.0)
    steps = steps - np.where(hits, 0.0, 1.0 / (hits.size - hits.sum()))
    running = np.cumsum(steps)
    extreme = int(np.argmax(np.abs(running)))
    ax = ax or _new_axes(3.5)
    ax.plot(np.arange(running.size), running, color=_UP, lw=1.2)
    ax.axhline(0.0, color="k", lw=0.6)
    ax.axvline(extreme, color=_NEUTRAL, lw=0.8, ls="--")
    low = float(min(running.min(), 0.0))
    span = float(running.max()) - low
    ticks = np.flatnonzero(hits)
    ax.vlines(ticks, low - 0.12 * span, low - 0.02 * span, colors="k", lw=0.5)
    ax.set_xlim(0, running.size)
    ax.set_xlabel("rank")
    ax.set_ylabel("running enrichment score")
    ax.set_title(f"{name}: ES {running[extreme]:.3f}")
    return ax


def barcode(
    statistics: Any,
    genes: Any,
    *,
    genes_down: Any = None,
    by: str = "statistic",
    quantiles: tuple[float, float] = (-float(np.sqrt(2.0)), float(np.sqrt(2.0))),
    labels: tuple[str, str] = ("Down", "Up"),
    worm: bool = True,
    span: float = 0.45,
    ax: Axes | None = None,
) -> Axes:
    """limma's ``barcodeplot``: where a set's genes fall among all genes ranked by their
    statistic, with the set's relative enrichment along the ranking (the "worm").

    The genes run from the smallest statistic (left) to the largest; a bar marks each gene of
    the set (above the axis, and the genes of ``genes_down`` below it); the shaded band is
    blue below ``quantiles[0]``, pink above ``quantiles[1]``. The worm is limma's
    ``tricubeMovingAverage`` of the set's membership along the ranks over the set's share of
    the genes: 1 where the set is as dense as anywhere, above 1 where its genes gather.

    Parameters
    ----------
    statistics : xarray.Dataset or pandas.Series
        A DE result of one contrast (``result.sel(contrast=...)``), its variable ``by`` per
        gene; or a statistic per gene (a Series indexed by gene id), as for
        :func:`cohortex.genesets.gsea`.
    genes : iterable of str
        The set's gene ids (e.g. ``sets["HALLMARK_HYPOXIA"]``); those not ranked are left out.
    genes_down : iterable of str, optional
        A second set drawn below the axis (limma's ``index2``: e.g. a signature's down
        genes).
    by : str, default "statistic"
        The result's variable that ranks the genes.
    quantiles : (float, float), default (−√2, √2)
    labels : (str, str), default ("Down", "Up")
        The ends' labels.
    worm : bool, default True
    span : float, default 0.45
        The worm's share of the genes in each moving average (limma's ``span.worm``).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        Its ``lines`` are the worms (up, then down), in the plot's coordinates: the
        enrichment e is drawn at 1.1 + e / max(e) (up) and at −1.1 + e / |min(e)| (down).
    """
    ranking = _ranking(statistics, by)
    values = ranking.to_numpy(dtype=float)
    order = np.argsort(values, kind="stable")
    ids = ranking.index.to_numpy()[order]
    values = values[order]
    n = values.size
    up = np.isin(ids, np.asarray([str(g) for g in genes]))
    down = None if genes_down is None else np.isin(ids, [str(g) for g in genes_down])
    if not up.any() and (down is None or not down.any()):
        raise CohortexError("No gene of the set is among the ranked genes.")
    two = down is not None and down.any()
    ax = ax or _new_axes(3.0 if two else 2.4)
    low, high = sorted(quantiles)
    negative, positive = int(np.sum(values < low)), int(np.sum(values > high))
    bottom = -0.5 if two else 0.0
    for start, end, colour in (
        (0.5, negative + 0.5, "lightblue"),
        (negative + 0.5, n - positive + 0.5, "lightgray"),
        (n - positive + 0.5, n + 0.5, "pink"),
    ):
        if end > start:
            ax.fill_between([start, end], bottom, 0.5, color=colour, lw=0, zorder=0.5)
    width = float(np.clip(50.0 / max(int(up.sum()), 1), 0.2, 1.9))
    ranks = np.arange(1, n + 1)
    if up.any():
        ax.vlines(ranks[up], 0.0, 1.0, colors=_UP if two else "k", lw=width)
    if two:
        assert down is not None
        ax.vlines(ranks[down], -1.0, 0.0, colors=_DOWN, lw=width)
    if worm:
        if up.any():
            enrichment = _tricube_moving_average(up.astype(float), span) / (up.sum() / n)
            ax.plot(ranks, 1.1 + enrichment / enrichment.max(), color=_UP if two else "k", lw=2)
            ax.axhline(1.1 + 1.0 / enrichment.max(), color="k", ls="--", lw=0.6)
        if two:
            assert down is not None
            enrichment = -_tricube_moving_average(down.astype(float), span) / (down.sum() / n)
            ax.plot(ranks, -1.1 + enrichment / abs(enrichment.min()), color=_DOWN, lw=2)
            ax.axhline(-1.1 - 1.0 / abs(enrichment.min()), color="k", ls="--", lw=0.6)
    ax.set_xlim(0, n + 1)
    ax.set_ylim(-2.2 if two else -0.1, 2.2 if worm else 1.6)
    positions = np.linspace(1, n, 11)
    ax.set_xticks(positions, [f"{v:.1f}" for v in np.quantile(values, np.linspace(0, 1, 11))])
    ax.tick_params(axis="x", labelsize=7)
    ax.set_yticks([])
    ax.set_ylabel(labels[0], rotation=0, ha="right", va="center", fontsize=8)
    right = ax.secondary_yaxis("right")
    right.set_yticks([])
    right.set_ylabel(labels[1], rotation=0, ha="left", va="center", fontsize=8)
    ax.set_xlabel(by if isinstance(statistics, xr.Dataset) else "statistic")
    return ax


def _ranking(statistics: Any, by: str) -> Any:
    """The statistic per gene, a pandas Series without missing values."""
    import pandas as pd

    if isinstance(statistics, xr.Dataset):
        if by not in statistics or statistics[by].dims != ("gene",):
            raise CohortexError(
                f"barcode() ranks genes by a variable per gene; {by!r} is not one of this "
                "result (choose a contrast first: result.sel(contrast=...), or pass by=)."
            )
        ranking = pd.Series(
            statistics[by].values, index=[str(g) for g in statistics["gene"].values]
        )
    elif isinstance(statistics, pd.Series):
        ranking = pd.Series(statistics.to_numpy(), index=[str(g) for g in statistics.index])
    else:
        raise CohortexError("barcode() takes a DE result or a pandas Series of statistics.")
    return ranking.astype(float).dropna()


def _tricube_moving_average(x: np.ndarray, span: float) -> np.ndarray:
    """limma's ``tricubeMovingAverage(x, span)``: a moving average with tricube weights over
    ``span`` of the values, the ends averaged over the weights that fall inside."""
    n = x.size
    span = min(span, 1.0)
    half = int(span * n) // 2
    width = 2 * half + 1
    if width > n:
        width, half = width - 2, half - 1
    if span <= 0 or half <= 0:
        return x.astype(float)
    u = np.linspace(-1.0, 1.0, width) * width / (width + 1)
    weights = (1.0 - np.abs(u) ** 3) ** 3
    weights /= weights.sum()
    padded = np.concatenate([np.zeros(half), x, np.zeros(half)])
    out = np.convolve(padded, weights, mode="valid")
    inside = np.cumsum(weights)
    out[:half] /= inside[width - half - 1 : width - 1]
    out[n - half :] /= inside[width - 2 : width - half - 2 : -1]  # width − half − 2 ≥ 0
    return out


def enrichment(result: xr.Dataset, n: int = 20, *, ax: Axes | None = None) -> Axes:
    """Dot plot of the ``n`` best sets of a :func:`cohortex.genesets.gsea` or ``ora`` result:
    NES (or the overlap's fold over its expectation) against the set, the dot's size the set
    size (or overlap), its colour −log10 q."""
    if "pvalue" not in result or "padj" not in result or "gene_set" not in result.dims:
        raise CohortexError("enrichment() needs a cohortex.genesets gsea() or ora() result.")
    if "direction" in result.dims:
        raise CohortexError("Choose a direction first, e.g. result.sel(direction='up').")
    p = np.asarray(result["pvalue"].values, dtype=float)
    order = np.argsort(p, kind="stable")[:n]
    if "nes" in result:
        x = np.asarray(result["nes"].values, dtype=float)[order]
        size = np.asarray(result["size"].values, dtype=float)[order]
        label = "normalised enrichment score"
    else:
        overlap = np.asarray(result["overlap"].values, dtype=float)[order]
        x = overlap / np.asarray(result["expected"].values, dtype=float)[order]
        size = overlap
        label = "overlap / expected"
    q = -np.log10(np.clip(np.asarray(result["padj"].values, dtype=float)[order], 1e-300, 1))
    ax = ax or _new_axes(max(2.5, 0.25 * len(order) + 1.2))
    rows = np.arange(len(order))[::-1]
    dots = ax.scatter(x, rows, s=20 + 180 * size / max(size.max(), 1), c=q, cmap="viridis")
    ax.figure.colorbar(dots, ax=ax, label="-log10 q")
    ax.set_yticks(rows, [str(g) for g in result["gene_set"].values[order]], fontsize=7)
    ax.set_xlabel(label)
    ax.set_title(f"Top {len(order)} gene sets")
    return ax
