"""limma's plotMDS against limma 3.54 (fixtures from tests/fixtures/make_mds_fixtures.R): the
bladder cohort's 57 arrays × 1,000 probes with one value missing, pairwise leading
log-fold-change distances (top 500 and 100) and common genes (top 200, and all)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohortex import CohortexError, mds, plot

from conftest import fixture_cohort

FIXTURES = Path(__file__).parents[1] / "fixtures"
CASES = {
    "pairwise": {},
    "pairwise_top100": {"top": 100},
    "common": {"gene_selection": "common", "top": 200},
    "common_all": {"gene_selection": "common", "top": 5000},
}


def _bladder():
    cohort = fixture_cohort(
        FIXTURES / "limma" / "bladder_expression.csv",
        FIXTURES / "limma" / "bladder_samples.csv",
        scale="log2",
    )
    cohort["expression"][2, 4] = np.nan  # R's x[5, 3]: probe 5 of array 3
    return cohort


@pytest.mark.parametrize("case", list(CASES))
def test_equals_limma_plot_mds(case):
    result = mds(_bladder(), n_components=3, progress=False, **CASES[case])
    expected = pd.read_csv(FIXTURES / "mds" / f"{case}.csv", index_col=0)
    eigen = pd.read_csv(FIXTURES / "mds" / f"{case}_eigen.csv")
    for j, name in enumerate(expected.columns):
        ours, theirs = result["embedding"].values[:, j], expected[name].to_numpy()
        sign = np.sign(ours @ theirs)
        np.testing.assert_allclose(sign * ours, theirs, rtol=0, atol=1e-10, err_msg=name)
    np.testing.assert_allclose(result["eigenvalue"].values, eigen["eigenvalue"][:3], rtol=1e-10)
    np.testing.assert_allclose(
        result["var_explained"].values, eigen["var_explained"][:3], rtol=1e-10
    )
    assert result.attrs["n_genes"] == 999  # the probe with a missing value left out
    assert result.attrs["top"] == min(CASES[case].get("top", 500), 999)


def test_carries_the_sample_variables_for_the_plot():
    result = mds(_bladder(), progress=False)
    assert list(result["cancer"].values) == list(_bladder()["cancer"].values)
    ax = plot.embedding(result, "cancer")
    share = 100 * result["var_explained"].values[0]
    assert ax.get_xlabel() == f"MDS1 ({share:.1f}%)"
    assert ax.get_title() == "MDS (leading log-fold-changes, pairwise)"


def test_bad_input_is_refused():
    with pytest.raises(CohortexError, match="'gene_selection' parameter of mds"):
        mds(_bladder(), gene_selection="all")
    with pytest.raises(CohortexError, match="at least three samples"):
        mds(np.ones((2, 10)))
    with pytest.raises(CohortexError, match="'n_components' parameter of mds"):
        mds(_bladder(), n_components=0)


def test_counts_as_edger_plot_mds_of_a_dge_list():
    """A counts cohort: edgeR's plotMDS(calcNormFactors(DGEList(counts))): log-CPM with
    prior 2 and TMM factors, then limma's MDS."""
    counts = fixture_cohort(
        FIXTURES / "sva" / "counts.csv", FIXTURES / "sva" / "counts_samples.csv", scale="counts"
    )
    result = mds(counts, n_components=3, progress=False)
    expected = pd.read_csv(FIXTURES / "mds" / "counts.csv", index_col=0)
    for j, name in enumerate(expected.columns):
        ours, theirs = result["embedding"].values[:, j], expected[name].to_numpy()
        sign = np.sign(ours @ theirs)
        np.testing.assert_allclose(sign * ours, theirs, rtol=0, atol=1e-10, err_msg=name)
    eigen = pd.read_csv(FIXTURES / "mds" / "counts_eigen.csv")
    np.testing.assert_allclose(
        result["var_explained"].values, eigen["var_explained"][:3], rtol=1e-10
    )
    assert result.attrs["transform"] == "log-CPM"


def test_many_samples_by_pairs_are_warned_of(monkeypatch):
    from cohortex import CohortexWarning
    from cohortex.embed import _mds

    monkeypatch.setattr(_mds, "PAIRWISE_WARNING_SAMPLES", 50)
    with pytest.warns(CohortexWarning, match="1,596 pairs.*gene_selection='common'"):
        mds(_bladder(), progress=False)
    mds(_bladder(), gene_selection="common", progress=False)  # no warning: the common genes
