"""limma's roast/mroast against fixtures made with R's limma 3.54
(tests/fixtures/make_roast_fixtures.R): an int random_state is R's set.seed, so the rotations
replay R's normal stream from the fixture's seed and every p-value is limma's, for each set
statistic, trend and robust, the weights, blocks, a contrast and two chunks of rotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gene_set_study import simulated_study

from cohortex import CohortexError
from cohortex.genesets import GeneSets, _roast, fry, read_gmt, roast
from cohortex.genesets._rotations import rotation_numbers

from conftest import fixture_cohort

LIMMA = Path(__file__).parents[1] / "fixtures" / "limma"
SEED = 20261130
DESIGN = "~ group + batch"
WEIGHTS = pd.read_csv(LIMMA / "fry_observation_weights.csv", index_col=0).to_numpy().T
ARRAY_WEIGHTS = pd.read_csv(LIMMA / "fry_sample_weights.csv")["weight"].to_numpy()
CASES = {
    "mean": {},
    "floormean": {"set_statistic": "floormean"},
    "mean50": {"set_statistic": "mean50"},
    "msq": {"set_statistic": "msq"},
    "no_midp": {"midp": False},
    "trend_robust": {"trend": True, "robust": True},
    "weights": {"weights": WEIGHTS},
    "array_weights": {"weights": ARRAY_WEIGHTS},
    "block": {"block": "patient", "correlation": 0.3},
    "pair": {"contrast": "group[T.c] - group[T.b]"},
    "chunks": {"n_rotations": 1999},
    "floormean_trend_robust": {"set_statistic": "floormean", "trend": True, "robust": True},
}


def _cohort(chunks=(7, 90)):
    """fry's fixture: 30 samples × 400 genes, in tiles that split both axes."""
    return fixture_cohort(
        LIMMA / "fry_expression.csv", LIMMA / "fry_samples.csv", scale="log2", chunks=chunks
    )


def _sets():
    return read_gmt(LIMMA / "fry_sets.gmt")


def test_an_int_seed_draws_rs_normal_stream():
    """An int random_state is R's set.seed: its normals are R's rnorm (drawn in two calls)."""
    expected = pd.read_csv(LIMMA / "roast_rnorm.csv")["value"].to_numpy()
    stream = rotation_numbers(1, SEED, "roast()")
    drawn = np.concatenate([stream.standard_normal(7), stream.standard_normal(1993)])
    np.testing.assert_allclose(drawn, expected, rtol=1e-13, atol=1e-14)  # R wrote 15 digits


@pytest.mark.parametrize("case", list(CASES))
def test_roast_equals_limma_mroast(case):
    options = {"contrast": "group[T.c]", "n_rotations": 999, **CASES[case]}
    result = roast(_cohort(), DESIGN, _sets(), random_state=SEED, **options)
    expected = pd.read_csv(LIMMA / f"roast_{case}.csv", index_col=0)
    assert list(result["gene_set"].values) == list(expected.index)
    np.testing.assert_array_equal(result["n_genes"].values, expected["NGenes"])
    np.testing.assert_array_equal(result["direction"].values, expected["Direction"])
    for mine, theirs in (
        ("prop_down", "PropDown"),
        ("prop_up", "PropUp"),
        ("pvalue", "PValue"),
        ("padj", "FDR"),
        ("pvalue_mixed", "PValue.Mixed"),
        ("padj_mixed", "FDR.Mixed"),
    ):
        np.testing.assert_allclose(result[mine].values, expected[theirs], rtol=1e-12, err_msg=mine)
    assert result.attrs["df"] == 26.0
    assert result.attrs["n_rotations"] == options["n_rotations"]


GENE_WEIGHTS = pd.read_csv(LIMMA / "roast_gene_weights.csv")


