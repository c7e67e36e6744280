"""dynamicTreeCut's hybrid tree cut (``cutreeHybrid``), step for step, and R's ``hclust`` merges.

WGCNA finds its modules by cutting the average-linkage tree of ``1 - TOM`` with this
algorithm: branches of the tree are kept as clusters where their core is tight and stands
apart from its surroundings (the "tree" stage), and the genes left over are then given to the
nearest cluster when they lie close enough (the "PAM" stage). The decisions depend on the
order of the merges and of their two members, so the tree is first put in the form of R's
``hclust$merge`` (singletons negative, earlier merges positive), as :func:`r_merge` does.

Host-only: a sequential walk over the merges (its distances are read a core at a time).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "DEEP_SPLIT_SCATTER",
    "core_size",
    "cutree_hybrid",
    "default_cut_height",
    "number_by_size",
    "r_merge",
    "scipy_linkage",
]

# dynamicTreeCut's maxCoreScatter for deepSplit 0 … 4; its minGap is (1 - this) * 3/4
DEEP_SPLIT_SCATTER = (0.64, 0.73, 0.82, 0.91, 0.95)
_REFERENCE_QUANTILE = 0.05  # the merge whose height is the "reference" (bottom) of the tree


def r_merge(linkage: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R's ``hclust`` ``merge`` and ``height`` from a SciPy linkage matrix.

    Parameters
    ----------
    linkage : ndarray of shape (n - 1, 4)
        :func:`scipy.cluster.hierarchy.linkage`'s output.

    Returns
    -------
    merge : ndarray of int64, shape (n - 1, 2)
        As R: ``-i`` for the (1-based) object ``i``, ``j`` for the cluster of merge ``j``; a
        singleton before a cluster, two singletons by object, two clusters by merge (R's
        ``hcass2``).
    height : ndarray of shape (n - 1,)
    """
    n = linkage.shape[0] + 1
    a = linkage[:, 0].astype(np.int64)
    b = linkage[:, 1].astype(np.int64)
    pair = np.column_stack([a, b])
    coded = np.where(pair < n, -(pair + 1), pair - n + 1)
    first, second = coded[:, 0].copy(), coded[:, 1].copy()
    both_single = (first < 0) & (second < 0)
    both_merges = (first > 0) & (second > 0)
    mixed = ~both_single & ~both_merges
    # two singletons: the smaller object first; two merges: the earlier first; mixed: singleton
    low = np.where(both_single, np.maximum(first, second), np.minimum(first, second))
    high = np.where(both_single, np.minimum(first, second), np.maximum(first, second))
    low = np.where(mixed, np.minimum(first, second), low)
    high = np.where(mixed, np.maximum(first, second), high)
    return np.column_stack([low, high]), linkage[:, 2].astype(np.float64)


def scipy_linkage(merge: np.ndarray, height: np.ndarray) -> np.ndarray:
    """SciPy's linkage matrix from R's ``merge`` and ``height`` (the inverse of
    :func:`r_merge`, up to the order of each pair).

    Returns
    -------
    ndarray of shape (n - 1, 4)
        Both clusters' indices, the height and the size of the new cluster.
    """
    n = merge.shape[0] + 1
    index = np.where(merge < 0, -merge - 1, merge + n - 1).astype(np.float64)
    sizes = np.ones(2 * n - 1)
    for step, (a, b) in enumerate(index.astype(np.int64)):
        sizes[n + step] = sizes[a] + sizes[b]
    return np.column_stack([index, np.asarray(height, dtype=np.float64), sizes[n:]])


def default_cut_height(height: np.ndarray) -> float:
    """cutreeHybrid's cut where none is given: 99 % of the way from the reference height (the
    5 % quantile of the merges) to the top."""
    reference = _reference_height(height)
    return 0.99 * (float(np.max(height)) - reference) + reference


def _reference_height(height: np.ndarray) -> float:
    n_merge = height.shape[0]
    return float(height[max(1, round(n_merge * _REFERENCE_QUANTILE)) - 1])


