"""What the modules mean: their eigengenes against the sample variables, and their hub genes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from .._errors import CohortexError
from ..fdr import adjust, check_method

__all__ = ["hub_genes", "module_traits", "student_pvalue"]


def module_traits(
    modules: xr.Dataset, traits: Sequence[str] | None = None, *, fdr: str = "bh"
) -> xr.Dataset:
    """Correlations of the module eigengenes with sample variables, as WGCNA's tutorial
    ``cor(MEs, traits, use = "p")`` with ``corPvalueStudent``.

    Parameters
    ----------
    modules : xarray.Dataset
        :func:`modules`' result (it carries the cohort's sample variables).
    traits : sequence of str, optional
        Sample variables (all of them by default). A numeric or boolean variable is one trait;
        a categorical one gives a 0/1 indicator per level, named ``"variable[level]"``.
    fdr : str, default "bh"
        The correction of the p-values over the whole table (:func:`cohortex.fdr.adjust`).

    Returns
    -------
    xarray.Dataset
        On (``module``, ``trait``): ``cor``, ``pvalue`` (Student's t on ``n - 2`` degrees of
        freedom), ``padj``, ``n``: the samples with both the trait and the eigengene (a
        missing value leaves the sample out of that pair's correlation, as ``use = "p"``; an
        eigengene misses values only where it is the hub gene's of a cohort with missing
        values).

    Of a :func:`consensus_modules` result, each set's table (``cor``, ``pvalue``, ``padj``
    and ``n`` on (``module``, ``trait``, ``set``); a trait a set lacks,
    such as a level only another set has, is NaN there) and their consensus, as WGCNA's
    consensus tutorial: ``consensus_cor`` the correlation nearest 0 where every set's has the
    same sign (NaN where the signs differ), ``consensus_pvalue`` the largest of those sets'
    p-values, ``consensus_padj`` corrected over the table.

    Notes
    -----
    Agreement with WGCNA 1.72 (tests/network/test_modules.py): 1e-8.
    """
    check_method(fdr, "module_traits()", "fdr")
    if "sample_set" in modules.data_vars:
        return _consensus_traits(modules, traits, fdr)
    if "eigengene" not in modules:
        raise CohortexError(
            "The 'modules' parameter of module_traits() must be the result of modules(); it "
            "has no 'eigengene'."
        )
    variables = [str(v) for v in modules.data_vars if modules[v].dims == ("sample",)]
    chosen = variables if traits is None else list(traits)
    unknown = [t for t in chosen if t not in variables]
    if unknown or not chosen:
        raise CohortexError(
            f"The 'traits' parameter of module_traits() must name sample variables; got "
            f"{unknown or chosen!r}. Sample variables: {', '.join(variables) or '(none)'}."
        )
    names: list[str] = []
    columns: list[np.ndarray] = []
    for name in chosen:
        for label, column in _trait_columns(name, np.asarray(modules[name].values)):
            names.append(label)
            columns.append(column)
    eigengenes = np.asarray(modules["eigengene"].values, dtype=np.float64)
    k = eigengenes.shape[1]
    cor = np.full((k, len(names)), np.nan)
    counts = np.zeros((k, len(names)), dtype=np.int64)
    measured = ~np.isnan(eigengenes)  # a hub-gene eigengene misses where its gene does
    for j, column in enumerate(columns):
        for m in range(k):
            present = ~np.isnan(column) & measured[:, m]
            counts[m, j] = int(present.sum())
            if counts[m, j] < 3:
                continue
            y = column[present] - column[present].mean()
            x = eigengenes[present, m] - eigengenes[present, m].mean()
            with np.errstate(invalid="ignore", divide="ignore"):
                cor[m, j] = (x @ y) / np.sqrt((x @ x) * (y @ y))
    pvalue = student_pvalue(cor, counts)
    padj = np.asarray(adjust(pvalue.ravel(), fdr)).reshape(pvalue.shape)
    return xr.Dataset(
        {
            "cor": (("module", "trait"), cor),
            "pvalue": (("module", "trait"), pvalue),
            "padj": (("module", "trait"), padj),
            "n": (("module", "trait"), counts),
        },
        coords={"module": modules["module"].values, "trait": names},
        attrs={"fdr": fdr},
    )


def _consensus_traits(modules: xr.Dataset, traits: Sequence[str] | None, fdr: str) -> xr.Dataset:
    """Each set's module-trait table and their consensus (see :func:`module_traits`)."""
    names = [str(n) for n in modules["set"].values]
    membership = np.asarray(modules["sample_set"].values).astype(str)
    tables = [
        module_traits(
            modules.isel(sample=membership == name).drop_vars("sample_set"), traits, fdr=fdr
        )
        for name in names
    ]
    order: list[str] = []  # the traits as the sets list them, each once
    for table in tables:
        order += [str(t) for t in table["trait"].values if str(t) not in order]
    joined = xr.concat(tables, dim=pd.Index(names, name="set"), join="outer")
    joined = joined.sel(trait=order).transpose("module", "trait", "set")
    cor, pvalue = joined["cor"].values, joined["pvalue"].values
    with np.errstate(invalid="ignore"):
        positive, negative = np.all(cor > 0, axis=2), np.all(cor < 0, axis=2)
    agree = positive | negative
    consensus = np.where(
        positive, np.min(cor, axis=2), np.where(negative, np.max(cor, axis=2), np.nan)
    )
    worst = np.where(agree, np.max(pvalue, axis=2), np.nan)
    joined["consensus_cor"] = (("module", "trait"), consensus)
    joined["consensus_pvalue"] = (("module", "trait"), worst)
    joined["consensus_padj"] = (
        ("module", "trait"),
        np.asarray(adjust(worst.ravel(), fdr)).reshape(worst.shape),
    )
    joined.attrs = {"fdr": fdr, "sets": names}
    return joined


