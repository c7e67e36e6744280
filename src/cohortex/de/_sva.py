"""Surrogate variable analysis (Leek & Storey 2007), as sva's ``sva``, ``svaseq``, ``num.sv`` and
``fsva``, and limma's ``wsva``.

Hidden factors — batches nobody recorded, RNA quality, tumour purity — add structure that the
design does not hold and inflate or mask the design's effects. SVA estimates them from the
data as surrogate variables, which then join the design of :func:`cohortex.de.fit`.

Every step reduces the genes to an (samples × samples) Gram matrix or to per-gene residual sums
(``stats._sva``), streamed over blocks of genes holding every sample, on the CPU or a GPU; the
eigenvectors and sva's local FDRs (``stats._lfdr``) are finished on the host.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import scipy.linalg
import xarray as xr
from scipy import special, stats
from scipy.sparse.linalg import eigsh

from .._backend import dask_on, namespace, resolve_device, take_genes, to_host
from .._cohort import CohortLike, as_cohort_matrix, finite_gene_moments, shared_docs
from .._constants import SVA_METHODS
from .._errors import CohortexError, CohortexWarning
from .._memory import physical_memory
from .._progress import progress_bar
from ..stats import _sva
from ..stats._lfdr import edge_lfdr
from ..stats._r_random import RRandom
from ._comparison import MEMORY_CHUNKS
from ._least_squares import design_matrix, least_squares, rows_per_task

__all__ = ["SVA_METHODS", "fsva", "num_sv", "sva", "wsva"]

_BLOCK_BYTES = 64 << 20  # float64 values of one block of genes × every sample
_BLOCK_GENES = 256  # blocks hold a whole number of these
_SMALLEST_FILTER = 100  # sva's smallest vfilter
_GRAM_COPIES = 4  # the Gram matrix, eigh's copy and workspace, a block's product
_GENE_SIDE: bool | None = None  # None: genes × genes Gram matrices where fewer genes are used
_DENSE_EIGEN = 2000  # larger Gram matrices give their leading pairs by Lanczos


@shared_docs
def sva(
    cohort: CohortLike,
    design: str | pd.DataFrame | np.ndarray,
    *,
    null: str | pd.DataFrame | np.ndarray | None = None,
    n_sv: int | None = None,
    method: str = "irw",
    controls: Sequence[str] | np.ndarray | None = None,
    iterations: int = 5,
    permutations: int = 20,
    seed: int = 0,
    genes: int | None = None,
    device: str = "auto",
) -> xr.Dataset:
    """Estimate surrogate variables of hidden factors, as sva's ``sva`` (``svaseq`` for counts).

    The iteratively reweighted method (sva's default, ``"irw"``) starts from the leading
    eigenvectors of the residuals of ``design``; each iteration weighs every gene by the
    probability that it depends on the current surrogate variables but not on the design's
    variables (local FDRs of two F-tests, sva's ``edge.lfdr``), and takes the leading
    eigenvectors of the weighted, centred genes again. ``"two-step"`` keeps the genes
    associated with each residual eigenvector; ``"supervised"`` weighs genes by ``controls``
    (genes known to carry no effect of the design, or probabilities of that).

    Parameters
    ----------
    {cohort}
        Values on a log scale, as sva takes them. A counts cohort is transformed to
        ``log(x + 1)`` first (natural log), as ``svaseq``. Missing or infinite values are
        refused (sva's matrix products do not skip them); constant genes are left out.
    design : str, DataFrame or array of shape (n_samples, p)
        sva's ``mod``: the variables whose effects are kept apart from the surrogate
        variables (e.g. ``"~ condition"``), with an intercept.
    null : str, DataFrame or array of shape (n_samples, p0), optional
        sva's ``mod0``: the design without the variables of interest (default: its first
        column, the intercept, as sva).
    n_sv : int, optional
        How many surrogate variables; by default estimated by :func:`num_sv`.
    method : {{"irw", "two-step", "supervised"}}, default "irw"
    controls : sequence of gene ids or array of shape (n_genes,), optional
        For ``"supervised"``: the control genes, or each gene's probability of being one
        (sva's ``controls``). Giving them implies ``"supervised"``, as in sva.
    iterations : int, default 5
        sva's ``B`` for ``"irw"``.
    permutations, seed : int
        For :func:`num_sv`, where ``n_sv`` is estimated: permutations (sva's ``B = 20``)
        and R's ``set.seed`` before them: ``set.seed(seed); sva(dat, mod, mod0)`` draws the
        same permutations, gene by gene, so the count is R's.
    genes : int, optional
        sva's ``vfilter``: use the most variable genes only (at least 100). As sva, the
        estimate of ``n_sv`` then uses one gene fewer.
    {device}

    Returns
    -------
    xarray.Dataset
        ``sv1`` … ``svK`` on ``sample``: the surrogate variables (unit length, each oriented so
        that its largest entry is positive; sva's sign is its SVD's); ``pprob_gam`` on
        ``gene`` (the genes used): each gene's probability of depending on the surrogate
        variables (``"two-step"``: whether it was used, 0 or 1; ``"supervised"``: the
        controls), and ``pprob_b`` (``"irw"``): of depending on the design's variables.
        Attrs: ``n_sv``, ``surrogates`` (the variables' names), ``method``, ``n_sv_method``
        ("be" where :func:`num_sv` estimated ``n_sv``, else ""), ``iterations``,
        ``transform`` ("log(x + 1)" for counts, else ""), ``n_genes``, ``n_genes_constant``.
        Add them to the cohort and the design with
        ``cohort.merge(result[result.attrs["surrogates"]])`` and ``"~ condition + sv1 + sv2"``.

    Raises
    ------
    CohortexError
        For unknown options, a design not of full rank, missing or infinite values, or more
        surrogate variables than the residual degrees of freedom allow.

    Notes
    -----
    Agreement with sva 3.46 (tests/de/test_sva.py): the surrogate variables and the gene
    probabilities to 1e-8 (up to sign; measured 1e-12), for ``"irw"``, ``"two-step"``,
    ``"supervised"`` and ``svaseq``, with and without ``vfilter``. With many genes the
    probabilities can differ by more (5e-7 to 5e-6 at 20,000 genes, benchmarks/sva_versus_r.py): an
    F statistic near 0 is a difference of two nearly equal residual sums in sva's formula,
    R's rounding as ours, and its p-value near 1 moves the density's upper tail. Each
    iteration reads the data twice and forms a Gram matrix of the smaller side: samples ×
    samples, or with fewer genes than samples, genes × genes (``X'X`` once; each iteration
    reweighs it and takes the surrogate variables back to the samples in a pass):
    O(n_genes · n_samples · min(n_genes, n_samples)) work that a GPU takes over, refused at
    once where four such matrices exceed the machine's memory (8 GB at 16,000). The
    two-step method and :func:`num_sv`'s permutations stay on the samples' side.
    """
    method = "supervised" if controls is not None else method
    _check_choice("method", method, SVA_METHODS)
    if method == "supervised" and controls is None:
        raise CohortexError("sva(method='supervised') needs the 'controls' genes.")
    if controls is not None and genes is not None:
        raise CohortexError("sva() takes either 'controls' or 'genes', not both (as sva).")
    if iterations < 1:
        raise CohortexError(f"The 'iterations' parameter of sva() must be ≥ 1; got {iterations}.")
    problem = _Problem.build(cohort, design, null, genes, device, "sva")
    if controls is not None:
        weights = _control_weights(controls, problem.gene_ids)
    estimated = ""
    if n_sv is None:
        n_sv = problem.estimate(permutations, seed, genes)
        estimated = "be"
    problem.check_count(n_sv)
    if n_sv == 0:
        warnings.warn(
            "sva() found no significant surrogate variable; the result holds none.",
            CohortexWarning,
            stacklevel=2,
        )
        return problem.result(np.zeros((problem.n_samples, 0)), {}, method, estimated, 0)
    if method == "irw":
        vectors, probabilities = problem.irw(n_sv, iterations)
    elif method == "two-step":
        vectors, probabilities = problem.two_step(n_sv)
    else:
        vectors = problem.centred_vectors(weights, n_sv)
        probabilities = {"pprob_gam": weights}
    return problem.result(vectors, probabilities, method, estimated, iterations)


@shared_docs
def num_sv(
    cohort: CohortLike,
    design: str | pd.DataFrame | np.ndarray,
    *,
    permutations: int = 20,
    seed: int = 0,
    genes: int | None = None,
    device: str = "auto",
) -> int:
    """How many surrogate variables the residuals of ``design`` hold, as sva's ``num.sv``.

    sva's default method, ``"be"`` (Buja & Eyuboglu 1992): each residual singular value's
    share of the variance is compared with its shares after permuting every gene's
    residuals over the samples; the count is of the leading shares with permutation
    p-values ≤ 0.1 (made monotone).

    Parameters
    ----------
    {cohort}
        As for :func:`sva` (a counts cohort as ``log(x + 1)``).
    design : str, DataFrame or array of shape (n_samples, p)
    permutations, seed : int
        sva's ``B = 20`` and ``num.sv(seed = )``: R's ``set.seed`` before the permutations,
        each gene's residuals ``sample()``d in turn (the constant genes left out here too),
        so that the permutations, their shares and the count are R's.
    genes : int, optional
        sva's ``vfilter``: the genes of rank below it in variance (sva's ``<``).
    {device}

    Returns
    -------
    int

    Notes
    -----
    sva's other method, ``"leek"``, is not offered: it counts eigenvalues above thresholds
    that start at 0, and the design's directions have eigenvalues that are exactly 0, so its
    count follows the signs of rounding errors (on the 1,000-probe bladder cohort of the
    tests R's gives 0, and 21 with those eigenvalues zeroed).
    """
    problem = _Problem.build(cohort, design, None, genes, device, "num_sv")
    return problem.estimate(permutations, seed, genes)


@shared_docs
def fsva(
    cohort: CohortLike,
    design: str | pd.DataFrame | np.ndarray,
    surrogates: xr.Dataset,
    new: CohortLike,
    *,
    method: str = "fast",
    device: str = "auto",
) -> tuple[xr.Dataset, xr.Dataset]:
    """Remove the surrogate variables' effects from a cohort and from new samples, as sva's
    ``fsva`` (frozen SVA): for predicting in new samples without refitting.

    Each gene's effects of the surrogate variables are fitted with ``design`` on ``cohort``
    and removed. For ``new``, the surrogate variables come from the weighted genes (the
    probabilities of ``"irw"``): with ``method="fast"`` each is projected on the cohort's
    decomposition and standardised over the new samples; with ``"exact"`` each new sample is
    decomposed with the cohort, on its own (so a single new sample can be corrected, and the
    others do not change its values). The same effects are then removed.

    Parameters
    ----------
    {cohort}
        The cohort :func:`sva` ran on (sva's ``dbdat``), on the same scale.
    design : str, DataFrame or array of shape (n_samples, p)
        The design given to :func:`sva`.
    surrogates : xarray.Dataset
        :func:`sva`'s result, of its ``"irw"`` method (sva's fsva needs ``pprob.b``).
    new : path, xarray.Dataset or AnnData
        New samples with the cohort's genes (sva's ``newdat``); at least two for ``"fast"``
        (their surrogate variables are standardised over them).
    method : {{"fast", "exact"}}, default "fast"
        sva's ``method``. ``"exact"`` solves an eigenproblem of the cohort's samples and one
        new sample for each new sample.
    {device}

    Returns
    -------
    corrected : xarray.Dataset
        The cohort with ``expression`` corrected (float64, lazy; sva's ``db``).
    new_corrected : xarray.Dataset
        The new samples with ``expression`` corrected (lazy; sva's ``new``) and their
        surrogate variables ``sv1`` … ``svK`` (sva's ``newsv``).

    Raises
    ------
    CohortexError
        For a result of another method than ``"irw"``, samples or genes that do not match,
        fewer than two new samples for ``"fast"``, or missing values.

    Notes
    -----
    Agreement with sva 3.46's ``fsva`` (tests/de/test_sva.py), both methods: 1e-8.
    """
    names = list(surrogates.attrs.get("surrogates", []))
    if surrogates.attrs.get("method") != "irw" or "pprob_b" not in surrogates:
        raise CohortexError(
            "fsva() needs the result of sva(method='irw') (its pprob_b weighs the genes)."
        )
    if not names:
        raise CohortexError("fsva() needs at least one surrogate variable; the result has none.")
    _check_choice("method", method, ("fast", "exact"))
    on = resolve_device(device)
    train, fresh = as_cohort_matrix(cohort), as_cohort_matrix(new)
    n_train, n_new = train.matrix.shape[0], fresh.matrix.shape[0]
    if n_new < 2 and method == "fast":
        raise CohortexError(
            "fsva(method='fast') standardises over the new samples: it needs at least two "
            "(method='exact' corrects one)."
        )
    order = pd.Index(train.sample_ids.astype(str)).get_indexer(
        np.asarray(surrogates["sample"].values).astype(str)
    )
    if order.size != n_train or (order < 0).any():
        raise CohortexError("The surrogate variables' samples are not the cohort's samples.")
    vectors = np.empty((n_train, len(names)))
    vectors[order] = np.column_stack([surrogates[name].values for name in names])
    gene_ids = train.gene_ids.astype(str)
    in_new = pd.Index(fresh.gene_ids.astype(str)).get_indexer(gene_ids)
    if (in_new < 0).any():
        missing = int((in_new < 0).sum())
        raise CohortexError(f"The new samples lack {missing} of the cohort's genes.")
    used = pd.Index(gene_ids).get_indexer(np.asarray(surrogates["gene"].values).astype(str))
    if (used < 0).any():
        raise CohortexError("The surrogate variables' genes are not all the cohort's genes.")
    weights = np.zeros(gene_ids.size)
    weights[used] = (1.0 - surrogates["pprob_b"].values) * surrogates["pprob_gam"].values
    model, _, _ = design_matrix(design, train.dataset, n_train)
    x = dask_on(train.matrix, on, MEMORY_CHUNKS).astype(np.float64)
    y = dask_on(fresh.matrix, on, MEMORY_CHUNKS).astype(np.float64)
    if not (in_new == np.arange(in_new.size)).all():
        y = y[:, in_new]
    fitted = least_squares(x, np.column_stack([model, vectors]), None)
    if fitted.coefficient_sd is not None:
        raise CohortexError("fsva() needs finite values (sva's matrix products do not skip them).")
    xp = namespace(x._meta)
    effects = xp.asarray(fitted.beta)[model.shape[1] :]  # sva's gammahat: (k, genes)
    y = y.rechunk({1: x.chunks[1]})
    w = xp.asarray(weights)
    mean = x.mean(axis=0)
    centred = (x - mean) * w
    if method == "fast":
        gram, cross = dask.compute(centred @ centred.T, (centred * w) @ y.T)
    else:  # each new sample's products with the cohort and itself, about the cohort's means
        new_centred = (y - mean) * w
        gram, cross, own = dask.compute(
            centred @ centred.T, centred @ new_centred.T, (new_centred * new_centred).sum(axis=1)
        )
    gram, cross = np.asarray(to_host(gram), np.float64), np.asarray(to_host(cross), np.float64)
    if not np.isfinite(cross).all():
        raise CohortexError("fsva() needs finite values; the new samples hold missing ones.")
    if method == "fast":
        new_vectors = _fast_new_vectors(gram, cross, vectors)
    else:
        new_vectors = _exact_new_vectors(gram, cross, np.asarray(to_host(own)), vectors)
    meta = namespace(x._meta).empty((0, 0), dtype=np.float64)
    whole_rows = {0: rows_per_task(x.shape[1]), 1: -1}
    x, y = x.rechunk(whole_rows), y.rechunk(whole_rows)
    corrected = da.map_blocks(
        _without_effects,
        x,
        da.from_array(vectors, chunks=(x.chunks[0], -1)),
        effects,
        dtype=np.float64,
        meta=meta,
    )
    adjusted = da.map_blocks(
        _without_effects,
        y,
        da.from_array(new_vectors.T, chunks=(y.chunks[0], -1)),
        effects,
        dtype=np.float64,
        meta=meta,
    )
    return (
        _with_expression(train, corrected, train.gene_ids),
        _with_expression(fresh, adjusted, train.gene_ids).assign(
            {name: ("sample", new_vectors[j]) for j, name in enumerate(names)}
        ),
    )


def _fast_new_vectors(gram: np.ndarray, cross: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """fsva "fast": the new samples projected on the cohort's leading right singular vectors
    (``gram`` its weighted centred Gram matrix, ``cross`` its products with the new samples
    weighted twice), signed as the surrogate variables and standardised over the new samples:
    shape (k, n_new)."""
    n_train, k = vectors.shape
    values, directions = scipy.linalg.eigh(gram, subset_by_index=[n_train - k, n_train - 1])
    values, directions = values[::-1], directions[:, ::-1]
    projected = (directions.T @ cross) / values[:, None]
    projected *= _signs(directions, vectors)[:, None]
    centred_new = projected - projected.mean(axis=1, keepdims=True)
    return centred_new / projected.std(axis=1, ddof=1, keepdims=True) / np.sqrt(cross.shape[1])


def _exact_new_vectors(
    gram: np.ndarray, cross: np.ndarray, own: np.ndarray, vectors: np.ndarray
) -> np.ndarray:
    """fsva "exact": for each new sample, the leading right singular vectors of the weighted
    genes of the cohort and it, centred over those samples — the eigenvectors of their
    centred Gram matrix — signed as the surrogate variables over the cohort; the new sample's
    entries: shape (k, n_new). ``gram``, ``cross`` and ``own`` are the weighted products
    about the cohort's means (centring is the same about any means)."""
    n_train, k = vectors.shape
    n = n_train + 1
    products = np.empty((n, n))
    products[:n_train, :n_train] = gram
    centring = np.eye(n) - 1.0 / n
    out = np.empty((k, cross.shape[1]))
    bar = progress_bar(cross.shape[1], "fsva: each new sample", unit="sample", delay=2.0)
    try:
        for i in range(cross.shape[1]):
            products[:n_train, n_train] = products[n_train, :n_train] = cross[:, i]
            products[n_train, n_train] = own[i]
            centred = centring @ products @ centring
            _, directions = scipy.linalg.eigh(centred, subset_by_index=[n - k, n - 1])
            directions = directions[:, ::-1]
            out[:, i] = directions[n_train] * _signs(directions[:n_train], vectors)
            bar.update(1)
    finally:
        bar.close()
    return out


def _signs(directions: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """The sign of each direction's correlation with its surrogate variable (sva's ``sgn``)."""
    return np.sign(
        [np.corrcoef(directions[:, j], vectors[:, j])[0, 1] for j in range(vectors.shape[1])]
    )


def _without_effects(block: Any, rows: Any, effects: Any) -> Any:
    """``Y − S Γ``: each sample's surrogate variables times each gene's effects removed."""
    return block - namespace(block).asarray(rows) @ effects


def _with_expression(data: Any, values: Any, gene_ids: np.ndarray) -> xr.Dataset:
    """A cohort's Dataset (or a plain one) with ``expression`` replaced on ``gene_ids``."""
    if data.dataset is None:
        return xr.Dataset(
            {"expression": (("sample", "gene"), values)},
            coords={"sample": data.sample_ids, "gene": gene_ids},
            attrs={"scale": data.scale},
        )
    ds = data.dataset.sel(gene=gene_ids) if "gene" in data.dataset.coords else data.dataset
    return ds.assign(expression=(("sample", "gene"), values))


@shared_docs
def wsva(
    cohort: CohortLike,
    design: str | pd.DataFrame | np.ndarray,
    *,
    n_sv: int = 1,
    weight_by_sd: bool = False,
    device: str = "auto",
) -> xr.Dataset:
    """Weighted surrogate variable analysis, as limma's ``wsva``.

    The surrogate variables are the genes' projections on the leading left singular vectors
    of the residual effects of ``design`` (its residuals in an orthonormal basis), scaled to
    a mean square of 1 over the samples. With ``weight_by_sd`` each gene's residual effects
    are weighted by their standard deviation, one surrogate variable at a time, each added to
    the design before the next (limma's ``weight.by.sd = TRUE``).

    Parameters
    ----------
    {cohort}
        Log-expression without missing values (a counts cohort as ``log(x + 1)``); constant
        genes are left out, which changes nothing (their residuals are 0).
    design : str, DataFrame or array of shape (n_samples, p)
    n_sv : int, default 1
        Cut to the residual degrees of freedom, as limma.
    weight_by_sd : bool, default False
    {device}

    Returns
    -------
    xarray.Dataset
        ``sv1`` … ``svK`` on ``sample`` (limma's ``SV1`` …; each oriented with its largest
        entry positive, limma's sign is its SVD's). Attrs as :func:`sva`'s (``method`` is
        ``"wsva"``, or ``"wsva weighted by sd"``).

    Notes
    -----
    Agreement with limma 3.54 (tests/de/test_sva.py): 1e-8, up to sign. One pass over the
    data (two a variable with ``weight_by_sd``) forms the residuals' and the values' Gram
    matrices (samples × samples).
    """
    problem = _Problem.build(cohort, design, None, None, device, "wsva")
    p, n = problem.model.shape[1], problem.n_samples
    n_sv = min(max(int(n_sv), 1), n - p)
    columns: list[np.ndarray] = []
    if not weight_by_sd:
        residual, values_gram = problem.grams(problem.basis(problem.model), None)
        values, vectors = _leading_pairs(residual, n_sv)
        columns = list((vectors.T @ values_gram) / np.sqrt(values)[:, None])
    else:
        for _ in range(n_sv):
            basis = problem.basis(problem.model, *columns)
            rss = problem.residual_sums([basis])[0]
            sd = np.sqrt(rss / (n - basis.shape[1]))  # limma's sqrt(rowMeans(Effects^2))
            residual, values_gram = problem.grams(basis, sd)
            values, vectors = _leading_pairs(residual, 1)
            columns.append((values_gram @ vectors[:, 0]) / np.sqrt(values[0]))
    surrogates = np.column_stack(columns)
    surrogates = surrogates / np.sqrt(np.mean(surrogates * surrogates, axis=0))
    method = "wsva weighted by sd" if weight_by_sd else "wsva"
    return problem.result(surrogates, {}, method, "", 0)


class _Problem:
    """The genes used, the designs and the block iteration of one sva call."""

    def __init__(
        self,
        x: Any,
        model: np.ndarray,
        null: np.ndarray,
        gene_ids: np.ndarray,
        sample_ids: np.ndarray,
        variance: np.ndarray,
        transform: str,
        n_constant: int,
        who: str,
        mean: np.ndarray | None = None,
    ) -> None:
        self.x = x  # dask (samples × genes used), rechunked to blocks of genes × all samples
        self.model, self.null = model, null
        self.gene_ids, self.sample_ids = gene_ids, sample_ids
        self.variance = variance
        self.mean = mean
        self._gene_grams: tuple[np.ndarray, np.ndarray] | None = None
        self.transform, self.n_constant, self.who = transform, n_constant, who
        self.n_samples, self.n_genes = x.shape
        self.constant_before = np.zeros(self.n_genes + 1, dtype=np.int64)
        self.xp = namespace(x._meta)
        self.edges = np.cumsum((0, *x.chunks[1]))

    @classmethod
    def build(
        cls,
        cohort: CohortLike,
        design: Any,
        null: Any,
        genes: int | None,
        device: str,
        who: str,
    ) -> _Problem:
        data = as_cohort_matrix(cohort)
        on = resolve_device(device)
        n, n_total = data.matrix.shape
        model, _, _ = design_matrix(design, data.dataset, n)
        if np.linalg.matrix_rank(model) < model.shape[1]:
            raise CohortexError(
                f"The design of {who}() is not of full rank: some of its columns are "
                "combinations of the others."
            )
        null_model = model[:, :1] if null is None else design_matrix(null, data.dataset, n)[0]
        if model.shape[1] >= n:
            raise CohortexError(f"{who}() needs more samples than design columns.")
        x = dask_on(data.matrix, on, MEMORY_CHUNKS).astype(np.float64)
        transform, smallest = "", None
        if data.scale == "counts":  # svaseq
            transform, smallest = "log(x + 1)", x.min()
            x = x.map_blocks(_log_plus_one, dtype=np.float64)

        def non_negative(lowest: Any) -> None:
            if lowest is not None and float(to_host(lowest)) < 0.0:
                raise CohortexError(f"{who}() of counts needs counts ≥ 0 (svaseq's log(x + 1)).")

        mean, variance, _ = finite_gene_moments(
            x,
            who,
            "sva's matrix products cannot skip them; filter those genes first",
            smallest,
            first=non_negative,
        )
        keep = variance > 0.0
        n_constant = int(n_total - keep.sum())
        if genes is not None:
            if not _SMALLEST_FILTER <= genes <= int(keep.sum()):
                raise CohortexError(
                    f"The 'genes' parameter of {who}() must be between {_SMALLEST_FILTER} "
                    f"and the {int(keep.sum())} non-constant genes; got {genes}."
                )
            keep &= stats.rankdata(-variance) <= genes  # sva's rank(-rowVars) <= vfilter
        width = max(_BLOCK_GENES, _BLOCK_BYTES // (8 * n) // _BLOCK_GENES * _BLOCK_GENES)
        if not keep.all():
            x = take_genes(x, keep)
        x = x.rechunk({0: -1, 1: width})
        problem = cls(
            x,
            model,
            null_model,
            data.gene_ids[keep],
            data.sample_ids,
            variance[keep],
            transform,
            n_constant,
            who,
            mean[keep],
        )
        # the constant genes before each gene kept and after the last: R's num.sv permutes
        # them (sva's vfilter, where given, has left them out)
        kept_at = np.flatnonzero(keep)
        problem.constant_before = (
            np.diff(np.concatenate([[-1], kept_at, [n_total]])) - 1
            if genes is None
            else np.zeros(kept_at.size + 1, dtype=np.int64)
        )
        # the smaller Gram matrix is checked here; the sample side's where it must be formed
        if problem.gene_side:
            _check_gram_memory(problem.n_genes, who, "genes")
        else:
            _check_gram_memory(n, who)
        return problem

    # the passes over the blocks -----------------------------------------------------------

    def slice(self, values: np.ndarray, start: int) -> Any:
        """The values of a block's genes, on the block's device."""
        width = self.x.chunks[1][int(np.searchsorted(self.edges, start))]
        return self.xp.asarray(values[start : start + width])

    def blocks(self) -> Iterator[tuple[int, Any]]:
        """Each block of genes (every sample) with its first gene, read one after another."""
        blocks = self.x.to_delayed().ravel()
        bar = progress_bar(len(blocks), f"{self.who}: a pass over the genes", delay=2.0)
        try:
            for start, block in zip(self.edges[:-1], blocks, strict=True):
                (values,) = dask.compute(block)
                yield int(start), values
                bar.update(1)
        finally:
            bar.close()

    def sum_over_blocks(self, function: Callable[[Any, int], Any]) -> np.ndarray:
        """``Σ function(block, first gene)`` over the blocks, on the host."""
        total = None
        for start, values in self.blocks():
            part = function(values, start)
            total = part if total is None else total + part
        return np.asarray(to_host(total), dtype=np.float64)

    def concatenate_over_blocks(self, function: Callable[[Any, int], Any]) -> np.ndarray:
        """``function(block, first gene)`` of shape (k, block genes), joined over the genes."""
        parts = [np.asarray(to_host(function(v, s)), np.float64) for s, v in self.blocks()]
        return np.concatenate(parts, axis=1)

    # the gene side: where fewer genes than samples are used, genes × genes Gram matrices
    # take the samples × samples ones' place (the same leading vectors, from X'X instead of XX')

    @property
    def gene_side(self) -> bool:
        """Whether the leading vectors come from genes × genes Gram matrices."""
        if _GENE_SIDE is not None:
            return _GENE_SIDE
        return self.n_genes < self.n_samples

    def _sample_blocks(self) -> Iterator[tuple[int, Any]]:
        """Each block of samples (every gene used), centred by the genes' means."""
        rows = max(1, _BLOCK_BYTES // (8 * self.n_genes))
        by_samples = self.x.rechunk({0: rows, 1: -1})
        blocks = by_samples.to_delayed()[:, 0]
        starts = np.cumsum((0, *by_samples.chunks[0]))
        mean = self.xp.asarray(self.mean)
        bar = progress_bar(len(blocks), f"{self.who}: a pass over the samples", delay=2.0)
        try:
            for start, block in zip(starts[:-1], blocks, strict=True):
                (values,) = dask.compute(block)
                yield int(start), values - mean
                bar.update(1)
        finally:
            bar.close()

    def gene_grams(self) -> tuple[np.ndarray, np.ndarray]:
        """``Xcᵀ Xc`` (genes × genes) of the centred genes and ``Qᵀ Xc`` (design × genes) for the
        design's orthonormal basis ``Q``, from one pass over the samples (kept)."""
        if self._gene_grams is None:
            xp = self.xp
            basis = self.basis(self.model)
            gram = xp.zeros((self.n_genes, self.n_genes))
            projected = xp.zeros((self.model.shape[1], self.n_genes))
            for start, centred in self._sample_blocks():
                gram += centred.T @ centred
                projected += basis[start : start + centred.shape[0]].T @ centred
            self._gene_grams = (
                np.asarray(to_host(gram), dtype=np.float64),
                np.asarray(to_host(projected), dtype=np.float64),
            )
        return self._gene_grams

    def centred_times(self, vectors: np.ndarray) -> np.ndarray:
        """``Xc @ vectors`` of the centred genes: (samples × k), one pass over the samples."""
        v = self.xp.asarray(vectors)
        parts = [np.asarray(to_host(c @ v), np.float64) for _, c in self._sample_blocks()]
        return np.concatenate(parts, axis=0)

    def residual_vectors(self, k: int) -> np.ndarray:
        """The k leading left singular vectors of the design's residuals (samples × k)."""
        if not (self.gene_side and self._intercept_in(self.model)):
            _check_gram_memory(self.n_samples, self.who)
            basis = self.basis(self.model)
            return _leading_vectors(
                self.sum_over_blocks(lambda b, s: _sva.residual_gram(b, basis)), k
            )
        gram, projected = self.gene_grams()
        values, vectors = _top_pairs(gram - projected.T @ projected, k)
        basis = np.asarray(to_host(self.basis(self.model)))
        residual = self.centred_times(vectors) - basis @ (projected @ vectors)
        return residual / np.sqrt(np.maximum(values, np.finfo(float).tiny))

    def centred_vectors(self, weights: np.ndarray, k: int) -> np.ndarray:
        """The k leading left singular vectors of the centred genes, each weighted."""
        if not self.gene_side:
            return _leading_vectors(self.centred_gram(weights), k)
        gram, _ = self.gene_grams()
        values, vectors = _top_pairs(weights[:, None] * gram * weights[None, :], k)
        scores = self.centred_times(weights[:, None] * vectors)
        return scores / np.sqrt(np.maximum(values, np.finfo(float).tiny))

    def _intercept_in(self, model: np.ndarray) -> bool:
        """Whether the design spans the constant (then its residuals are the centred genes')."""
        q, _ = np.linalg.qr(model)
        one = np.ones(model.shape[0])
        return bool(np.linalg.norm(one - q @ (q.T @ one)) < 1e-8 * np.sqrt(model.shape[0]))

    def basis(self, *columns: np.ndarray) -> Any:
        """Orthonormal columns spanning the design ``[columns]`` on the blocks' device."""
        q, _ = np.linalg.qr(np.column_stack(columns))
        return self.xp.asarray(q)

    # the number of surrogate variables ---------------------------------------------------

    def check_count(self, n_sv: int) -> None:
        most = self.n_samples - self.model.shape[1]
        if not 0 <= n_sv <= most:
            raise CohortexError(
                f"The 'n_sv' parameter of {self.who}() must be between 0 and {most} (the "
                f"residual degrees of freedom); got {n_sv}."
            )

    def estimate(self, permutations: int, seed: int, genes: int | None) -> int:
        # sva estimates on the genes ranked below vfilter (<, where sva itself keeps <=)
        weights = np.ones(self.n_genes)
        if genes is not None:
            weights[stats.rankdata(-self.variance) >= genes] = 0.0
        _, p_values, _ = self.buja_eyuboglu(weights, permutations, seed)
        return int(np.sum(p_values <= 0.1))

    def buja_eyuboglu(
        self, weights: np.ndarray, permutations: int, seed: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """num.sv's "be": the residual variance shares and their permutation p-values.

        Returns
        -------
        shares : ndarray of shape (ndf,)
        p_values : ndarray of shape (ndf,)
            Monotone (a running maximum), as sva's.
        null : ndarray of shape (permutations, ndf)
            The shares after each permutation (num.sv's ``dstat0``).
        """
        _check_gram_memory(self.n_samples, self.who)  # permutations: no gene side
        basis = self.basis(self.model)
        used = int(np.sum(weights > 0))
        ndf = min(used, self.n_samples) - self.model.shape[1]
        if ndf < 1:
            raise CohortexError(f"{self.who}() needs more genes than design columns.")
        gram = self.sum_over_blocks(
            lambda b, s: _sva.residual_gram(b, basis, self.slice(weights, s))
        )
        shares = _shares(gram, ndf)
        null = np.empty((permutations, ndf))
        rng = RRandom(seed)  # num.sv(seed = seed): set.seed, then the permutations
        for i in range(permutations):
            null[i] = _shares(self.permuted_gram(basis, weights, rng), ndf)
        p_values = np.maximum.accumulate(np.mean(null >= shares, axis=0))
        return shares, p_values, null

    def permuted_gram(self, basis: Any, weights: np.ndarray, rng: RRandom) -> np.ndarray:
        """The Gram matrix of the residuals after one permutation of every gene's: R's
        ``apply(res, 1, sample)``, each gene of weight > 0 in order drawing ``sample.int(n)``
        from ``rng`` (the blocks come one after another, in gene order)."""
        n = self.n_samples

        def block_gram(block: Any, start: int) -> Any:
            width = block.shape[1]
            used = weights[start : start + width] > 0
            # R permutes the constant genes cohortex leaves out too: their draws are skipped
            draws = self.constant_before[start : start + width] + used
            orders = rng.permutations(int(draws.sum()), n)[np.cumsum(draws)[used] - 1]
            # argsort(keys) is each gene's permutation: keys[order[j]] = j
            keys = np.zeros((n, width), dtype=np.int64)  # genes left out weigh 0 anyway
            keys[orders.T, np.flatnonzero(used)[None, :]] = np.arange(n)[:, None]
            return _sva.permuted_residual_gram(block, basis, keys, self.slice(weights, start))

        gram = self.sum_over_blocks(block_gram)
        rng.permutations(int(self.constant_before[-1]), n)  # constant genes after the last
        return gram

    def centred_gram(self, weights: np.ndarray) -> np.ndarray:
        """The Gram matrix of the genes centred and weighted."""
        _check_gram_memory(self.n_samples, self.who)
        return self.sum_over_blocks(lambda b, s: _sva.centred_gram(b, self.slice(weights, s)))

    def grams(self, basis: Any, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The Gram matrices of the residuals and of the values, each gene weighted."""
        _check_gram_memory(self.n_samples, self.who)

        def both(block: Any, start: int) -> Any:
            w = None if weights is None else self.slice(weights, start)
            return self.xp.stack([_sva.residual_gram(block, basis, w), _sva.gram(block, w)])

        summed = self.sum_over_blocks(both)
        return summed[0], summed[1]

    def residual_sums(self, bases: list[Any]) -> np.ndarray:
        """Each gene's residual sums of squares under each design: (len(bases), genes)."""
        return self.concatenate_over_blocks(lambda b, s: _sva.residual_sums(b, bases))

    # the methods ------------------------------------------------------------------------

    def irw(self, n_sv: int, iterations: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        vectors = self.residual_vectors(n_sv)
        p, p0, n = self.model.shape[1], self.null.shape[1], self.n_samples
        null_basis = self.basis(self.null)
        null_rss = None
        for _ in range(iterations):
            bases = [self.basis(self.model, vectors), self.basis(self.null, vectors)]
            if null_rss is None:
                bases.append(null_basis)
            rss = self.residual_sums(bases)
            if null_rss is None:
                null_rss = rss[2]
            p_b = _f_pvalues(rss[0], rss[1], p + n_sv, p0 + n_sv, n)
            p_gam = _f_pvalues(rss[1], null_rss, p0 + n_sv, p0, n)
            pprob_b = 1.0 - edge_lfdr(p_b)
            pprob_gam = 1.0 - edge_lfdr(p_gam)
            weights = pprob_gam * (1.0 - pprob_b)
            vectors = self.centred_vectors(weights, n_sv)
        return vectors, {"pprob_gam": pprob_gam, "pprob_b": pprob_b}

    def two_step(self, n_sv: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        _check_gram_memory(self.n_samples, self.who)  # all n - 1 vectors: the samples' side
        basis = self.basis(self.model)
        gram = self.sum_over_blocks(lambda b, s: _sva.residual_gram(b, basis))
        residual_vectors = _leading_vectors(gram, n_sv)
        n = self.n_samples
        one = np.ones(n)
        bases = [self.basis(one, residual_vectors[:, i]) for i in range(n_sv)]
        bases.append(self.basis(one))
        rss = self.residual_sums(bases)
        used = np.column_stack(
            [edge_lfdr(_f_pvalues(rss[i], rss[-1], 2, 1, n)) < 0.1 for i in range(n_sv)]
        )
        # sva drops a vector's column where it selects fewer genes than samples, but goes on
        # pairing the remaining columns with the first residual vectors: so must we
        for i in range(used.shape[1] - 1, -1, -1):
            if used[:, i].sum() < n:
                used = np.delete(used, i, axis=1)
                if used.shape[1] == 0:
                    break
        if used.shape[1] == 0:
            warnings.warn(
                "sva(method='two-step') kept no surrogate variable: none is associated with "
                "as many genes as there are samples.",
                CohortexWarning,
                stacklevel=3,
            )
            return np.zeros((n, 0)), {"pprob_gam": np.zeros(self.n_genes)}
        vectors = np.empty((n, used.shape[1]))
        for i in range(used.shape[1]):
            candidates = _leading_vectors(self.centred_gram(used[:, i].astype(np.float64)), n - 1)
            best, vectors[:, i] = 0.0, 0.0
            for j in range(n - 1):
                r = abs(np.corrcoef(candidates[:, j], residual_vectors[:, i])[0, 1])
                if r > best:
                    best, vectors[:, i] = r, candidates[:, j]
        selected = np.asarray(used.any(axis=1), dtype=np.float64)
        return vectors, {"pprob_gam": selected}

    def result(
        self,
        vectors: np.ndarray,
        probabilities: dict[str, np.ndarray],
        method: str,
        estimated: str,
        iterations: int,
    ) -> xr.Dataset:
        k = vectors.shape[1]
        names = [f"sv{i + 1}" for i in range(k)]
        data: dict[str, Any] = {}
        for i, name in enumerate(names):
            vector = vectors[:, i]
            data[name] = ("sample", vector * np.sign(vector[np.argmax(np.abs(vector))]))
        for name, values in probabilities.items():
            data[name] = ("gene", np.asarray(values, dtype=np.float64))
        return xr.Dataset(
            data,
            coords={"sample": self.sample_ids, "gene": self.gene_ids},
            attrs={
                "n_sv": k,
                "surrogates": names,
                "method": method,
                "n_sv_method": estimated,
                "iterations": iterations if method == "irw" else 0,
                "transform": self.transform,
                "n_genes": self.n_genes,
                "n_genes_constant": self.n_constant,
            },
        )


def _check_gram_memory(size: int, who: str, side: str = "samples") -> None:
    """Refuse at once a Gram matrix (and eigh's copies) larger than the machine's memory."""
    needed = _GRAM_COPIES * 8.0 * size * size
    total = physical_memory()
    if total and needed > total:
        advice = (
            "Run it on a subset of the samples"
            if side == "samples"
            else "Take fewer genes ('genes', sva's vfilter)"
        )
        raise CohortexError(
            f"{who}() forms {size} × {size} Gram matrices of the {side}: about "
            f"{needed / 2**30:.0f} GB with the eigen-decomposition's copies, more than this "
            f"machine's {total / 2**30:.0f} GB. {advice}."
        )


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise CohortexError(
            f"The {name!r} parameter of sva() must be one of {', '.join(allowed)}; got {value!r}."
        )


def _control_weights(controls: Any, gene_ids: np.ndarray) -> np.ndarray:
    values = np.asarray(controls)
    if values.dtype.kind in "fiub" and values.shape == gene_ids.shape:
        weights = values.astype(np.float64)
        if not np.all((weights >= 0.0) & (weights <= 1.0)):
            raise CohortexError("sva()'s 'controls' probabilities must lie between 0 and 1.")
        return weights
    named = {str(g) for g in np.ravel(values)}
    weights = np.array([str(g) in named for g in gene_ids], dtype=np.float64)
    if not weights.any():
        raise CohortexError(
            "None of sva()'s 'controls' is a gene of the cohort (give gene ids, or one "
            f"probability for each of the {gene_ids.size} genes used)."
        )
    return weights


def _log_plus_one(block: Any) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):  # negative counts are refused later
        return namespace(block).log(block + 1.0)  # svaseq's log(dat + 1), not log1p


def _leading_vectors(gram: np.ndarray, k: int) -> np.ndarray:
    """The eigenvectors of the k largest eigenvalues, largest first: (n, k)."""
    n = gram.shape[0]
    if k == 0:
        return np.zeros((n, 0))
    _, vectors = scipy.linalg.eigh(gram, subset_by_index=[n - k, n - 1])
    return np.ascontiguousarray(vectors[:, ::-1])


def _leading_pairs(gram: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenvalues (largest first) and their eigenvectors: (k,), (n, k)."""
    n = gram.shape[0]
    values, vectors = scipy.linalg.eigh(gram, subset_by_index=[n - k, n - 1])
    return values[::-1], np.ascontiguousarray(vectors[:, ::-1])


def _top_pairs(gram: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenvalues and their vectors (largest first): LAPACK for small matrices,
    Lanczos to machine precision for large ones."""
    m = gram.shape[0]
    if m <= _DENSE_EIGEN or 2 * k >= m:
        return _leading_pairs(gram, k)
    values, vectors = eigsh(gram, k=k, which="LA", v0=np.ones(m), tol=0.0)
    order = np.argsort(values)[::-1]
    return values[order], np.ascontiguousarray(vectors[:, order])


def _shares(gram: np.ndarray, ndf: int) -> np.ndarray:
    """Each of the ndf largest singular values' share of their sum of squares."""
    values = scipy.linalg.eigvalsh(gram)[::-1][:ndf]
    return values / values.sum()


def _f_pvalues(
    rss_full: np.ndarray, rss_null: np.ndarray, df_full: int, df_null: int, n: int
) -> np.ndarray:
    """sva's ``f.pvalue``: ``1 − pf(F)``, as sva computes it (not the upper tail)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        f = ((rss_null - rss_full) / (df_full - df_null)) / (rss_full / (n - df_full))
    # rounding can make a statistic near 0 negative: R's pf gives it 0, so p = 1
    return 1.0 - special.fdtr(df_full - df_null, n - df_full, np.maximum(f, 0.0))
