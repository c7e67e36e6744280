"""GSVA's per-sample gene-set scores: ``gsva`` (GSVA, ssGSEA, combined z-scores, PLAGE)."""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from .._backend import dask_on, namespace, resolve_device, take_genes, to_host
from .._cohort import CohortLike, as_cohort_matrix, shared_docs
from .._constants import GSVA_KERNELS, GSVA_METHODS
from .._errors import CohortexError
from .._progress import dask_progress
from ..de._comparison import MEMORY_CHUNKS
from ..de._least_squares import rows_per_task
from ..stats import _gsva
from ..stats._moments import group_moments
from ._collection import GeneSets

__all__ = ["GSVA_KERNELS", "GSVA_METHODS", "gsva"]


# genes per block of the kernel CDFs (every sample of them at once)
_DENSITY_GENES = 256
_DEVICE_BLOCKS_IN_FLIGHT = 2
# padded set members × samples per band of the walks: ~32 MB per float64 temporary
_WALK_VALUES = 1 << 22
# samples per band of the compiled walks (no padded temporaries)
_COMPILED_WALK_ROWS = 64
# samples per band of the z-scores and PLAGE (its Gram matrices are GEMMs over the band)
_LINEAR_ROWS = 256
# values of the Gram matrices of the sets PLAGE holds at once (float64: 256 MB)
_GRAM_VALUES = 1 << 25
# PLAGE holds all the standardised values (float64: 512 MB) for sets wider than the cohort
_WHOLE_Z_VALUES = 1 << 26
# GSVA's .filterFeatures: a gene whose sd is below this is constant
_CONSTANT_SD = 1e-10