def student_pvalue(cor: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """WGCNA's ``corPvalueStudent``: two-sided p-values of Pearson correlations of ``n`` pairs
    (Student's t on ``n - 2`` degrees of freedom; SciPy's ``pearsonr``)."""
    df = np.asarray(n, dtype=np.float64) - 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.sqrt(df) * cor / np.sqrt(1.0 - cor * cor)
    return 2.0 * stats.t.sf(np.abs(t), np.where(df > 0, df, np.nan))


def _trait_columns(name: str, values: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """A sample variable as numeric columns: itself, or one 0/1 indicator per level."""
    if values.dtype.kind in "biuf":
        return [(name, values.astype(np.float64))]
    text = pd.Series(values, dtype=object)
    missing = text.isna().to_numpy() | (text.astype(str) == "").to_numpy()
    levels = sorted({str(v) for v, gone in zip(values, missing, strict=True) if not gone})
    out = []
    for level in levels:
        column = (text.astype(str).to_numpy() == level).astype(np.float64)
        column[missing] = np.nan
        out.append((f"{name}[{level}]", column))
    return out


def hub_genes(modules: xr.Dataset, n: int = 10) -> pd.DataFrame:
    """The genes most connected to each module: highest kME (their correlation with the
    module's eigengene), as WGCNA users pick hubs.

    Parameters
    ----------
    modules : xarray.Dataset
        :func:`modules`' result.
    n : int, default 10
        Genes per module (fewer where a module is smaller).

    Returns
    -------
    pandas.DataFrame
        Columns ``module``, ``gene``, ``kme``, ``k_within``, ``rank`` (1 = the hub), modules
        in order, no unassigned genes (module 0).
    """
    if n < 1:
        raise CohortexError(f"The 'n' parameter of hub_genes() must be at least 1; got {n}.")
    labels = np.asarray(modules["label"].values)
    levels = np.asarray(modules["module"].values)
    genes = np.asarray(modules["gene"].values)
    kme = np.asarray(modules["kme"].values)
    within = np.asarray(modules["k_within"].values)
    rows = []
    for j, level in enumerate(levels):
        if level == 0:
            continue
        members = np.flatnonzero(labels == level)
        best = members[np.argsort(-kme[members, j], kind="stable")[:n]]
        for rank, g in enumerate(best, start=1):
            rows.append((int(level), str(genes[g]), float(kme[g, j]), float(within[g]), rank))
    return pd.DataFrame(rows, columns=["module", "gene", "kme", "k_within", "rank"])
