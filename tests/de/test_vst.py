"""DESeq2's variance-stabilizing transformation against R (fixtures from
make_deseq_fixtures.R, DESeq2 1.38.3): vst blind and with the design,
varianceStabilizingTransformation, fitType = "mean" and "local" (DESeq2's numerical
integral)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohortex import CohortexError, CohortexWarning, de, embed

from conftest import fixture_cohort

DESEQ = Path(__file__).parent.parent / "fixtures" / "deseq"


@pytest.fixture(scope="module")
def cohort():
    return fixture_cohort(DESEQ / "counts.csv", DESEQ / "samples.csv", scale="counts")


@pytest.mark.parametrize(
    ("case", "options"),
    [
        ("blind", {"nsub": 150}),
        ("design", {"design": "~ condition", "nsub": 150}),
        ("all", {"nsub": None}),
        ("mean", {"nsub": 200, "fit_type": "mean"}),
    ],
)
def test_vst_equals_deseq2(cohort, case, options):
    result = de.vst(cohort, **options)
    theirs = pd.read_csv(DESEQ / f"vst_{case}.csv", index_col=0)
    assert list(theirs.columns) == list(result["sample"].values)
    np.testing.assert_allclose(result["expression"].values, theirs.to_numpy().T, rtol=1e-12)
    assert result.attrs["scale"] == "log2" and result.attrs["normalization"] == "vst"
    assert result.attrs["vst_genes"] == (600 if options["nsub"] is None else options["nsub"])


@pytest.mark.parametrize(
    ("case", "options"),
    [("tx_all", {"nsub": None}), ("tx_blind", {"nsub": 150, "fit_type": "mean"})],
)
def test_vst_with_lengths_equals_deseq2(cohort, case, options):
    """vst of a DESeqDataSetFromTximport: the counts over their normalization factors, the
    trend from every gene or from 150 (their moments estimate from their own factors)."""
    lengths = pd.read_csv(DESEQ / "lengths.csv", index_col=0).T
    result = de.vst(cohort.assign(length=(("sample", "gene"), lengths.to_numpy())), **options)
    theirs = pd.read_csv(DESEQ / f"vst_{case}.csv", index_col=0)
    np.testing.assert_allclose(result["expression"].values, theirs.to_numpy().T, rtol=1e-12)
    assert result.attrs["normalization_factors"] == "lengths"
    assert de.vst(cohort, **options).attrs["normalization_factors"] == "size factors"


def test_vst_with_given_normalization_factors_equals_deseq2(cohort):
    given = pd.read_csv(DESEQ / "norm_factors.csv", index_col=0).T
    result = de.vst(cohort, nsub=None, norm_factors=given)
    theirs = pd.read_csv(DESEQ / "vst_given.csv", index_col=0)
    np.testing.assert_allclose(result["expression"].values, theirs.to_numpy().T, rtol=1e-12)
    assert result.attrs["normalization_factors"] == "given" and "size_factor" not in result


def test_vst_with_the_local_trend_equals_deseq2(cohort):
    """The local trend's numerical integral: varianceStabilizingTransformation(fitType =
    "local"), DESeq2's fallback of vst(nsub = 200), where the parametric fit fails (a warning
    here), and with given normalization factors (xim from their geometric means per sample).
    The trend at the lowest means holds to 1e-8 (locfit's rotations, as in test_deseq), and
    a count of 0 lies below the spline's first knot, on its first cubic's extrapolation: those
    values hold to 1e-9, the others to 1e-11."""
    counts = cohort["expression"].values
    with pytest.warns(CohortexWarning, match="local regression was fitted"):
        fallback = de.vst(cohort, nsub=200)
    assert fallback.attrs["vst_fit_type"] == "local"
    given = pd.read_csv(DESEQ / "norm_factors.csv", index_col=0).T
    cases = {
        "local_all": de.vst(cohort, nsub=None, fit_type="local"),
        "fallback": fallback,
        "local_given": de.vst(cohort, nsub=None, norm_factors=given, fit_type="local"),
    }
    for case, result in cases.items():
        ours = result["expression"].values
        theirs = pd.read_csv(DESEQ / f"vst_{case}.csv", index_col=0).to_numpy().T
        zero = counts == 0
        np.testing.assert_allclose(ours[zero], theirs[zero], rtol=1e-9, err_msg=case)
        np.testing.assert_allclose(ours[~zero], theirs[~zero], rtol=1e-11, err_msg=case)


def test_vst_is_a_lazy_layer_that_feeds_pca(cohort):
    layer = de.vst(cohort, nsub=None)
    assert hasattr(layer["expression"].data, "dask")
    scores = embed.pca(layer, n_components=2)
    assert scores["scores"].shape == (cohort.sizes["sample"], 2)


def test_vst_refuses_what_it_cannot_do(cohort):
    with pytest.raises(CohortexError, match="'fit_type' must be one of"):
        de.vst(cohort, nsub=200, fit_type="loess")
    with pytest.raises(CohortexError, match="nsub=None"):
        de.vst(cohort)  # 600 genes: fewer than 1000 above a mean of 5
    with pytest.raises(CohortexError, match="raw counts"):
        de.vst(cohort.assign_attrs(scale="log2"), nsub=None)
    with pytest.raises(CohortexError, match="nsub"):
        de.vst(cohort, nsub=1)
