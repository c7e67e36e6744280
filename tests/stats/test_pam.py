"""PAM against R's cluster::pam (cluster 2.1.4; fixture from
tests/fixtures/make_consensus_fixtures.R) on a dissimilarity full of ties, where the order of
BUILD's and SWAP's comparisons decides; the consensus clustering's PAM cases are in
tests/embed/test_consensus.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cohortex.stats._pam import pam_clusters

CONSENSUS = Path(__file__).parents[1] / "fixtures" / "consensus"


def test_equals_r_pam_with_ties():
    ties = pd.read_csv(CONSENSUS / "pam_ties.csv").to_numpy(np.float64)
    expected = pd.read_csv(CONSENSUS / "pam_ties_clusters.csv").to_numpy()
    assert len(np.unique(ties)) < 8  # few distinct distances: ties everywhere
    for column, k in enumerate(range(2, 7)):
        np.testing.assert_array_equal(pam_clusters(ties, k) + 1, expected[:, column], str(k))


def test_separated_groups_and_one_cluster():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(0, 0.1, (10, 2)), rng.normal(5, 0.1, (7, 2))])
    d = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))
    np.testing.assert_array_equal(pam_clusters(d, 2), np.repeat([0, 1], [10, 7]))
    np.testing.assert_array_equal(pam_clusters(d, 1), np.zeros(17, dtype=np.int64))
