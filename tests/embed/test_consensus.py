"""Consensus clustering against ConsensusClusterPlus 1.62 (fixtures from
tests/fixtures/make_consensus_fixtures.R) with the same seed, so with the subsamples R draws:
60 samples in three groups, the vignette's preparation (the 200 genes of largest MAD,
median-centred), Pearson distance with average linkage and Euclidean distance with complete
linkage inside, each subsample partitioned around medoids (cluster::pam) on both distances,
and each clustered by kmeans from the starts R draws between the subsamples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from cohortex import CohortexError, consensus_clusters

CONSENSUS = Path(__file__).parents[1] / "fixtures" / "consensus"
CASES = {
    "pearson": {},
    "euclidean": {"distance": "euclidean", "inner_linkage": "complete"},
    "pam": {"cluster_algorithm": "pam"},
    "pam_euclidean": {"cluster_algorithm": "pam", "distance": "euclidean"},
    "km": {"cluster_algorithm": "km"},
}
SEED = 7  # ConsensusClusterPlus(seed = 7)


@pytest.fixture(scope="module")
def cohort():
    table = pd.read_csv(CONSENSUS / "expression.csv", index_col=0)
    return xr.Dataset(
        {"expression": (("sample", "gene"), table.to_numpy().T)},
        coords={"sample": list(table.columns), "gene": list(table.index)},
        attrs={"scale": "log2"},
    )


@pytest.fixture(scope="module")
def subsamples():
    return pd.read_csv(CONSENSUS / "subsamples.csv").to_numpy() - 1


@pytest.mark.parametrize("case", list(CASES))
def test_equals_consensus_cluster_plus(cohort, case):
    result = consensus_clusters(
        cohort, max_k=5, genes=200, reps=40, seed=SEED, progress=False, **CASES[case]
    )
    for k in range(2, 6):
        expected = pd.read_csv(CONSENSUS / f"{case}_k{k}.csv").to_numpy()
        np.testing.assert_allclose(
            result["consensus"].sel(k=k).values, expected, rtol=0, atol=1e-12, err_msg=str(k)
        )
    classes = pd.read_csv(CONSENSUS / f"{case}_classes.csv", index_col=0)
    for k in range(2, 6):
        np.testing.assert_array_equal(result["consensus_class"].sel(k=k).values, classes[f"k{k}"])
    area = pd.read_csv(CONSENSUS / f"{case}_area.csv")
    np.testing.assert_allclose(result["area"].values, area["area"], rtol=1e-12)
    np.testing.assert_allclose(result["delta_area"].values, area["delta"], rtol=1e-12)
    clusters = pd.read_csv(CONSENSUS / f"{case}_cluster_icl.csv")
    for row in clusters.itertuples():  # a cluster of one sample: NaN in both
        got = result["cluster_consensus"].sel(k=row.k, cluster=row.cluster).item()
        np.testing.assert_allclose(got, row.clusterConsensus, rtol=1e-12, equal_nan=True)
    items = pd.read_csv(CONSENSUS / f"{case}_item_icl.csv")
    for row in items.itertuples():
        got = result["item_consensus"].sel(k=row.k, sample=row.item, cluster=row.cluster).item()
        np.testing.assert_allclose(got, row.itemConsensus, rtol=1e-12, atol=1e-15, equal_nan=True)
    assert result.attrs["reps"] == 40 and result.attrs["n_genes"] == 200


def test_own_subsamples_find_the_three_groups(cohort):
    """With its own subsamples the three planted groups (20 of 200 genes each, under noise)
    come out at k = 3, and k = 3 is where the CDF's area stops growing much, as with R's."""
    from sklearn.metrics import adjusted_rand_score

    result = consensus_clusters(cohort, max_k=5, genes=200, reps=200, progress=False)
    truth = np.repeat([1, 2, 3], [25, 20, 15])
    found = result["consensus_class"].sel(k=3).values
    assert adjusted_rand_score(truth, found) > 0.8
    assert list(found[:25]) == [1] * 25  # numbered by first appearance, as R's cutree
    delta = result["delta_area"].values
    assert delta[1] > 0.2 and delta[2] < 0.1  # k = 3 gains, k = 4 little
    r_delta = pd.read_csv(CONSENSUS / "pearson_area.csv")["delta"].to_numpy()
    np.testing.assert_allclose(delta, r_delta, atol=0.05)  # other subsamples, close to R's
    np.testing.assert_array_equal(np.diag(result["consensus"].sel(k=3).values), 1.0)


def test_given_subsamples_are_used_as_given(cohort, subsamples):
    """R's subsamples (set.seed(7); sample(60, 48) forty times) given explicitly: the same
    result as seed 7 draws them; other subsamples another."""
    drawn = consensus_clusters(cohort, max_k=3, genes=200, reps=40, seed=SEED, progress=False)
    given = consensus_clusters(cohort, max_k=3, genes=200, subsamples=subsamples, progress=False)
    xr.testing.assert_allclose(drawn.drop_attrs(), given.drop_attrs(), rtol=0, atol=0)
    other = consensus_clusters(
        cohort, max_k=3, genes=200, subsamples=subsamples[::-1][:20], progress=False
    )
    assert other.attrs["reps"] == 20
    assert not np.array_equal(other["consensus"].values, given["consensus"].values)


def test_same_seed_same_result(cohort):
    first = consensus_clusters(cohort, max_k=3, genes=200, reps=20, seed=3, progress=False)
    again = consensus_clusters(cohort, max_k=3, genes=200, reps=20, seed=3, progress=False)
    xr.testing.assert_identical(first, again)


def test_bad_input_is_refused(cohort):
    with pytest.raises(CohortexError, match="'distance' parameter of consensus_clusters"):
        consensus_clusters(cohort, distance="cosine")
    with pytest.raises(CohortexError, match="'final_linkage' parameter"):
        consensus_clusters(cohort, final_linkage="median")
    with pytest.raises(CohortexError, match="2 ≤ max_k < floor"):
        consensus_clusters(cohort, max_k=48)
    with pytest.raises(CohortexError, match="'subsamples' parameter"):
        consensus_clusters(cohort, subsamples=np.array([[0, 1, 70]]))
    holes = cohort.copy(deep=True)
    holes["expression"][4, 9] = np.nan
    with pytest.raises(CohortexError, match="without missing"):
        consensus_clusters(holes, reps=2)


def test_matrices_beyond_the_memory_are_refused_at_once(cohort, monkeypatch):
    from cohortex.embed import _consensus

    monkeypatch.setattr(_consensus, "physical_memory", lambda: 60 * 60 * 8 * 5)
    with pytest.raises(CohortexError, match="holds 7 matrices of 60 × 60.*a subset"):
        consensus_clusters(cohort, max_k=5, reps=2)
