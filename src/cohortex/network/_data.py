"""The genes of a co-expression network and their correlation matrix, from any cohort.

Two passes over the cohort: its moments (means, variances, missing and infinite values), then
the co-moments of the standardised genes, a block of samples at a time, summed into one
genes × genes matrix on the cohort's device. A third pass, :meth:`GeneNetwork.scores`, turns
gene weights into per-sample scores (the module eigengenes).

Where the cohort has missing values, the genes are held in memory and each pair correlated over
the samples both have (R's ``cor(use = "p")``, its Spearman's or WGCNA's ``bicor(use =
"p")``, as WGCNA's ``adjacency`` and ``pickSoftThreshold``); genes and samples are first
checked as WGCNA's ``goodSamplesGenes``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dask
import numpy as np
from scipy import stats

from .._backend import dask_on, namespace, resolve_device, take_genes, to_host
from .._cohort import (
    CohortLike,
    CohortMatrix,
    as_cohort_matrix,
    present_gene_moments,
)
from .._constants import CORRELATION_TYPES, NETWORK_TYPES, TOM_DENOMINATORS, TOM_TYPES
from .._errors import CohortexError
from .._memory import physical_memory
from .._progress import progress_bar
from ..de._comparison import MEMORY_CHUNKS
from ..stats._network import (
    accumulate_gram,
    bicor_columns,
    correlation_from_gram,
    pairwise_bicor,
    pairwise_correlation,
    pairwise_spearman,
    spearman_columns,
)
from ..stats._tree_cut import DEEP_SPLIT_SCATTER

__all__ = [
    "HOST_COPIES",
    "GeneNetwork",
    "check_choice",
    "check_memory",
    "check_module_settings",
    "refuse_undefined",
]

_BLOCK_BYTES = 1 << 28  # a block of samples × every gene: 256 MB of float64
HOST_COPIES = {"cpu": 4.0, "gpu": 2.0}  # genes × genes float64 matrices held on the host
_SMALLEST = 3  # WGCNA: fewer than 3 genes make a trivial network
_MIN_PRESENT = 4  # goodSamplesGenes' minNSamples and minNGenes
_INFINITE_ADVICE = "make them missing (NaN), which the network functions take, or filter them"


def check_choice(who: str, name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    """Refuse a value outside ``allowed``, naming the parameter and the choices."""
    if value not in allowed:
        raise CohortexError(
            f"The {name!r} parameter of {who}() must be one of "
            f"{', '.join(repr(a) for a in allowed)}; got {value!r}."
        )


def check_module_settings(
    who: str,
    *,
    network: str,
    tom: str,
    deep_split: int,
    merge_cut_height: float,
    power: float | None,
    tom_denominator: str = "min",
) -> None:
    """Refuse the settings the module finders share, out of range."""
    check_choice(who, "network", network, NETWORK_TYPES)
    check_choice(who, "tom", tom, TOM_TYPES)
    check_choice(who, "tom_denominator", tom_denominator, TOM_DENOMINATORS)
    check_choice(who, "deep_split", deep_split, tuple(range(len(DEEP_SPLIT_SCATTER))))
    if not 0.0 <= merge_cut_height <= 1.0:
        raise CohortexError(
            f"The 'merge_cut_height' parameter of {who}() must be between 0 and 1 (a "
            f"dissimilarity of eigengenes); got {merge_cut_height}."
        )
    if power is not None and not (np.isfinite(power) and power > 0):
        raise CohortexError(f"The 'power' parameter of {who}() must be positive; got {power}.")


class GeneNetwork:
    """The genes used (non-constant, the most variable ``genes`` of them where asked) and their
    correlations (Pearson's or the biweight midcorrelation), on the cohort's device.

    Attributes
    ----------
    correlation : array of shape (n_genes, n_genes), float64
    gene_ids, sample_ids : ndarray of str
    n_samples, n_genes, n_constant : int
    transform : str
        "log-CPM" where a counts cohort was made edgeR's log-CPM first, else "".
    data : CohortMatrix
        The cohort as given (for its sample variables).
    correlation_type : {"pearson", "bicor", "spearman"}
    max_p_outliers : float
        bicor's cap on the share of outliers on each side.
    missing : bool
        Whether the genes used have missing values (then held in memory, see :meth:`read`).
    n_sparse : int
        Genes left out for missing values: in half the samples or more, or present in fewer
        than 4 (WGCNA's ``goodGenes``).
    missing_share : float
        The share of the used genes' values that are missing.
    """

    def __init__(
        self,
        x: Any,
        mean: np.ndarray,
        sd: np.ndarray,
        data: CohortMatrix,
        gene_ids: np.ndarray,
        n_constant: int,
        transform: str,
        who: str,
        progress: bool | None,
    ) -> None:
        self.x = x  # dask (samples × genes used): blocks of samples holding every gene
        self.xp = namespace(x._meta)
        self.mean, self.sd = mean, sd
        self.data, self.gene_ids, self.sample_ids = data, gene_ids, data.sample_ids
        self.n_samples, self.n_genes = int(x.shape[0]), int(x.shape[1])
        self.n_constant, self.transform, self.who = n_constant, transform, who
        self.progress = progress
        self.correlation: Any = None
        self.correlation_type, self.max_p_outliers = "pearson", 1.0
        self.device = "cpu"
        self.missing, self.n_sparse, self.missing_share = False, 0, 0.0
        self._values: Any = None  # the genes in memory, where they have missing values
        self._pairwise_inputs: Any = None  # their standardised values and presence

    @classmethod
    def build(
        cls,
        cohort: CohortLike,
        *,
        genes: int | None,
        device: str,
        progress: bool | None,
        who: str,
        gene_ids: np.ndarray | None = None,
        correlation: bool = True,
        correlation_type: str = "pearson",
        max_p_outliers: float = 1.0,
    ) -> GeneNetwork:
        """Read the cohort's moments, choose the genes and compute their correlations.

        ``gene_ids`` takes exactly those genes (a network already built); ``correlation=False``
        leaves the genes × genes matrix to :meth:`cross_correlation` of a few of them.
        ``correlation_type`` "bicor" is WGCNA's biweight midcorrelation, outliers on each side
        capped at ``max_p_outliers``, "spearman" Spearman's (both hold the cohort in memory:
        medians and ranks need whole genes). Missing values are taken (each pair correlated
        over the samples both have): genes with too many are left out, and samples missing
        half of the genes refused, as WGCNA's ``goodSamplesGenes``.
        """
        check_choice(who, "correlation_type", correlation_type, CORRELATION_TYPES)
        if not 0.0 < max_p_outliers <= 1.0:
            raise CohortexError(
                f"The 'max_p_outliers' parameter of {who}() is a share of the samples, in "
                f"(0, 1]; got {max_p_outliers}."
            )
        data = as_cohort_matrix(cohort)
        transform = ""
        if data.scale == "counts":  # WGCNA wants log-scale values: edgeR's log-CPM, TMM
            from .._normalize import normalize

            counts = data.dataset if data.dataset is not None else cohort
            normalized = normalize(counts, "log_cpm", prior_count=2.0, norm_factors="tmm")
            data = as_cohort_matrix(normalized)
            transform = "log-CPM"
        n, n_total = data.matrix.shape
        if n < 4:
            raise CohortexError(f"{who}() needs at least 4 samples; got {n}.")
        on = resolve_device(device)
        x = dask_on(data.matrix, on, MEMORY_CHUNKS).astype(np.float64)
        mean, variance, count = present_gene_moments(x, who, _INFINITE_ADVICE, progress)
        sparse = (n - count >= n / 2.0) | (count < _MIN_PRESENT)
        keep = ~sparse & (variance > 0.0)
        n_sparse = int(sparse.sum())
        n_constant = int(n_total - keep.sum() - n_sparse)
        if gene_ids is not None:
            wanted = np.isin(data.gene_ids.astype(str), np.asarray(gene_ids).astype(str))
            if int((wanted & keep).sum()) != len(gene_ids):
                raise CohortexError(
                    f"{who}(): the cohort does not hold the network's genes (or they no longer "
                    "vary): give the cohort the network was built from."
                )
            keep &= wanted
        if genes is not None:
            if not _SMALLEST <= genes <= int(keep.sum()):
                raise CohortexError(
                    f"The 'genes' parameter of {who}() must be between {_SMALLEST} and the "
                    f"{int(keep.sum())} non-constant genes; got {genes}."
                )
            keep &= stats.rankdata(-variance, method="ordinal") <= genes
        n_genes = int(keep.sum())
        if n_genes < _SMALLEST:
            raise CohortexError(
                f"{who}() needs at least {_SMALLEST} genes that vary; the cohort has {n_genes}."
            )
        if not keep.all():
            x = take_genes(x, keep)
        rows = max(1, _BLOCK_BYTES // (8 * n_genes))
        x = x.rechunk({0: rows, 1: -1})
        network = cls(
            x,
            mean[keep],
            np.sqrt(variance[keep]),
            data,
            data.gene_ids[keep],
            n_constant,
            transform,
            who,
            progress,
        )
        network.correlation_type, network.max_p_outliers = correlation_type, max_p_outliers
        network.device = on
        network.n_sparse = n_sparse
        n_missing = float((n - count[keep]).sum())
        network.missing, network.missing_share = n_missing > 0, n_missing / (n * n_genes)
        if correlation:
            network.correlation = network.compute_correlation()
        return network

    def compute_correlation(self) -> Any:
        """The genes × genes correlation matrix (refused at once beyond the machine's memory).

        Returns
        -------
        array of shape (n_genes, n_genes), float64, on the cohort's device
        """
        _check_memory(
            self.n_genes,
            self.device,
            self.who,
            in_memory=self.correlation_type != "pearson" or self.missing,
            n_samples=self.n_samples,
        )
        if self.missing:
            return self._pairwise()
        return self._correlation()

    def with_sample_variables(self, result: Any) -> Any:
        """``result`` with the cohort's sample variables (for :func:`module_traits`)."""
        for name in self.data.sample_variables():
            assert self.data.dataset is not None
            result[name] = ("sample", np.asarray(self.data.dataset[name].values))
        return result

    def _blocks(self, what: str) -> Iterator[tuple[int, Any]]:
        """Each block of samples (every gene) with its first sample, read one after another."""
        blocks = self.x.to_delayed()[:, 0]
        edges = np.cumsum((0, *self.x.chunks[0]))
        bar = progress_bar(len(blocks), f"{self.who}: {what}", self.progress, delay=2.0)
        try:
            for start, block in zip(edges[:-1], blocks, strict=True):
                (values,) = dask.compute(block)
                yield int(start), values
                bar.update(1)
        finally:
            bar.close()

    def _correlation(self) -> Any:
        if self.correlation_type != "pearson":
            prepared = self.prepared()
            return correlation_from_gram(prepared.T @ prepared)
        return self.pearson_correlation()

    def pearson_correlation(self) -> Any:
        """Pearson's correlations of the genes, one pass of co-moments of standardised blocks
        of samples.

        Returns
        -------
        array of shape (n_genes, n_genes), float64, on the cohort's device
        """
        xp = self.xp
        gram = xp.zeros((self.n_genes, self.n_genes), dtype=xp.float64)
        mean, sd = xp.asarray(self.mean), xp.asarray(self.sd)
        for _, values in self._blocks("correlations"):
            accumulate_gram(gram, values, mean, sd)
        return correlation_from_gram(gram)

    def prepared(self, max_p_outliers: float | None = None, values: Any = None) -> Any:
        """The genes as columns whose dot products are their correlations: centred and of unit
        length for Pearson's, WGCNA's ``prepareColBicor`` for bicor, the centred ranks for
        Spearman's. All in memory.

        Parameters
        ----------
        max_p_outliers : float, optional
            bicor's cap on outliers, if not the network's.
        values : array of shape (n_samples, m), optional
            :meth:`read`'s values (or some of their genes), if already read; not modified.

        Returns
        -------
        array of shape (n_samples, n_genes), float64, on the cohort's device
        """
        raw = self.read() if values is None else values
        if self.correlation_type == "bicor":
            cap = self.max_p_outliers if max_p_outliers is None else max_p_outliers
            return bicor_columns(raw, cap)
        if self.correlation_type == "spearman":
            return spearman_columns(raw)
        return self.standardised(raw)

    def cross_correlation(self, rows: np.ndarray) -> Any:
        """Correlations of a few genes with every gene, a block of samples at a time.

        Parameters
        ----------
        rows : ndarray of int, shape (m,)
            Positions of the genes among the network's.

        Returns
        -------
        array of shape (m, n_genes), float64, on the cohort's device
        """
        xp = self.xp
        index = xp.asarray(rows)
        if self.missing:
            return self._pairwise(rows)
        if self.correlation_type != "pearson":
            prepared = self.prepared()
            out = prepared[:, index].T @ prepared
            out[xp.arange(rows.shape[0]), index] = 1.0
            return out
        products = xp.zeros((rows.shape[0], self.n_genes), dtype=xp.float64)
        mean, sd = xp.asarray(self.mean), xp.asarray(self.sd)
        sums = xp.zeros(self.n_genes, dtype=xp.float64)
        for _, values in self._blocks("correlations"):
            z = (xp.asarray(values, dtype=xp.float64) - mean) / sd
            products += z[:, index].T @ z
            sums += (z * z).sum(axis=0)
        root = xp.sqrt(sums)
        out = products / root[index][:, None] / root[None, :]
        out[xp.arange(rows.shape[0]), index] = 1.0
        return out

    def standardised(self, values: Any = None) -> Any:
        """The genes centred and scaled to unit length, all in memory on the cohort's device
        (blockwise modules: any gene's correlations with any other are then one product).

        Parameters
        ----------
        values : array of shape (n_samples, m), optional
            :meth:`read`'s values (or some of their genes), if already read; not modified.

        Returns
        -------
        array of shape (n_samples, n_genes), float64
        """
        xp = self.xp
        z = self.read() if values is None else values.copy()
        z -= xp.mean(z, axis=0)
        z /= xp.sqrt(xp.sum(z * z, axis=0))
        return z

    def read(self) -> Any:
        """The genes used, all samples, in memory on the cohort's device: one pass (kept for
        later calls where the genes have missing values; then samples missing half of the
        genes or more, or present in fewer than 4, are refused).

        Returns
        -------
        array of shape (n_samples, n_genes), float64
            NaN where missing.
        """
        if self._values is not None:
            return self._values
        xp = self.xp
        values = xp.concatenate(
            [xp.asarray(values, dtype=xp.float64) for _, values in self._blocks("reading")],
            axis=0,
        )
        if self.missing:
            self._check_samples(values)
            self._values = values
        return values

    def _check_samples(self, values: Any) -> None:
        """WGCNA's ``goodSamples``, refused rather than left out: a sample must have fewer
        than half of the genes missing, and at least 4 present."""
        xp = self.xp
        missing = np.asarray(to_host(xp.isnan(values).sum(axis=1)))
        bad = (missing >= self.n_genes / 2.0) | (self.n_genes - missing < _MIN_PRESENT)
        if bad.any():
            names = ", ".join(str(s) for s in self.sample_ids[bad][:5])
            many = int(bad.sum())
            who = "1 sample misses" if many == 1 else f"{many} samples miss"
            raise CohortexError(
                f"{self.who}(): {who} half of the genes or more ({names}"
                f"{', …' if many > 5 else ''}); leave them out first, as WGCNA's goodSamples "
                "does."
            )

    def pairwise_inputs(self) -> tuple[Any, Any]:
        """The genes standardised by their own means and sds over the samples they have (0
        where missing) and their presence (1, else 0): :func:`pairwise_correlation`'s inputs,
        kept for later calls (soft_threshold asks a block of rows at a time).

        Returns
        -------
        tuple of two arrays of shape (n_samples, n_genes), float64, on the cohort's device
        """
        if self._pairwise_inputs is None:
            xp = self.xp
            values = self.read()
            present = ~xp.isnan(values)
            z = xp.where(present, (values - xp.asarray(self.mean)) / xp.asarray(self.sd), 0.0)
            self._pairwise_inputs = (z, present.astype(xp.float64))
        return self._pairwise_inputs

    def _pairwise(self, rows: np.ndarray | None = None) -> Any:
        """The network's correlations over the samples each pair of genes both have (all
        rows, or ``rows``); refused where a pair has fewer than 2 samples in common or does
        not vary over them (R's NA, which no network step takes)."""
        if self.correlation_type == "bicor":
            out = pairwise_bicor(self.read(), rows, self.max_p_outliers)
        elif self.correlation_type == "spearman":
            out = pairwise_spearman(self.read(), rows)
        else:
            standardised, present = self.pairwise_inputs()
            out = pairwise_correlation(standardised, present, rows)
        row_ids = self.gene_ids if rows is None else self.gene_ids[rows]
        refuse_undefined(out, row_ids, self.gene_ids, self.who)
        return out

    def scores(self, weights: np.ndarray) -> np.ndarray:
        """``Z @ weights`` of the standardised genes ``Z``, a block of samples at a time.

        Parameters
        ----------
        weights : ndarray of shape (n_genes, k)

        Returns
        -------
        ndarray of shape (n_samples, k), on the host
        """
        xp = self.xp
        w = xp.asarray(weights, dtype=xp.float64)
        mean, sd = xp.asarray(self.mean), xp.asarray(self.sd)
        parts = [
            np.asarray(to_host(((xp.asarray(values, dtype=xp.float64) - mean) / sd) @ w))
            for _, values in self._blocks("eigengenes")
        ]
        return np.concatenate(parts, axis=0)


def refuse_undefined(
    correlation: Any, row_ids: np.ndarray, column_ids: np.ndarray, who: str
) -> None:
    """Refuse correlations over the samples two genes share that are undefined (NaN).

    Parameters
    ----------
    correlation : array of shape (m, k)
    row_ids, column_ids : ndarray of str, shapes (m,) and (k,)
        The genes of its rows and columns.
    who : str
    """
    xp = namespace(correlation)
    undefined = xp.isnan(correlation)
    if bool(undefined.any()):
        i, j = np.argwhere(np.asarray(to_host(undefined)))[0]
        raise CohortexError(
            f"{who}(): genes {row_ids[i]} and {column_ids[j]} share fewer than 2 samples with "
            "values (or do not vary over those): their correlation is undefined. Leave out "
            "genes with many missing values first."
        )


def _check_memory(
    n_genes: int, on: str, who: str, *, in_memory: bool = False, n_samples: int = 0
) -> None:
    """Refuse at once genes × genes matrices larger than the machine's memory (bicor or
    Spearman's: the cohort in memory twice, and Pearson's matrix beside theirs)."""
    copies = HOST_COPIES[on] + (1.0 if in_memory else 0.0)
    data = 16.0 * n_samples * n_genes if in_memory else 0.0
    check_memory(
        who,
        copies * 8.0 * n_genes * n_genes + data,
        f"of {n_genes} genes holds {n_genes} × {n_genes} matrices",
        "Take the most variable genes (genes=), or build the modules a block of genes at a "
        "time: network.blockwise_modules() (cohortex network --blockwise).",
    )


def check_memory(who: str, needed: float, what: str, advice: str) -> None:
    """Refuse at once work that needs more than the machine's memory.

    Parameters
    ----------
    who : str
    needed : float
        Bytes.
    what : str
        What holds them ("of 40000 genes holds …").
    advice : str
    """
    total = physical_memory()
    if total and needed > total:
        raise CohortexError(
            f"{who}() {what}: about {needed / 2**30:.0f} GB, more than this machine's "
            f"{total / 2**30:.0f} GB. {advice}"
        )