@shared_docs
def gsva(
    cohort: CohortLike,
    gene_sets: GeneSets,
    *,
    method: str = "gsva",
    kcdf: str = "auto",
    tau: float | None = None,
    max_diff: bool = True,
    abs_ranking: bool = False,
    min_size: int = 1,
    max_size: int | None = None,
    ssgsea_norm: bool = True,
    device: str = "auto",
) -> xr.Dataset:
    """Score every gene set in every sample, as GSVA's ``gsva()`` (GSVA 1.46).

    The scores form a new cohort whose "genes" are the sets: test them between groups with
    :func:`cohortex.de.fit` or :func:`cohortex.de.test`, as limma is used on GSVA's matrix.

    * ``"gsva"`` (Hänzelmann et al. 2013): each gene's values are placed in the gene's own
      distribution across the samples (a kernel estimate of its CDF, as log-odds); within each
      sample the genes are ordered by that, and a set's score is the largest positive plus the
      largest negative deviation of a Kolmogorov–Smirnov-like random walk down the order.
    * ``"ssgsea"`` (Barbie et al. 2009): the genes ordered by their values within the sample;
      the sum of the walk weighted by the ranks to the power ``tau``, normalised by the range
      of all scores.
    * ``"zscore"`` (Lee et al. 2008): the sum of the set's standardised values over √k.
    * ``"plage"`` (Tomfohr et al. 2005): the first right singular vector of the set's
      standardised values. Its sign is arbitrary in an SVD (GSVA's follows LAPACK); here it is
      chosen so that the score rises with the set's mean expression.

    Parameters
    ----------
    {cohort}
    gene_sets : GeneSets
        Members named by the cohort's gene ids (:meth:`GeneSets.translate` maps symbols).
    method : {"gsva", "ssgsea", "zscore", "plage"}, default "gsva"
    kcdf : {"auto", "gaussian", "poisson", "none"}, default "auto"
        GSVA's kernel for the genes' CDFs: ``"gaussian"`` for continuous values (log-scale
        microarray or RNA-seq), ``"poisson"`` for counts, ``"none"`` the empirical CDF.
        ``"auto"``: Poisson for a cohort of scale ``"counts"``, Gaussian otherwise (GSVA 1.50's
        ``kcdf = "auto"`` looks at the values for the same choice). Only for ``"gsva"``.
    tau : float, optional
        The walk's exponent: default 1 for ``"gsva"``, 0.25 for ``"ssgsea"`` (GSVA's).
    max_diff : bool, default True
        GSVA's ``mx.diff``: the sum of the largest positive and negative deviations (scores
        roughly normal around 0); False takes the larger of the two (bimodal scores).
    abs_ranking : bool, default False
        GSVA's ``abs.ranking`` (with ``max_diff``): their difference, so that a set whose
        genes move apart in both directions scores high.
    min_size, max_size : int, optional
        Sets with fewer or more genes in the cohort (after the filters below) are left out.
    ssgsea_norm : bool, default True
        Divide ssGSEA's scores by their range over all sets and samples (GSVA's
        ``ssgsea.norm``; the scores then depend on which sets were scored together).
    {device}

    Returns
    -------
    xarray.Dataset
        ``expression(sample, gene)``: the scores, float64, on ``gene`` = the set names;
        ``set_size(gene)`` (genes of the set used) and ``description(gene)``; the cohort's
        sample variables. Attrs: ``method``, ``kcdf`` (the kernel used, or "" where none is),
        ``tau`` (gsva and ssgsea), ``n_genes`` (genes used), ``n_genes_missing`` (genes left
        out for missing values), ``n_genes_constant`` (left out as constant; ssGSEA keeps
        them, as GSVA), and ``scale = "log2"`` so that DE of the scores reports differences
        of means, as limma's coefficients on GSVA scores are.

    Raises
    ------
    CohortexError
        For unknown options, ``kcdf="poisson"`` with another method than ``"gsva"``, ±inf
        values, or when no set keeps a gene (or fewer than two genes remain).

    Notes
    -----
    Genes with a missing value are left out, as GSVA leaves them out for every method but
    ssGSEA (which cannot rank them). Agreement with GSVA 1.46 (tests/genesets/test_gsva.py):
    1e-12 for every method on ties and constant genes; PLAGE up to the sign. Each kernel CDF
    sums over all samples, so ``"gsva"`` costs n² per gene: a GPU's work beyond a few
    thousand samples.
    """
    method, kernel, tau = _check(method, kcdf, tau, min_size, max_size)
    data = as_cohort_matrix(cohort)
    on = resolve_device(device)
    if kernel == "auto":
        kernel = "poisson" if data.scale == "counts" else "gaussian"
    if method != "gsva":
        kernel = ""
    n_samples, n_total = data.matrix.shape
    x = dask_on(data.matrix, on, MEMORY_CHUNKS)
    with dask_progress("gsva"):
        (moments,) = dask.compute(
            group_moments(x, np.zeros(n_samples, np.int64), 1, omit_nan=False, count_infinite=True)
        )
    mean = np.asarray(to_host(moments.mean[0]), dtype=np.float64)
    sd = np.sqrt(np.asarray(to_host(moments.m2[0]), dtype=np.float64) / max(n_samples - 1, 1))
    infinite = np.asarray(to_host(moments.infinite))
    if infinite.any():
        raise CohortexError(
            f"The expression matrix holds {int(infinite.sum())} infinite values (first in gene "
            f"{data.gene_ids[int(np.flatnonzero(infinite)[0])]!r}); gsva() needs finite values."
        )
    complete = np.isfinite(mean)
    constant = complete & ~(sd >= _CONSTANT_SD)
    keep = complete & (~constant if method != "ssgsea" else True)
    if keep.sum() < 2:
        raise CohortexError(
            "gsva() needs at least two genes with complete, non-constant values; "
            f"{int(keep.sum())} of {n_total} have them."
        )
    genes = data.gene_ids[keep]
    sets = gene_sets.restrict(genes, min_size=max(1, min_size), max_size=max_size)
    if not len(sets):
        raise CohortexError(
            f"No gene set keeps between {max(1, min_size)} and {max_size or 'any number of'} "
            f"genes of the cohort's {genes.size} usable genes: are the sets named by the "
            "cohort's gene ids (GeneSets.translate maps symbols)?"
        )
    column = {str(g): i for i, g in enumerate(genes)}  # GeneSets hold names as text
    layout = _gsva.SetLayout.from_members(
        [np.array([column[g] for g in members], dtype=np.int64) for members in sets.members]
    )
    if not keep.all():
        x = take_genes(x, keep)
    # a GPU runs two blocks at a time (each holds ~10 temporaries of a tile), not one a core
    in_flight = {"num_workers": _DEVICE_BLOCKS_IN_FLIGHT} if on == "gpu" else {}
    with dask_progress("gsva"), dask.config.set(in_flight):
        scores = _scores(
            x, method, kernel, tau, max_diff, abs_ranking, layout, mean[keep], sd[keep]
        )
    if method == "ssgsea" and ssgsea_norm:
        xp = namespace(scores)
        with np.errstate(invalid="ignore", divide="ignore"):  # one score: 0/0, as GSVA's
            scores = scores / (xp.max(scores) - xp.min(scores))
    if namespace(data.matrix) is np or isinstance(data.matrix, da.Array):
        scores = to_host(scores)
    return _result(data, sets, layout, scores, method, kernel, tau, keep, constant, complete)


