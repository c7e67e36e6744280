"""Normalisation as a lazy derived layer: a new Dataset whose ``expression`` is a Dask graph
over the original one. Nothing is computed or written until the result is used; library sizes,
size factors and reference quantiles are parts of that graph, computed once per use. edgeR's
normalisation factors (:func:`norm_factors`) are the exception: TMM picks its reference sample
from the data, so they are computed when asked for (three passes over the counts; two when
the library sizes are known).
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.array.utils import meta_from_array

from ._backend import as_device_dask, namespace, to_host
from ._cohort import CohortLike, as_cohort_dataset
from ._constants import NORMALIZATIONS
from ._errors import CohortexError
from .stats._norm_factors import rle_ratios, tmm_factors, upper_quartiles
from .stats._ranks import average_ranks

__all__ = [
    "FACTOR_METHODS",
    "METHODS",
    "factors_from_sums",
    "norm_factors",
    "normalize",
    "resolve_factors",
    "size_factors",
]

METHODS = NORMALIZATIONS
FACTOR_METHODS = ("tmm", "upperquartile", "rle", "none")
_NEEDS_LINEAR = (
    "log_cpm",
    "log_cpm_offset",
    "log1p",
    "log2",
    "median_ratio",
    "rpkm",
    "log_rpkm",
    "tpm",
)
_BY_LENGTH = ("rpkm", "log_rpkm", "tpm")
_WITH_FACTORS = ("log_cpm", "log_cpm_offset", "rpkm", "log_rpkm")
_NEW_SCALE = {
    "log_cpm": "log2",
    "log_cpm_offset": "log2",
    "log1p": "log1p",
    "log2": "log2",
    "median_ratio": "counts",
    "rpkm": "linear",
    "log_rpkm": "log2",
    "tpm": "linear",
}
_DEFAULT_PRIOR = {"log_cpm": 2.0, "log_cpm_offset": 1.0, "log2": 1.0, "log_rpkm": 2.0}


def normalize(
    cohort: CohortLike,
    method: str = "log_cpm",
    *,
    prior_count: float | None = None,
    norm_factors: str | Any | None = None,
    gene_length: Any = None,
) -> xr.Dataset:
    """Normalise a cohort lazily.

    Parameters
    ----------
    cohort : path or xarray.Dataset
        A cohort store or an opened cohort (``expression(sample, gene)`` and a ``scale``).
    method : str, default "log_cpm"
        * ``"log_cpm"``: edgeR's ``cpm(y, log = TRUE)``. With library sizes ``L`` (each
          sample's total, NaN ignored, times its normalisation factor) and
          ``c = prior_count · L / mean(L)``: ``log2((x + c) / (L + 2c) · 10⁶)``. A zero count
          is therefore below 0 in a deep library (−2.3 at 10⁷ reads), as in edgeR. Scale
          becomes ``log2``.
        * ``"log_cpm_offset"``: the simpler ``log2(x / L · 10⁶ + prior_count)``, a zero count
          being exactly ``log2(prior_count)``. Scale becomes ``log2``.
        * ``"log1p"``: ``ln(1 + x)`` (scanpy's ``log1p``). Scale becomes ``log1p``.
        * ``"log2"``: ``log2(x + prior_count)``. Scale becomes ``log2``.
        * ``"median_ratio"``: DESeq2's size factors (Anders & Huber 2010): with
          ``g_j = mean_i log x_ij`` over samples for each gene j, the size factor of sample i
          is ``exp(median_j (log x_ij − g_j))`` over the genes with every count positive and
          ``x_ij > 0``; values are divided by it. Scale stays ``counts``.
        * ``"rpkm"``: edgeR's ``rpkm(y, gene.length)``: counts per million (library sizes
          times ``norm_factors``) per kilobase of the gene, ``x / L · 10⁶ / (length / 10³)``.
          Scale becomes ``linear``.
        * ``"log_rpkm"``: edgeR's ``rpkm(y, gene.length, log = TRUE)``: ``log_cpm``'s value
          minus ``log2(length / 10³)``. Scale becomes ``log2``.
        * ``"tpm"``: transcripts per million, ``(x / length) / Σ_genes (x / length) · 10⁶``
          in each sample (no factors: the per-kilobase rates are the library). Scale becomes
          ``linear``.
        * ``"quantile"``: quantile normalisation (Bolstad et al. 2003) as limma's
          ``normalizeQuantiles``: the reference distribution is the mean, over samples, of each
          sample's sorted values; each value is replaced by the reference quantile at its rank,
          tied values by the linear interpolation of the reference at their average rank (so
          ties stay tied, as in limma). Any scale; it is kept. NaN values are refused.
        The log and ratio methods need raw data (scale ``counts`` or ``linear``).
    prior_count : float, optional
        Offset of ``log_cpm`` and ``log_rpkm`` (default 2, as edgeR), ``log_cpm_offset`` and
        ``log2`` (default 1).
    norm_factors : {"tmm", "upperquartile", "rle", "none"} or array of shape (n_samples,), optional
        For ``log_cpm``, ``log_cpm_offset``, ``rpkm`` and ``log_rpkm``: edgeR's normalisation
        factors multiplying the library sizes, computed by :func:`norm_factors` now, or
        given. Default: none.
    gene_length : array of shape (n_genes,), optional
        For ``rpkm``, ``log_rpkm`` and ``tpm``: each gene's length in bases (its exons'), all
        > 0. Default: the cohort's ``length``: a gene variable, as ``cohortex import`` of a
        featureCounts table stores it, or tximport's per-sample lengths ``length(sample,
        gene)``, as ``cohortex import --counts-from-abundance no`` of quantifications stores
        them (then each value is divided by its own sample's length).

    Returns
    -------
    xarray.Dataset
        A copy with the new lazy ``expression`` (float64 for float64 input, else float32);
        attrs ``scale`` updated, ``normalization`` naming the method, and for log-CPM the
        ``prior_count`` and ``norm_factors`` used.
    """
    if method not in METHODS:
        raise CohortexError(
            f"The 'method' parameter of normalize() must be one of "
            f"{', '.join(repr(m) for m in METHODS)}; got {method!r}."
        )
    ds = _open(cohort)
    scale = ds.attrs.get("scale", "log2")
    if method in _NEEDS_LINEAR and scale not in ("counts", "linear"):
        raise CohortexError(
            f"normalize(method={method!r}) needs raw values (scale 'counts' or 'linear'); this "
            f"cohort's scale is {scale!r}."
        )
    if norm_factors is not None and method not in _WITH_FACTORS:
        raise CohortexError(
            f"'norm_factors' applies to {', '.join(_WITH_FACTORS)}, not to {method!r}."
        )
    if gene_length is not None and method not in _BY_LENGTH:
        raise CohortexError(f"'gene_length' applies to {', '.join(_BY_LENGTH)}.")
    x = _samples_by_genes(ds)
    kilobases = _kilobases(ds, gene_length, x) if method in _BY_LENGTH else None
    prior = _DEFAULT_PRIOR.get(method, 0.0) if prior_count is None else float(prior_count)
    if not (np.isfinite(prior) and prior >= 0):
        raise CohortexError(f"'prior_count' must be a number >= 0; got {prior_count!r}.")
    attrs: dict[str, Any] = {}
    if method == "log2":
        y = da.log2(x + prior)
    elif method == "log1p":
        y = da.log1p(x)
    elif method == "tpm":
        assert kilobases is not None
        rate = x / kilobases
        y = rate / da.nansum(rate, axis=1, dtype=np.float64)[:, None] * 1e6
    elif method in _WITH_FACTORS:
        library = da.nansum(x, axis=1, dtype=np.float64)
        factors = resolve_factors(ds, norm_factors)
        if factors is not None:
            factors_dask = da.from_array(factors, chunks=library.chunks)
            if namespace(x) is not np:  # on the chunks' device
                factors_dask = as_device_dask(factors_dask)
            library = library * factors_dask
            attrs["norm_factors"] = norm_factors if isinstance(norm_factors, str) else "given"
        if method in ("log_cpm", "log_rpkm"):
            scaled_prior = prior * library / library.mean()
            y = da.log2((x + scaled_prior[:, None]) / (library + 2.0 * scaled_prior)[:, None] * 1e6)
            attrs["prior_count"] = prior
        elif method == "log_cpm_offset":
            y = da.log2(x / library[:, None] * 1e6 + prior)
            attrs["prior_count"] = prior
        else:  # rpkm
            y = x / library[:, None] * 1e6
        if method in ("rpkm", "log_rpkm"):  # per kilobase
            assert kilobases is not None
            y = y / kilobases if method == "rpkm" else y - da.log2(kilobases)
    elif method == "median_ratio":
        y = x / size_factors(x)[:, None].astype(x.dtype)
    else:
        y = _quantile(x)
    out = ds.copy()
    dtype = np.float64 if x.dtype == np.float64 else np.float32
    out["expression"] = (("sample", "gene"), y.astype(dtype))
    out.attrs = {
        **ds.attrs,
        **attrs,
        "scale": _NEW_SCALE.get(method, scale),
        "normalization": method,
    }
    return out


def norm_factors(
    cohort: CohortLike,
    method: str = "tmm",
    *,
    logratio_trim: float = 0.3,
    sum_trim: float = 0.05,
    weighting: bool = True,
) -> xr.DataArray:
    """edgeR's normalisation factors (``calcNormFactors``) of a counts cohort.

    The factors multiply the library sizes (``lib.size · norm.factors`` is edgeR's effective
    library size) and have a geometric mean of 1. Genes with no count in any sample are left
    out first, as edgeR does.

    Parameters
    ----------
    cohort : path or xarray.Dataset
        Raw counts (scale ``counts`` or ``linear``), no NaN.
    method : {"tmm", "upperquartile", "rle", "none"}, default "tmm"
        * ``"tmm"``: trimmed mean of M-values (Robinson & Oshlack 2010) against a reference
          sample: the one whose upper quartile over library size is closest to the mean of
          those, or, when their median is 0 (sparse data), the one with the largest sum of
          square roots (see :mod:`cohortex.stats._norm_factors`).
        * ``"upperquartile"``: each sample's 75% quantile over its library size (Bullard et
          al. 2010). Refused when a quantile is 0 (edgeR would return NA).
        * ``"rle"``: relative log expression (DESeq's median ratio to the genes' geometric
          means, over genes with every count positive) over library size.
        * ``"none"``: all 1.
    logratio_trim, sum_trim : float, default 0.3 and 0.05
        TMM's trimmed fractions of M and A values on each side (edgeR's ``logratioTrim`` and
        ``sumTrim``).
    weighting : bool, default True
        TMM's precision weights (edgeR's ``doWeighting``).

    Returns
    -------
    xarray.DataArray of shape (n_samples,)
        Named ``norm_factor`` on ``sample``; attrs ``method`` and, for TMM, ``reference`` (the
        reference sample's id).
    """
    _check_factor_options(method, logratio_trim, sum_trim)
    ds = _open(cohort)
    if ds.attrs.get("scale", "log2") not in ("counts", "linear"):
        raise CohortexError(
            "norm_factors() needs raw counts (scale 'counts' or 'linear'); this cohort's "
            f"scale is {ds.attrs.get('scale', 'log2')!r}."
        )
    x = _samples_by_genes(ds)
    library, expressed, nan_count = dask.compute(
        da.sum(x, axis=1, dtype=np.float64), da.any(x > 0, axis=0), da.sum(da.isnan(x))
    )
    if int(to_host(nan_count)):
        raise CohortexError(
            f"norm_factors() needs complete counts; the matrix holds {int(to_host(nan_count))} "
            "NaN values (edgeR refuses NA counts too)."
        )
    return factors_from_sums(
        ds,
        np.asarray(to_host(library)),
        np.asarray(to_host(expressed)),
        method,
        logratio_trim=logratio_trim,
        sum_trim=sum_trim,
        weighting=weighting,
    )


def _check_factor_options(method: str, logratio_trim: float, sum_trim: float) -> None:
    if method not in FACTOR_METHODS:
        raise CohortexError(
            f"The 'method' parameter of norm_factors() must be one of "
            f"{', '.join(repr(m) for m in FACTOR_METHODS)}; got {method!r}."
        )
    for name, value in (("logratio_trim", logratio_trim), ("sum_trim", sum_trim)):
        if not 0 <= value < 0.5:
            raise CohortexError(f"'{name}' must be in [0, 0.5); got {value!r}.")


def factors_from_sums(
    ds: xr.Dataset,
    library: np.ndarray,
    expressed: np.ndarray,
    method: str = "tmm",
    *,
    logratio_trim: float = 0.3,
    sum_trim: float = 0.05,
    weighting: bool = True,
) -> xr.DataArray:
    """:func:`norm_factors` of a counts cohort whose library sizes (n_samples,) and expressed
    genes (n_genes,) bool are summed already (voom sums them in its own first pass): the
    passes after the first."""
    _check_factor_options(method, logratio_trim, sum_trim)
    x = _samples_by_genes(ds)
    samples = ds["sample"].values if "sample" in ds.coords else np.arange(x.shape[0])
    if (library <= 0).any():
        empty = samples[np.flatnonzero(library <= 0)[:5]]
        raise CohortexError(
            "Normalisation factors need samples with counts; library size 0 in: "
            + ", ".join(map(str, empty))
            + "."
        )
    attrs: dict[str, Any] = {"method": method}
    genes = np.flatnonzero(expressed)
    if method == "none" or genes.size == 0 or x.shape[0] == 1:
        factors = np.ones(x.shape[0])
    else:
        # ~4 MB of float32 per block: the quantiles and the trims copy each block in float64
        rows = x[:, genes].rechunk({0: max(16, 1_000_000 // max(genes.size, 1)), 1: -1})
        if method in ("tmm", "upperquartile"):
            quartiles = _per_sample(rows, upper_quartiles) / library
        if method == "upperquartile":
            if (quartiles == 0).any():
                raise CohortexError(
                    f"The upper quartile is 0 in {int((quartiles == 0).sum())} samples (most "
                    "genes have no count there): upper-quartile factors are undefined; use TMM."
                )
            factors = quartiles
        elif method == "rle":
            logs = da.map_blocks(_log, rows, dtype=np.float64)
            log_geomeans = logs.mean(axis=0)
            factors = _per_sample(rows, rle_ratios, log_geomeans) / library
        else:
            if np.median(quartiles) < 1e-20:  # sparse: the largest sum of square roots
                root_sums = da.sum(da.sqrt(x.astype(np.float64)), axis=1).compute()
                reference = int(np.argmax(np.asarray(to_host(root_sums))))
            else:
                reference = int(np.argmin(np.abs(quartiles - np.mean(quartiles))))
            ref = rows[reference].compute()
            # (samples, 1): map_blocks aligns a 1-D operand with the genes axis
            library_rows = da.from_array(library[:, None], chunks=(rows.chunks[0], 1))
            factors = np.asarray(
                to_host(
                    da.map_blocks(
                        _tmm_block,
                        rows,
                        library_rows,
                        ref,
                        float(library[reference]),
                        logratio_trim,
                        sum_trim,
                        weighting,
                        drop_axis=1,
                        dtype=np.float64,
                        meta=meta_from_array(x, ndim=1, dtype=np.float64),
                    ).compute()
                )
            )
            attrs["reference"] = str(samples[reference])
    factors = factors / np.exp(np.mean(np.log(factors)))
    return xr.DataArray(
        factors, dims="sample", coords={"sample": samples}, name="norm_factor", attrs=attrs
    )


def _open(cohort: CohortLike) -> xr.Dataset:
    ds = as_cohort_dataset(cohort)
    if "expression" not in ds:
        raise CohortexError("The Dataset given as 'cohort' has no 'expression' variable.")
    return ds


def _kilobases(ds: xr.Dataset, gene_length: Any, x: da.Array) -> da.Array:
    """The lengths in kilobases, as Dask on the device of ``x``, to divide it by: of each gene
    (1, n_genes) from ``gene_length`` or the gene variable ``length``, or of each sample and
    gene (n_samples, n_genes) from the variable ``length(sample, gene)``."""
    if gene_length is None and "length" in ds and set(ds["length"].dims) == {"sample", "gene"}:
        per_sample = ds["length"].transpose("sample", "gene").data
        tiles = da.asarray(per_sample).astype(np.float64).rechunk(x.chunks)
        tiles = tiles.map_blocks(_checked_lengths, dtype=np.float64) / 1e3
        return tiles if namespace(x) is np else as_device_dask(tiles)
    if gene_length is None:
        if "length" not in ds or ds["length"].dims != ("gene",):
            raise CohortexError(
                "rpkm, log_rpkm and tpm need each gene's length: pass gene_length= or store a "
                "gene variable 'length' (cohortex import of a featureCounts table does)."
            )
        gene_length = ds["length"].values
    lengths = np.asarray(getattr(gene_length, "values", gene_length), dtype=np.float64)
    if lengths.shape != (ds.sizes["gene"],) or not np.all(np.isfinite(lengths) & (lengths > 0)):
        raise CohortexError(
            f"'gene_length' must be {ds.sizes['gene']} finite lengths > 0 (one per gene)."
        )
    return _per_gene(lengths / 1e3, x)[None, :]


def _checked_lengths(tile: np.ndarray) -> np.ndarray:
    """A tile of per-sample lengths, refused unless every one is finite and > 0."""
    tile = np.asarray(to_host(tile))
    if not np.all(np.isfinite(tile) & (tile > 0)):
        raise CohortexError(
            "The cohort's lengths length(sample, gene) must be finite and > 0; they hold a "
            "missing, infinite or non-positive value."
        )
    return tile


def _per_gene(values: np.ndarray, like: da.Array) -> da.Array:
    """A host vector over genes as Dask, in the gene chunks and on the device of ``like``."""
    column = da.from_array(values, chunks=(like.chunks[1],))
    return column if namespace(like) is np else as_device_dask(column)


def _samples_by_genes(ds: xr.Dataset) -> da.Array:
    x = ds["expression"].transpose("sample", "gene").data
    if not isinstance(x, da.Array):
        x = da.from_array(x, chunks=(1024, -1), asarray=False)
    return x


def resolve_factors(
    ds: xr.Dataset,
    given: Any,
    library: np.ndarray | None = None,
    expressed: np.ndarray | None = None,
) -> np.ndarray | None:
    """Normalisation factors (n_samples,): by method name, computed now (from the library
    sizes and the expressed genes when they are summed already: :func:`factors_from_sums`),
    or as given (one positive finite number per sample); None for None."""
    if given is None:
        return None
    if isinstance(given, str):
        if library is None or expressed is None:
            return np.asarray(norm_factors(ds, given).values)
        return np.asarray(factors_from_sums(ds, library, expressed, given).values)
    factors = np.asarray(to_host(getattr(given, "values", given)), dtype=np.float64)
    n_samples = ds.sizes["sample"]
    if factors.shape != (n_samples,) or not (np.isfinite(factors).all() and (factors > 0).all()):
        raise CohortexError(
            f"'norm_factors' must be a method name or {n_samples} positive finite numbers; got "
            f"shape {factors.shape}."
        )
    return factors


def _per_sample(rows: da.Array, function: Any, *args: Any) -> np.ndarray:
    """``function(block, *args)`` → one value per sample, over row blocks, on the host."""
    values = da.map_blocks(
        function,
        rows,
        *args,
        drop_axis=1,
        dtype=np.float64,
        meta=meta_from_array(rows, ndim=1, dtype=np.float64),
    )
    return np.asarray(to_host(values.compute()))


def _tmm_block(
    block: Any,
    library: Any,
    reference: Any,
    reference_library: float,
    logratio_trim: float,
    sum_trim: float,
    weighting: bool,
) -> Any:
    xp = namespace(block)
    return tmm_factors(
        block,
        xp.asarray(library)[:, 0],
        xp.asarray(reference),
        reference_library,
        logratio_trim=logratio_trim,
        sum_trim=sum_trim,
        weighting=weighting,
    )


def size_factors(
    x: da.Array, *, positive_counts: bool = False, norm_matrix: da.Array | None = None
) -> da.Array:
    """DESeq2's median-of-ratios size factors, shape (n_samples,).

    ``x`` is samples × genes. With ``positive_counts`` (DESeq2's ``type = "poscounts"``) a
    gene's geometric mean takes its positive counts over all samples (``exp(Σ log x⁺ / n)``),
    so genes with zeros count too, and the factors are scaled to a geometric mean of 1.
    With ``norm_matrix`` (samples × genes, DESeq2's ``normMatrix``) the ratios are of
    ``x / norm_matrix`` (``estimateNormFactors``); poscounts' geometric means stay of ``x``,
    as DESeq2 computes them.
    """
    logs = da.map_blocks(_log, x, dtype=np.float64)
    if positive_counts:
        finite = da.map_blocks(_finite_or_zero, logs, dtype=np.float64)
        log_geomeans = finite.sum(axis=0) / x.shape[0]
        all_zero = da.all(da.isneginf(logs), axis=0)
        log_geomeans = da.where(all_zero, -np.inf, log_geomeans)
    if norm_matrix is not None:
        logs = da.map_blocks(_log, x / norm_matrix, dtype=np.float64)
    if not positive_counts:
        log_geomeans = logs.mean(axis=0)  # -inf for genes with a zero count
    rows = logs.rechunk({1: -1})  # each sample's genes in one block, for the median
    factors = rows.map_blocks(
        _block_size_factors,
        log_geomeans,
        drop_axis=1,
        dtype=np.float64,
        meta=meta_from_array(x, ndim=1, dtype=np.float64),  # on the chunks' device
    )
    if positive_counts:
        factors = factors / da.exp(da.log(factors).mean())
    return factors


def _finite_or_zero(block: Any) -> Any:
    xp = namespace(block)
    return xp.where(xp.isfinite(block), block, 0.0)


def _log(block: Any) -> Any:
    """Natural log in float64; zero counts give -inf (they drop out of the medians)."""
    xp = namespace(block)
    with np.errstate(divide="ignore"):
        return xp.log(block.astype(xp.float64))


def _block_size_factors(logs: Any, log_geomeans: Any) -> Any:
    xp = namespace(logs)
    usable = xp.isfinite(log_geomeans)[None, :] & xp.isfinite(logs)
    with np.errstate(invalid="ignore"):
        ratios = xp.where(usable, logs - log_geomeans[None, :], xp.nan)
    # a sample without a usable gene (every gene has a zero somewhere) has no factor: NaN,
    # without nanmedian's all-NaN warning
    some = xp.any(usable, axis=1)
    medians = xp.nanmedian(xp.where(some[:, None], ratios, 0.0), axis=1)
    return xp.where(some, xp.exp(medians), xp.nan)


def _quantile(x: da.Array) -> da.Array:
    rows = x.rechunk({1: -1})  # each sample's genes in one block, to sort
    reference = (
        rows.map_blocks(
            _sorted_sum,
            drop_axis=0,
            new_axis=0,
            chunks=((1,) * rows.numblocks[0], (x.shape[1],)),
            dtype=np.float64,
        ).sum(axis=0)
        / x.shape[0]
    )
    return rows.map_blocks(_to_reference, reference, dtype=np.float64).rechunk(x.chunks)


def _sorted_sum(block: Any) -> Any:
    xp = namespace(block)
    if bool(xp.isnan(block).any()):  # runs inside a task, on one block
        raise CohortexError(
            "normalize(method='quantile') does not accept NaN values; impute or drop them first."
        )
    return xp.sort(block.astype(xp.float64), axis=1).sum(axis=0, keepdims=True)


# Values per slab of samples ranked at once: each slab's float64 temporaries stay ~16 MB
_QUANTILE_SLAB_VALUES = 1 << 21


def _to_reference(block: Any, reference: Any) -> Any:
    """Each value → the reference at its average rank (interpolated between neighbours).

    Slabs of samples are ranked together (one batched sort each, not a loop over samples).
    """
    xp = namespace(block)
    n = block.shape[1]
    out = xp.empty(block.shape, dtype=xp.float64)
    positions = xp.arange(n, dtype=xp.float64)
    rows = max(1, _QUANTILE_SLAB_VALUES // max(n, 1))
    for start in range(0, block.shape[0], rows):
        ranks, _, _ = average_ranks(block[start : start + rows].astype(xp.float64))
        # 0-based average rank of each value's tie block
        out[start : start + rows] = xp.interp(ranks - 1.0, positions, reference)
    return out
