"""DESeq2's regularized log transformation against R (fixtures from make_rlog_fixtures.R,
DESeq2 1.38.3): rlog blind and with the design, fitType = "mean", and 8 samples alone (and
with fitType = "local")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohortex import CohortexError, CohortexWarning, de

from conftest import fixture_cohort

DESEQ = Path(__file__).parent.parent / "fixtures" / "deseq"
CASES = {
    "blind": ({}, None),
    "design": ({"design": "~ condition"}, None),
    "mean": ({"fit_type": "mean"}, None),
    "small": ({}, slice(0, 8)),
    "local": ({"fit_type": "local"}, slice(0, 8)),
}


@pytest.fixture(scope="module")
def cohort():
    return fixture_cohort(
        DESEQ / "counts.csv", DESEQ / "samples.csv", scale="counts", chunks=(24, 128)
    )


@pytest.mark.parametrize("case", list(CASES))
def test_rlog_equals_deseq2(cohort, case):
    options, samples = CASES[case]
    data = cohort if samples is None else cohort.isel(sample=samples)
    result = de.rlog(data, **options)
    theirs = pd.read_csv(DESEQ / f"rlog_{case}.csv", index_col=0)
    np.testing.assert_allclose(result["expression"].values, theirs.to_numpy().T, rtol=0, atol=1e-8)
    summary = pd.read_csv(DESEQ / "rlog_summary.csv").set_index("case")
    assert result.attrs["rlog_beta_prior_variance"] == pytest.approx(
        summary.loc[case, "beta_prior_var"], rel=1e-10
    )
    assert result.attrs["scale"] == "log2" and result.attrs["normalization"] == "rlog"
    assert result.attrs["rlog_blind"] == int("design" not in options)
    empty = data["expression"].values.sum(axis=0) == 0  # DESeq2: 0, and an intercept of -inf
    assert empty.sum() == (13 if samples is None else 33)
    assert np.all(result["expression"].values[:, empty] == 0)
    assert np.all(np.isneginf(result["rlog_intercept"].values[empty]))


def test_rlog_with_lengths_equals_deseq2(cohort):
    """rlog of 8 samples with their average transcript lengths (a DESeqDataSetFromTximport):
    the dispersions, the prior and the per-sample fits take the normalization factors."""
    lengths = pd.read_csv(DESEQ / "lengths.csv", index_col=0).T.to_numpy()[:8]
    data = cohort.isel(sample=slice(0, 8)).assign(length=(("sample", "gene"), lengths))
    result = de.rlog(data)
    theirs = pd.read_csv(DESEQ / "rlog_tx_small.csv", index_col=0)
    np.testing.assert_allclose(result["expression"].values, theirs.to_numpy().T, rtol=0, atol=1e-8)
    summary = pd.read_csv(DESEQ / "rlog_summary.csv").set_index("case")
    assert result.attrs["rlog_beta_prior_variance"] == pytest.approx(
        summary.loc["tx_small", "beta_prior_var"], rel=1e-10
    )
    assert result.attrs["normalization_factors"] == "lengths"


def test_rlog_with_given_normalization_factors_equals_deseq2(cohort):
    given = pd.read_csv(DESEQ / "norm_factors.csv", index_col=0).T.to_numpy()[:8]
    result = de.rlog(cohort.isel(sample=slice(0, 8)), norm_factors=given)
    theirs = pd.read_csv(DESEQ / "rlog_given.csv", index_col=0)
    np.testing.assert_allclose(result["expression"].values, theirs.to_numpy().T, rtol=0, atol=1e-8)
    assert result.attrs["normalization_factors"] == "given"


def test_rlog_shrinks_low_counts_towards_their_mean(cohort):
    """The point of rlog: a gene's spread over the samples shrinks the fewer its counts."""
    result = de.rlog(cohort)
    counts = cohort["expression"].values
    sf = result["size_factor"].values
    log_counts = np.log2(counts / sf[:, None] + 0.5)
    kept = counts.sum(axis=0) > 0
    spread = result["expression"].values[:, kept].std(axis=0)
    raw = log_counts[:, kept].std(axis=0)
    mean = counts[:, kept].mean(axis=0)
    shrunk = [
        np.median((spread / raw)[(mean >= lo) & (mean < hi)])
        for lo, hi in ((0, 5), (5, 50), (50, np.inf))
    ]
    assert shrunk[0] < 0.3 < shrunk[1] < shrunk[2] < 1.0


def test_a_given_prior_variance_is_used(cohort):
    narrow = de.rlog(cohort, beta_prior_variance=0.01)
    wide = de.rlog(cohort, beta_prior_variance=10.0)
    assert narrow.attrs["rlog_beta_prior_variance"] == 0.01
    assert (
        narrow["expression"].values.std(axis=0).mean()
        < wide["expression"].values.std(axis=0).mean()
    )


def test_refusals_and_warning(cohort):
    with pytest.raises(CohortexError, match="'fit_type' parameter of rlog"):
        de.rlog(cohort, fit_type="loess")
    with pytest.raises(CohortexError, match="'beta_prior_variance' parameter"):
        de.rlog(cohort, beta_prior_variance=0)
    many = cohort.isel(sample=np.arange(50) % 24).assign_coords(sample=[f"s{i}" for i in range(50)])
    with pytest.warns(CohortexWarning, match="fits 51 coefficients per gene"):
        de.rlog(many.isel(gene=slice(0, 40)))
