"""GSVA's per-sample gene-set scores, as GSVA 1.46 computes them (arrays in, arrays out).

Two stages, as in Hänzelmann et al. (2013) and GSVA's C code:

* **kernel densities** (:func:`kernel_log_odds`), one gene across all samples: each value's
  place in its gene's distribution, ``F(y) = mean_i K(y − x_i)``, as log-odds
  ``−log((1 − F) / F)``. The Gaussian kernel has bandwidth ``sd / 4`` and is read from GSVA's
  table of Φ at steps of 0.001 (index truncated, no interpolation: the table *is* GSVA's
  kernel); the Poisson kernel is ``ppois(y, x + 0.5)``; ``"none"`` is the empirical CDF.
* **per-sample walks** (:func:`gsva_walks`, :func:`ssgsea_walks`), one sample across all
  genes: genes ordered (GSVA: by the log-odds, their rank scores ``|n − p + 1 − n/2|``;
  ssGSEA: by the values' ranks), and each set's random walk summarised — GSVA's largest
  positive and negative deviations, ssGSEA's sum of the walk (Sergushichev's closed form, as
  GSVA's ``.fastRndWalk``).

The walks never visit the genes outside a set: GSVA's running sum only falls between the set's
genes, so its extremes are just before and just after each of them, which needs the sorted
positions of the set's genes alone (O(k log k) per set and sample, not O(n)). Sets are padded
to a common width within buckets of similar size (:class:`SetLayout`), so that a bucket is one
gather, one sort and one cumulative sum over (samples × sets × width) on any device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import namespace, special, to_host

__all__ = [
    "GAUSSIAN_TABLE_MAX",
    "GAUSSIAN_TABLE_STEPS",
    "SetLayout",
    "gaussian_table",
    "gsva_walks",
    "kernel_log_odds",
    "plage_grams",
    "plage_sample_vectors",
    "plage_scores",
    "plage_vectors",
    "ssgsea_walks",
    "truncated_average_ranks",
    "zscore_sums",
]

# GSVA's kernel_estimation.c: Φ tabulated on [0, 10] in 10,000 steps; beyond ±10 it is 0 or 1
GAUSSIAN_TABLE_MAX = 10.0
GAUSSIAN_TABLE_STEPS = 10_000
# values (test samples × density samples × genes) per temporary of the kernel sums: 16 MB on
# the host, 256 MB on a device (fewer, larger launches)
_TILE_ELEMENTS = 1 << 21
_DEVICE_TILE_ELEMENTS = 1 << 25


def gaussian_table() -> np.ndarray:
    """GSVA's table of the standard normal CDF: Φ(10 i / 10,000), i = 0 … 10,000."""
    from scipy.special import ndtr

    steps = np.arange(GAUSSIAN_TABLE_STEPS + 1, dtype=np.float64)
    return np.asarray(ndtr(GAUSSIAN_TABLE_MAX * steps / float(GAUSSIAN_TABLE_STEPS)))


