"""WGCNA's blockwise steps on ``xp``: leading principal components of gene sets, the
pre-clustering of genes into blocks (``projectiveKMeans`` and ``sizeRestrictedClusterMerge``)
and the Fisher p-values that move genes between modules, as WGCNA 1.72.

The data ``z`` is samples × genes with each gene centred and scaled to unit length, so the
correlation of two genes (or of a gene and a unit-length centred vector) is a dot product.
Memberships and the moves' bookkeeping live on the host; products with ``z`` on its device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator, eigsh
from scipy.special import ndtr

from .._backend import namespace, to_host

__all__ = [
    "DENSE_EIGEN_SIZE",
    "aligned_first_pc",
    "consensus_cluster_merge",
    "eigengene",
    "fisher_pvalue",
    "leading_left_vector",
    "projective_kmeans",
    "size_restricted_merge",
]

DENSE_EIGEN_SIZE = 1500  # beyond it the leading vector is found by Lanczos, not LAPACK
_ALIGN_POWER = 6  # .alignedFirstPC's weights: |cor|^6


def leading_left_vector(x: Any) -> tuple[Any, float]:
    """The leading left singular vector of ``x`` and its squared singular value.

    Parameters
    ----------
    x : array of shape (n_samples, m)
        Columns centred and of unit length.

    Returns
    -------
    u : array of shape (n_samples,), on ``x``'s device
        Unit length; its sign is arbitrary.
    value : float
        ``σ²``, the leading eigenvalue of the columns' correlation matrix.
    """
    xp = namespace(x)
    n, m = x.shape
    by_columns = m <= n  # the Gram matrix of the smaller side
    size = m if by_columns else n
    if size <= DENSE_EIGEN_SIZE:
        gram = np.asarray(to_host(x.T @ x if by_columns else x @ x.T), dtype=np.float64)
        values, vectors = scipy.linalg.eigh(gram, subset_by_index=[size - 1, size - 1])
        vector, value = vectors[:, 0], float(values[0])
    else:

        def product(v: np.ndarray) -> np.ndarray:
            w = xp.asarray(np.ravel(v))
            return np.asarray(to_host(x.T @ (x @ w) if by_columns else x @ (x.T @ w)))

        operator = LinearOperator((size, size), matvec=product, dtype=np.float64)
        values, vectors = eigsh(operator, k=1, which="LA", v0=np.ones(size), tol=0.0)
        vector, value = vectors[:, 0], float(values[0])
    u = x @ xp.asarray(vector) / math.sqrt(value) if by_columns else xp.asarray(vector)
    return u, value


def eigengene(x: Any) -> tuple[Any, float]:
    """WGCNA's ``moduleEigengenes``: a set of genes' first principal component, turned to
    agree with their average.

    Parameters
    ----------
    x : array of shape (n_samples, m)
        The genes, centred and of unit length.

    Returns
    -------
    u : array of shape (n_samples,), unit length, on ``x``'s device
    value : float
        Its eigenvalue: ``value / m`` is the share of the genes' variance it explains.
    """
    xp = namespace(x)
    u, value = leading_left_vector(x)
    return (-u if float(xp.sum(x.T @ u)) < 0 else u), value


def aligned_first_pc(x: Any, *, centred: bool = True) -> Any:
    """WGCNA's ``.alignedFirstPC``: the first principal component of a set of genes, turned
    to agree with their average weighted by ``|cor|^6``.

    Parameters
    ----------
    x : array of shape (n_samples, m)
        The genes, centred and of unit length; or, with ``centred=False``, as they are (the
        scaled genes imputed by projectiveKMeans, no longer centred): the component of the
        genes as given, which is then centred and scaled to unit length, as it only ever
        enters correlations.
    centred : bool, default True

    Returns
    -------
    array of shape (n_samples,), unit length, on ``x``'s device
    """
    xp = namespace(x)
    u, _ = leading_left_vector(x)
    if centred:
        cor = x.T @ u
        if float(xp.sum(xp.abs(cor) ** _ALIGN_POWER * cor)) < 0:
            u = -u
        return u
    u = u - xp.mean(u)
    u /= xp.sqrt(xp.sum(u * u))
    genes = x - xp.mean(x, axis=0)
    covariance = genes.T @ u
    cor = covariance / xp.sqrt(xp.sum(genes * genes, axis=0))
    # the sign of cov(pc, rowWeightedMeans(x, |cor|^6)): the weighted sum of the covariances
    if float(xp.sum(xp.abs(cor) ** _ALIGN_POWER * covariance)) < 0:
        u = -u
    return u


def fisher_pvalue(cor: np.ndarray, n_samples: int) -> np.ndarray:
    """WGCNA's ``corPvalueFisher``: the two-sided p-value of correlations by Fisher's z."""
    z = np.abs(np.arctanh(cor) * math.sqrt(n_samples - 3))
    return 2.0 * ndtr(-z)


class _Distances:
    """Each gene's distance to its own cluster's centre, inflated for clusters larger than the
    preferred size (projectiveKMeans' ``memberCenterDist``)."""

    def __init__(self, preferred_size: int, size_penalty_power: float) -> None:
        self.preferred_size, self.power = preferred_size, size_penalty_power

    def __call__(
        self,
        dst: Any,
        membership: np.ndarray,
        sizes: np.ndarray,
        changed: np.ndarray,
        old: np.ndarray,
    ) -> np.ndarray:
        xp = namespace(dst)
        corrections = np.maximum((sizes / self.preferred_size) ** self.power, 1.0)
        out = old.copy()
        genes = np.flatnonzero(np.isin(membership, changed))
        own = to_host(dst[xp.asarray(membership[genes]), xp.asarray(genes)])
        out[genes] = np.asarray(own) * corrections[membership[genes]]
        return out


def projective_kmeans(
    sets: Sequence[Any],
    membership: np.ndarray,
    *,
    preferred_size: int,
    size_penalty_power: float = 5.0,
    max_iterations: int = 1000,
    mean_of_sets: bool = False,
    pcs_of: Sequence[Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """WGCNA's ``projectiveKMeans`` iterations (unsigned): genes move to the centre (a
    cluster's aligned first principal component) they correlate with most, in absolute value,
    where the move does not make them farther from their centre once clusters beyond
    ``preferred_size`` are penalised. Of several sets of samples, ``consensusProjectiveKMeans``:
    a centre in each set, a gene's distance to it the largest over the sets.

    Parameters
    ----------
    sets : sequence of arrays of shape (n_samples_s, n_genes)
        Each set's genes (the same genes), centred and of unit length.
    membership : ndarray of int, shape (n_genes,)
        The start: each gene's cluster, 0 … k - 1, every cluster used.
    preferred_size : int
    size_penalty_power : float, default 5
        Distances to a centre of ``s > preferred_size`` genes are multiplied by
        ``(s / preferred_size)^power``.
    max_iterations : int, default 1000
    mean_of_sets : bool, default False
        Distances the mean over the sets rather than the largest (R's ``useMean``, its default
        beyond three sets).
    pcs_of : sequence of arrays of shape (n_samples_s, n_genes), optional
        The genes whose principal components are the centres, where not ``sets`` (the scaled
        genes imputed, not centred, as projectiveKMeans takes them; ``sets`` are then their
        standardised values).

    Returns
    -------
    membership : ndarray of int, shape (n_genes,)
        0 … k' - 1 (clusters emptied on the way are dropped).
    sizes : ndarray of int, shape (k',)
    centers : list of arrays of shape (n_samples_s, k'), on the sets' device
        Centred, of unit length.

    Notes
    -----
    After an accepted move WGCNA recomputes the centres ``rank(changedKeep)``: the ranks of
    the changed clusters among themselves rather than their positions among the clusters kept
    (``match(changedKeep, keep)``), so it refreshes the wrong centres. This uses the positions.
    """
    xp = namespace(sets[0])
    sources = sets if pcs_of is None else pcs_of
    membership = np.asarray(membership, dtype=np.int64).copy()
    k = int(membership.max()) + 1
    n_genes = membership.shape[0]
    distances = _Distances(preferred_size, size_penalty_power)
    centers = [xp.zeros((z.shape[0], k), dtype=xp.float64) for z in sets]
    dst = xp.zeros((k, n_genes), dtype=xp.float64)
    center_dist = np.zeros(n_genes)
    changed: np.ndarray | None = np.arange(k)
    iteration = 0
    while changed is not None and iteration < max_iterations:
        iteration += 1
        sizes = np.bincount(membership, minlength=k)
        _refresh(sets, sources, centers, dst, membership, changed, mean_of_sets)
        center_dist = distances(dst, membership, sizes, changed, center_dist)
        nearest = np.asarray(to_host(xp.argmin(dst, axis=0)), dtype=np.int64)
        nearest_dist = np.asarray(to_host(xp.min(dst, axis=0)))
        if not np.any(center_dist > nearest_dist):
            changed = None
            break
        proposed = nearest.copy()
        accepted = False
        moved = np.flatnonzero(proposed != membership)
        while not accepted and moved.shape[0] > 0:
            new_dist = distances(
                dst, proposed, np.bincount(proposed, minlength=k), np.arange(k), center_dist
            )
            worse = moved[new_dist[moved] > center_dist[moved]]
            if worse.shape[0] == 0:
                accepted = True
            else:  # give back the 3/5 of the worsened moves that lost most
                order = np.argsort(center_dist[worse] - new_dist[worse], kind="stable")
                back = worse[order[: math.ceil(worse.shape[0] * 3 / 5)]]
                proposed[back] = membership[back]
                moved = np.flatnonzero(proposed != membership)
        if not accepted:
            changed = None
            break
        keep = np.unique(proposed)
        changed_all = np.union1d(membership[moved], proposed[moved])
        changed = np.searchsorted(keep, changed_all[np.isin(changed_all, keep)])
        index = xp.asarray(keep)
        centers, dst = [c[:, index] for c in centers], dst[index]
        membership = np.searchsorted(keep, proposed)
        k = keep.shape[0]
    if changed is not None:  # stopped by max_iterations just after a move: fresh centres
        _refresh(sets, sources, centers, dst, membership, changed, mean_of_sets)
    return membership, np.bincount(membership, minlength=k), centers


def _refresh(
    sets: Sequence[Any],
    sources: Sequence[Any],
    centers: list[Any],
    dst: Any,
    membership: np.ndarray,
    changed: np.ndarray,
    mean_of_sets: bool,
) -> None:
    """Recompute the ``changed`` clusters' centres and their distances ``1 - |cor|`` to every
    gene (the largest, or the mean, over the sets), in place; the centres are the principal
    components of ``sources``' genes."""
    xp = namespace(sets[0])
    for cluster in np.sort(changed):
        genes = xp.asarray(np.flatnonzero(membership == cluster))
        for z, source, center in zip(sets, sources, centers, strict=True):
            center[:, int(cluster)] = aligned_first_pc(source[:, genes], centred=source is z)
    if changed.shape[0]:
        index = xp.asarray(changed)
        each = [1.0 - xp.abs(c[:, index].T @ z) for z, c in zip(sets, centers, strict=True)]
        dst[index] = _combine(each, mean_of_sets)


def _combine(each: list[Any], mean_of_sets: bool) -> Any:
    """The sets' distances made one: the largest, or the mean."""
    out = each[0].copy()
    for other in each[1:]:
        if mean_of_sets:
            out += other
        else:
            namespace(out).maximum(out, other, out=out)
    return out / len(each) if mean_of_sets else out


def size_restricted_merge(
    z: Any,
    membership: np.ndarray,
    sizes: np.ndarray,
    centers: Any,
    *,
    max_size: int,
    pcs_of: Any = None,
) -> np.ndarray:
    """WGCNA's ``sizeRestrictedClusterMerge``: join the two closest clusters (``1 - |cor|`` of
    their centres) whose joint size stays within ``max_size``, until no two can be joined.

    Parameters
    ----------
    z : array of shape (n_samples, n_genes)
        Genes centred and of unit length.
    membership : ndarray of int, shape (n_genes,)
        0 … k - 1.
    sizes : ndarray of int, shape (k,)
    centers : array of shape (n_samples, k)
        Centred, of unit length.
    max_size : int
    pcs_of : array of shape (n_samples, n_genes), optional
        The genes whose principal components are the centres, as :func:`projective_kmeans`.

    Returns
    -------
    ndarray of int, shape (n_genes,)
        0 … k' - 1.
    """
    xp = namespace(z)
    membership = membership.copy()
    sizes = np.asarray(sizes, dtype=np.int64).copy()
    centers = centers.copy()
    small = sizes < max_size
    dist = _center_distances(centers[:, xp.asarray(np.flatnonzero(small))])
    while int(small.sum()) > 1:
        small_index = np.flatnonzero(small)
        rows, columns = np.triu_indices(small_index.shape[0], k=1)
        order = np.argsort(dist[rows, columns], kind="stable")
        pair = next(
            (
                (int(rows[p]), int(columns[p]))
                for p in order
                if sizes[small_index[rows[p]]] + sizes[small_index[columns[p]]] <= max_size
            ),
            None,
        )
        if pair is None:
            break
        ii, jj = pair
        keep, drop = int(small_index[ii]), int(small_index[jj])
        membership[membership == drop] = keep
        sizes[keep] += sizes[drop]
        members = xp.asarray(np.flatnonzero(membership == keep))
        source = z if pcs_of is None else pcs_of
        centers[:, keep] = aligned_first_pc(source[:, members], centred=pcs_of is None)
        membership[membership > drop] -= 1
        remaining = xp.asarray(np.delete(np.arange(sizes.shape[0]), drop))
        centers, sizes = centers[:, remaining], np.delete(sizes, drop)
        small = sizes < max_size
        if int(small.sum()) > 1:
            dist = np.delete(np.delete(dist, jj, axis=0), jj, axis=1)
            if sizes[keep] < max_size:
                cor = centers[:, xp.asarray(np.flatnonzero(small))].T @ centers[:, keep]
                column = 1.0 - np.abs(np.asarray(to_host(cor), dtype=np.float64))
                dist[:, ii] = column
                dist[ii, :] = column
            else:
                dist = np.delete(np.delete(dist, ii, axis=0), ii, axis=1)
    return membership


def consensus_cluster_merge(
    sets: Sequence[Any],
    membership: np.ndarray,
    centers: Sequence[Any],
    *,
    max_size: int,
    mean_of_sets: bool = False,
    pcs_of: Sequence[Any] | None = None,
) -> np.ndarray:
    """``consensusProjectiveKMeans``' merging: join the two closest clusters smaller than
    ``max_size`` (their centres' ``1 - |cor|``, the largest or the mean over the sets) whose
    joint size stays below it, until no two can be joined.

    Parameters
    ----------
    sets : sequence of arrays of shape (n_samples_s, n_genes)
        Each set's genes, centred and of unit length.
    membership : ndarray of int, shape (n_genes,)
        0 … k - 1.
    centers : sequence of arrays of shape (n_samples_s, k)
        Each set's centres.
    max_size : int
    mean_of_sets : bool, default False
    pcs_of : sequence of arrays of shape (n_samples_s, n_genes), optional
        The genes whose principal components are the centres, as :func:`projective_kmeans`.

    Returns
    -------
    ndarray of int, shape (n_genes,)
        0 … k' - 1.

    Notes
    -----
    R reads the closer cluster of a pair at the wrong index once a cluster of ``max_size`` or
    more precedes it; this takes the pair's own clusters.
    """
    xp = namespace(sets[0])
    sources = sets if pcs_of is None else pcs_of
    membership = membership.copy()
    centers = [c.copy() for c in centers]
    sizes = np.bincount(membership, minlength=centers[0].shape[1])
    while True:
        small = np.flatnonzero(sizes < max_size)
        if small.shape[0] < 2:
            break
        index = xp.asarray(small)
        dist = _combine([_center_distances(c[:, index]) for c in centers], mean_of_sets)
        rows, columns = np.triu_indices(small.shape[0], k=1)
        order = np.argsort(dist[rows, columns], kind="stable")
        pair = next(
            (
                (int(small[rows[p]]), int(small[columns[p]]))
                for p in order
                if sizes[small[rows[p]]] + sizes[small[columns[p]]] < max_size
            ),
            None,
        )
        if pair is None:
            break
        keep, drop = pair
        membership[membership == drop] = keep
        genes = xp.asarray(np.flatnonzero(membership == keep))
        for z, source, center in zip(sets, sources, centers, strict=True):
            center[:, keep] = aligned_first_pc(source[:, genes], centred=source is z)
        remaining = xp.asarray(np.delete(np.arange(sizes.shape[0]), drop))
        centers = [c[:, remaining] for c in centers]
        membership[membership > drop] -= 1
        sizes = np.bincount(membership, minlength=sizes.shape[0] - 1)
    return membership


def _center_distances(centers: Any) -> np.ndarray:
    """``1 - |cor|`` of unit-length centred centres, exactly symmetric, on the host."""
    cor = np.asarray(to_host(centers.T @ centers), dtype=np.float64)
    upper = np.triu(cor, 1)
    return 1.0 - np.abs(upper + upper.T + np.eye(cor.shape[0]))