def core_size(branch_size: int, min_cluster_size: int) -> int:
    """dynamicTreeCut's ``.CoreSize``: the objects whose spread stands for the branch's."""
    base = min_cluster_size / 2 + 1
    if base < branch_size:
        return int(base + math.sqrt(branch_size - base))
    return int(branch_size)


def _core_scatter(dist: np.ndarray, core: list[int], size: int) -> float:
    """Mean of the core's average distances (``mean(colSums(distM[Core, Core]) / (n - 1))``)."""
    index = np.asarray(core, dtype=np.int64) - 1
    block = dist[np.ix_(index, index)]
    return float(np.mean(block.sum(axis=0) / (size - 1)))


def cutree_hybrid(
    merge: np.ndarray,
    height: np.ndarray,
    dist: np.ndarray,
    *,
    min_cluster_size: int = 20,
    deep_split: int = 1,
    cut_height: float | None = None,
    pam_stage: bool = True,
    pam_respects_dendro: bool = True,
    use_medoids: bool = False,
    max_pam_dist: float | None = None,
    respect_small_clusters: bool = True,
) -> np.ndarray:
    """Cluster labels of dynamicTreeCut's ``cutreeHybrid(dendro, distM, ...)$labels``.

    Parameters
    ----------
    merge : ndarray of int, shape (n - 1, 2)
        R's ``hclust`` merges (:func:`r_merge`).
    height : ndarray of shape (n - 1,)
        Nondecreasing merge heights.
    dist : ndarray of shape (n, n)
        The dissimilarities the tree was built from (host memory; its diagonal is read as 0).
    min_cluster_size, deep_split, cut_height, pam_stage, pam_respects_dendro, use_medoids,
    max_pam_dist, respect_small_clusters
        As cutreeHybrid's arguments (``deep_split`` 0 … 4; ``cut_height`` None: 99 % of the
        range from the 5 % quantile of the heights to the top; ``max_pam_dist`` None:
        ``cut_height``).

    Returns
    -------
    ndarray of int64, shape (n,)
        0 for objects left unassigned, else 1, 2, … by decreasing cluster size.
    """
    height = np.asarray(height, dtype=np.float64)
    n_merge = height.shape[0]
    n_points = n_merge + 1
    if not 0 <= deep_split < len(DEEP_SPLIT_SCATTER):
        raise ValueError(f"deep_split must be 0 … {len(DEEP_SPLIT_SCATTER) - 1}; got {deep_split}")
    ref_height = _reference_height(height)
    top = float(height.max())
    if cut_height is None:
        cut_height = default_cut_height(height)
        if max_pam_dist is None:
            max_pam_dist = cut_height
    else:
        if max_pam_dist is None:  # R's promise: the value given, before its cap below
            max_pam_dist = cut_height
        cut_height = min(cut_height, top)
    if int(np.sum(height <= cut_height)) < min_cluster_size:
        return np.zeros(n_points, dtype=np.int64)
    max_core_scatter = DEEP_SPLIT_SCATTER[deep_split]
    min_gap = (1 - max_core_scatter) * 3 / 4
    max_abs_core_scatter = ref_height + max_core_scatter * (cut_height - ref_height)
    min_abs_gap = min_gap * (cut_height - ref_height)
    min_abs_split_height = ref_height  # minSplitHeight 0

    tree = _Branches(n_merge, n_points)
    for step in range(n_merge):
        h = float(height[step])
        if h > cut_height:
            continue
        m1, m2 = int(merge[step, 0]), int(merge[step, 1])
        if m1 < 0 and m2 < 0:
            tree.new_basic(step, [-m1, -m2])
        elif (m1 < 0) != (m2 < 0):
            tree.add_singleton(step, tree.of_merge[max(m1, m2) - 1], -min(m1, m2))
        else:
            tree.join(
                step,
                h,
                tree.of_merge[m1 - 1],
                tree.of_merge[m2 - 1],
                dist,
                min_cluster_size,
                max_abs_core_scatter,
                min_abs_gap,
                min_abs_split_height,
                pam_stage and pam_respects_dendro,
            )

    # which branches are clusters, and the small branches' labels
    n_branches = tree.count
    is_cluster = np.zeros(n_branches + 1, dtype=bool)
    small_labels = np.zeros(n_points + 1, dtype=np.int64)
    for clust in range(1, n_branches + 1):
        if math.isnan(tree.attach_height[clust]):
            tree.attach_height[clust] = cut_height
        if tree.is_top_basic[clust]:
            size = core_size(tree.n_singletons[clust], min_cluster_size)
            scatter = _core_scatter(dist, tree.singletons[clust][:size], size)
            is_cluster[clust] = (
                tree.size[clust] >= min_cluster_size
                and scatter < max_abs_core_scatter
                and tree.attach_height[clust] - scatter > min_abs_gap
            )
        if tree.fail_size[clust]:
            small_labels[tree.singletons[clust]] = clust
    if not respect_small_clusters:
        small_labels[:] = 0

    colors = np.zeros(n_points + 1, dtype=np.int64)  # 1-based objects; [0] unused
    branch_labels = np.zeros(n_branches + 1, dtype=np.int64)
    color = 0
    for branch in np.flatnonzero(is_cluster):
        color += 1
        members = tree.singletons[int(branch)]
        colors[members] = color
        small_labels[members] = 0
        branch_labels[branch] = color
    n_labels = color
    if pam_stage and n_labels > 0 and np.any(colors[1:] == 0):
        pam = _Pam(dist, colors, small_labels, tree, branch_labels, float(max_pam_dist))
        if use_medoids:
            pam.by_medoids(n_labels, respect_small_clusters, pam_respects_dendro)
        else:
            pam.by_mean_distance(n_labels, respect_small_clusters, pam_respects_dendro)
    labels = colors[1:].copy()
    labels[labels < 0] = 0
    return number_by_size(labels)