def _check(
    method: str, kcdf: str, tau: float | None, min_size: int, max_size: int | None
) -> tuple[str, str, float]:
    if method not in GSVA_METHODS:
        raise CohortexError(
            f"The 'method' must be one of {', '.join(GSVA_METHODS)}; got {method!r}."
        )
    kernel = str(kcdf).lower()
    if kernel not in GSVA_KERNELS:
        raise CohortexError(f"The 'kcdf' must be one of {', '.join(GSVA_KERNELS)}; got {kcdf!r}.")
    if method != "gsva" and kernel not in ("auto", "gaussian"):
        raise CohortexError(
            f"kcdf={kcdf!r} is the kernel of method='gsva'; method={method!r} uses none (GSVA "
            "refuses rnaseq = TRUE for zscore and plage)."
        )
    if tau is None:
        tau = {"gsva": 1.0, "ssgsea": 0.25}.get(method, 0.0)  # zscore and plage have none
    elif method not in ("gsva", "ssgsea") or not np.isfinite(tau) or tau < 0:
        raise CohortexError(
            f"'tau' is a finite exponent >= 0 of method 'gsva' or 'ssgsea'; got {tau!r} for "
            f"{method!r}."
        )
    if int(min_size) != min_size or (max_size is not None and int(max_size) != max_size):
        raise CohortexError("'min_size' and 'max_size' are whole numbers of genes.")
    if max_size is not None and max_size < max(1, min_size):
        raise CohortexError(f"'max_size' ({max_size}) is below 'min_size' ({min_size}).")
    return method, kernel, float(tau)


