"""dynamicTreeCut's hybrid cut (stats/_tree_cut.py) against dynamicTreeCut 1.63 under WGCNA
1.72 (fixtures from tests/fixtures/make_wgcna_fixtures.R): every setting the script runs, on
R's own tree and on SciPy's, whose merges in R's form are R's, pair for pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from cohortex.stats._network import adjacency, correlation_from_gram, tom_dissimilarity
from cohortex.stats._tree_cut import core_size, cutree_hybrid, default_cut_height, r_merge

WGCNA = Path(__file__).parents[1] / "fixtures" / "wgcna"
LIMMA = Path(__file__).parents[1] / "fixtures" / "limma"
NETWORKS = {  # fixture: (expression, power, network, TOM, minClusterSize)
    "bladder": ("bladder", 6, "unsigned", "unsigned", 30),
    "bladder_signed_tom": ("bladder", 6, "unsigned", "signed", 30),
    "simulated": ("simulated", 12, "signed", "unsigned", 20),
    "simulated_hybrid": ("simulated", 6, "signed hybrid", "unsigned", 20),
}
SETTINGS = {  # fixture column: cutree_hybrid's options (pamRespectsDendro FALSE unless said)
    **{f"deep{d}": {"deep_split": d, "pam_respects_dendro": False} for d in range(5)},
    "pam_dendro": {"deep_split": 2},
    "no_pam": {"deep_split": 2, "pam_stage": False},
    "small": {"deep_split": 2, "pam_respects_dendro": False, "min_cluster_size": 10},
    "cut_height": {"deep_split": 2, "pam_respects_dendro": False, "cut_height": 0.97},
    "medoids": {"deep_split": 2, "pam_respects_dendro": False, "use_medoids": True},
}


def _dissimilarity(case: str) -> np.ndarray:
    name, power, network, tom, _ = NETWORKS[case]
    if name == "bladder":
        x = pd.read_csv(LIMMA / "bladder_expression.csv", index_col=0).to_numpy().T
    else:
        x = pd.read_csv(WGCNA / "simulated_expression.csv", index_col=0).to_numpy()
    z = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    c = correlation_from_gram(z.T @ z)
    keep_sign = tom == "signed" and network == "unsigned"
    out, _ = tom_dissimilarity(
        adjacency(c, power, network, keep_sign=keep_sign), signed=tom == "signed"
    )
    return out


@pytest.fixture(scope="module", params=list(NETWORKS))
def network(request):
    case = request.param
    tree = pd.read_csv(WGCNA / f"{case}_tree.csv")
    return case, _dissimilarity(case), tree


def test_scipy_tree_in_r_form_is_r_tree(network):
    _, dist, tree = network
    merge, height = r_merge(hierarchy.linkage(squareform(dist, checks=False), "average"))
    np.testing.assert_array_equal(merge, tree[["merge1", "merge2"]].to_numpy())
    np.testing.assert_allclose(height, tree["height"], rtol=0, atol=1e-13)


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_labels_equal_cutree_dynamic(network, setting):
    case, dist, tree = network
    options = {"min_cluster_size": NETWORKS[case][4], **SETTINGS[setting]}
    expected = pd.read_csv(WGCNA / f"{case}_modules.csv")[setting].to_numpy()
    labels = cutree_hybrid(
        tree[["merge1", "merge2"]].to_numpy(), tree["height"].to_numpy(), dist, **options
    )
    np.testing.assert_array_equal(labels, expected)


def test_settings_make_different_cuts(network):
    """The fixtures tell the settings apart (else the test above could not fail)."""
    case, *_ = network
    table = pd.read_csv(WGCNA / f"{case}_modules.csv")
    distinct = {tuple(table[s]) for s in SETTINGS}
    assert len(distinct) >= (3 if case.startswith("simulated") else 7)


def test_core_size_and_default_cut():
    assert core_size(5, 20) == 5  # smaller than the base (11): the whole branch
    assert core_size(111, 20) == int(11 + np.sqrt(100))
    height = np.linspace(0.1, 0.9, 101)  # 100 merges + 1: the 5th is the reference
    assert default_cut_height(height) == pytest.approx(0.99 * (0.9 - height[4]) + height[4])


def test_no_merge_below_the_cut_labels_nothing():
    dist = np.array([[0, 0.2, 0.9], [0.2, 0, 0.9], [0.9, 0.9, 0]])
    merge, height = r_merge(hierarchy.linkage(squareform(dist), "average"))
    labels = cutree_hybrid(merge, height, dist, min_cluster_size=2, cut_height=0.1)
    np.testing.assert_array_equal(labels, [0, 0, 0])
