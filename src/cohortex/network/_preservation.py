"""WGCNA's ``modulePreservation``: are a reference cohort's modules modules in a test cohort?

For each module the same statistics are computed in both cohorts from its genes: density (the
share of variance its eigengene explains, the mean kME and correlation, signed as in the
reference, the mean adjacency) and connectivity (how well its genes' kME, intramodular
connectivity and correlations in the test cohort follow the reference's). Each is compared with
the same statistic of random gene sets of the module's size (the genes permuted in both cohorts
at once): ``Z = (observed - mean) / sd`` over the permutations. Zsummary, the mean of the
density and connectivity Z's medians, above 10 says strongly preserved, below 2 not (Langfelder
et al. 2011). The "gold" module, a random sample of genes, is the baseline; grey, the genes of no
module, another.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats
from threadpoolctl import threadpool_limits

from .._backend import namespace, to_host
from .._cohort import CohortLike, shared_docs
from .._constants import NETWORK_TYPES
from .._errors import CohortexError
from .._progress import progress_bar
from ..stats._blockwise import eigengene
from ..stats._network import adjacency, bicor_columns, pairwise_bicor, pairwise_correlation
from ._data import GeneNetwork, check_choice, check_memory, refuse_undefined
from ._imputed_eigengenes import imputed_eigengenes, pairwise_columns

__all__ = ["GOLD", "log10_pvalues", "median_ranks", "module_preservation"]

GOLD = -1  # the module label of the gold module (R's 0.1): a random sample of the genes

_DENSITY = ("prop_var_explained", "mean_sign_aware_kme", "mean_sign_aware_cor", "mean_adjacency")
_CONNECTIVITY = ("cor_kim", "cor_kme", "cor_cor")  # R's connSummaryInd without kMEall
_PRESERVATION = (*_DENSITY, "mean_mar", "cor_kim", "cor_kme", "cor_kme_all", "cor_cor", "cor_mar")
_QUALITY = (*_DENSITY, "mean_mar")
# calculateClusterCoeff's statistics: reported where asked for, in no summary (as R's)
_CLUSTER = ("mean_cluster_coefficient", "cor_cluster_coefficient")


@shared_docs
def module_preservation(
    reference: CohortLike,
    test: CohortLike,
    modules: xr.Dataset | pd.Series,
    *,
    n_permutations: int = 100,
    network: str = "unsigned",
    max_module_size: int = 1000,
    max_gold_module_size: int = 1000,
    seed: int = 12345,
    quick_cor: float = 1.0,
    correlation_type: str = "pearson",
    max_p_outliers: float = 1.0,
    cluster_coefficients: bool = False,
    device: str = "auto",
    progress: bool | None = None,
) -> xr.Dataset:
    """How well each module of a reference cohort is preserved in a test cohort, as WGCNA's
    ``modulePreservation`` (expression data).

    Parameters
    ----------
    reference, test : path, xarray.Dataset, AnnData or array of shape (n_samples, n_genes)
        Log-scale values of the cohort the modules were found in and of the cohort they are
        looked for in; the genes both hold (and that vary in both) are used. Missing values
        are taken as modulePreservation takes them (see ``quick_cor``; each gene set's
        eigengene from its genes imputed by impute.knn, as :func:`modules`); genes missing in
        half of either cohort's samples or more are left out, as WGCNA's ``goodGenes``.
    modules : xarray.Dataset or pandas.Series
        :func:`modules` or :func:`blockwise_modules` of the reference (its ``label``), or each
        gene's module (0: none) indexed by gene.
    n_permutations : int, default 100
        Random gene sets per module for the Z scores (R's default).
    network : {{"unsigned", "signed", "signed hybrid"}}, default "unsigned"
        The statistics' adjacency: ``|c|^6``, ``((1 + c) / 2)^12`` or ``c^6`` for ``c > 0``
        (modulePreservation's fixed powers).
    max_module_size, max_gold_module_size : int, default 1000
        Larger modules are represented by that many of their genes drawn at random; the gold
        module has that many genes (at most half of all).
    seed : int, default 12345
        Of NumPy's generator for the gold module, the samples of large modules and the
        permutations.
    quick_cor : float, default 1.0
        With missing values, R's ``quickCor``: the correlations within each module of genes
        missing at most that share of the samples are taken from each gene's own mean and
        spread, missing values left out of the products (R's default, fast and approximate);
        0 correlates every pair over the samples both have. kME and the eigengenes'
        correlations are always exact. With bicor, as WGCNA's ``bicor(quick = quickCor)``: a
        gene is prepared again over a pair's samples only where the pair misses more than
        that share of its samples.
    correlation_type : {{"pearson", "bicor"}}, default "pearson"
        ``corFnc``: bicor (the biweight midcorrelation) is then every correlation, as R's:
        the genes' within each module, kME, the eigengenes' (separability) and the
        correlations of the statistics themselves (``bicor.kIM``, ``bicor.kME``,
        ``bicor.bicor``, ``bicor.MAR``, here ``cor_kim`` … ``cor_mar``). The eigengenes stay
        principal components.
    max_p_outliers : float, default 1
        bicor's ``maxPOutliers`` (``corOptions = "use = 'p', maxPOutliers = 0.05"``).
    cluster_coefficients : bool, default False
        ``calculateClusterCoeff``: also each module's mean clustering coefficient in the test
        cohort (``mean_cluster_coefficient``, and in the reference
        ``quality_mean_cluster_coefficient``) and the correlation of its genes' coefficients
        (``cor_cluster_coefficient``), with their Z's; in no summary, as R's. Each takes a
        product of the module's adjacency with itself (m³ for m genes) per permutation.
    {device}
    progress : bool, optional

    Returns
    -------
    xarray.Dataset
        On ``module`` (the reference's modules, grey 0 among them where present, then gold,
        ``GOLD`` = -1): ``size``; the preservation statistics ``median_rank`` (low is
        preserved), ``median_rank_density``, ``median_rank_connectivity``,
        ``prop_var_explained``, ``mean_sign_aware_kme``, ``mean_sign_aware_cor``,
        ``mean_adjacency``, ``mean_mar``, ``cor_kim``, ``cor_kme``, ``cor_kme_all``,
        ``cor_cor``, ``cor_mar`` and ``separability``; ``z_summary``, ``z_density``,
        ``z_connectivity`` and ``z_<statistic>`` for each; ``log10_p_summary``,
        ``log10_p_density`` and ``log10_p_connectivity`` (R's ``log.p``: medians of the
        statistics' one-sided normal log10 p-values); the same statistics in the reference
        itself (``quality_median_rank``, ``quality_z_summary``, ``quality_<statistic>``). Attrs:
        ``n_permutations``, ``network``, ``n_genes``, ``n_samples_reference``,
        ``n_samples_test``, ``seed``, ``quick_cor``, ``correlation_type``,
        ``max_p_outliers``; ``n_genes_missing`` (genes left out for
        missing values) and ``missing_share`` (of the other genes' values), each a list of
        the reference's and the test cohort's.

    Raises
    ------
    CohortexError
        For fewer than 2 permutations, a single module, cohorts that share fewer than 3 genes,
        samples missing half of the genes, or settings out of range.

    Notes
    -----
    Held to WGCNA 1.72 (tests/network/test_preservation.py): the observed statistics of every
    module (and grey) to 1e-10, the median ranks from the same statistics, the log10 p-values
    from the same Z's; the Z's themselves, which come from random gene sets (NumPy's here,
    R's there), within their permutation error; with missing values the same
    (make_missing_network_fixtures.R). Where a module exceeds ``max_module_size``, R
    permutes the first genes of the whole test cohort; this permutes the genes kept.
    """
    who = "module_preservation"
    check_choice(who, "network", network, NETWORK_TYPES)
    check_choice(who, "correlation_type", correlation_type, ("pearson", "bicor"))
    if n_permutations < 2:
        raise CohortexError(
            f"The 'n_permutations' parameter of {who}() must be at least 2 (the Z scores need "
            f"a standard deviation); got {n_permutations}."
        )
    if max_module_size < 3 or max_gold_module_size < 3:
        raise CohortexError(
            f"{who}(): max_module_size and max_gold_module_size must be at least 3; got "
            f"{max_module_size} and {max_gold_module_size}."
        )
    if not 0.0 <= quick_cor <= 1.0:
        raise CohortexError(
            f"The 'quick_cor' parameter of {who}() is a share of the samples, in [0, 1]; got "
            f"{quick_cor}."
        )
    labels_of = _labels(modules, who)
    ref, tst = (
        GeneNetwork.build(
            cohort,
            genes=None,
            device=device,
            progress=progress,
            who=who,
            correlation=False,
            correlation_type=correlation_type,
            max_p_outliers=max_p_outliers,
        )
        for cohort in (reference, test)
    )
    ref_ids, test_ids = ref.gene_ids.astype(str), tst.gene_ids.astype(str)
    common = np.isin(ref_ids, test_ids) & np.isin(ref_ids, labels_of.index.to_numpy())
    genes = ref_ids[common]
    if genes.shape[0] < 3:
        raise CohortexError(
            f"{who}(): the reference, the test cohort and the modules share {genes.shape[0]} "
            "varying genes; at least 3 are needed."
        )
    colors = labels_of.loc[genes].to_numpy(np.int64)
    if np.unique(colors).shape[0] < 2:
        raise CohortexError(f"{who}() needs at least two modules (grey counts as one).")
    check_memory(
        who,
        8.0 * 3.0 * (ref.n_samples + tst.n_samples) * genes.shape[0],
        f"holds {ref.n_samples} + {tst.n_samples} samples × {genes.shape[0]} genes",
        "Take fewer genes (the modules' genes and a sample of the rest).",
    )
    position = {g: i for i, g in enumerate(test_ids)}
    calculator = _Calculator(
        _genes_of(ref, np.flatnonzero(common), quick_cor),
        _genes_of(tst, np.array([position[g] for g in genes]), quick_cor),
        colors,
        network,
        max_module_size,
        max_gold_module_size,
        cluster_coefficients,
    )
    rng = np.random.default_rng(seed)
    permuted: list[dict[str, np.ndarray]] = []
    bar = progress_bar(n_permutations, who, progress, unit="permutation", delay=2.0)
    # many small products and eigenproblems: one BLAS thread (NumPy's and SciPy's OpenBLAS
    # pools spinning against each other made them 3× slower on two cores)
    try:
        with threadpool_limits(1, user_api="blas"):
            observed = calculator.run(rng, permuted=False)
            for _ in range(n_permutations):
                permuted.append(calculator.run(rng, permuted=True))
                bar.update(1)
    finally:
        bar.close()
    return _result(
        observed, permuted, calculator, ref, tst, network, n_permutations, seed, quick_cor
    )


def _labels(modules: xr.Dataset | pd.Series, who: str) -> pd.Series:
    """Each gene's module as a Series indexed by gene (str)."""
    if isinstance(modules, xr.Dataset):
        if "label" not in modules or "gene" not in modules.coords:
            raise CohortexError(
                f"The 'modules' parameter of {who}() must be a modules() or blockwise_modules() "
                "result, or a Series of each gene's module."
            )
        return pd.Series(
            np.asarray(modules["label"].values, dtype=np.int64),
            index=np.asarray(modules["gene"].values).astype(str),
        )
    if isinstance(modules, pd.Series):
        values = pd.to_numeric(modules, errors="coerce")
        if values.isna().any() or (values < 0).any() or (values != np.floor(values)).any():
            raise CohortexError(
                f"The 'modules' parameter of {who}() must hold whole module numbers ≥ 0 (0: no "
                "module)."
            )
        return pd.Series(values.to_numpy(np.int64), index=modules.index.astype(str))
    raise CohortexError(
        f"The 'modules' parameter of {who}() must be a modules() result or a pandas Series; got "
        f"{type(modules).__name__}."
    )


def _genes_of(network: GeneNetwork, columns: np.ndarray, quick_cor: float) -> _Genes:
    """The genes ``columns`` of a cohort, as its statistics take them."""
    cap = network.max_p_outliers if network.correlation_type == "bicor" else None
    if not network.missing:
        raw = network.read()[:, network.xp.asarray(columns)]  # one pass over the cohort
        z = network.standardised(raw)
        return _Standardised(z, network.prepared(values=raw) if cap is not None else z, cap)
    return _Pairwise.of(network, quick_cor, cap).take(columns)


def _correlate(a: np.ndarray, b: np.ndarray, cap: float | None) -> float:
    """Two vectors' correlation over the entries both have (R's ``use = "p"``): Pearson's
    (``cap`` None), else bicor's with that cap (NaN where one is constant)."""
    both = np.isfinite(a) & np.isfinite(b)
    if not both.all():  # e.g. the MAR of a gene whose adjacencies are all 0
        a, b = a[both], b[both]
    if a.size < 2:
        return math.nan
    if cap is None:
        return _cor(a, b)
    columns = bicor_columns(np.stack([a, b], axis=1), cap)
    return float(columns[:, 0] @ columns[:, 1])


class _Standardised:
    """A cohort's genes without missing values, centred and of unit length (the eigengenes),
    and the columns whose products are the network's correlations (the same, or bicor's):
    every statistic is a product of them.

    ``cap`` None: Pearson's correlation; else bicor's with this cap on outliers, for every
    correlation (the genes', kME, the eigengenes'), as ``corFnc = "bicor"``."""

    def __init__(self, z: Any, columns: Any, cap: float | None) -> None:
        self.z = z  # (n_samples, n_genes), on the cohort's device
        self.columns, self.cap = columns, cap

    def take(self, columns: np.ndarray) -> _Standardised:
        on = namespace(self.z).asarray(columns)
        return _Standardised(self.z[:, on], self.columns[:, on], self.cap)

    def _prepared(self, vectors: Any) -> Any:
        return vectors if self.cap is None else bicor_columns(vectors, self.cap)

    def eigengenes(self, members: list[np.ndarray]) -> Any:
        """Each gene set's eigengene, unit length: shape (n_samples, len(members))."""
        xp = namespace(self.z)
        return xp.stack([eigengene(self.z[:, xp.asarray(genes)])[0] for genes in members], axis=1)

    def kme(self, eigengenes: Any) -> np.ndarray:
        """Every gene's correlation with each eigengene (signedKME), on the host."""
        return np.asarray(to_host(self.columns.T @ self._prepared(eigengenes)), dtype=np.float64)

    def eigengene_correlation(self, eigengenes: Any) -> np.ndarray:
        prepared = self._prepared(eigengenes)
        return np.asarray(to_host(prepared.T @ prepared), dtype=np.float64)

    def correlation(self, genes: np.ndarray) -> np.ndarray:
        """The genes' correlations with each other, on the host: shape (m, m)."""
        block = self.columns[:, namespace(self.z).asarray(genes)]
        return np.asarray(to_host(block.T @ block), dtype=np.float64)


class _Pairwise:
    """A cohort's genes with missing values, as modulePreservation takes them: each gene's
    kME over its samples (``cor(use = "p")``), each gene set's eigengene from its genes imputed
    by impute.knn (``moduleEigengenes``), and the correlations within a gene set as R's
    ``cor(use = "p", quick = quickCor)``: a pair of genes missing at most ``quick_cor`` × the
    samples each is correlated from each gene's own mean and spread (missing values left out
    of the products), other pairs over the samples both have. With bicor (``cap`` not None)
    every correlation is WGCNA's ``bicor(use = "p")`` with that cap, the genes' with
    ``quick = quickCor``."""

    def __init__(
        self,
        values: np.ndarray,
        z: Any,
        present: Any,
        gene_ids: np.ndarray,
        quick: Any,
        exact: np.ndarray,
        quick_cor: float,
        cap: float | None,
    ) -> None:
        self.values = values  # (n_samples, n_genes) as measured, NaN where missing, host
        self.z, self.present = z, present  # pairwise_correlation's inputs, on the device
        self.gene_ids = gene_ids
        self.quick = quick  # z of unit length: its products are R's quick correlations
        self.exact = exact  # (n_genes,) bool: the genes whose pairs are correlated exactly
        self.quick_cor, self.cap = quick_cor, cap

    @classmethod
    def of(cls, network: GeneNetwork, quick_cor: float, cap: float | None) -> _Pairwise:
        z, present = network.pairwise_inputs()
        xp = namespace(z)
        quick = z / xp.sqrt(xp.sum(z * z, axis=0))
        n_missing = np.asarray(to_host(network.n_samples - present.sum(axis=0)))
        exact = n_missing > math.floor(quick_cor * network.n_samples)
        values = np.asarray(to_host(network.read()), dtype=np.float64)
        ids = network.gene_ids.astype(str)
        return cls(values, z, present, ids, quick, exact, quick_cor, cap)

    def take(self, columns: np.ndarray) -> _Pairwise:
        on = namespace(self.z).asarray(columns)
        return _Pairwise(
            self.values[:, columns],
            self.z[:, on],
            self.present[:, on],
            self.gene_ids[columns],
            self.quick[:, on],
            self.exact[columns],
            self.quick_cor,
            self.cap,
        )

    def eigengenes(self, members: list[np.ndarray]) -> np.ndarray:
        labels = np.full(self.values.shape[1], -2, dtype=np.int64)
        for j, genes in enumerate(members):
            labels[genes] = j
        own = np.concatenate(members)
        found = imputed_eigengenes(
            self.values[:, own], labels[own], np.arange(len(members), dtype=np.int64)
        )
        return found.vectors

    def kme(self, eigengenes: np.ndarray) -> np.ndarray:
        if self.cap is None:
            return pairwise_columns(self.values, eigengenes)
        both = np.concatenate([eigengenes, self.values], axis=1)
        rows = np.arange(eigengenes.shape[1])
        kme = pairwise_bicor(both, rows, self.cap)[:, eigengenes.shape[1] :]
        return np.ascontiguousarray(np.asarray(to_host(kme)).T)

    def eigengene_correlation(self, eigengenes: np.ndarray) -> np.ndarray:
        if self.cap is None:
            return pairwise_columns(eigengenes)
        columns = bicor_columns(eigengenes, self.cap)
        return columns.T @ columns

    def correlation(self, genes: np.ndarray) -> np.ndarray:
        if self.cap is not None:
            cor = pairwise_bicor(self.values[:, genes], None, self.cap, self.quick_cor)
            ids = self.gene_ids[genes]
            refuse_undefined(cor, ids, ids, "module_preservation")
            return np.asarray(to_host(cor), dtype=np.float64)
        xp = namespace(self.z)
        on = xp.asarray(genes)
        block = self.quick[:, on]
        cor = np.asarray(to_host(block.T @ block), dtype=np.float64)
        rows = np.flatnonzero(self.exact[genes])
        if rows.shape[0]:
            exact = pairwise_correlation(self.z[:, on], self.present[:, on], rows)
            ids = self.gene_ids[genes]
            refuse_undefined(exact, ids[rows], ids, "module_preservation")
            cor[rows, :] = np.asarray(to_host(exact), dtype=np.float64)
            cor[:, rows] = cor[rows, :].T
        return cor


_Genes = _Standardised | _Pairwise


class _Calculator:
    """modulePreservation's ``.modulePreservationInternal`` and ``.coreCalcForExpr`` for one
    reference and one test cohort, observed or permuted."""

    def __init__(
        self,
        ref: _Genes,
        test: _Genes,
        colors: np.ndarray,
        network: str,
        max_module_size: int,
        max_gold_module_size: int,
        cluster_coefficients: bool = False,
    ) -> None:
        self.ref, self.test, self.colors, self.network = ref, test, colors, network
        self.cluster_coefficients = cluster_coefficients
        self.cap = ref.cap  # bicor's cap on outliers for every correlation (None: Pearson's)
        self.power = 12.0 if network == "signed" else 6.0
        self.max_module_size = max_module_size
        n_genes = colors.shape[0]
        self.gold_size = int(min(max_gold_module_size, n_genes / 2))
        self.levels = np.unique(colors)
        # the reference's real modules are not permuted: their eigengenes and correlation
        # blocks are the same in every permutation
        self.eigengenes: dict[int, Any] = {}
        self.blocks: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self.coefficients: dict[int, np.ndarray] = {}  # the reference modules' (cc of adj1)

    def run(self, rng: np.random.Generator, *, permuted: bool) -> dict[str, np.ndarray]:
        """One observed or permuted set of statistics, by module (``self.levels``, then gold)."""
        n_genes = self.colors.shape[0]
        gold_ref = rng.choice(n_genes, self.gold_size, replace=False)
        gold_test = rng.choice(n_genes, self.gold_size, replace=False) if permuted else gold_ref
        keep = np.ones(n_genes, dtype=bool)
        for level in self.levels:  # large modules: a sample of their genes
            members = np.flatnonzero(self.colors == level)
            if members.shape[0] > self.max_module_size:
                keep[members] = False
                keep[rng.choice(members, self.max_module_size, replace=False)] = True
        kept = np.flatnonzero(keep)
        order = kept[rng.permutation(kept.shape[0])] if permuted else kept
        ref = self.ref.take(np.concatenate([kept, gold_ref]))
        ref_perm = self.ref.take(np.concatenate([order, gold_test]))
        test = self.test.take(np.concatenate([order, gold_test]))
        colors = np.concatenate([self.colors[kept], np.full(self.gold_size, GOLD)])
        cacheable = np.array_equal(kept, np.arange(n_genes))  # real modules fixed in ref
        return self._statistics(ref, ref_perm, test, colors, permuted, cacheable)

    def _statistics(
        self,
        ref: _Genes,
        ref_perm: _Genes,
        test: _Genes,
        colors: np.ndarray,
        permuted: bool,
        cacheable: bool,
    ) -> dict[str, np.ndarray]:
        levels = np.concatenate([self.levels, [GOLD]])
        members = [np.flatnonzero(colors == level) for level in levels]
        own = [
            self._cached_eigengene(ref, genes, int(level), cacheable)
            for level, genes in zip(levels, members, strict=True)
        ]
        me_ref = namespace(own[0]).stack(own, axis=1)
        me_perm = ref_perm.eigengenes(members) if permuted else me_ref
        me_test = test.eigengenes(members)
        kme_ref = ref.kme(me_ref)
        kme_perm = ref_perm.kme(me_perm) if permuted else kme_ref
        kme_test = test.kme(me_test)
        out = {name: np.full(levels.shape[0], np.nan) for name in _OUTPUTS}
        for j, genes in enumerate(members):
            if genes.shape[0] < 2:
                continue
            own_ref, own_perm, own_test = kme_ref[genes, j], kme_perm[genes, j], kme_test[genes, j]
            out["quality_prop_var_explained"][j] = np.mean(own_perm**2)
            out["prop_var_explained"][j] = np.mean(own_test**2)
            out["quality_mean_sign_aware_kme"][j] = abs(np.mean(np.abs(own_perm)))
            out["mean_sign_aware_kme"][j] = abs(np.mean(np.sign(own_ref) * own_test))
            out["cor_kme"][j] = abs(_correlate(own_ref, own_test, self.cap))
            out["cor_kme_all"][j] = abs(_correlate(kme_ref[:, j], kme_test[:, j], self.cap))
            level = int(levels[j])
            cor1, adj1, mar1, kim1 = self._cached_block(ref, genes, level, cacheable)
            if permuted:
                cor2 = ref_perm.correlation(genes)
                adj2 = np.asarray(to_host(adjacency(cor2, self.power, self.network)))
                mar2 = _mar(adj2)
            else:
                cor2, adj2, mar2 = cor1, adj1, mar1
            cor3 = test.correlation(genes)
            adj3 = np.asarray(to_host(adjacency(cor3, self.power, self.network)))
            mar3 = _mar(adj3)
            lower = np.tril_indices(genes.shape[0], -1)
            signed2 = np.abs(cor2) if self.network == "unsigned" else cor2
            out["quality_mean_sign_aware_cor"][j] = np.mean(signed2[lower])
            out["mean_sign_aware_cor"][j] = np.mean((np.sign(cor1) * cor3)[lower])
            out["cor_cor"][j] = _correlate(cor1[lower], cor3[lower], self.cap)
            out["quality_mean_mar"][j] = np.mean(mar2)
            out["mean_mar"][j] = np.mean(mar3)
            out["cor_kim"][j] = _correlate(kim1, adj3.sum(axis=0), self.cap)
            out["cor_mar"][j] = _correlate(mar1, mar3, self.cap)
            out["quality_mean_adjacency"][j] = np.mean(adj2[lower])
            out["mean_adjacency"][j] = np.mean(adj3[lower])
            if self.cluster_coefficients:
                cc1 = self.coefficients.get(level) if level != GOLD and cacheable else None
                if cc1 is None:
                    cc1 = _cluster_coefficients(adj1)
                    if level != GOLD and cacheable:
                        self.coefficients[level] = cc1
                cc2 = _cluster_coefficients(adj2) if permuted else cc1
                cc3 = _cluster_coefficients(adj3)
                out["quality_mean_cluster_coefficient"][j] = np.mean(cc2)
                out["mean_cluster_coefficient"][j] = np.mean(cc3)
                out["cor_cluster_coefficient"][j] = _correlate(cc1, cc3, self.cap)
        proper = (levels != 0) & (levels != GOLD)
        out["quality_separability"] = _separability(ref_perm.eigengene_correlation(me_perm), proper)
        out["separability"] = _separability(test.eigengene_correlation(me_test), proper)
        return out

    def _cached_eigengene(self, ref: _Genes, genes: np.ndarray, level: int, cacheable: bool) -> Any:
        if level == GOLD or not cacheable:
            return ref.eigengenes([genes])[:, 0]
        if level not in self.eigengenes:
            self.eigengenes[level] = ref.eigengenes([genes])[:, 0]
        return self.eigengenes[level]

    def _cached_block(
        self, ref: _Genes, genes: np.ndarray, level: int, cacheable: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The reference module's correlations, adjacency, MAR and kIM."""
        if level != GOLD and cacheable and level in self.blocks:
            return self.blocks[level]
        cor = ref.correlation(genes)
        adj = np.asarray(to_host(adjacency(cor, self.power, self.network)))
        found = (cor, adj, _mar(adj), adj.sum(axis=0))
        if level != GOLD and cacheable:
            self.blocks[level] = found
        return found


_OUTPUTS = (
    *(f"quality_{name}" for name in _QUALITY),
    "quality_separability",
    "quality_mean_cluster_coefficient",
    *_PRESERVATION,
    "separability",
    *_CLUSTER,
)


def _cor(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's correlation of two vectors (NaN where one is constant)."""
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / denominator if denominator > 0 else math.nan


def _cluster_coefficients(adj: np.ndarray) -> np.ndarray:
    """WGCNA's ``.clusterCoeff`` of an adjacency matrix (its diagonal 1): each gene's
    ``(Σ_jk a_ij a_jk a_ki − Σ_j a_ij² a_jj) / ((Σ_j a_ij)² − Σ_j a_ij²)``, 0 where the
    denominator is."""
    squares = adj * adj
    links = np.einsum("ij,ij->i", adj @ adj, adj)  # the diagonal of a³ (a symmetric)
    total = adj.sum(axis=0) ** 2 - squares.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cc = (links - squares @ np.diag(adj)) / total
    return np.where(total == 0, 0.0, cc)


def _mar(adj: np.ndarray) -> np.ndarray:
    """WGCNA's ``.MAR``: each gene's mean adjacency ratio, ``(Σ a² - 1) / (Σ a - 1)`` with the
    diagonal's 1 in the sums, taken here over the other genes (the same ratio without the
    cancellation of sums near 1)."""
    others = adj.copy()
    np.fill_diagonal(others, 0.0)
    denominator = others.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mar = (others * others).sum(axis=0) / denominator
    return np.where(denominator == 0, np.nan, mar)


def _separability(cor: np.ndarray, proper: np.ndarray) -> np.ndarray:
    """1 - each module's largest eigengene correlation (``cor``, modules × modules) with a
    proper module (not grey or gold) other than itself: signed, in every network (R's
    ``abs`` for ``nType == 0`` is never taken, its network types counting from 1)."""
    cor = cor.copy()
    np.fill_diagonal(cor, 0.0)
    others = cor[:, proper]
    if others.shape[1] == 0:
        return np.full(cor.shape[0], np.nan)
    with _ignoring_empty():
        return 1.0 - np.nanmax(others, axis=1)


def median_ranks(table: Mapping[str, Any], columns: tuple[str, ...]) -> np.ndarray:
    """The median over ``columns`` of each module's rank (1: the highest value; ties get
    their average rank, missing values none), as modulePreservation's medianRank.

    Parameters
    ----------
    table : mapping of str to array of shape (n_modules,)
    columns : tuple of str

    Returns
    -------
    ndarray of shape (n_modules,)
    """
    ranks = np.column_stack([_rank_descending(np.asarray(table[c], dtype=float)) for c in columns])
    with _ignoring_empty():
        return np.nanmedian(ranks, axis=1)


def _rank_descending(values: np.ndarray) -> np.ndarray:
    out = np.full(values.shape[0], np.nan)
    finite = ~np.isnan(values)
    out[finite] = stats.rankdata(-values[finite], method="average")
    return out


@contextmanager
def _ignoring_empty() -> Iterator[None]:
    """NumPy's warnings of all-NaN slices and empty means off: a module of one gene has no
    statistics, and R's ``na.rm`` gives NA there too."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def log10_pvalues(z: np.ndarray) -> np.ndarray:
    """modulePreservation's ``log.p``: the one-sided normal log10 p-value of each Z."""
    return stats.norm.logsf(z) / math.log(10.0)


def _result(
    observed: dict[str, np.ndarray],
    permuted: list[dict[str, np.ndarray]],
    calculator: _Calculator,
    ref: GeneNetwork,
    tst: GeneNetwork,
    network: str,
    n_permutations: int,
    seed: int,
    quick_cor: float,
) -> xr.Dataset:
    levels = np.concatenate([calculator.levels, [GOLD]])
    sizes = np.array(
        [
            min(int(np.sum(calculator.colors == level)), calculator.max_module_size)
            for level in calculator.levels
        ]
    )
    sizes = np.concatenate([sizes, [calculator.gold_size]])
    with _ignoring_empty():
        z = {
            name: (observed[name] - np.nanmean([p[name] for p in permuted], axis=0))
            / np.nanstd([p[name] for p in permuted], axis=0, ddof=1)
            for name in _OUTPUTS
        }
        density = np.nanmedian(np.column_stack([z[c] for c in _DENSITY]), axis=1)
        connectivity = np.nanmedian(np.column_stack([z[c] for c in _CONNECTIVITY]), axis=1)
        summary = np.nanmean(np.column_stack([density, connectivity]), axis=1)
        quality = np.nanmedian(np.column_stack([z[f"quality_{c}"] for c in _DENSITY]), axis=1)
        log_density = np.nanmedian(np.column_stack([log10_pvalues(z[c]) for c in _DENSITY]), axis=1)
        log_connectivity = np.nanmedian(
            np.column_stack([log10_pvalues(z[c]) for c in _CONNECTIVITY]), axis=1
        )
        log_summary = np.nanmedian(np.column_stack([log_density, log_connectivity]), axis=1)
    data: dict[str, Any] = {
        "size": ("module", sizes),
        "median_rank": ("module", median_ranks(observed, (*_DENSITY, *_CONNECTIVITY))),
        "median_rank_density": ("module", median_ranks(observed, _DENSITY)),
        "median_rank_connectivity": ("module", median_ranks(observed, _CONNECTIVITY)),
    }
    cluster = _CLUSTER if calculator.cluster_coefficients else ()
    reported = (*_PRESERVATION, "separability", *cluster)
    data.update({name: ("module", observed[name]) for name in reported})
    data.update(
        z_summary=("module", summary),
        z_density=("module", density),
        z_connectivity=("module", connectivity),
    )
    data.update({f"z_{name}": ("module", z[name]) for name in reported})
    data.update(
        log10_p_summary=("module", log_summary),
        log10_p_density=("module", log_density),
        log10_p_connectivity=("module", log_connectivity),
        quality_median_rank=(
            "module",
            median_ranks({c: observed[f"quality_{c}"] for c in _DENSITY}, _DENSITY),
        ),
        quality_z_summary=("module", quality),
    )
    data.update(
        {
            f"quality_{name}": ("module", observed[f"quality_{name}"])
            for name in (*_QUALITY, "separability", *cluster[:1])  # the mean's, not the cor
        }
    )
    return xr.Dataset(
        data,
        coords={"module": levels},
        attrs={
            "n_permutations": int(n_permutations),
            "network": network,
            "n_genes": int(calculator.colors.shape[0]),
            "n_samples_reference": ref.n_samples,
            "n_samples_test": tst.n_samples,
            "seed": int(seed),
            "quick_cor": float(quick_cor),
            "cluster_coefficients": int(calculator.cluster_coefficients),
            "correlation_type": ref.correlation_type,
            "max_p_outliers": float(ref.max_p_outliers),
            "n_genes_missing": [ref.n_sparse, tst.n_sparse],
            "missing_share": [ref.missing_share, tst.missing_share],
        },
    )
