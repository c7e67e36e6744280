"""limma's fry against fixtures made with R's limma 3.54 (tests/fixtures/make_fry_fixtures.R):
every standardisation, trend and robust, weights per sample and per observation, blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from cohortex import CohortexError
from cohortex.genesets import _fry, camera, fry, read_gmt
from cohortex.stats._householder import householder_effects

from conftest import fixture_cohort

LIMMA = Path(__file__).parents[1] / "fixtures" / "limma"
DESIGN = "~ group + batch"
WEIGHTS = pd.read_csv(LIMMA / "fry_observation_weights.csv", index_col=0).to_numpy().T
ARRAY_WEIGHTS = pd.read_csv(LIMMA / "fry_sample_weights.csv")["weight"].to_numpy()
CASES = {
    "posterior": {},
    "none": {"standardize": "none"},
    "residual": {"standardize": "residual.sd"},
    "p2": {"standardize": "p2"},
    "trend_robust": {"trend": True, "robust": True},
    "p2_trend_robust": {"standardize": "p2", "trend": True, "robust": True},
    "array_weights": {"weights": ARRAY_WEIGHTS},
    "weights": {"weights": WEIGHTS},
    "block": {"block": "patient", "correlation": 0.3},
    "block_weights": {"block": "patient", "correlation": 0.3, "weights": WEIGHTS},
    "batch_coefficient": {"contrast": "batch[T.y]"},
    "pair": {"contrast": "group[T.c] - group[T.b]"},
    "pair_weights": {
        "contrast": "group[T.c] - group[T.b]",
        "weights": WEIGHTS,
        "block": "patient",
        "correlation": 0.3,
    },
}


def _cohort(chunks=(7, 90)):
    """The fixture's 30 samples × 400 genes, in tiles that split both axes."""
    return fixture_cohort(
        LIMMA / "fry_expression.csv", LIMMA / "fry_samples.csv", scale="log2", chunks=chunks
    )


@pytest.mark.parametrize("case", list(CASES))
def test_fry_equals_limma(case):
    options = dict(CASES[case])
    options.setdefault("contrast", "group[T.c]")
    result = fry(_cohort(), DESIGN, read_gmt(LIMMA / "fry_sets.gmt"), **options)
    expected = pd.read_csv(LIMMA / f"fry_{case}.csv", index_col=0)
    assert list(result["gene_set"].values) == list(expected.index)
    np.testing.assert_array_equal(result["n_genes"].values, expected["NGenes"])
    np.testing.assert_array_equal(result["direction"].values, expected["Direction"])
    for mine, theirs in (
        ("pvalue", "PValue"),
        ("padj", "FDR"),
        ("pvalue_mixed", "PValue.Mixed"),
        ("padj_mixed", "FDR.Mixed"),
    ):
        np.testing.assert_allclose(result[mine].values, expected[theirs], rtol=1e-9, err_msg=mine)
    assert result.attrs["df"] == 26.0