@pytest.mark.parametrize("statistic", ["mean", "floormean", "mean50", "msq"])
def test_roast_with_gene_weights_equals_limma(statistic):
    """limma's gene.weights (signed, a weight per gene), each set statistic; as an array and
    as a mapping from gene ids."""
    expected = pd.read_csv(LIMMA / f"roast_gene_weights_{statistic}.csv", index_col=0)
    weights = GENE_WEIGHTS["weight"].to_numpy()
    by_id = dict(zip(GENE_WEIGHTS["gene"], weights, strict=True))
    for given in (weights, by_id):
        result = roast(
            _cohort(),
            DESIGN,
            _sets(),
            contrast="group[T.c]",
            n_rotations=999,
            set_statistic=statistic,
            gene_weights=given,
            random_state=SEED,
        )
        np.testing.assert_array_equal(result["direction"].values, expected["Direction"])
        for mine, theirs in (
            ("prop_down", "PropDown"),
            ("prop_up", "PropUp"),
            ("pvalue", "PValue"),
            ("padj", "FDR"),
            ("pvalue_mixed", "PValue.Mixed"),
            ("padj_mixed", "FDR.Mixed"),
        ):
            np.testing.assert_allclose(
                result[mine].values, expected[theirs], rtol=1e-12, err_msg=mine
            )
        assert result.attrs["gene_weights"] == 1


def test_fry_with_gene_weights_equals_limma():
    expected = pd.read_csv(LIMMA / "roast_fry_gene_weights.csv", index_col=0)
    result = fry(
        _cohort(),
        DESIGN,
        _sets(),
        contrast="group[T.c]",
        gene_weights=GENE_WEIGHTS["weight"].to_numpy(),
    )
    np.testing.assert_array_equal(result["direction"].values, expected["Direction"])
    for mine, theirs in (
        ("pvalue", "PValue"),
        ("padj", "FDR"),
        ("pvalue_mixed", "PValue.Mixed"),
        ("padj_mixed", "FDR.Mixed"),
    ):
        np.testing.assert_allclose(result[mine].values, expected[theirs], rtol=1e-9, err_msg=mine)


def test_gene_weights_are_checked():
    with pytest.raises(CohortexError, match="one weight per gene"):
        roast(_cohort(), DESIGN, _sets(), gene_weights=np.ones(3))
    with pytest.raises(CohortexError, match="names none of the cohort's genes"):
        fry(_cohort(), DESIGN, _sets(), gene_weights={"nope": 2.0})
    with pytest.raises(CohortexError, match="must be finite"):
        roast(_cohort(), DESIGN, _sets(), gene_weights=np.full(400, np.nan))
    # a mapping leaves the genes it does not name at 1: the same as no weights
    plain = roast(_cohort(), DESIGN, _sets(), n_rotations=199)
    ones = roast(_cohort(), DESIGN, _sets(), n_rotations=199, gene_weights={"g001": 1.0})
    np.testing.assert_array_equal(plain["pvalue"].values, ones["pvalue"].values)


def test_roast_one_sided_pvalues_equal_limmas_roast():
    """roast() of each set in turn (R's draws following on): the down and up p-values."""
    result = roast(
        _cohort(),
        DESIGN,
        _sets(),
        contrast="group[T.c]",
        n_rotations=999,
        random_state=SEED,
    )
    expected = pd.read_csv(LIMMA / "roast_default.csv", index_col=0)
    for mine, theirs in (
        ("pvalue_down", "PDown"),
        ("pvalue_up", "PUp"),
        ("pvalue", "PUpOrDown"),
        ("pvalue_mixed", "PMixed"),
        ("prop_down", "PropDown"),
        ("prop_up", "PropUp"),
    ):
        np.testing.assert_allclose(result[mine].values, expected[theirs], rtol=1e-12, err_msg=mine)