def number_by_size(labels: np.ndarray) -> np.ndarray:
    """cutreeHybrid's closing relabelling: 0 stays 0; clusters are numbered 1, 2, … by
    decreasing size (ties: the smaller label first)."""
    levels, index, counts = np.unique(labels, return_inverse=True, return_counts=True)
    proper = np.flatnonzero(levels > 0)
    order = proper[np.argsort(-counts[proper], kind="stable")]
    rank = np.zeros(levels.shape[0], dtype=np.int64)
    rank[order] = np.arange(1, order.shape[0] + 1)
    return rank[index]


class _Branches:
    """cutreeHybrid's branch bookkeeping (1-based branch numbers, as R's vectors)."""

    def __init__(self, n_merge: int, n_points: int) -> None:
        slots = n_merge + 2
        self.count = 0
        self.is_basic = np.ones(slots, dtype=bool)
        self.is_top_basic = np.ones(slots, dtype=bool)
        self.fail_size = np.zeros(slots, dtype=bool)
        self.size = np.full(slots, 2, dtype=np.int64)
        self.n_singletons = np.full(slots, 2, dtype=np.int64)
        self.attach_height = np.full(slots, np.nan)
        self.singletons: list[list[int]] = [[] for _ in range(slots)]
        self.basic_clusters: list[list[int]] = [[] for _ in range(slots)]
        self.of_merge = np.zeros(n_merge, dtype=np.int64)  # IndMergeToBranch
        self.on_branch = np.zeros(n_points + 1, dtype=np.int64)

    def new_basic(self, step: int, objects: list[int]) -> None:
        self.count += 1
        b = self.count
        self.is_basic[b] = self.is_top_basic[b] = True
        self.singletons[b] = list(objects)
        self.of_merge[step] = b

    def add_singleton(self, step: int, clust: int, gene: int) -> None:
        if self.is_basic[clust]:
            self.singletons[clust].append(gene)
        else:
            self.on_branch[gene] = clust
        self.size[clust] += 1
        self.n_singletons[clust] += 1
        self.of_merge[step] = clust

    def join(
        self,
        step: int,
        h: float,
        first: int,
        second: int,
        dist: np.ndarray,
        min_cluster_size: int,
        max_abs_core_scatter: float,
        min_abs_gap: float,
        min_abs_split_height: float,
        composite_branches: bool,
    ) -> None:
        """A merge of two branches: one absorbed in the other, or both under a new branch."""
        small, large = (first, second) if self.size[first] <= self.size[second] else (second, first)

        def scores(b: int) -> tuple[bool, bool, bool, bool, bool]:
            scatter = 0.0
            if self.is_basic[b]:
                size = core_size(int(self.n_singletons[b]), min_cluster_size)
                scatter = _core_scatter(dist, self.singletons[b][:size], size)
            return (
                bool(self.is_basic[b]),
                bool(self.size[b] < min_cluster_size),
                scatter > max_abs_core_scatter,
                h - scatter < min_abs_gap,
                h < min_abs_split_height,
            )

        small_scores = scores(small)
        do_merge, small_fail_size = False, False
        if small_scores[0] and any(small_scores[1:]):
            do_merge = True
            small_fail_size = not (small_scores[2] or small_scores[3])
        else:
            large_scores = scores(large)
            if large_scores[0] and any(large_scores[1:]):
                do_merge = True
                small_fail_size = not (large_scores[2] or large_scores[3])
                small, large = large, small
        if do_merge:
            self.fail_size[small] = small_fail_size
            self.attach_height[small] = h
            self.is_top_basic[small] = False
            if self.is_basic[large]:
                self.singletons[large] = self.singletons[large] + self.singletons[small]
                self.n_singletons[large] = self.n_singletons[small] + self.n_singletons[large]
            else:
                self.on_branch[self.singletons[small]] = large
            self.size[large] += self.size[small]
            self.of_merge[step] = large
            return
        if self.is_basic[large] and not self.is_basic[small]:
            small, large = large, small
        added = [small] if self.is_basic[small] else list(self.basic_clusters[small])
        if self.is_basic[large] or composite_branches:
            added += [large] if self.is_basic[large] else self.basic_clusters[large]
            self.count += 1
            b = self.count
            self.attach_height[[large, small]] = h
            self.is_basic[b] = self.is_top_basic[b] = False
            self.basic_clusters[b] = added
            self.size[b] = self.size[small] + self.size[large]
            self.of_merge[step] = b
        else:
            self.basic_clusters[large] = self.basic_clusters[large] + added
            self.size[large] += self.size[small]
            self.attach_height[small] = h
            self.of_merge[step] = large