@pytest.mark.parametrize("contrast", ["group[T.c]", "group[T.c] - group[T.b]"])
def test_camera_estimates_the_correlation_with_weights_per_observation(contrast):
    """camera(weights = W, inter.gene.cor = NA): each gene's residual effects in its own
    weighted Householder basis (limma's per-gene qr.qty), for a coefficient and a contrast."""
    result = camera(
        _cohort(),
        DESIGN,
        read_gmt(LIMMA / "fry_sets.gmt"),
        contrast=contrast,
        weights=WEIGHTS,
        inter_gene_cor=None,
    )
    name = "weighted" if contrast == "group[T.c]" else "pair_weighted"
    expected = pd.read_csv(LIMMA / f"fry_camera_{name}_estimated.csv", index_col=0)
    np.testing.assert_allclose(
        result["correlation"].values, expected["Correlation"], rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(result["pvalue"].values, expected["PValue"], rtol=1e-9)
    np.testing.assert_array_equal(result["direction"].values, expected["Direction"])


@pytest.mark.parametrize("correlation", ["fixed", "estimated"])
def test_camera_of_a_contrast_equals_limma(correlation):
    """camera(contrast = c(0, -1, 1, 0)): the design reparametrised as limma's contrastAsCoef."""
    result = camera(
        _cohort(),
        DESIGN,
        read_gmt(LIMMA / "fry_sets.gmt"),
        contrast="group[T.c] - group[T.b]",
        inter_gene_cor=0.01 if correlation == "fixed" else None,
    )
    expected = pd.read_csv(LIMMA / f"fry_camera_pair_{correlation}.csv", index_col=0)
    np.testing.assert_array_equal(result["direction"].values, expected["Direction"])
    np.testing.assert_allclose(result["pvalue"].values, expected["PValue"], rtol=1e-9)
    if correlation == "estimated":
        np.testing.assert_allclose(
            result["correlation"].values, expected["Correlation"], rtol=1e-9, atol=1e-12
        )


@pytest.mark.parametrize(
    "case",
    [
        "ranks_fixed",
        "ranks_estimated",
        "ranks_negative_fixed",
        "ranks_negative_estimated",
        "t_negative_fixed",
        "t_negative_estimated",
    ],
)
def test_camera_ranks_and_negative_correlations_equal_limma(case):
    """camera(use.ranks =, allow.neg.cor =): limma's rankSumTestWithCorrelation of the
    moderated t (ties corrected), and estimated correlations below 0 kept."""
    result = camera(
        _cohort(),
        DESIGN,
        read_gmt(LIMMA / "fry_sets.gmt"),
        contrast="group[T.c]",
        use_ranks=case.startswith("ranks"),
        allow_neg_cor="negative" in case,
        inter_gene_cor=None if case.endswith("estimated") else 0.01,
    )
    expected = pd.read_csv(LIMMA / f"fry_camera_{case}.csv", index_col=0)
    np.testing.assert_array_equal(result["direction"].values, expected["Direction"])
    want = np.minimum(expected["PValue"].to_numpy(), 1.0)  # R reports 2·min above 1 too
    np.testing.assert_allclose(result["pvalue"].values, want, rtol=1e-9)


def test_camera_ranks_with_ties_equal_limma():
    """20 genes twice: their moderated t tie, and the rank-sum variance takes limma's tie
    correction."""
    tied = pd.read_csv(LIMMA / "fry_tied_expression.csv", index_col=0)
    cohort = _cohort().load()
    cohort = xr.Dataset(
        {
            "expression": (("sample", "gene"), tied.to_numpy().T),
            **{name: ("sample", cohort[name].values) for name in ("group", "batch")},
        },
        coords={"gene": list(tied.index)},
        attrs={"scale": "log2"},
    )
    sets = read_gmt(LIMMA / "fry_sets.gmt")
    result = camera(
        cohort, DESIGN, sets, contrast="group[T.c]", use_ranks=True, inter_gene_cor=None
    )
    expected = pd.read_csv(LIMMA / "fry_camera_ranks_tied.csv", index_col=0)
    want = np.minimum(expected["PValue"].to_numpy(), 1.0)
    np.testing.assert_allclose(result["pvalue"].values, want, rtol=1e-9)


def test_effects_are_rs_householder_coordinates():
    """R's qr.qty(qr(X), y): the residual effects' coordinates (their largest square is what
    fry leaves out) are LINPACK's, not any orthogonal basis's."""
    rng = np.random.default_rng(3)
    design = np.column_stack([np.ones(12), rng.normal(size=12), np.repeat([0.0, 1.0], 6)])
    values = rng.normal(size=(12, 5))
    effects, sign = householder_effects(design, values)
    q, r = np.linalg.qr(design, mode="complete")
    np.testing.assert_allclose(np.abs(effects), np.abs(q.T @ values), atol=1e-12)
    np.testing.assert_allclose(effects[3:] ** 2, (q.T @ values)[3:] ** 2, atol=1e-12)
    assert sign == np.sign(r[2, 2])  # LAPACK's reflections point as LINPACK's
    residual = values - design @ np.linalg.lstsq(design, values, rcond=None)[0]
    np.testing.assert_allclose((effects[3:] ** 2).sum(axis=0), (residual**2).sum(axis=0))


def test_fry_refuses_what_limma_refuses_and_too_many_effects(monkeypatch):
    sets = read_gmt(LIMMA / "fry_sets.gmt")
    with pytest.raises(CohortexError, match="needs its 'correlation'"):
        fry(_cohort(), DESIGN, sets, block="patient")
    with pytest.raises(CohortexError, match="'standardize' must be one of"):
        fry(_cohort(), DESIGN, sets, standardize="robust")
    with pytest.raises(CohortexError, match="unknown coefficients: group"):
        fry(_cohort(), DESIGN, sets, contrast="group")
    with pytest.raises(CohortexError, match="is all zero"):
        fry(_cohort(), DESIGN, sets, contrast="group[T.c] - group[T.c]")
    missing = _cohort().load()
    missing["expression"][3, 7] = np.nan
    with pytest.raises(CohortexError, match="missing values"):
        fry(missing, DESIGN, sets)
    with pytest.raises(CohortexError, match="weights > 0"):
        fry(_cohort(), DESIGN, sets, weights=np.where(WEIGHTS > 1.9, 0.0, WEIGHTS))
    monkeypatch.setattr(_fry, "FRY_EFFECTS", 1000)
    with pytest.raises(CohortexError, match="use camera"):
        fry(_cohort(), DESIGN, sets)
