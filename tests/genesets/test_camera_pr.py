"""limma's cameraPR and geneSetTest (wilcoxGST) against R (fixtures made by
tests/fixtures/make_camera_pr_fixtures.R): on limma's moderated t of fry's fixture, the
t-test and the rank test, fixed, negative and per-set correlations; each alternative."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohortex import CohortexError
from cohortex.genesets import camera_pr, gene_set_test, read_gmt

LIMMA = Path(__file__).parents[1] / "fixtures" / "limma"
TABLE = pd.read_csv(LIMMA / "camera_pr_statistic.csv")
STATISTIC = pd.Series(TABLE["t"].to_numpy(), index=TABLE["gene"])
PER_SET = np.linspace(0.0, 0.23, 24)
CASES = {
    "default": {},
    "ranks": {"use_ranks": True},
    "correlation": {"inter_gene_cor": 0.05},
    "negative": {"inter_gene_cor": -0.02},
    "per_set": {"inter_gene_cor": PER_SET},
    "per_set_ranks": {"inter_gene_cor": PER_SET, "use_ranks": True},
}


def _sets():
    return read_gmt(LIMMA / "fry_sets.gmt")


@pytest.mark.parametrize("case", list(CASES))
def test_camera_pr_equals_limma(case):
    expected = pd.read_csv(LIMMA / f"camera_pr_{case}.csv", index_col=0)
    result = camera_pr(STATISTIC, _sets(), **CASES[case])
    assert list(result["gene_set"].values) == list(expected.index)
    np.testing.assert_array_equal(result["n_genes"].values, expected["NGenes"])
    finite = np.isfinite(expected["PValue"].to_numpy())  # limma's NaN: a negative factor
    np.testing.assert_array_equal(np.isfinite(result["pvalue"].values), finite)
    np.testing.assert_array_equal(
        result["direction"].values[finite], expected["Direction"].to_numpy()[finite]
    )
    np.testing.assert_allclose(
        result["pvalue"].values[finite], expected["PValue"][finite], rtol=1e-12
    )
    if finite.all():
        np.testing.assert_allclose(result["padj"].values, expected["FDR"], rtol=1e-12)
    if "Correlation" in expected:
        np.testing.assert_allclose(result["correlation"].values, expected["Correlation"])


@pytest.mark.parametrize("alternative", ["mixed", "either", "up", "down"])
def test_gene_set_test_equals_limma(alternative):
    expected = pd.read_csv(LIMMA / "gene_set_test.csv", index_col=0)
    result = gene_set_test(STATISTIC, _sets(), alternative=alternative)
    np.testing.assert_allclose(
        result["pvalue"].values, np.minimum(expected[alternative], 1.0), rtol=1e-12
    )
    # wilcoxGST of |t|: an F-like statistic, mixed only
    absolute = gene_set_test(STATISTIC.abs(), _sets())
    np.testing.assert_allclose(absolute["pvalue"].values, expected["abs_mixed"], rtol=1e-12)


def test_camera_pr_and_gene_set_test_refuse_bad_input():
    with pytest.raises(CohortexError, match="one per set"):
        camera_pr(STATISTIC, _sets(), inter_gene_cor=[0.1, 0.2])
    with pytest.raises(CohortexError, match=r"must lie in \(−1, 1\)"):
        camera_pr(STATISTIC, _sets(), inter_gene_cor=1.0)
    with pytest.raises(CohortexError, match="only alternative='mixed'"):
        gene_set_test(STATISTIC.abs(), _sets(), alternative="up")
    with pytest.raises(CohortexError, match="'alternative' must be one of"):
        gene_set_test(STATISTIC, _sets(), alternative="sideways")
    assert gene_set_test(STATISTIC, _sets(), alternative="greater").attrs["alternative"] == "up"