def test_roast_with_its_defaults_finds_changed_sets_and_holds_its_size():
    cohort, sets = simulated_study()
    result = roast(cohort, "~ condition", sets)
    changed = result.sel(gene_set=[f"{n}{i}" for n in ("up", "down", "both") for i in range(2)])
    assert np.all(changed["padj_mixed"].values < 0.01)
    assert np.all(changed["padj"].sel(gene_set=["up0", "up1", "down0", "down1"]).values < 0.01)
    assert list(changed["direction"].values[:4]) == ["Up", "Up", "Down", "Down"]
    assert np.all(changed["prop_up"].sel(gene_set=["up0", "up1"]).values > 0.3)
    unchanged = result.isel(gene_set=slice(6, None))  # the modules are correlated: still null
    assert np.mean(unchanged["pvalue"].values < 0.05) <= 0.1
    assert np.mean(unchanged["pvalue_mixed"].values < 0.05) <= 0.1
    # one random null set's genes lean up by chance (fry and full rotations agree: p ≈ 0.002)
    assert np.sum(unchanged["padj"].values < 0.05) <= 1
    assert np.min(result["pvalue"].values) == 1.0 / 2000  # the default 1,999 rotations


def test_rotations_in_the_sets_span_match_full_rotations(monkeypatch):
    """With more effects than FULL_ROTATIONS_UP_TO a set of fewer genes draws only its span;
    its p-values agree with full rotations within the rotations' own error."""
    cohort, sets = simulated_study()
    sets = GeneSets(sets.names[4:14], sets.descriptions[4:14], sets.members[4:14])
    spanned = roast(cohort, "~ condition", sets, n_rotations=4999, random_state=1)
    monkeypatch.setattr(_roast, "FULL_ROTATIONS_UP_TO", 10**6)
    full = roast(cohort, "~ condition", sets, n_rotations=4999, random_state=2)
    for name in ("pvalue", "pvalue_mixed", "pvalue_up"):
        p = 0.5 * (spanned[name].values + full[name].values)
        error = np.sqrt(2.0 * p * (1.0 - p) / 4999) + 1e-3
        assert np.all(np.abs(spanned[name].values - full[name].values) < 4.0 * error), name
    np.testing.assert_array_equal(spanned["prop_up"].values, full["prop_up"].values)


def test_roast_is_reproducible_and_refuses_bad_input():
    sets = _sets()
    first = roast(_cohort(), DESIGN, sets, n_rotations=199)
    again = roast(_cohort(chunks=(30, 400)), DESIGN, sets, n_rotations=199)
    np.testing.assert_array_equal(first["pvalue"].values, again["pvalue"].values)
    with pytest.raises(CohortexError, match="needs its 'correlation'"):
        roast(_cohort(), DESIGN, sets, block="patient")
    with pytest.raises(CohortexError, match="'set_statistic' must be one of"):
        roast(_cohort(), DESIGN, sets, set_statistic="median")
    with pytest.raises(CohortexError, match="at least one rotation"):
        roast(_cohort(), DESIGN, sets, n_rotations=0)
    with pytest.raises(CohortexError, match="whole number"):
        roast(_cohort(), DESIGN, sets, n_rotations=99.5)
    missing = _cohort().load()
    missing["expression"][3, 7] = np.nan
    with pytest.raises(CohortexError, match="missing values"):
        roast(missing, DESIGN, sets)
    with pytest.raises(CohortexError, match="No gene set"):
        roast(_cohort(), DESIGN, GeneSets(("x",), ("",), (("nope",),)))


def test_roast_and_fry_agree_on_the_fixture():
    """fry approximates roast's directional test (the mean statistic): p-values within a
    factor 1.5 where rotations resolve them, roast at its floor where fry's are tiny."""
    sets = _sets()
    rotated = roast(_cohort(), DESIGN, sets, contrast="group[T.c]", n_rotations=4999)
    approximated = fry(_cohort(), DESIGN, sets, contrast="group[T.c]")
    by_rotation, by_fry = rotated["pvalue"].values, approximated["pvalue"].values
    resolved = by_rotation >= 0.01
    assert resolved.sum() >= 15
    assert np.all(np.abs(np.log(by_rotation / by_fry)[resolved]) < np.log(1.5))
    assert np.all(by_rotation[by_fry < 1e-4] <= 1e-3)
    np.testing.assert_array_equal(rotated["direction"].values, approximated["direction"].values)