def _scores(
    x: da.Array,
    method: str,
    kernel: str,
    tau: float,
    max_diff: bool,
    abs_ranking: bool,
    layout: _gsva.SetLayout,
    mean: np.ndarray,
    sd: np.ndarray,
) -> Any:
    """The (n_samples × n_sets) scores, computed; on the chunks' device."""
    n_genes = x.shape[1]
    on_device = namespace(x._meta) is not np
    padded = sum(members.size for _, members, _ in layout.buckets)
    band = int(max(1, min(rows_per_task(n_genes), _WALK_VALUES // max(padded, 1))))
    if method == "gsva":
        table = _gsva.gaussian_table()
        blocks = x.rechunk({0: -1, 1: _DENSITY_GENES})
        log_odds = blocks.map_blocks(
            _log_odds_block,
            kernel=kernel,
            bandwidth=sd / 4.0,
            table=table,
            dtype=np.float64,
            meta=_meta(x),
        )
        rows = log_odds.rechunk({0: band if on_device else _COMPILED_WALK_ROWS, 1: -1})
        options: dict[str, Any] = {"tau": tau, "max_diff": max_diff, "abs_ranking": abs_ranking}
        return _per_band(rows, _gsva_band, layout, csr=layout.csr(), **options)
    if method == "ssgsea":
        return _per_band(x.rechunk({0: band, 1: -1}), _ssgsea_band, layout, alpha=tau)
    rows = x.rechunk({0: _LINEAR_ROWS, 1: -1})
    z = rows.map_blocks(_standardise, mean=mean, sd=sd, dtype=np.float64, meta=_meta(x))
    if method == "zscore":
        return _per_band(z, _gsva.zscore_sums, layout)
    # PLAGE: a set at least as wide as the cohort is long from its samples' Gram matrix (all
    # of z held, when it fits); the others from their genes' Gram matrices, each group of
    # sets summed band by band (one pass per group, one partial sum held), their leading
    # eigenvectors, then one pass projecting them
    n_samples = x.shape[0]
    by_samples = layout.sizes >= n_samples
    if n_samples * n_genes > _WHOLE_Z_VALUES:
        by_samples[:] = False
    groups = layout.subset(~by_samples).split(_GRAM_VALUES)
    vectors = []
    for group in groups:
        grams: list[Any] | None = None
        for block in z.to_delayed()[:, 0]:
            (part,) = dask.compute(dask.delayed(_gsva.plage_grams, pure=True)(block, group))
            grams = part if grams is None else [a + b for a, b in zip(grams, part, strict=True)]
        assert grams is not None
        vectors += _gsva.plage_vectors([to_host(g) for g in grams], group)
    buckets = sum((g.buckets for g in groups), ())
    scores = _per_band(
        z,
        _gsva.plage_scores,
        _gsva.SetLayout(layout.n_sets, layout.sizes, buckets),
        vectors=vectors,
    )
    if by_samples.any():
        (whole,) = dask.compute(z.rechunk({0: -1}))
        xp = namespace(scores)
        for set_ids, values in _gsva.plage_sample_vectors(whole, layout.subset(by_samples)):
            scores[:, xp.asarray(set_ids)] = xp.asarray(values.T)
    return scores


def _per_band(rows: da.Array, function: Any, layout: _gsva.SetLayout, **options: Any) -> Any:
    parts = [
        dask.delayed(function, pure=True)(b, layout, **options) for b in rows.to_delayed()[:, 0]
    ]
    (parts,) = dask.compute(parts)
    return namespace(parts[0]).concatenate(parts, axis=0)


def _meta(x: da.Array) -> Any:
    return namespace(x._meta).empty((0, 0), dtype=np.float64)


def _log_odds_block(
    block: Any, kernel: str, bandwidth: np.ndarray, table: np.ndarray, block_info: Any = None
) -> Any:
    start, stop = block_info[0]["array-location"][1]
    xp = namespace(block)
    if xp is np and kernel == "gaussian":
        from ..stats._cpu.gsva import gaussian_log_odds  # numba: imported on the CPU path only

        return gaussian_log_odds(
            block,
            bandwidth[start:stop],
            table,
            _gsva.GAUSSIAN_TABLE_MAX,
            _gsva.GAUSSIAN_TABLE_STEPS,
        )
    values = block.astype(xp.float64)
    return _gsva.kernel_log_odds(
        values, values, kernel, xp.asarray(bandwidth[start:stop]), xp.asarray(table)
    )


def _gsva_band(
    block: Any,
    layout: _gsva.SetLayout,
    csr: tuple[np.ndarray, np.ndarray],
    tau: float,
    max_diff: bool,
    abs_ranking: bool,
) -> Any:
    if namespace(block) is not np:
        return _gsva.gsva_walks(block, layout, tau, max_diff, abs_ranking)
    from ..stats._cpu.gsva import gsva_walks  # numba: imported on the CPU path only

    return gsva_walks(block, *csr, tau, max_diff, abs_ranking)


def _ssgsea_band(block: Any, layout: _gsva.SetLayout, alpha: float) -> Any:
    return _gsva.ssgsea_walks(block, layout, alpha)


def _standardise(block: Any, mean: np.ndarray, sd: np.ndarray) -> Any:
    xp = namespace(block)
    return (block.astype(xp.float64) - xp.asarray(mean)) / xp.asarray(sd)


def _result(
    data: Any,
    sets: GeneSets,
    layout: _gsva.SetLayout,
    scores: Any,
    method: str,
    kernel: str,
    tau: float,
    keep: np.ndarray,
    constant: np.ndarray,
    complete: np.ndarray,
) -> xr.Dataset:
    ds = xr.Dataset(
        {
            "expression": (("sample", "gene"), scores),
            "set_size": ("gene", layout.sizes),
            "description": ("gene", np.array(sets.descriptions, dtype=object)),
        },
        coords={"sample": data.sample_ids, "gene": np.array(sets.names, dtype=object)},
    )
    for name in data.sample_variables():
        ds[name] = ("sample", np.asarray(data.dataset[name].values))
    ds.attrs.update(
        scale="log2",
        method=method,
        kcdf=kernel,
        n_genes=int(keep.sum()),
        n_genes_missing=int((~complete).sum()),
        n_genes_constant=int(constant.sum()) if method != "ssgsea" else 0,
    )
    if method in ("gsva", "ssgsea"):
        ds.attrs["tau"] = tau
    return ds
