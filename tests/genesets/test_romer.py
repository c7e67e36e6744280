"""limma's romer against fixtures made with R's limma 3.54
(tests/fixtures/make_romer_fixtures.R): an int random_state is R's set.seed, so the rotations
replay R's normal stream from the fixture's seed and every p-value is limma's, for each set
statistic, without the shrinkage of the residuals, with sample weights, blocks and contrasts
(one whose design's last Householder pivot is negative)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gene_set_study import simulated_study

from cohortex import CohortexError
from cohortex.genesets import _romer, read_gmt, romer

from conftest import fixture_cohort

LIMMA = Path(__file__).parents[1] / "fixtures" / "limma"
SEED = 20261130
DESIGN = "~ group + batch"
ARRAY_WEIGHTS = pd.read_csv(LIMMA / "fry_sample_weights.csv")["weight"].to_numpy()
CASES = {
    "mean": {},
    "floormean": {"set_statistic": "floormean"},
    "mean50": {"set_statistic": "mean50"},
    "no_shrink": {"shrink_resid": False},
    "array_weights": {"weights": ARRAY_WEIGHTS},
    "block": {"block": "patient", "correlation": 0.3},
    "pair": {"contrast": "group[T.c] - group[T.b]"},
    "pair_reversed": {"contrast": "group[T.b] - group[T.c]"},
    "batch": {"contrast": "batch[T.y]"},
}


def _cohort(chunks=(7, 90)):
    """fry's fixture: 30 samples × 400 genes, in tiles that split both axes."""
    return fixture_cohort(
        LIMMA / "fry_expression.csv", LIMMA / "fry_samples.csv", scale="log2", chunks=chunks
    )


@pytest.mark.parametrize("case", list(CASES))
def test_romer_equals_limma(case):
    options = {"contrast": "group[T.c]", **CASES[case]}
    result = romer(
        _cohort(),
        DESIGN,
        read_gmt(LIMMA / "fry_sets.gmt"),
        n_rotations=999,
        random_state=SEED,
        **options,
    )
    expected = pd.read_csv(LIMMA / f"romer_{case}.csv", index_col=0)
    assert list(result["gene_set"].values) == list(expected.index)
    np.testing.assert_array_equal(result["n_genes"].values, expected["NGenes"])
    for mine, theirs in (("pvalue_up", "Up"), ("pvalue_down", "Down"), ("pvalue_mixed", "Mixed")):
        np.testing.assert_allclose(result[mine].values, expected[theirs], rtol=1e-12, err_msg=mine)


def test_romer_with_its_defaults_finds_changed_sets_and_holds_its_size():
    """The simulated study (tests/gene_set_study.py) with every default (9,999 rotations, the
    residuals shrunk): the up and down sets at romer's floor on their side, the unchanged
    sets (correlated modules among them) near the nominal rate."""
    cohort, sets = simulated_study()
    result = romer(cohort, "~ condition", sets)
    floor = 1.0 / 10000
    for name in ("up0", "up1"):
        assert float(result["pvalue_up"].sel(gene_set=name)) == floor
        assert float(result["pvalue_down"].sel(gene_set=name)) > 0.99
    for name in ("down0", "down1"):
        assert float(result["pvalue_down"].sel(gene_set=name)) == floor
    assert np.all(result["padj_mixed"].sel(gene_set=["both0", "both1"]).values < 0.01)
    unchanged = result.isel(gene_set=slice(6, None))
    for side in ("up", "down", "mixed"):
        assert np.mean(unchanged[f"pvalue_{side}"].values < 0.05) <= 0.1, side
        assert np.all(unchanged[f"padj_{side}"].values > 0.05), side


def test_romer_shrinks_a_huge_change_instead_of_failing(monkeypatch):
    """A gene of the study changed by 20 log2 units (t in the hundreds, 398 df): its B passes
    709, where limma's exp(B) / (1 + exp(B)) is NaN; here its probability of change is 1, its
    effect shrunk, and every p-value a number."""
    cohort, sets = simulated_study()
    cohort = cohort.copy(deep=True)
    tumour = cohort["condition"].values == "tumor"
    changed = str(sets.members[sets.names.index("null0")][0])
    column = list(cohort["gene"].values).index(changed)
    cohort["expression"].values[tumour, column] += 20.0
    largest = []
    expit = _romer.special.expit

    def recording(lods):
        largest.append(float(np.max(lods)))
        return expit(lods)

    monkeypatch.setattr(_romer.special, "expit", recording)
    result = romer(cohort, "~ condition", sets, n_rotations=999)
    assert largest and largest[0] > 709
    for side in ("up", "down", "mixed"):
        assert np.all(np.isfinite(result[f"pvalue_{side}"].values))
    assert float(result["pvalue_up"].sel(gene_set="up0")) == 1.0 / 1000


def test_romer_refuses_what_it_cannot_do():
    sets = read_gmt(LIMMA / "fry_sets.gmt")
    weights = np.ones((30, 400))
    with pytest.raises(CohortexError, match="weights per sample only"):
        romer(_cohort(), DESIGN, sets, weights=weights)
    voomed = _cohort().load().assign(weights=(("sample", "gene"), weights))
    with pytest.raises(CohortexError, match="are per observation"):
        romer(voomed, DESIGN, sets)
    with pytest.raises(CohortexError, match="'set_statistic' must be one of"):
        romer(_cohort(), DESIGN, sets, set_statistic="msq")
    with pytest.raises(CohortexError, match="at least one rotation"):
        romer(_cohort(), DESIGN, sets, n_rotations=0)
    with pytest.raises(CohortexError, match="needs its 'correlation'"):
        romer(_cohort(), DESIGN, sets, block="patient")