class _Pam:
    """cutreeHybrid's PAM stage: objects left over go to the nearest cluster close enough."""

    def __init__(
        self,
        dist: np.ndarray,
        colors: np.ndarray,
        small_labels: np.ndarray,
        tree: _Branches,
        branch_labels: np.ndarray,
        max_pam_dist: float,
    ) -> None:
        self.dist, self.colors, self.small_labels = dist, colors, small_labels
        self.tree, self.branch_labels, self.max_pam_dist = tree, branch_labels, max_pam_dist

    def _objects(self, mask: np.ndarray) -> np.ndarray:
        """1-based objects where ``mask`` (over objects 1 … n) holds."""
        return np.flatnonzero(mask[1:]) + 1

    def _d(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        return self.dist[np.ix_(rows - 1, columns - 1)]

    def _small_clusters(self) -> np.ndarray:
        levels = np.unique(self.small_labels[1:])
        return levels[levels != 0]

    def _labels_on_branch(self, branch: int) -> np.ndarray:
        """The clusters under a composite branch (R would also take its basic branches that are
        no cluster, label 0, and then stop on an empty comparison where one is nearest)."""
        labels = self.branch_labels[self.tree.basic_clusters[branch]]
        return labels[labels > 0]

    def by_mean_distance(self, n_labels: int, respect_small: bool, respect_dendro: bool) -> None:
        """Nearest cluster by mean distance; close enough: within its diameter or maxPamDist."""
        colors = self.colors
        diameter = np.zeros(n_labels + 1)
        for label in range(1, n_labels + 1):
            members = self._objects(colors == label)
            if members.shape[0] > 1:
                within = self._d(members, members).sum(axis=0) / (members.shape[0] - 1)
                diameter[label] = within.max()
        before = colors.copy()  # ColorsX: the tree stage's labels

        def nearest(means: np.ndarray, labels: np.ndarray) -> tuple[int, float]:
            best = int(np.argmin(means))
            return int(labels[best]), float(means[best])

        def close(label: int, distance: float) -> bool:
            return label > 0 and (distance < diameter[label] or distance < self.max_pam_dist)

        if respect_small:
            for small in self._small_clusters():
                members = self._objects(self.small_labels == small)
                if respect_dendro:
                    branches = np.unique(self.tree.on_branch[members])
                    if branches.shape[0] > 1 or branches[0] == 0:
                        continue
                    candidates = np.isin(before, self._labels_on_branch(int(branches[0])))
                else:
                    candidates = before != 0
                candidates[0] = False
                use = self._objects(candidates)
                if use.shape[0] == 0:
                    continue
                mean_to_each = self._d(members, use).mean(axis=0)
                labels, groups = np.unique(before[use], return_inverse=True)
                means = np.bincount(groups, mean_to_each) / np.bincount(groups)
                label, distance = nearest(means, labels)
                colors[members] = label if close(label, distance) else -1
        unlabeled = self._objects(colors == 0)
        if unlabeled.shape[0] == 0:
            return
        if respect_dendro:
            for obj in unlabeled[self.tree.on_branch[unlabeled] > 0]:
                candidates = np.isin(before, self._labels_on_branch(int(self.tree.on_branch[obj])))
                candidates[0] = False
                use = self._objects(candidates)
                if use.shape[0] == 0:
                    continue
                labels, groups = np.unique(before[use], return_inverse=True)
                column = self.dist[use - 1, obj - 1]
                means = np.bincount(groups, column) / np.bincount(groups)
                label, distance = nearest(means, labels)
                if close(label, distance):
                    colors[obj] = label
            return
        labels = np.arange(1, n_labels + 1)
        means = np.empty((n_labels, unlabeled.shape[0]))
        for i, level in enumerate(labels):
            members = self._objects(before == level)
            means[i] = self._d(members, unlabeled).mean(axis=0)
        best = np.argmin(means, axis=0)
        distance = means[best, np.arange(unlabeled.shape[0])]
        chosen = labels[best]
        assign = (distance < diameter[chosen]) | (distance < self.max_pam_dist)
        colors[unlabeled[assign]] = chosen[assign]

    def by_medoids(self, n_labels: int, respect_small: bool, respect_dendro: bool) -> None:
        """Nearest cluster medoid; close enough: within the cluster's radius or maxPamDist."""
        colors = self.colors
        medoids = np.zeros(n_labels + 1, dtype=np.int64)
        radii = np.zeros(n_labels + 1)
        for label in range(1, n_labels + 1):
            members = self._objects(colors == label)
            within = self._d(members, members)
            best = int(np.argmin(within.sum(axis=0)))
            medoids[label] = members[best]
            radii[label] = within[:, best].max()

        def candidates_of(objects: np.ndarray) -> np.ndarray | None:
            if not respect_dendro:
                return np.arange(1, n_labels + 1)
            branches = np.unique(self.tree.on_branch[objects])
            if branches[0] == 0:
                return None
            return self._labels_on_branch(int(branches[0]))

        def assign(objects: np.ndarray, centre: int, labels: np.ndarray) -> bool:
            to_medoids = self.dist[medoids[labels] - 1, centre - 1]
            best = int(np.argmin(to_medoids))
            label = int(labels[best])
            distance = float(to_medoids[best])
            if label > 0 and (distance < radii[label] or distance < self.max_pam_dist):
                colors[objects] = label
                return True
            return False

        if respect_small:
            for small in self._small_clusters():
                members = self._objects(self.small_labels == small)
                labels = candidates_of(members)
                if labels is None or labels.shape[0] == 0:
                    colors[members] = -1
                    continue
                if members.shape[0] > 1:
                    centre = members[int(np.argmin(self._d(members, members).sum(axis=0)))]
                    if not assign(members, int(centre), labels):
                        colors[members] = -1
        for obj in self._objects(colors == 0):
            labels = candidates_of(np.array([obj]))
            if labels is not None and labels.shape[0] > 0:
                assign(np.array([obj]), int(obj), labels)