def kernel_log_odds(
    density: Any, test: Any, kernel: str, bandwidth: Any = None, table: Any = None
) -> Any:
    """Each test value's log-odds in its gene's kernel CDF, GSVA's ``matrix_density_R``.

    Parameters
    ----------
    density : array of shape (n_density, n_genes), float64
        The samples that make each gene's distribution (GSVA: all of them).
    test : array of shape (n_test, n_genes), float64
        The values placed in it.
    kernel : {"gaussian", "poisson", "none"}
    bandwidth : array of shape (n_genes,), optional
        The Gaussian kernel's: each gene's standard deviation (n − 1) over 4.
    table : array of shape (10,001,), optional
        :func:`gaussian_table` on the arrays' device, for the Gaussian kernel.

    Returns
    -------
    array of shape (n_test, n_genes), float64
        ``−log((1 − F) / F)`` (``log(F / (1 − F))`` for ``"none"``, as GSVA computes it).
    """
    xp = namespace(test)
    n_density, n_genes = density.shape
    n_test = test.shape[0]
    left_tail = xp.empty((n_test, n_genes), dtype=xp.float64)
    budget = _TILE_ELEMENTS if xp is np else _DEVICE_TILE_ELEMENTS
    rows = max(1, budget // max(1, n_density * n_genes))
    if kernel == "poisson":
        pdtr = special(xp).pdtr
        counts = xp.floor(test + 1e-7)  # R's ppois reads x as floor(x + 1e-7)
    for start in range(0, n_test, rows):
        stop = min(start + rows, n_test)
        y = test[start:stop, None, :]
        if kernel == "gaussian":
            v = (y - density[None, :, :]) / bandwidth[None, None, :]
            index = xp.minimum(
                (xp.abs(v) / GAUSSIAN_TABLE_MAX * GAUSSIAN_TABLE_STEPS), GAUSSIAN_TABLE_STEPS
            ).astype(xp.int64)
            cdf = xp.take(table, index)
            cdf = xp.where(v < 0, 1.0 - cdf, cdf)
            cdf = xp.where(v < -GAUSSIAN_TABLE_MAX, 0.0, xp.where(v > GAUSSIAN_TABLE_MAX, 1.0, cdf))
        elif kernel == "poisson":
            cdf = pdtr(counts[start:stop, None, :], density[None, :, :] + 0.5)
            cdf = xp.where(y < 0, 0.0, cdf)
        else:
            cdf = (density[None, :, :] <= y).astype(xp.float64)
        left_tail[start:stop] = cdf.sum(axis=1) / n_density
    with np.errstate(divide="ignore"):
        if kernel == "none":
            return xp.log(left_tail / (1.0 - left_tail))
        return -1.0 * xp.log((1.0 - left_tail) / left_tail)


@dataclass(frozen=True)
class SetLayout:
    """Gene sets as padded index matrices, one per bucket of sets of similar size.

    Attributes
    ----------
    n_sets : int
    sizes : ndarray of shape (n_sets,), int64
    buckets : tuple of (set_ids, members, mask)
        ``set_ids`` (n_bucket,) int64: the sets' places in the collection; ``members``
        (n_bucket, width) int64: their genes' columns, padded with column 0; ``mask``
        (n_bucket, width) float64: 1 for a member, 0 for padding. Widths are 2^j or
        3 · 2^j, so padding adds less than half to a set.
    """

    n_sets: int
    sizes: np.ndarray
    buckets: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]

    @classmethod
    def from_members(cls, members: list[np.ndarray]) -> SetLayout:
        """From each set's gene columns (unique, at least one each)."""
        sizes = np.array([len(m) for m in members], dtype=np.int64)
        # widths 1, 2, 3, 4, 6, 8, 12, 16, …: a set is padded by less than half its size
        steps = np.array([1 << j for j in range(40)] + [3 << j for j in range(39)])
        steps = np.sort(steps)
        widths = steps[np.searchsorted(steps, np.maximum(sizes, 1))]
        buckets = []
        for width in np.unique(widths):
            set_ids = np.flatnonzero(widths == width)
            index = np.zeros((set_ids.size, int(width)), dtype=np.int64)
            mask = np.zeros((set_ids.size, int(width)), dtype=np.float64)
            for row, s in enumerate(set_ids):
                index[row, : sizes[s]] = members[s]
                mask[row, : sizes[s]] = 1.0
            buckets.append((set_ids, index, mask))
        return cls(len(members), sizes, tuple(buckets))

    def csr(self) -> tuple[np.ndarray, np.ndarray]:
        """The sets' gene columns concatenated in the collection's order, and each set's
        slice of them: ``(indptr (n_sets + 1,), members (Σ sizes,))``, int64."""
        members: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * self.n_sets
        for set_ids, index, _ in self.buckets:
            for row, s in enumerate(set_ids):
                members[s] = index[row, : self.sizes[s]]
        indptr = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        return indptr, np.concatenate(members).astype(np.int64)

    def subset(self, keep: np.ndarray) -> SetLayout:
        """The sets where ``keep`` (n_sets,) is true, with their places in the collection."""
        buckets = []
        for set_ids, index, mask in self.buckets:
            rows = keep[set_ids]
            if rows.any():
                buckets.append((set_ids[rows], index[rows], mask[rows]))
        return SetLayout(self.n_sets, self.sizes, tuple(buckets))

    def split(self, max_values: int) -> list[SetLayout]:
        """The sets in groups whose padded Gram matrices (Σ width²) hold at most
        ``max_values`` values each (a set wider than that alone), buckets cut as needed."""
        groups: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[]]
        used = 0
        for set_ids, members, mask in self.buckets:
            per_set = members.shape[1] ** 2
            start = 0
            while start < set_ids.size:
                room = max(1, (max_values - used) // per_set)
                if used and used + per_set > max_values:
                    groups.append([])
                    used, room = 0, max(1, max_values // per_set)
                stop = min(set_ids.size, start + room)
                groups[-1].append((set_ids[start:stop], members[start:stop], mask[start:stop]))
                used += (stop - start) * per_set
                start = stop
        return [SetLayout(self.n_sets, self.sizes, tuple(g)) for g in groups if g]

    def on(self, xp: Any) -> list[tuple[Any, Any, Any]]:
        """The buckets' arrays on ``xp``'s device."""
        return [(xp.asarray(s), xp.asarray(i), xp.asarray(m)) for s, i, m in self.buckets]


def _positions(order: Any) -> Any:
    """Each column's place in its row's ``order`` (the inverse permutations), int64."""
    xp = namespace(order)
    n_rows, n_genes = order.shape
    positions = xp.empty_like(order)
    rows = xp.arange(n_rows, dtype=xp.int64)[:, None]
    positions[rows, order] = xp.arange(n_genes, dtype=xp.int64)[None, :]
    return positions


def gsva_walks(
    log_odds: Any,
    layout: SetLayout,
    tau: float = 1.0,
    max_diff: bool = True,
    abs_ranking: bool = False,
) -> Any:
    """GSVA's enrichment scores of some samples, GSVA's ``ks_matrix_R`` per set.

    Parameters
    ----------
    log_odds : array of shape (n_samples, n_genes), float64
        :func:`kernel_log_odds` of the samples (all genes).
    layout : SetLayout
    tau : float
        Exponent of the rank scores in the walk.
    max_diff : bool
        GSVA's ``mx.diff``: the sum of the largest positive and negative deviations (or,
        with ``abs_ranking``, their difference) instead of the larger one.
    abs_ranking : bool

    Returns
    -------
    array of shape (n_samples, n_sets), float64
    """
    xp = namespace(log_odds)
    n_samples, n_genes = log_odds.shape
    # R's order(decreasing = TRUE): ties in the genes' order
    order = xp.argsort(-log_odds, axis=1, kind="stable")
    positions = _positions(order)
    # rank score of the gene at 1-based place p: |n − p + 1 − n/2|
    rank_scores = xp.abs((n_genes - positions).astype(xp.float64) - n_genes / 2)
    scores = xp.empty((n_samples, layout.n_sets), dtype=xp.float64)
    for set_ids, members, mask in layout.on(xp):
        width = members.shape[1]
        sizes = mask.sum(axis=1)
        # padding sorts last: its position is past every gene's
        places = xp.where(mask > 0, positions[:, members], n_genes + width)
        by_place = xp.argsort(places, axis=2)
        places = xp.take_along_axis(places, by_place, axis=2).astype(xp.float64)
        weights = (xp.take(rank_scores, members.ravel(), axis=1).reshape(places.shape)) ** tau
        weights = xp.take_along_axis(weights * mask[None], by_place, axis=2)
        total = weights.sum(axis=2, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            steps = weights / total  # 0/0 where every member's score is 0, as GSVA's C
        after = xp.cumsum(steps, axis=2)
        before = xp.concatenate([xp.zeros_like(after[:, :, :1]), after[:, :, :-1]], axis=2)
        # the walk falls by 1/(n − k) at each gene outside the set passed so far (none when
        # the set holds every gene)
        outside = xp.maximum(n_genes - sizes, 1.0)[None, :, None]
        fall = (places - xp.arange(width, dtype=xp.float64)) / outside
        member = xp.arange(width)[None, None, :] < sizes[None, :, None]
        # NaN (after a 0/0 step) never beats an extreme, as in GSVA's comparisons
        high, low = after - fall, before - fall
        high = xp.where(member & ~xp.isnan(high), high, 0.0)
        low = xp.where(member & ~xp.isnan(low), low, 0.0)
        highest = xp.maximum(high.max(axis=2), 0.0)
        lowest = xp.minimum(low.min(axis=2), 0.0)
        if max_diff:
            es = highest - lowest if abs_ranking else highest + lowest
        else:
            es = xp.where(highest > xp.abs(lowest), highest, lowest)
        scores[:, set_ids] = es
    return scores


def truncated_average_ranks(x: Any) -> Any:
    """Ranks within each row, ties averaged, then truncated to integers, as GSVA 1.46's
    ssGSEA takes them (``colRanks(ties.method = "average")`` stored as integer).

    Parameters
    ----------
    x : array of shape (n_samples, n_genes), without NaN

    Returns
    -------
    array of shape (n_samples, n_genes), int64
        1 … n_genes.
    """
    xp = namespace(x)
    n_rows, n_genes = x.shape
    order = xp.argsort(x, axis=1, kind="stable")
    ordered = xp.take_along_axis(x, order, axis=1)
    new_run = xp.concatenate(
        [
            xp.ones((n_rows, 1), dtype=xp.int64),
            (ordered[:, 1:] != ordered[:, :-1]).astype(xp.int64),
        ],
        axis=1,
    )
    # runs numbered across all rows, so that one sorted search finds every run's ends
    runs = xp.cumsum(new_run.ravel())
    first = xp.searchsorted(runs, runs, side="left").reshape(n_rows, n_genes)
    after_last = xp.searchsorted(runs, runs, side="right").reshape(n_rows, n_genes)
    row_start = (xp.arange(n_rows, dtype=xp.int64) * n_genes)[:, None]
    # average of the 1-based places first+1 … after_last, truncated: (first + after_last + 1) // 2
    sorted_ranks = (first + after_last - 2 * row_start + 1) // 2
    ranks = xp.empty_like(sorted_ranks)
    rows = xp.arange(n_rows, dtype=xp.int64)[:, None]
    ranks[rows, order] = sorted_ranks
    return ranks


def ssgsea_walks(x: Any, layout: SetLayout, alpha: float = 0.25) -> Any:
    """ssGSEA's enrichment scores of some samples (Barbie et al. 2009), before normalisation.

    Parameters
    ----------
    x : array of shape (n_samples, n_genes)
        The values (all genes), without NaN.
    layout : SetLayout
    alpha : float
        Exponent of the ranks' weights (GSVA's ``tau``).

    Returns
    -------
    array of shape (n_samples, n_sets), float64
        ``Σ_S |r|^α (n − p + 1) / Σ_S |r|^α − (n(n + 1)/2 − Σ_S (n − p + 1)) / (n − k)`` with
        ``r`` the gene's rank and ``p`` its 1-based place in the descending order of the
        ranks (GSVA's ``.fastRndWalk``).
    """
    xp = namespace(x)
    n_samples, n_genes = x.shape
    ranks = truncated_average_ranks(x)
    positions = _positions(xp.argsort(-ranks, axis=1, kind="stable"))
    weights_all = xp.abs(ranks.astype(xp.float64)) ** alpha
    reach_all = (n_genes - positions).astype(xp.float64)  # n − p + 1 for the 1-based place p
    scores = xp.empty((n_samples, layout.n_sets), dtype=xp.float64)
    for set_ids, members, mask in layout.on(xp):
        shape = (n_samples, *members.shape)
        weights = xp.take(weights_all, members.ravel(), axis=1).reshape(shape) * mask[None]
        reach = xp.take(reach_all, members.ravel(), axis=1).reshape(shape) * mask[None]
        sizes = mask.sum(axis=1)[None, :]
        inside = (weights * reach).sum(axis=2) / weights.sum(axis=2)
        # (a set of every gene has no gene outside: 0, where GSVA divides 0 by 0)
        outside = (n_genes * (n_genes + 1) / 2 - reach.sum(axis=2)) / xp.maximum(
            n_genes - sizes, 1.0
        )
        scores[:, set_ids] = inside - outside
    return scores


# (sets × width × max(width, rows)) values per temporary of the z-scores and PLAGE
_SET_BLOCK_ELEMENTS = 1 << 22


def _set_blocks(z: Any, layout: SetLayout) -> Any:
    """Per bucket and group of its sets: ``(bucket, rows, set_ids, values)``; ``rows`` the
    sets' slice within the bucket, ``values`` their genes' columns of ``z`` as (sets, width,
    samples), padding zeroed; at most :data:`_SET_BLOCK_ELEMENTS` values (with a width² Gram)
    at a time."""
    xp = namespace(z)
    genes_by_rows = xp.ascontiguousarray(z.T)
    for bucket, (set_ids, members, mask) in enumerate(layout.on(xp)):
        width = members.shape[1]
        step = max(1, _SET_BLOCK_ELEMENTS // (width * max(width, z.shape[0])))
        for start in range(0, members.shape[0], step):
            rows = slice(start, start + step)
            index = members[rows]
            values = xp.take(genes_by_rows, index.ravel(), axis=0).reshape(*index.shape, -1)
            yield bucket, rows, set_ids[rows], values * mask[rows][:, :, None]


def zscore_sums(z: Any, layout: SetLayout) -> Any:
    """GSVA's combined z-scores (Lee et al. 2008): ``Σ_S z / √k`` per sample and set.

    Parameters
    ----------
    z : array of shape (n_samples, n_genes), float64
        Each gene's values standardised across all samples (mean 0, sd 1).
    layout : SetLayout

    Returns
    -------
    array of shape (n_samples, n_sets), float64
    """
    xp = namespace(z)
    scores = xp.empty((z.shape[0], layout.n_sets), dtype=xp.float64)
    sizes = xp.asarray(layout.sizes.astype(np.float64))
    for _, _, set_ids, values in _set_blocks(z, layout):
        scores[:, set_ids] = values.sum(axis=1).T / xp.sqrt(sizes[set_ids])[None, :]
    return scores


def plage_grams(z: Any, layout: SetLayout) -> list[Any]:
    """Each set's Gram matrix ``Z_Sᵀ Z_S`` over some samples, for PLAGE's SVD.

    Parameters
    ----------
    z : array of shape (n_samples, n_genes), float64
        Standardised values (as :func:`zscore_sums`).
    layout : SetLayout

    Returns
    -------
    list of arrays of shape (n_bucket, width, width)
        One per bucket, padding rows and columns 0; summed over chunks of samples they give
        the whole cohort's.
    """
    xp = namespace(z)
    parts: list[list[Any]] = [[] for _ in layout.buckets]
    for bucket, _, _, values in _set_blocks(z, layout):
        # one batched GEMM of (sets × width × samples) with its transpose
        parts[bucket].append(xp.matmul(values, values.transpose(0, 2, 1)))
    return [xp.concatenate(p, axis=0) for p in parts]


def plage_vectors(grams: list[np.ndarray], layout: SetLayout) -> list[tuple[Any, Any]]:
    """The leading eigenvector of each set's Gram matrix and its singular value.

    Parameters
    ----------
    grams : list of ndarray of shape (n_bucket, width, width)
        :func:`plage_grams` summed over all samples, on the host.
    layout : SetLayout

    Returns
    -------
    list of (ndarray of shape (n_bucket, width), ndarray of shape (n_bucket,))
        Per bucket: the genes' loadings ``u`` (padding 0), oriented so that they sum to 0 or
        more (the score then rises with the set's mean expression), and ``s = √λ``.
    """
    from scipy.linalg import eigh

    vectors = []
    for gram, (set_ids, _, mask) in zip(grams, layout.buckets, strict=True):
        u = np.zeros(mask.shape)
        s = np.zeros(mask.shape[0])
        for row, k in enumerate(layout.sizes[set_ids]):
            # the largest eigenpair alone (LAPACK's dsyevr), of the set's own k × k block
            value, vector = eigh(gram[row, :k, :k], subset_by_index=[k - 1, k - 1])
            u[row, :k] = vector[:, 0] if vector[:, 0].sum() >= 0 else -vector[:, 0]
            s[row] = np.sqrt(max(value[0], 0.0))
        vectors.append((u, s))
    return vectors


def plage_scores(z: Any, layout: SetLayout, vectors: list[tuple[Any, Any]]) -> Any:
    """PLAGE's scores (Tomfohr et al. 2005): each set's first right singular vector.

    Parameters
    ----------
    z : array of shape (n_samples, n_genes), float64
        Standardised values.
    layout : SetLayout
    vectors : list of (array, array)
        :func:`plage_vectors`.

    Returns
    -------
    array of shape (n_samples, n_sets), float64
        ``Z_S u / s``: over all samples each set's column has unit length.
    """
    xp = namespace(z)
    scores = xp.empty((z.shape[0], layout.n_sets), dtype=xp.float64)
    devices = [(xp.asarray(u), xp.asarray(s)) for u, s in vectors]
    for bucket, rows, set_ids, values in _set_blocks(z, layout):
        u, s = devices[bucket][0][rows], devices[bucket][1][rows]
        projected = xp.matmul(u[:, None, :], values)[:, 0, :]  # (sets, samples)
        scores[:, set_ids] = (projected / s[:, None]).T
    return scores


def plage_sample_vectors(z: Any, layout: SetLayout) -> list[tuple[np.ndarray, np.ndarray]]:
    """PLAGE's scores of sets with at least as many genes as there are samples, from each
    set's (samples × samples) Gram matrix: its leading eigenvector is the right singular
    vector itself, of a matrix no larger than the genes' one.

    Parameters
    ----------
    z : array of shape (n_samples, n_genes), float64
        Standardised values of every sample.
    layout : SetLayout

    Returns
    -------
    list of (set_ids (n,), ndarray of shape (n, n_samples))
        The sets' scores on the host, each oriented as :func:`plage_vectors` orients them
        (rising with the set's mean z-score).
    """
    from scipy.linalg import eigh

    xp = namespace(z)
    n = z.shape[0]
    results = []
    for (set_ids, members, _), (_, _, mask) in zip(layout.on(xp), layout.buckets, strict=True):
        width = members.shape[1]
        step = max(1, _SET_BLOCK_ELEMENTS // (n * max(n, width)))
        for start in range(0, members.shape[0], step):
            rows = slice(start, start + step)
            index = members[rows]
            values = xp.take(z, index.ravel(), axis=1).reshape(n, *index.shape)
            values = (values * xp.asarray(mask[rows])[None]).transpose(1, 0, 2)  # sets × n × w
            grams = np.asarray(to_host(xp.matmul(values, values.transpose(0, 2, 1))))
            totals = np.asarray(to_host(values.sum(axis=2)))
            vectors = np.empty((grams.shape[0], n))
            for row in range(grams.shape[0]):
                _, vector = eigh(grams[row], subset_by_index=[n - 1, n - 1])
                v = vector[:, 0]
                vectors[row] = -v if v @ totals[row] < 0 else v
            results.append((np.asarray(to_host(set_ids[rows])), vectors))
    return results
